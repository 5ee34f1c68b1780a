#!/usr/bin/env bash
# bench/run_cut.sh [--quick] [--retries N] [--repeats N] [--torch-default] — CUT training steps:
# cutkit's CUT step against cutkit's MLE step on the same batch and against PyTorch's CUT step,
# measured in the same run, one process at a time, 2 threads.
#
# The batch (bench_cut.c, torch_cut_ref.py): 2 negative examples, each an Align-N sequence
# (96 prompt + 160 response tokens) and a Misalign sequence (96 + the same 160), 1,024 tokens,
# on the random stories15M shape; full fine-tuning and LoRA r16 on gate/up/down_proj.
# Sides: cutkit CUT, cutkit MLE (same tokens, MLE on every response target), torch CUT and
# torch MLE with the OpenMP OpenBLAS ("torch best", one thread pool), and with --torch-default
# also torch as installed. The sides take turns, --repeats rounds (default 2), and the median
# of the quiet runs is kept; a run during which other processes used more than 0.15 of a core
# is redone up to --retries times (default 2), and the table marks what stayed noisy.
# CUTKIT_BENCH_THREADS=N changes the thread count, CUTKIT_BENCH_QUIET_WAIT=S the wait for idle
# CPUs before each run (default 120 s).
#
# Writes: build-bench/ (Release build; CUTKIT_BENCH_BUILD=DIR elsewhere), the table
#         build-bench/bench-cut.md and raw output build-bench/bench-cut-logs/; reads (or writes
#         once) build-bench/models/stories15M-random.bin (CUTKIT_BENCH_MODELS=DIR elsewhere).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY=/usr/bin/python3
OMP_BLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-openmp
BUILD=${CUTKIT_BENCH_BUILD:-build-bench}            # where to build (and put the table and logs)
MODELS=${CUTKIT_BENCH_MODELS:-build-bench/models}   # the random model, shared with run_train.sh
LOGS=$BUILD/bench-cut-logs
CUTKIT=$BUILD/bench/cutkit-bench-cut
M15=$MODELS/stories15M-random.bin
THREADS=${CUTKIT_BENCH_THREADS:-2}
BG_LIMIT=0.15
QUIET_WAIT=${CUTKIT_BENCH_QUIET_WAIT:-120}   # seconds to wait for idle CPUs before a run
TIMEOUT=900

QUICK=0 RETRIES=2 REPEATS=2 TORCH_DEFAULT=0
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --retries) RETRIES=$2; shift ;;
        --repeats) REPEATS=$2; shift ;;
        --torch-default) TORCH_DEFAULT=1 ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run_cut.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then STEPS=3; WARM=1; else STEPS=8; WARM=2; fi
log() { echo "run_cut.sh: $*" >&2; }

"$PY" -c 'import torch, numpy' 2>/dev/null || { log "$PY cannot import torch and numpy"; exit 1; }
mkdir -p "$MODELS" "$LOGS"
rm -f "$LOGS"/*.out "$LOGS"/*.err "$LOGS"/runs.tsv

log "building cutkit-bench-cut in $BUILD (log: $BUILD/build-cut.log)"
{ cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release &&
  cmake --build "$BUILD" -j2 --target cutkit-bench-cut; } > "$BUILD/build-cut.log" 2>&1 ||
    { log "build failed:"; tail -n 15 "$BUILD/build-cut.log" >&2; exit 1; }
[ -f "$M15" ] || "$PY" bench/make_model.py --preset stories15M --seed 1234 --out "$M15"

# OpenBLAS 0.3.21 falls back to Prescott kernels on this CPU: SkylakeX for every process, as
# bench/run.sh and run_train.sh do (cutkit would set it itself; torch would not)
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx512f /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=SkylakeX
fi

busy_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
HZ=$(getconf CLK_TCK)
wait_quiet() {
    local waited=0 b0 b1
    while [ "$waited" -lt "$QUIET_WAIT" ]; do
        b0=$(busy_jiffies); sleep 2; b1=$(busy_jiffies); waited=$((waited + 2))
        awk -v b="$((b1 - b0))" -v hz="$HZ" -v l="$BG_LIMIT" 'BEGIN { exit !(b / hz / 2 <= l) }' && return 0
    done
    log "  still busy after ${QUIET_WAIT} s; measuring anyway"
}

# attempt ID SIDE N -- cmd: one process; appends "id side n rc others_cores path" to runs.tsv
attempt() {
    local id=$1 side=$2 n=$3; shift 4
    local base="$LOGS/$id-$side-$n" rc=0 b0 b1 t0 t1 c0 c1
    wait_quiet
    c0=$(awk '{ print $14 + $15 + $16 + $17 }' /proc/$$/stat)
    b0=$(busy_jiffies); t0=$(date +%s.%N)
    env OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS timeout $TIMEOUT "$@" \
        > "$base.out" 2> "$base.err" || rc=$?
    b1=$(busy_jiffies); t1=$(date +%s.%N)
    c1=$(awk '{ print $14 + $15 + $16 + $17 }' /proc/$$/stat)
    LAST_BG=$(awk -v b="$((b1 - b0))" -v c="$((c1 - c0))" -v hz="$HZ" -v t0="$t0" -v t1="$t1" \
        'BEGIN { x = (b - c) / hz / (t1 - t0); printf "%.2f", x < 0 ? 0 : x }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$side" "$n" "$rc" "$LAST_BG" "$base.out" >> "$LOGS/runs.tsv"
    log "  $side #$n: $(grep -o '"tokens_per_s": *[0-9.]*' "$base.out" | sed 's/.*: *//') tok/s, others used $LAST_BG cores"
    [ "$rc" = 0 ] || log "  $side failed (exit $rc), see $base.err"
}

# measure ID SIDE N -- cmd: attempt N, redone (up to RETRIES times) while others used the CPU
measure() {
    local id=$1 side=$2 n=$3 tries=0; shift 4
    while :; do
        attempt "$id" "$side" "$n.$tries" -- "$@"
        awk -v b="$LAST_BG" -v l="$BG_LIMIT" 'BEGIN { exit !(b > l) }' && [ "$tries" -lt "$RETRIES" ] || break
        tries=$((tries + 1))
    done
}

# The sides of a case take turns (cutkit CUT, torch CUT, cutkit MLE, torch MLE, then again), so
# that a change in the background load hits all of them alike.
CASES=("15M-full|15M full|0" "15M-lora|15M LoRA r16 MLP|1")
for c in "${CASES[@]}"; do
    IFS='|' read -r id label lora <<< "$c"
    args=(--model "$M15" --examples 2 --prompt-a 96 --prompt-m 96 --response 160
          --threads $THREADS --steps $STEPS --warmup $WARM)
    [ "$lora" = 1 ] && args+=(--lora --lora-r 16 --lora-alpha 32 --lora-targets gate_proj,up_proj,down_proj)
    for rep in $(seq 1 "$REPEATS"); do
        for obj in cut mle; do
            log "$label, $obj, round $rep of $REPEATS"
            measure "$id" "cutkit_$obj" "$rep" -- "$CUTKIT" "${args[@]}" --objective $obj
            measure "$id" "torch_best_$obj" "$rep" -- env LD_LIBRARY_PATH="$OMP_BLAS_DIR" "$PY" bench/torch_cut_ref.py "${args[@]}" --objective $obj
            if [ "$TORCH_DEFAULT" = 1 ]; then
                measure "$id" "torch_default_$obj" "$rep" -- env -u LD_LIBRARY_PATH "$PY" bench/torch_cut_ref.py "${args[@]}" --objective $obj
            fi
        done
    done
done

"$PY" - "$LOGS/runs.tsv" "$BUILD/bench-cut.md" "$STEPS" "$WARM" "${OPENBLAS_CORETYPE:-}" "$THREADS" <<'EOF'
import json, os, statistics, sys, time
tsv, out_md, steps, warm, coretype, threads = sys.argv[1:7]
runs = {}
for line in open(tsv):
    cid, side, n, rc, bg, path = line.rstrip("\n").split("\t")
    res = None
    if rc == "0" and os.path.exists(path):
        lines = [l for l in open(path).read().splitlines() if l.startswith("{")]
        res = json.loads(lines[-1]) if lines else None
    runs.setdefault((cid, side), []).append((float(bg), res))

def kept(cid, side):
    """The quiet runs (all of them when none was quiet)."""
    rs = [r for r in runs.get((cid, side), []) if r[1]]
    quiet = [r for r in rs if r[0] <= 0.15]
    return quiet or rs

def tps(cid, side, key="tokens_per_s"):
    rs = [r for r in kept(cid, side) if key in r[1]]
    return statistics.median(r[1][key] for r in rs) if rs else None

def spread(cid, side):
    v = [r[1]["tokens_per_s"] for r in kept(cid, side)]
    return (max(v) - min(v)) / statistics.median(v) if len(v) > 1 else 0.0

def fmt(cid, side):
    v = tps(cid, side)
    if v is None:
        return "n/a"
    noisy = any(r[0] > 0.15 for r in kept(cid, side))
    return f"{v:,.0f}" + (" *" if noisy else "")

SIDES = ("cutkit_cut", "cutkit_mle", "torch_best_cut", "torch_best_mle")
rows = ["| case | cutkit CUT | cutkit MLE | CUT / MLE | torch best CUT | torch best MLE | cutkit / torch, CUT | cutkit / torch, MLE | the same by CPU time: CUT / MLE, cutkit / torch CUT |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
notes, extra = [], []
r = lambda a, b: f"{a / b:.2f}x" if a and b else "n/a"
for cid, label in (("15M-full", "15M full"), ("15M-lora", "15M LoRA r16 MLP")):
    cc, cm, tc, tm = (tps(cid, s) for s in SIDES)
    pc, pm, qc = (tps(cid, s, "cpu_tokens_per_s") for s in ("cutkit_cut", "cutkit_mle", "torch_best_cut"))
    rows.append(f"| {label}, 2 x (256 + 256) tokens | {fmt(cid, 'cutkit_cut')} | {fmt(cid, 'cutkit_mle')} | "
                f"{r(cc, cm)} | {fmt(cid, 'torch_best_cut')} | {fmt(cid, 'torch_best_mle')} | {r(cc, tc)} | "
                f"{r(cm, tm)} | {r(pc, pm)}, {r(pc, qc)} |")
    if (cid, "torch_default_cut") in runs:
        extra.append(f"{label}: torch default CUT {fmt(cid, 'torch_default_cut')}, MLE {fmt(cid, 'torch_default_mle')} tok/s")
    for side in ("cutkit_cut", "torch_best_cut"):
        rs = kept(cid, side)
        if rs:
            d = rs[0][1]
            phases = {k[7:-2]: v for k, v in d.items() if k.startswith("median_") and k != "median_step_s"}
            extra.append(f"{label}, {side}: loss_first {d['loss_first']:.6f}, flagged {d['flagged_first']}, "
                         f"phases (s) " + ", ".join(f"{k} {v:.3f}" for k, v in phases.items()))
    sp = max(spread(cid, s) for s in SIDES if kept(cid, s))
    notes.append(f"{label}: largest spread between repeats {sp * 100:.0f}%")
bgs = [r[0] for v in runs.values() for r in v]
head = (f"- {time.strftime('%Y-%m-%d %H:%M')}; {threads} thread(s); {steps} timed steps after {warm}; tokens/s = "
        f"real tokens / median step; OPENBLAS_CORETYPE={coretype or 'unset'}; torch best = the OpenMP "
        f"OpenBLAS via LD_LIBRARY_PATH.\n- Other processes used up to {max(bgs or [0]):.2f} cores during a "
        f"measurement (* = a kept number measured with more than 0.15). " + "; ".join(notes) + ".")
md = ("\n".join(rows) + "\n\n" + head + "\n" + "\n".join("- " + e for e in extra) + "\n")
with open(out_md, "w") as f:
    f.write("# CUT steps: cutkit vs MLE vs PyTorch (bench/run_cut.sh)\n\n" + md)
print(md, end="")
EOF
log "table in $BUILD/bench-cut.md; raw output in $LOGS/"
