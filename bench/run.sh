#!/usr/bin/env bash
# bench/run.sh [--quick] [--coretype auto|none|NAME] [--only score|generate] [--rounds N] —
# cutkit against PyTorch (and, with RUNC=/path/to/run, llama2.c's run.c on generation), all
# measured in the same run on the same machine, one process at a time. See bench/README.md.
#
# Writes: build-bench/ (Release build of cutkit-bench), build-bench/models/ (random 15M model),
#         build-bench/bench.md (the table), build-bench/bench-logs/ (every process's output).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY=/usr/bin/python3                                  # Debian's python3 with torch 1.13 (not pyenv's)
OMP_BLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-openmp
BUILD=build-bench
LOGS=$BUILD/bench-logs
CUTKIT=$BUILD/bench/cutkit-bench
M260K=core/formats/data/stories260K.bin
M15=$BUILD/models/stories15M-random.bin
M15_V0=$BUILD/models/stories15M-random-v0.bin          # the same weights in run.c's legacy layout
RUNC=${RUNC:-}                                       # a run.c binary the user built (never in the repo)
RUNC_TOKENIZER=${RUNC_TOKENIZER:-}                   # default: tokenizer.bin beside $RUNC
TIMEOUT=900                                          # seconds per process

QUICK=0
CORETYPE=auto
ONLY=
ROUNDS=1
usage() {
    cat <<'EOF'
usage: bash bench/run.sh [--quick] [--coretype auto|none|NAME]
  --quick       fewer timed repeats (score 3 + 1 warm-up, generate 1 + 1 warm-up)
  --coretype    OpenBLAS kernel selection for every process (cutkit and torch alike):
                auto (default) sets OPENBLAS_CORETYPE=SkylakeX when OpenBLAS falls back to its
                generic Prescott kernels on an AVX-512 CPU it does not recognise; none leaves
                OpenBLAS alone; NAME forces OPENBLAS_CORETYPE=NAME.
  --only        score or generate: run only those cases
  --rounds N    measure every case N times, sides interleaved; the table shows each side's
                best round (for a machine other processes share: the least disturbed run)
environment:
  RUNC=/path/to/run   llama2.c's run.c built by you (gcc -Ofast -march=native -fopenmp run.c
                      -lm -o run, in a folder outside this repository, beside llama2.c's
                      tokenizer.bin or with RUNC_TOKENIZER=...): adds a run.c column to the
                      generation rows, on the same model file
EOF
}
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --coretype) [ $# -ge 2 ] || { usage >&2; exit 2; }; CORETYPE=$2; shift ;;
        --coretype=*) CORETYPE=${1#*=} ;;
        --only) [ $# -ge 2 ] || { usage >&2; exit 2; }; ONLY=$2; shift ;;
        --rounds) [ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] || { usage >&2; exit 2; }; ROUNDS=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

case "$ONLY" in ''|score|generate) ;; *) echo "run.sh: --only score|generate, got '$ONLY'" >&2; exit 2 ;; esac
RUNC_OK=0
if [ -n "$RUNC" ]; then
    [ -n "$RUNC_TOKENIZER" ] || RUNC_TOKENIZER="$(dirname "$RUNC")/tokenizer.bin"
    if [ -x "$RUNC" ] && [ -f "$RUNC_TOKENIZER" ]; then
        RUNC_OK=1
    else
        echo "run.sh: RUNC=$RUNC is not an executable beside a tokenizer.bin (RUNC_TOKENIZER=$RUNC_TOKENIZER)" >&2
        exit 2
    fi
fi

if [ "$QUICK" = 1 ]; then
    S_REP=3; S_WARM=1; G_REP=1; G_WARM=1
else
    S_REP=7; S_WARM=2; G_REP=3; G_WARM=1
fi

log() { echo "run.sh: $*" >&2; }
source "$ROOT/bench/lib.sh"

# --- prerequisites ------------------------------------------------------------------------
bench_prerequisites "$OMP_BLAS_DIR"
[ -f "$M260K" ] || { log "missing $M260K"; exit 1; }

mkdir -p "$BUILD" "$LOGS"
rm -f "$LOGS"/*.out "$LOGS"/*.err "$LOGS"/runs.tsv

# --- build cutkit-bench (failure is not fatal: its column then says n/a) ------------------
log "building cutkit-bench in $BUILD (log: $BUILD/build.log)"
CUTKIT_OK=0
if { cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCUTKIT_TESTS=OFF &&
     cmake --build "$BUILD" -j2 --target cutkit-bench; } > "$BUILD/build.log" 2>&1; then
    [ -x "$CUTKIT" ] && CUTKIT_OK=1
else
    log "cutkit-bench did not build; its column will say n/a. Last lines of $BUILD/build.log:"
    tail -n 15 "$BUILD/build.log" | sed 's/^/    /' >&2
fi

# --- the random stories15M-shaped model ---------------------------------------------------
if [ ! -f "$M15" ]; then
    log "writing $M15"
    "$PY" bench/make_model.py --preset stories15M --seed 1234 --out "$M15"
fi
if [ ! -f "$M15_V0" ] || [ "$M15" -nt "$M15_V0" ]; then
    log "writing $M15_V0 (run.c reads only the legacy layout)"
    "$PY" bench/legacy_model.py "$M15" "$M15_V0"
fi

# --- OpenBLAS kernel selection (bench/lib.sh) ----------------------------------------------
bench_coretype "$CORETYPE" "$OMP_BLAS_DIR"

# --- one measurement = one process, run alone ---------------------------------------------
round=1

# run_one CASE_ID THREADS SIDE -- command...   (SIDE: cutkit | torch_default | torch_best)
run_one() {
    local id=$1 th=$2 side=$3; shift 4
    local base="$LOGS/$id-t$th-$side-r$round" rc=0   # one file per round (--rounds)
    local b0 c0 t0 b1 c1 t1
    # `times` must run in this shell (not in $(...)) to see the CPU time of our children
    times > "$LOGS/.times0"; b0=$(busy_jiffies); t0=$(date +%s.%N)
    env OMP_NUM_THREADS="$th" OPENBLAS_NUM_THREADS="$th" timeout "$TIMEOUT" "$@" > "$base.out" 2> "$base.err" || rc=$?
    b1=$(busy_jiffies); t1=$(date +%s.%N); times > "$LOGS/.times1"
    c0=$(children_cpu "$LOGS/.times0"); c1=$(children_cpu "$LOGS/.times1")
    # CPU time other processes used meanwhile, in cores (0 = the machine was ours)
    local bg
    bg=$(awk -v b="$((b1 - b0))" -v hz="$HZ" -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" \
        'BEGIN { w = t1 - t0; x = (b / hz - (c1 - c0)) / (w > 0 ? w : 1); if (x < 0) x = 0; printf "%.2f", x }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$th" "$side" "$rc" "$bg" "$base.out" >> "$LOGS/runs.tsv"
    if [ "$rc" != 0 ]; then
        log "  $side failed (exit $rc), see $base.err"
    fi
}

# CASES: id | label | model | mode | batch | seq | steps
CASES=(
    "score260K|score, stories260K, B8 x T512|$M260K|score|8|512|0"
    "score15M|score, 15M random, B4 x T256|$M15|score|4|256|0"
    "gen15M|generate, 15M random, 256 tokens|$M15_V0|generate|1|0|256"
)
THREADS=(1 2)

for ((round = 1; round <= ROUNDS; round++)); do
for c in "${CASES[@]}"; do
    IFS='|' read -r id label model mode batch seq steps <<< "$c"
    if [ -n "$ONLY" ] && [ "$mode" != "$ONLY" ]; then continue; fi
    for th in "${THREADS[@]}"; do
        log "$label, $th thread(s)"
        if [ "$mode" = score ]; then
            cargs=(score --model "$model" --batch "$batch" --seq "$seq" --threads "$th" --repeats "$S_REP" --warmup "$S_WARM")
            targs=(--mode score --model "$model" --batch "$batch" --seq "$seq" --threads "$th" --repeats "$S_REP" --warmup "$S_WARM")
        else
            cargs=(generate --model "$model" --steps "$steps" --threads "$th" --repeats "$G_REP")
            targs=(--mode generate --model "$model" --steps "$steps" --threads "$th" --repeats "$G_REP" --warmup "$G_WARM")
        fi
        if [ "$CUTKIT_OK" = 1 ]; then
            run_one "$id" "$th" cutkit -- "$CUTKIT" "${cargs[@]}"
        fi
        run_one "$id" "$th" torch_default -- env -u LD_LIBRARY_PATH "$PY" bench/torch_ref.py "${targs[@]}"
        run_one "$id" "$th" torch_best -- env LD_LIBRARY_PATH="$OMP_BLAS_DIR" "$PY" bench/torch_ref.py "${targs[@]}"
        if [ "$mode" = generate ] && [ "$RUNC_OK" = 1 ]; then
            run_one "$id" "$th" runc -- bash bench/runc_json.sh "$RUNC" "$RUNC_TOKENIZER" "$model" "$steps" "$G_REP" "$G_WARM"
        fi
    done
done
done

# --- the table ----------------------------------------------------------------------------
CASE_LABELS=$(printf '%s\n' "${CASES[@]}" | cut -d'|' -f1,2)
"$PY" - "$LOGS/runs.tsv" "$BUILD/bench.md" "$QUICK" "${OPENBLAS_CORETYPE:-}" "$CORE_DEFAULT" "$CORE_OMP" \
        "$CUTKIT_OK" "$LOAD1" "$CASE_LABELS" "$RUNC_OK" "$ROUNDS" <<'EOF'
import json, os, platform, subprocess, sys, time
tsv, out_md, quick, coretype, core_def, core_omp, cutkit_ok, load1, labels, runc_ok, rounds = sys.argv[1:12]
labels = dict(l.split("|", 1) for l in labels.splitlines() if l)
runs = {}
for line in open(tsv):
    cid, th, side, rc, bg, path = line.rstrip("\n").split("\t")
    res = None
    if rc == "0" and os.path.exists(path):
        for l in reversed(open(path).read().splitlines()):
            if l.startswith("{"):
                try:
                    res = json.loads(l)
                except ValueError:
                    pass
                break
    # with --rounds, keep each side's best round (highest tokens/s)
    new = dict(rc=int(rc), bg=float(bg), res=res)
    old = runs.get((cid, int(th), side))
    def rate(r):
        return float(r["res"]["tokens_per_s"]) if r and r["res"] and "tokens_per_s" in r["res"] else -1.0
    if old is None or rate(new) > rate(old):
        runs[(cid, int(th), side)] = new

def tps(cid, th, side):
    r = runs.get((cid, th, side))
    if r is None:
        return None, "n/a"
    if r["res"] is None or "tokens_per_s" not in r["res"]:
        return None, "failed"
    v = float(r["res"]["tokens_per_s"])
    mark = " *" if r["bg"] > 0.10 else ""
    return v, f"{v:,.0f}{mark}"

blas_seen = {}
with_runc = runc_ok == "1"
rows = ["| case | threads | cutkit tok/s | torch default tok/s | torch best tok/s | ratio cutkit/torch-best |"
        + (" run.c tok/s | ratio cutkit/run.c |" if with_runc else ""),
        "|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if with_runc else "")]
order = []
for (cid, th, side) in runs:
    if (cid, th) not in order:
        order.append((cid, th))
for cid, th in order:
    ck, ck_s = tps(cid, th, "cutkit")
    _, td_s = tps(cid, th, "torch_default")
    tb, tb_s = tps(cid, th, "torch_best")
    for side in ("torch_default", "torch_best"):
        r = runs.get((cid, th, side))
        if r and r["res"]:
            blas_seen.setdefault(side, set()).add(r["res"].get("blas", "?"))
    ratio = f"{ck / tb:.2f}x" if ck and tb else "n/a"
    row = f"| {labels.get(cid, cid)} | {th} | {ck_s} | {td_s} | {tb_s} | {ratio} |"
    if with_runc:
        rc_v, rc_s = tps(cid, th, "runc")
        if (cid, th, "runc") not in runs:
            rc_s = "-"
        row += f" {rc_s} | {f'{ck / rc_v:.2f}x' if ck and rc_v else '-'} |"
    rows.append(row)

torch_ver = next((r["res"].get("torch") for r in runs.values() if r["res"] and r["res"].get("impl") == "torch"), "?")
cpu = "?"
for l in open("/proc/cpuinfo"):
    if l.startswith("model name"):
        cpu = l.split(":", 1)[1].strip(); break
bgs = [r["bg"] for r in runs.values()]
notes = [
    f"- {time.strftime('%Y-%m-%d %H:%M')}, {cpu}, {os.cpu_count()} CPUs; torch {torch_ver}; "
    f"{'quick run (--quick)' if quick == '1' else 'full run'}; tokens/s from the median of the timed repeats.",
    f"- torch default = /usr/bin/python3 as installed: BLAS {', '.join(sorted(blas_seen.get('torch_default', {'?'})))}. "
    f"torch best = the same script with LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp: "
    f"BLAS {', '.join(sorted(blas_seen.get('torch_best', {'?'})))} (read from /proc/self/maps inside the process).",
    f"- OpenBLAS kernels: {core_def} (system default build), {core_omp} (OpenMP build)"
    + (f"; OPENBLAS_CORETYPE={coretype} was set for every process, cutkit included." if coretype else
       "; OPENBLAS_CORETYPE not set."),
    "- Every process ran alone with OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = threads.",
]
if with_runc:
    notes.append("- run.c = llama2.c's run.c built by the user (RUNC=...), greedy from BOS (-t 0 -n 256 -i \"\"), "
                 "on the same model file as the other columns (the legacy layout, bench/legacy_model.py); "
                 "its own 'achieved tok/s', which starts timing after the first token.")
if rounds != "1":
    notes.append(f"- {rounds} rounds, sides interleaved; each cell is that side's best round.")
if cutkit_ok != "1":
    notes.append("- cutkit-bench did not build (see build-bench/build.log): cutkit column n/a.")
if bgs and max(bgs) > 0.10:
    notes.append(f"- * = other processes used more than 0.10 of a core during that measurement "
                 f"(max {max(bgs):.2f}; load average {load1} at start): rerun on a quiet machine.")
else:
    notes.append(f"- The machine was quiet: other processes used at most {max(bgs or [0]):.2f} of a core during any measurement.")
md = "\n".join(rows) + "\n\n" + "\n".join(notes) + "\n"
tmp = out_md + ".tmp"
with open(tmp, "w") as f:
    f.write("# cutkit vs PyTorch (bench/run.sh)\n\n" + md)
os.replace(tmp, out_md)
print(md, end="")
EOF
log "table written to $BUILD/bench.md; raw JSON in $LOGS/"
