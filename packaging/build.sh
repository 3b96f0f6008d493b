#!/usr/bin/env bash
# packaging/build.sh: build the one-folder app in dist/grounded/ (Linux; see packaging/README.md).
#
#   1. a portable llama-cpp-python wheel (GGML_NATIVE=OFF, every x86 CPU variant of ggml's CPU
#      backend as a library chosen at run time), built once and cached outside the checkout;
#   2. a build venv (packaging/.build-venv) with that wheel, the project and PyInstaller;
#   3. PyInstaller with packaging/grounded.spec.
#
# Environment: GROUNDED_CACHE (default ~/.cache/grounded) holds the wheel; PYTHON (default
# python3.11) makes the build venv. GROUNDED_NAIVE=1 builds the untrimmed folder used to
# measure what the trims save (dist-naive/grounded/).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3.11}
CACHE=${GROUNDED_CACHE:-$HOME/.cache/grounded}
VENV=$ROOT/packaging/.build-venv

# The versions come from pyproject.toml: one place to change them.
pin() { sed -n "s/^ *\"$1==\([^\"]*\)\",.*/\1/p" pyproject.toml | head -1; }
LLAMA_VERSION=$(pin llama-cpp-python)
PYINSTALLER_VERSION=$(pin pyinstaller)
[ -n "$LLAMA_VERSION" ] && [ -n "$PYINSTALLER_VERSION" ] || {
    echo "build.sh: pins not found in pyproject.toml" >&2; exit 1; }

# Portable: no -march=native (GGML_NATIVE=OFF); GGML_NATIVE=OFF alone would still compile the
# CPU backend for AVX2/FMA/F16C (ggml's defaults), so every variant is built as a loadable
# library (GGML_BACKEND_DL + GGML_CPU_ALL_VARIANTS) and ggml picks the best one at run time.
# LLAVA_BUILD=OFF: no multimodal library (Grounded reads text).
CMAKE_FLAGS="-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DLLAVA_BUILD=OFF"
LAYOUT=1  # bump when the wheel's post-processing (relayout_wheel.py) changes
PLATFORM=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_platform())')
KEY=$(printf '%s|%s|%s' "$LLAMA_VERSION" "$CMAKE_FLAGS" "$PLATFORM" | sha256sum | cut -c1-12)
RAW_DIR=$CACHE/wheels/llama-cpp-python-$LLAMA_VERSION-portable-$KEY  # the compiled wheel
WHEEL_DIR=$RAW_DIR/layout-$LAYOUT                                     # rearranged for use

log() { printf '\n== %s\n' "$*" >&2; }

portable_wheel() {
    if compgen -G "$WHEEL_DIR/llama_cpp_python-*.whl" >/dev/null; then
        log "portable llama-cpp-python $LLAMA_VERSION: cached in $WHEEL_DIR"
        return
    fi
    if ! compgen -G "$RAW_DIR/llama_cpp_python-*.whl" >/dev/null; then
        log "portable llama-cpp-python $LLAMA_VERSION: compiling ($CMAKE_FLAGS)"
        local start=$SECONDS
        mkdir -p "$(dirname "$RAW_DIR")"
        # --no-cache-dir and --no-binary: pip's wheel cache keys on the sdist, not on
        # CMAKE_ARGS, so anything else may hand back the -march=native wheel of a plain install.
        CMAKE_ARGS="$CMAKE_FLAGS" "$PYTHON" -m pip wheel --no-cache-dir --no-deps \
            --no-binary llama-cpp-python "llama-cpp-python==$LLAMA_VERSION" \
            -w "$RAW_DIR.tmp" -v > "$RAW_DIR.log" 2>&1 \
            || { tail -50 "$RAW_DIR.log" >&2; exit 1; }
        mv "$RAW_DIR.tmp" "$RAW_DIR" && mv "$RAW_DIR.log" "$RAW_DIR/build.log"
        echo "$((SECONDS - start))" > "$RAW_DIR/compile_seconds"
        log "compiled in $((SECONDS - start)) s (log: $RAW_DIR/build.log)"
    fi
    "$PYTHON" packaging/relayout_wheel.py "$RAW_DIR"/llama_cpp_python-*.whl "$WHEEL_DIR"
}

build_venv() {
    # Rebuilt when pyproject.toml or the wheel changes; the project is installed editable
    # (PyInstaller reads the sources from the checkout; the metadata gives the version).
    local wheel stamp want
    wheel=$(ls "$WHEEL_DIR"/llama_cpp_python-*.whl)
    stamp=$VENV/.grounded-stamp
    want="$(sha256sum pyproject.toml | cut -c1-16) $KEY $LAYOUT"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        log "build venv: up to date ($VENV)"
        return
    fi
    log "build venv: creating $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q "$wheel"
    # llama-cpp-python==$LLAMA_VERSION is satisfied by the portable wheel: pip keeps it.
    "$VENV/bin/pip" install -q -e ".[package]"
    echo "$want" > "$stamp"
}

check_portable_llama() {
    # The wheel pip left installed must be ours: CPU variants beside libllama, none native.
    local lib
    lib=$("$VENV/bin/python" -c 'import importlib.util, pathlib
print(pathlib.Path(importlib.util.find_spec("llama_cpp").origin).parent / "lib")')
    compgen -G "$lib/libggml-cpu-x64.so" >/dev/null || {
        echo "build.sh: $lib has no libggml-cpu-x64.so: not the portable build" >&2; exit 1; }
    [ ! -e "$lib/libggml-cpu.so" ] || {
        echo "build.sh: $lib has a single libggml-cpu.so: a native build slipped in" >&2; exit 1; }
}

portable_wheel
[ "${1:-}" = "--wheel-only" ] && exit 0
build_venv
check_portable_llama

if [ "${GROUNDED_NAIVE:-}" = 1 ]; then DIST=$ROOT/dist-naive; WORK=$ROOT/build/pyinstaller-naive
else DIST=$ROOT/dist; WORK=$ROOT/build/pyinstaller; fi
log "PyInstaller -> $DIST/grounded"
start=$SECONDS
"$VENV/bin/pyinstaller" --noconfirm --log-level WARN --distpath "$DIST" --workpath "$WORK" \
    packaging/grounded.spec
pyinstaller_s=$((SECONDS - start))
cp packaging/install.sh "$DIST/grounded/install.sh"
size=$(du -sm "$DIST/grounded" | cut -f1)
log "built $DIST/grounded: $size MB in $pyinstaller_s s (PyInstaller)"
printf '{"pyinstaller_s": %s, "size_mb": %s, "naive": %s, "llama_compile_s": %s}\n' \
    "$pyinstaller_s" "$size" "$([ "${GROUNDED_NAIVE:-}" = 1 ] && echo true || echo false)" \
    "$(cat "$RAW_DIR/compile_seconds" 2>/dev/null || echo null)" > "$DIST/grounded-build.json"
