#!/usr/bin/env bash
# bench/load.sh — how long opening a randomly initialised 110M-parameter model takes (dim 768,
# 12 layers): llama2.c file, and Hugging Face folders in F32 and BF16. Loading memory-maps the
# safetensors file and converts each tensor straight into the parameter buffer, so the file's
# bytes are touched once; peak RSS shows no second copy (the buffer is the params_mb).
set -euo pipefail
cd "$(dirname "$0")/.."
B=build-bench
cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DCUTKIT_TESTS=OFF >/dev/null
cmake --build $B -j2 --target cutkit cutkit-bench >/dev/null
M=$B/models/110M-random.bin
[ -f $M ] || /usr/bin/python3 bench/make_model.py --preset 110M --out $M
for dtype in f32 bf16; do
    [ -d $B/models/110M-hf-$dtype ] || $B/cutkit convert --from $M --to $B/models/110M-hf-$dtype --dtype $dtype
done
echo "| model | seconds (cold) | seconds (warm) | peak RSS MB | parameters MB |"
echo "|---|---:|---:|---:|---:|"
for m in $M $B/models/110M-hf-f32 $B/models/110M-hf-bf16; do
    # cold: the page cache dropped for this file where permitted; warm: read again at once
    sync; (echo 1 > /proc/sys/vm/drop_caches) 2>/dev/null || true
    cold=$($B/bench/cutkit-bench load --model $m --threads 1)
    warm=$($B/bench/cutkit-bench load --model $m --threads 1)
    /usr/bin/python3 - "$m" "$cold" "$warm" <<'PY'
import json, sys
name, cold, warm = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"| {name.split('/')[-1]} | {cold['seconds']:.3f} | {warm['seconds']:.3f} | "
      f"{warm['peak_rss_mb']:.0f} | {warm['params_mb']:.0f} |")
PY
done
