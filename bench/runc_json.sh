#!/usr/bin/env bash
# bench/runc_json.sh RUN TOKENIZER MODEL STEPS REPEATS WARMUP — runs a llama2.c run.c binary
# (built by the user, outside this repository) greedily from BOS, WARMUP + REPEATS times, and
# prints one JSON line with the median of run.c's own "achieved tok/s" over the timed runs,
# the form bench/run.sh reads from every side. The generated text is discarded.
set -euo pipefail
[ $# -eq 6 ] || { echo "usage: runc_json.sh RUN TOKENIZER MODEL STEPS REPEATS WARMUP" >&2; exit 2; }
run=$1 tok=$2 model=$3 steps=$4 repeats=$5 warmup=$6
rates=()
for ((i = 0; i < warmup + repeats; i++)); do
    # -t 0: greedy (argmax), as cutkit-bench and torch_ref.py; -i "": BOS only
    line=$("$run" "$model" -z "$tok" -t 0 -n "$steps" -i "" 2>&1 >/dev/null | grep 'achieved tok/s' || true)
    [ -n "$line" ] || { echo "runc_json.sh: $run printed no 'achieved tok/s'" >&2; exit 1; }
    if [ "$i" -ge "$warmup" ]; then rates+=("${line##*: }"); fi
done
printf '%s\n' "${rates[@]}" | sort -g | awk -v steps="$steps" -v th="${OMP_NUM_THREADS:-0}" \
    '{ v[NR] = $1 } END { m = v[int((NR + 1) / 2)];
       printf "{\"impl\":\"runc\",\"mode\":\"generate\",\"threads\":%s,\"steps\":%d,\"tokens_per_s\":%.1f}\n", th, steps, m }'
