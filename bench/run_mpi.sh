#!/usr/bin/env bash
# bench/run_mpi.sh [--quick] [--lora] — data-parallel training on this machine's two cores:
# 1 process x 2 threads against 2 MPI processes x 1 thread, cutkit and PyTorch (gloo) in the
# same run, on the stories15M shape (random weights), B4 x T256, micro-batch 1.
#
# cutkit: build-bench-mpi/bench/cutkit-bench-mpi (trainer_run, as `cutkit train`), alone and
# under `mpirun -np 2 --bind-to core`; torch: bench/torch_ddp_ref.py --procs 1|2 with the
# OpenMP OpenBLAS (torch's best setting here, see bench/README.md). Reports tokens/s, the median
# update time, the time in the gradient sum per update (waiting for the slower rank included)
# and, for cutkit, one bare MPI_Allreduce of the gradient after a barrier.
#
# Writes build-bench-mpi/ (Release build with -DCUTKIT_MPI=ON), build-bench-mpi/models/,
# build-bench-mpi/bench-mpi.md (the table) and build-bench-mpi/logs/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY=/usr/bin/python3
OMP_BLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-openmp
BUILD=build-bench-mpi
LOGS=$BUILD/logs
BIN=$BUILD/bench/cutkit-bench-mpi
MODEL=$BUILD/models/stories15M-random.bin
STEPS=5
WARM=1
LORA=()
for a in "$@"; do
    case "$a" in
        --quick) STEPS=2 ;;
        --lora) LORA=(--lora) ;;
        -h|--help) sed -n 2,13p "$0"; exit 0 ;;
        *) echo "run_mpi.sh: unknown argument '$a'" >&2; exit 2 ;;
    esac
done
log() { echo "run_mpi.sh: $*" >&2; }
mkdir -p "$BUILD/models" "$LOGS"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=passive
# the kernels cutkit itself picks (model/blas_env.c), for torch too
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx512f /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=SkylakeX
fi

log "building $BIN (log: $BUILD/build.log)"
{ cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCUTKIT_TESTS=OFF -DCUTKIT_MPI=ON &&
  cmake --build "$BUILD" -j2 --target cutkit-bench-mpi; } > "$BUILD/build.log" 2>&1 ||
    { tail -n 20 "$BUILD/build.log" >&2; exit 1; }
[ -f "$MODEL" ] || "$PY" bench/make_model.py --preset stories15M --seed 1234 --out "$MODEL"
read -r LOAD _ < /proc/loadavg
log "load average before: $LOAD (numbers are only comparable on a quiet machine)"

COMMON=(--model "$MODEL" --batch 4 --seq 256 --steps "$STEPS" --warmup "$WARM" "${LORA[@]}")
run() {  # NAME command...: the last JSON line of its stdout into $LOGS/NAME.json
    local name=$1; shift
    log "$name"
    "$@" > "$LOGS/$name.out" 2> "$LOGS/$name.err" || { log "  $name failed, see $LOGS/$name.err"; }
    grep '^{' "$LOGS/$name.out" | tail -n 1 > "$LOGS/$name.json" || true
    log "  $(cat "$LOGS/$name.json")"
}
run cutkit-1x2 env OMP_NUM_THREADS=2 "$BIN" "${COMMON[@]}" --micro-batch 1 --threads 2 \
    --out "$BUILD/run-1x2"
run cutkit-2x1 env OMP_NUM_THREADS=1 mpirun -np 2 --bind-to core --mca btl self,vader "$BIN" \
    "${COMMON[@]}" --micro-batch 1 --threads 1 --out "$BUILD/run-2x1"
run torch-1x2 env LD_LIBRARY_PATH="$OMP_BLAS_DIR" OMP_NUM_THREADS=2 "$PY" bench/torch_ddp_ref.py \
    "${COMMON[@]}" --procs 1 --threads 2
run torch-2x1 env LD_LIBRARY_PATH="$OMP_BLAS_DIR" OMP_NUM_THREADS=1 "$PY" bench/torch_ddp_ref.py \
    "${COMMON[@]}" --procs 2 --threads 1

"$PY" - "$LOGS" "$BUILD/bench-mpi.md" "$LOAD" <<'EOF'
import json, sys
logs, out, load = sys.argv[1:4]
def get(name):
    try:
        return json.load(open(f"{logs}/{name}.json"))
    except Exception:
        return None
rows = ["| setting | cutkit tok/s | torch tok/s | cutkit / torch | cutkit update s | "
        "cutkit sum s (bare Allreduce) | torch all_reduce s |", "|---|---:|---:|---:|---:|---:|---:|"]
for label, k in (("1 process x 2 threads", "1x2"), ("2 processes x 1 thread", "2x1")):
    c, t = get(f"cutkit-{k}"), get(f"torch-{k}")
    f = lambda r, key, fmt: fmt.format(r[key]) if r and key in r else "n/a"
    ratio = f"{c['tokens_per_s'] / t['tokens_per_s']:.2f}x" if c and t else "n/a"
    rows.append(f"| {label} | {f(c, 'tokens_per_s', '{:,.0f}')} | {f(t, 'tokens_per_s', '{:,.0f}')} | "
                f"{ratio} | {f(c, 'median_step_s', '{:.3f}')} | {f(c, 'median_allreduce_s', '{:.4f}')} "
                f"({f(c, 'pure_allreduce_s', '{:.4f}')}) | {f(t, 'median_allreduce_s', '{:.4f}')} |")
c1, c2, t1, t2 = get("cutkit-1x2"), get("cutkit-2x1"), get("torch-1x2"), get("torch-2x1")
notes = []
if c1 and c2:
    notes.append(f"cutkit 2x1 / 1x2: {c2['tokens_per_s'] / c1['tokens_per_s']:.2f}; gradient "
                 f"{c2['gradient_mb']:.1f} MB per sum")
if t1 and t2:
    notes.append(f"torch 2x1 / 1x2: {t2['tokens_per_s'] / t1['tokens_per_s']:.2f}")
text = "\n".join(rows) + "\n\n" + "; ".join(notes) + f"\n\nload average before the runs: {load}\n"
open(out, "w").write(text)
print(text)
EOF
