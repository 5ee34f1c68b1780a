#!/bin/bash
# shared_cores.sh — the shared-machine cases of issue 18: how cutkit's default thread and wait
# settings fare while another process keeps one core busy (a niced shell busy loop pinned to
# core 0), beside the quiet machine and beside --threads 1, in one run.
#
#   CUTKIT=build/cutkit bench/shared_cores.sh [--repeats N] [--shared DIR]
#
# Cases (the issue's): eval mc --task truthfulqa_mc2 --limit 40 on the embedded model; 6 LoRA
# CUT updates on Shepherd (train --objective cut --judgment-format shepherd --preset offline
# --lora --steps 6). Settings, each the median wall time of N runs:
#   quiet       no busy loop, the defaults
#   spin        busy core; OpenMP's own wait policy (GOMP_SPINCOUNT=300000 is libgomp's default
#               when OMP_WAIT_POLICY is unset: "before" threads_env_ensure set anything)
#   default     busy core; GOMP_SPINCOUNT=1000 (what threads_env_ensure sets by default)
#   passive     busy core; OMP_WAIT_POLICY=PASSIVE (the default before 2026-12-07: as good on a
#               shared core, but 2-thread decoding ran at 1-thread speed on a quiet one)
#   threads1    busy core; --threads 1
# Machine-wide load from other work skews every row alike: the load average is printed first;
# compare rows of one run only. Timings, not tests: nothing here asserts a speed.
set -euo pipefail

REPEATS=3
SHARED="$(cd "$(dirname "$0")/.." && pwd)/../shared"
while [ $# -gt 0 ]; do
    case "$1" in
    --repeats) REPEATS="$2"; shift 2 ;;
    --shared) SHARED="$2"; shift 2 ;;
    *) echo "usage: CUTKIT=build/cutkit $0 [--repeats N] [--shared DIR]" >&2; exit 2 ;;
    esac
done
CUTKIT="${CUTKIT:?set CUTKIT to the cutkit binary}"
JUDGMENTS="$SHARED/data/shepherd/human_data_for_model.jsonl"
[ -f "$JUDGMENTS" ] || { echo "shared_cores.sh: $JUDGMENTS not found (--shared DIR)" >&2; exit 2; }

WORK="$(mktemp -d)"
BUSY=""
cleanup() {
    if [ -n "$BUSY" ]; then kill "$BUSY" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

busy_start() {
    # one core kept busy by a plain niced shell loop, as another user's job would
    if command -v taskset >/dev/null; then
        nice -n 10 taskset -c 0 bash -c 'while :; do :; done' &
    else
        nice -n 10 bash -c 'while :; do :; done' &
    fi
    BUSY=$!
    sleep 0.5
}

busy_stop() {
    kill "$BUSY" 2>/dev/null || true
    wait "$BUSY" 2>/dev/null || true
    BUSY=""
}

# run_case CASE EXTRA_ARGS...: prints the median wall seconds of REPEATS runs
run_case() {
    local name="$1"
    shift
    local times=()
    for ((r = 0; r < REPEATS; r++)); do
        rm -rf "$WORK/run"
        mkdir -p "$WORK/run"
        local t0 t1
        t0=$(date +%s.%N)
        case "$name" in
        mc) (cd "$WORK/run" && "$CUTKIT" eval mc --task truthfulqa_mc2 --limit 40 "$@" >/dev/null 2>&1) ;;
        cut) "$CUTKIT" train --objective cut --judgment-format shepherd --judgments "$JUDGMENTS" \
            --preset offline --lora --steps 6 --out "$WORK/run/out" "$@" >/dev/null 2>&1 ;;
        esac
        t1=$(date +%s.%N)
        times+=("$(echo "$t1 - $t0" | bc -l)")
    done
    printf '%s\n' "${times[@]}" | sort -g | awk '{v[NR]=$1} END {printf "%.2f", v[int((NR+1)/2)]}'
}

# setting SETTING CASE: runs CASE the way SETTING says
setting() {
    case "$1" in
    quiet) env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=1000 bash -c "$(declare -f run_case); REPEATS=$REPEATS WORK=$WORK CUTKIT=$CUTKIT JUDGMENTS=$JUDGMENTS run_case $2" ;;
    spin) env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=300000 bash -c "$(declare -f run_case); REPEATS=$REPEATS WORK=$WORK CUTKIT=$CUTKIT JUDGMENTS=$JUDGMENTS run_case $2" ;;
    default) env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=1000 bash -c "$(declare -f run_case); REPEATS=$REPEATS WORK=$WORK CUTKIT=$CUTKIT JUDGMENTS=$JUDGMENTS run_case $2" ;;
    passive) env -u GOMP_SPINCOUNT OMP_WAIT_POLICY=PASSIVE bash -c "$(declare -f run_case); REPEATS=$REPEATS WORK=$WORK CUTKIT=$CUTKIT JUDGMENTS=$JUDGMENTS run_case $2" ;;
    threads1) env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=1000 bash -c "$(declare -f run_case); REPEATS=$REPEATS WORK=$WORK CUTKIT=$CUTKIT JUDGMENTS=$JUDGMENTS run_case $2 --threads 1" ;;
    esac
}

echo "cpu: $(lscpu | grep 'Model name' | sed 's/.*: *//'), $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %8s %8s %8s %8s %9s   (median wall seconds of %d)\n' case quiet spin default passive threads1 "$REPEATS"
for c in mc cut; do
    q=$(setting quiet "$c")
    busy_start
    s=$(setting spin "$c")
    d=$(setting default "$c")
    p=$(setting passive "$c")
    o=$(setting threads1 "$c")
    busy_stop
    printf '%-6s %8s %8s %8s %8s %9s\n' "$c" "$q" "$s" "$d" "$p" "$o"
done
