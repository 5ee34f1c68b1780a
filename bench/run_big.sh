#!/bin/sh
# run_big.sh BUILD_DIR [MODEL_DIR] [PHASES] — a Llama-2-7B-shaped model of random weights
# (bench/big_model.py, BF16 safetensors, 13.5 GB; written to MODEL_DIR if absent) held as bf16
# and as int8: open time, one ARC-shaped question, 32 generated tokens and one LoRA CUT-shaped
# update (B 1 x T 256), each with the peak RSS so far, then /usr/bin/time -v's peak RSS of the
# whole run. Needs ~14 GB of free disk; the goals are 16 GB (bf16) and 10 GB (int8) of RSS.
set -eu
build=${1:?usage: run_big.sh BUILD_DIR [MODEL_DIR] [PHASES]}
model=${2:-/tmp/cutkit-big/llama7b}
phases=${3:-arc,gen,lora}
here=$(cd "$(dirname "$0")" && pwd)
bench="$build/bench/cutkit-bench-stored"
[ -x "$bench" ] || { echo "run_big.sh: build the cutkit-bench-stored target first" >&2; exit 1; }
if [ ! -f "$model/model.safetensors" ]; then
    df -h "$(dirname "$model")"
    python3 "$here/big_model.py" "$model"
fi
lscpu | grep 'Model name' || true
nproc
for dtype in bf16 int8; do
    echo "== $dtype"
    # drop nothing from the page cache: the bf16 run reads the mapping as it is
    /usr/bin/time -v "$bench" "$model" "$dtype" "$phases" 2> "/tmp/run_big.$dtype.time" || {
        cat "/tmp/run_big.$dtype.time" >&2
        exit 1
    }
    grep -E 'Maximum resident set size|Elapsed \(wall' "/tmp/run_big.$dtype.time"
done
