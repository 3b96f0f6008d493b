#!/usr/bin/env bash
# packaging/smoke.sh [DIST_DIR]: run the built app the way a person would, with nothing else.
#
# The folder is installed with its own install.sh into a temporary prefix, then every command
# runs under `env -i` (no PYTHONPATH, no venv, no HOME settings) with PATH holding only that
# prefix's bin/ (no python on it: checked), an empty temporary GROUNDED_HOME, HF_HUB_OFFLINE=1,
# QT_QPA_PLATFORM=offscreen, in an empty working folder, inside a new network namespace
# (`unshare -n`, or `unshare -rn` as a user: no interface but a down loopback), so any attempt
# to reach the network fails. It indexes resources/samples, answers with citations, reports
# status, asks about a scanned notice (OCR), compares, evaluates a two-question dataset, runs three benchmarks, tunes a small
# adapter and asks with it, forgets, and opens and closes the window. The harness itself (this script) uses the host's python3 only to read
# the JSON the app prints.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIST=$(cd "${1:-dist/grounded}" && pwd)
WORK=$(mktemp -d /tmp/grounded-smoke.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
step() { printf '\n== smoke: %s\n' "$*" >&2; }
fail() { printf 'smoke FAILED: %s\n' "$*" >&2; exit 1; }

# --- no network: a network namespace of our own -------------------------------------------
if unshare -n true 2>/dev/null; then NONET=(unshare -n)
elif unshare -rn true 2>/dev/null; then NONET=(unshare -rn)
else fail "cannot create a network namespace here (unshare -n / unshare -rn)"; fi
"${NONET[@]}" sh -c 'exec 3<>/dev/tcp/1.1.1.1/53' 2>/dev/null \
    && fail "the network namespace still reaches the network"

# --- install the folder as a person would (install.sh), into a temporary prefix ------------
PREFIX=$WORK/prefix
"$DIST/install.sh" --prefix "$PREFIX" >/dev/null
[ -x "$PREFIX/bin/grounded" ] || fail "install.sh did not put grounded in $PREFIX/bin"
grep -q "^Exec=$PREFIX/opt/grounded/grounded gui$" "$PREFIX/share/applications/grounded.desktop" \
    || fail "installed .desktop file does not run the installed app"
[ -s "$PREFIX/share/icons/hicolor/256x256/apps/grounded.png" ] || fail "icon not installed"
if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate "$PREFIX/share/applications/grounded.desktop"
fi

mkdir -p "$WORK/home" "$WORK/cwd" "$WORK/docs"
cp -r resources/samples/. "$WORK/docs/"
CLEAN_PATH=$PREFIX/bin
PATH=$CLEAN_PATH command -v python3 python >/dev/null 2>&1 && fail "python on the clean PATH"

# Run the installed app: clean environment, no network, an empty working folder.
app() {
    (cd "$WORK/cwd" && "${NONET[@]}" env -i PATH="$CLEAN_PATH" HOME="$WORK/home" \
        GROUNDED_HOME="$WORK/grounded-home" HF_HUB_OFFLINE=1 LANG=C.UTF-8 \
        QT_QPA_PLATFORM=offscreen grounded "$@")
}
json() {  # json FILE EXPRESSION: evaluate EXPRESSION with d = the file's JSON; fail if falsy
    python3 - "$1" "$2" <<'EOF' || fail "$2 (in $1)"
import json, sys
d = json.load(open(sys.argv[1]))
ok = eval(sys.argv[2], {"d": d})
print(f"  {sys.argv[2]} -> {bool(ok)}", file=sys.stderr)
sys.exit(0 if ok else 1)
EOF
}

step "--version and --help"
want=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
got=$(app --version)
[ "$got" = "grounded, version $want" ] || fail "--version said '$got', pyproject says $want"
app --help | grep -q "index" || fail "--help lists no commands"

step "index resources/samples"
app index "$WORK/docs" --collection samples --json > "$WORK/index.json"
json "$WORK/index.json" 'd["added"] == 3 and d["chunks"] > 0 and not d["failed"]'
json "$WORK/index.json" 'd["ocr_pages"] == 1 and not d["image_only"]'

step "ask, with citations"
app ask "What does Grounded do with scanned PDFs?" --json > "$WORK/ask.json"
json "$WORK/ask.json" 'not d["refused"] and d["sources"] and d["answer"].strip()'
json "$WORK/ask.json" 'd["cited"] and set(d["cited"]) <= {s["n"] for s in d["sources"]}'
json "$WORK/ask.json" 'all(s["path"].startswith("'"$WORK"'/docs/") for s in d["sources"])'

step "ask about the scanned notice (read by the bundled OCR)"
app ask "When does the reading room close on Saturdays?" --json > "$WORK/ask-ocr.json"
json "$WORK/ask-ocr.json" 'd["evidence"][0]["path"].endswith("scanned-notice.png")'
json "$WORK/ask-ocr.json" '"6 pm" in d["evidence"][0]["sentence"]'
json "$WORK/ask-ocr.json" 'any(s["ocr"] and s["ocr_confidence"] > 0.8 for s in d["sources"])'

step "status"
app status --json > "$WORK/status.json"
json "$WORK/status.json" 'd["documents"] == 3 and d["chunks"] > 0 and "MiniLM" in d["embedder"]'

step "compare"
app compare "Where is my data stored?" --json > "$WORK/compare.json"
json "$WORK/compare.json" 'len(d["rows"]) >= 2 and all(not r["error"] and r["answer"] for r in d["rows"])'

step "eval on a two-question dataset"
mkdir -p "$WORK/dataset/corpus"
cp resources/samples/welcome.md resources/samples/faq.txt "$WORK/dataset/corpus/"
cat > "$WORK/dataset/questions.jsonl" <<'EOF'
{"id": "q1", "question": "Where is my data stored on Linux?", "answers": ["~/.local/share/Grounded"], "gold_doc_ids": ["faq"]}
{"id": "q2", "question": "What does Grounded block while it runs?", "answers": ["every network connection to other machines"], "gold_doc_ids": ["welcome"]}
EOF
app eval "$WORK/dataset" --json > "$WORK/eval.json"
json "$WORK/eval.json" 'd["configurations"]["hybrid"]["recall@5"] == 1.0'

step "benchmarks: index, rescan, adapters"
app bench index --corpus "$WORK/docs" --json > "$WORK/bench-index.json"
json "$WORK/bench-index.json" 'd'
app bench rescan --files 200 --json > "$WORK/bench-rescan.json"
json "$WORK/bench-rescan.json" 'd'
app bench adapters --json > "$WORK/bench-adapters.json"
json "$WORK/bench-adapters.json" 'd'

step "tune a small adapter (the numpy trainer in the folder), then ask with it"
head -10 resources/tune/memo-style.jsonl > "$WORK/examples.jsonl"
app tune "$WORK/examples.jsonl" --name smoke-memo --epochs 1 --json > "$WORK/tune.json"
json "$WORK/tune.json" 'd["adapter"] and d["check"]["passed"] and not d["cancelled"]'
app ask "How do I keep basil alive?" --no-retrieval --adapter smoke-memo --json > "$WORK/ask-adapter.json"
json "$WORK/ask-adapter.json" 'd["answer"].strip()'

step "forget"
app forget --collection samples --json > "$WORK/forget.json"
app status --json > "$WORK/status2.json"
json "$WORK/status2.json" 'd["documents"] == 0'

step "the window opens and closes (offscreen)"
out=$(app gui --exit-when-ready)
echo "  $out" >&2
[[ "$out" == ready* ]] || fail "the window did not report ready: $out"

step "the Qt platform plugins find their libraries on this machine"
for plugin in xcb wayland; do
    lib=$(find "$DIST" -name "libq$plugin.so" | head -1)
    [ -n "$lib" ] || fail "platform plugin $plugin is missing"
    missing=$(LD_LIBRARY_PATH="$DIST/_internal" ldd "$lib" | grep "not found" || true)
    [ -z "$missing" ] || echo "  note: $plugin needs system libraries absent here: $missing" >&2
done

step "passed"
