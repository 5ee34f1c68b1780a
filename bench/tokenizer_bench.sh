#!/usr/bin/env bash
# bench/tokenizer_bench.sh [--quick] — encoding throughput (MB/s) of cutkit's tokenizer.json
# tokenizers against the reference, npm tokenizers@0.23.2 (the Hugging Face Rust library through
# N-API), for the three tokenizer.json files in ../shared/models/tokenizers, measured in the same
# run on the same machine, one process at a time. Prints a Markdown table.
#
# The documents are every string of at least 20 characters in shared/data/shepherd and
# shared/data/pandalm (real questions, answers and critiques; deduplicated), repeated until they
# reach 4 MB. Every document is encoded on its own without special tokens; the time is the
# median of the timed passes after one warm-up. Columns:
#   cutkit 1T          cutkit-bench-tokenizer on one thread (what cutkit tokenize does)
#   ref encode         tokenizers' encode() awaited once per document (N-API round trip included)
#   ref batch 1T/2T    tokenizers' encodeBatch() of all documents with RAYON_NUM_THREADS=1 / 2
#   cutkit 2T          cutkit-bench-tokenizer with the documents spread over 2 OpenMP threads
#   same ids           the token count and a checksum over all ids agree between every column
#
# Writes: build-bench/ (Release build of cutkit-bench-tokenizer, as bench/run.sh configures it),
#         build-bench/tokref/ (the npm package, installed once with --ignore-scripts),
#         build-bench/tokbench-docs.jsonl, build-bench/tokenizer_bench.md (the table),
#         build-bench/tokbench-logs/ (every process's JSON line and stderr).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BUILD=build-bench
LOGS=$BUILD/tokbench-logs
REFDIR=$BUILD/tokref
DOCS=$BUILD/tokbench-docs.jsonl
BENCH=$BUILD/bench/cutkit-bench-tokenizer
SHARED=${CUTKIT_SHARED_DIR:-$ROOT/../shared}
TOKDIR=$SHARED/models/tokenizers
TOKENIZERS=(gpt2 tinyllama-1.1b-chat-v1.0 llama3-8b-instruct)
TIMEOUT=900 # seconds per process
REPEATS=5

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) REPEATS=2 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "tokenizer_bench.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done

for t in "${TOKENIZERS[@]}"; do
    [ -f "$TOKDIR/$t/tokenizer.json" ] || { echo "tokenizer_bench.sh: $TOKDIR/$t/tokenizer.json is missing" >&2; exit 1; }
done
mkdir -p "$BUILD" "$LOGS"

echo "building cutkit-bench-tokenizer (Release) in $BUILD ..." >&2
if ! { cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCUTKIT_TESTS=OFF &&
       cmake --build "$BUILD" -j2 --target cutkit-bench-tokenizer; } > "$BUILD/build-tokenizer.log" 2>&1; then
    echo "tokenizer_bench.sh: the build failed, see $BUILD/build-tokenizer.log" >&2
    exit 1
fi

if [ ! -f "$REFDIR/node_modules/tokenizers/package.json" ]; then
    echo "installing the reference: npm install --ignore-scripts tokenizers@0.23.2 into $REFDIR ..." >&2
    mkdir -p "$REFDIR"
    (cd "$REFDIR" && { [ -f package.json ] || npm init -y > /dev/null; } &&
        npm install --ignore-scripts --no-audit --no-fund tokenizers@0.23.2 > npm.log 2>&1) || {
        echo "tokenizer_bench.sh: npm install failed, see $REFDIR/npm.log" >&2; exit 1; }
fi

if [ ! -s "$DOCS" ]; then
    python3 - "$SHARED" "$DOCS" <<'EOF'
import json, sys
shared, out = sys.argv[1], sys.argv[2]
texts, seen = [], set()
def collect(o):
    if isinstance(o, str):
        if len(o) >= 20 and o not in seen:
            seen.add(o)
            texts.append(o)
    elif isinstance(o, dict):
        for v in o.values(): collect(v)
    elif isinstance(o, list):
        for v in o: collect(v)
with open(f"{shared}/data/shepherd/human_data_raw.jsonl", encoding="utf-8") as f:
    for line in f: collect(json.loads(line))
with open(f"{shared}/data/pandalm/testset-v1.json", encoding="utf-8") as f:
    collect(json.load(f))
size, docs = 0, []
while size < 4_000_000:
    for t in texts:
        docs.append(t)
        size += len(t.encode("utf-8"))
with open(out, "w", encoding="utf-8") as f:
    for t in docs: f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
print(f"{len(docs)} documents, {size / 1e6:.2f} MB ({len(texts)} distinct)", file=sys.stderr)
EOF
fi

# run NAME CMD...: runs one measurement, keeps its JSON line in $LOGS/NAME.json.
run() {
    local name=$1; shift
    if timeout "$TIMEOUT" "$@" > "$LOGS/$name.json" 2> "$LOGS/$name.err"; then
        echo "  $name: $(cat "$LOGS/$name.json")" >&2
    else
        echo "  $name: failed (see $LOGS/$name.err)" >&2
        : > "$LOGS/$name.json"
    fi
}

for t in "${TOKENIZERS[@]}"; do
    echo "$t:" >&2
    run "$t.cutkit1" "$BENCH" --tokenizer "$TOKDIR/$t" --input "$DOCS" --repeats "$REPEATS" --threads 1
    run "$t.cutkit2" "$BENCH" --tokenizer "$TOKDIR/$t" --input "$DOCS" --repeats "$REPEATS" --threads 2
    run "$t.encode" env RAYON_NUM_THREADS=1 node bench/tokenizer_ref.mjs --refdir "$REFDIR" \
        --tokenizer "$TOKDIR/$t/tokenizer.json" --input "$DOCS" --repeats "$REPEATS" --mode encode
    run "$t.batch1" env RAYON_NUM_THREADS=1 node bench/tokenizer_ref.mjs --refdir "$REFDIR" \
        --tokenizer "$TOKDIR/$t/tokenizer.json" --input "$DOCS" --repeats "$REPEATS" --mode batch
    run "$t.batch2" env RAYON_NUM_THREADS=2 node bench/tokenizer_ref.mjs --refdir "$REFDIR" \
        --tokenizer "$TOKDIR/$t/tokenizer.json" --input "$DOCS" --repeats "$REPEATS" --mode batch
done

python3 - "$LOGS" "$BUILD/tokenizer_bench.md" "${TOKENIZERS[@]}" <<'EOF'
import json, os, sys
logs, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
cols = ["cutkit1", "encode", "batch1", "cutkit2", "batch2"]
def get(name, col):
    try:
        with open(os.path.join(logs, f"{name}.{col}.json")) as f: return json.loads(f.read())
    except (OSError, ValueError): return None
lines = ["| tokenizer | MB | tokens | load s cutkit / ref | cutkit 1T MB/s | ref encode MB/s | "
         "ref batch 1T MB/s | cutkit 2T MB/s | ref batch 2T MB/s | same ids |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|"]
for n in names:
    r = {c: get(n, c) for c in cols}
    ok = [x for x in r.values() if x]
    base = r["cutkit1"] or (ok[0] if ok else None)
    mbps = lambda c: f"{r[c]['mb_per_s']:.2f}" if r[c] else "failed"
    same = "yes" if len(ok) == len(cols) and len({(x["tokens"], x["checksum"]) for x in ok}) == 1 else "NO"
    load = (f"{r['cutkit1']['load_s']:.3f} / {r['encode']['load_s']:.3f}"
            if r["cutkit1"] and r["encode"] else "n/a")
    lines.append(f"| {n} | {base['bytes'] / 1e6:.2f} | {base['tokens']} | {load} | " if base else f"| {n} | n/a | n/a | n/a | ")
    lines[-1] += " | ".join(mbps(c) for c in cols) + f" | {same} |"
table = "\n".join(lines) + "\n"
with open(out, "w") as f: f.write(table)
print(table, end="")
EOF
echo "(saved as $BUILD/tokenizer_bench.md; raw JSON lines in $LOGS/)" >&2
