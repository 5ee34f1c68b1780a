#!/usr/bin/env bash
# bench/run_mc.sh [--questions N] [--tqa-questions N] [--threads "1 2"] [--shapes "arc truthfulqa"]
# — multiple-choice scoring throughput: cutkit's scorer with prefix reuse (the context once into
# a KV cache, then every choice as a branch of one batched forward) and without (every
# context+choice, the choices of a question packed into one forward), against PyTorch scoring
# every context+choice through the whole model (lm-evaluation-harness's way), one request per
# forward or the choices of a question batched, on the stories15M shape (random weights,
# bench/make_model.py). Shapes (bench/bench_mc.c): `arc`, contexts of 32-64 tokens and 4 choices
# of 3-12; `truthfulqa`, a shared 151-token primer + 10-40 question tokens and 6 choices of
# 4-24. All sides score the same requests; the log-likelihoods are compared too.
#
# Ratios are given by wall time and by process CPU time (best of the repeats each): on a
# machine shared with other jobs the CPU-time ratio of the 1-thread rows is the steadier one.
#
# Writes: $BUILD (default build-bench; Release build of cutkit-bench-mc), $BUILD/models/,
#         $BUILD/mc-logs/ (every process's output) and prints a table.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY=/usr/bin/python3
BUILD=${BUILD:-build-bench}
LOGS=$BUILD/mc-logs
M15=$BUILD/models/stories15M-random.bin
QUESTIONS=48
TQA_QUESTIONS=8
THREADS="1 2"
SHAPES="arc truthfulqa"
TORCH_REPEATS=2
while [ $# -gt 0 ]; do
    case "$1" in
        --questions) QUESTIONS=$2; shift ;;
        --tqa-questions) TQA_QUESTIONS=$2; shift ;;
        --threads) THREADS=$2; shift ;;
        --shapes) SHAPES=$2; shift ;;
        *) echo "run_mc.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done
log() { echo "run_mc.sh: $*" >&2; }
read -r LOAD1 _ < /proc/loadavg
if awk -v l="$LOAD1" 'BEGIN { exit !(l > 0.5) }'; then
    log "warning: load average is $LOAD1 — other processes are using the CPU; numbers will be low and noisy"
fi
mkdir -p "$LOGS"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release > "$LOGS/build.log" 2>&1
cmake --build "$BUILD" -j2 --target cutkit-bench-mc >> "$LOGS/build.log" 2>&1
[ -f "$M15" ] || { log "writing $M15"; "$PY" bench/make_model.py --preset stories15M --seed 1234 --out "$M15"; }
# the OpenBLAS kernels cutkit picks (blas_env) for torch too, so both sides use the same ones
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX; fi

printf '| shape | threads | cutkit reuse q/s (tok/s) | cutkit no reuse q/s | torch separate q/s | torch batched q/s | reuse / torch best, wall | reuse / torch best, CPU | no reuse / torch best, CPU | max |ll diff| |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for shape in $SHAPES; do
    q=$QUESTIONS
    [ "$shape" = truthfulqa ] && q=$TQA_QUESTIONS
    for th in $THREADS; do
        tag=$shape-t$th
        env OMP_NUM_THREADS=$th "$BUILD/bench/cutkit-bench-mc" --model "$M15" --shape "$shape" \
            --questions "$q" --threads "$th" --dump "$LOGS/requests-$shape.json" \
            --lls "$LOGS/cutkit-lls-$shape.json" > "$LOGS/cutkit-$tag.json"
        for mode in separate batched; do
            env OMP_NUM_THREADS=$th "$PY" bench/torch_mc_ref.py --model "$M15" \
                --requests "$LOGS/requests-$shape.json" --mode $mode --threads "$th" \
                --repeats "$TORCH_REPEATS" --lls "$LOGS/torch-lls-$shape-$mode.json" \
                > "$LOGS/torch-$mode-$tag.json"
        done
        "$PY" - "$LOGS" "$shape" "$th" <<'PYEOF'
import json, sys
logs, shape, th = sys.argv[1], sys.argv[2], sys.argv[3]
tag = f"{shape}-t{th}"
c = json.load(open(f"{logs}/cutkit-{tag}.json"))
s = json.load(open(f"{logs}/torch-separate-{tag}.json"))
b = json.load(open(f"{logs}/torch-batched-{tag}.json"))
a = json.load(open(f"{logs}/cutkit-lls-{shape}.json"))
t = json.load(open(f"{logs}/torch-lls-{shape}-separate.json"))
diff = max(abs(x - y) for x, y in zip(a, t))
best = max(s["questions_per_s"], b["questions_per_s"])
best_cpu = max(s["questions_per_cpu_s"], b["questions_per_cpu_s"])
r, n = c["reuse"], c["no_reuse"]
print(f"| {shape} | {th} | {r['questions_per_s']:.1f} ({r['tokens_per_s']:.0f}) | "
      f"{n['questions_per_s']:.1f} | {s['questions_per_s']:.2f} | {b['questions_per_s']:.2f} | "
      f"{r['questions_per_s'] / best:.2f}x | {r['questions_per_cpu_s'] / best_cpu:.2f}x | "
      f"{n['questions_per_cpu_s'] / best_cpu:.2f}x | {diff:.1e} |")
PYEOF
    done
done
