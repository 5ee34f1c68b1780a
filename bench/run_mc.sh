#!/usr/bin/env bash
# bench/run_mc.sh [--questions N] [--threads "1 2"] — multiple-choice scoring throughput:
# cutkit's scorer with and without prefix reuse against PyTorch scoring every context+choice
# through the whole model (lm-evaluation-harness's way), one request per forward and the
# choices of a question batched, on the stories15M shape (random weights, bench/make_model.py)
# and synthetic ARC-shaped questions (contexts of 32-64 tokens, 4 choices of 3-12 tokens).
# All sides score the same requests; the log-likelihoods are compared too.
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
THREADS="1 2"
while [ $# -gt 0 ]; do
    case "$1" in
        --questions) QUESTIONS=$2; shift ;;
        --threads) THREADS=$2; shift ;;
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

printf '| threads | cutkit reuse q/s | cutkit no reuse q/s | torch separate q/s | torch batched q/s | reuse / torch best | max |ll diff| |\n'
printf '|---:|---:|---:|---:|---:|---:|---:|\n'
for th in $THREADS; do
    env OMP_NUM_THREADS=$th "$BUILD/bench/cutkit-bench-mc" --model "$M15" --questions "$QUESTIONS" \
        --threads "$th" --dump "$LOGS/requests.json" --lls "$LOGS/cutkit-lls.json" > "$LOGS/cutkit-t$th.json"
    for mode in separate batched; do
        env OMP_NUM_THREADS=$th "$PY" bench/torch_mc_ref.py --model "$M15" --requests "$LOGS/requests.json" \
            --mode $mode --threads "$th" --lls "$LOGS/torch-lls-$mode.json" > "$LOGS/torch-$mode-t$th.json"
    done
    "$PY" - "$LOGS" "$th" <<'PYEOF'
import json, sys
logs, th = sys.argv[1], sys.argv[2]
c = json.load(open(f"{logs}/cutkit-t{th}.json"))
s = json.load(open(f"{logs}/torch-separate-t{th}.json"))
b = json.load(open(f"{logs}/torch-batched-t{th}.json"))
a = json.load(open(f"{logs}/cutkit-lls.json")); t = json.load(open(f"{logs}/torch-lls-separate.json"))
diff = max(abs(x - y) for x, y in zip(a, t))
best = max(s["questions_per_s"], b["questions_per_s"])
print(f"| {th} | {c['reuse']['questions_per_s']:.1f} | {c['no_reuse']['questions_per_s']:.1f} | "
      f"{s['questions_per_s']:.1f} | {b['questions_per_s']:.1f} | {c['reuse']['questions_per_s'] / best:.2f}x | {diff:.1e} |")
PYEOF
done
