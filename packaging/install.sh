#!/bin/sh
# Install this Grounded folder for the current user (no Python needed):
#   ./install.sh [--prefix DIR]      default DIR: ~/.local
# copies the folder to DIR/opt/grounded, links DIR/bin/grounded to it, and adds the menu entry
# (DIR/share/applications/grounded.desktop) and the icon. Run it again to update. Uninstall:
#   rm -rf DIR/opt/grounded DIR/bin/grounded DIR/share/applications/grounded.desktop \
#          DIR/share/icons/hicolor/*/apps/grounded.*
# Your index and settings are not touched (they live in ~/.local/share/Grounded and
# ~/.config/Grounded).
set -eu
prefix=${HOME:?}/.local
if [ "${1:-}" = "--prefix" ] && [ -n "${2:-}" ]; then prefix=$2
elif [ $# -gt 0 ]; then echo "usage: $0 [--prefix DIR]" >&2; exit 2; fi
here=$(cd "$(dirname "$0")" && pwd -P)
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd -P)
dest=$prefix/opt/grounded
if [ "$here" != "$dest" ]; then
    rm -rf "$dest.new"
    mkdir -p "$prefix/opt"
    cp -a "$here" "$dest.new"
    rm -rf "$dest"
    mv "$dest.new" "$dest"
fi
res=$dest/_internal/resources
mkdir -p "$prefix/bin" "$prefix/share/applications" \
    "$prefix/share/icons/hicolor/scalable/apps" "$prefix/share/icons/hicolor/256x256/apps"
ln -sfn "$dest/grounded" "$prefix/bin/grounded"
sed "s|^Exec=grounded |Exec=$dest/grounded |" "$res/grounded.desktop" \
    > "$prefix/share/applications/grounded.desktop"
cp "$res/icons/grounded.svg" "$prefix/share/icons/hicolor/scalable/apps/grounded.svg"
cp "$res/icons/grounded.png" "$prefix/share/icons/hicolor/256x256/apps/grounded.png"
command -v update-desktop-database >/dev/null 2>&1 \
    && update-desktop-database -q "$prefix/share/applications" || true
echo "Grounded installed in $dest; run \`grounded\` (is $prefix/bin on your PATH?) or open it" \
     "from the applications menu."
