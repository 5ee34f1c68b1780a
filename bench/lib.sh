# bench/lib.sh — what the bench orchestrators (run.sh, run_train.sh, run_compute.sh) share:
# OpenBLAS's kernel choice, applied alike to every process they start, and the accounting that
# tells a quiet measurement from a disturbed one. Sourced, not run; the caller defines PY
# (Debian's python3), log (messages to stderr), and for wait_quiet QUIET_WAIT and BG_LIMIT;
# attempt and measure also use LOGS, THREADS, TIMEOUT and RETRIES.

# bench_prerequisites OMP_BLAS_DIR: stops (exit 1) when $PY cannot import torch and numpy;
# warns when the OpenMP OpenBLAS is missing or the machine is busy; sets LOAD1 (the 1-minute
# load average at the start, for the table's notes).
bench_prerequisites() {
    "$PY" -c 'import torch, numpy' 2>/dev/null || {
        log "$PY cannot import torch and numpy (apt-get install python3-torch python3-numpy)"; exit 1; }
    [ -d "$1" ] || log "warning: $1 missing (apt-get install libopenblas0-openmp); 'torch best' will not use it"
    read -r LOAD1 _ < /proc/loadavg
    if awk -v l="$LOAD1" 'BEGIN { exit !(l > 0.5) }'; then
        log "warning: load average is $LOAD1 — other processes are using the CPU; numbers will be low and noisy"
    fi
}

# openblas_core DIR: the kernel the libopenblas.so.0 in DIR picks on this CPU (or "unknown").
openblas_core() {
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$PY" -c '
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1] + "/libopenblas.so.0")
lib.openblas_get_corename.restype = ctypes.c_char_p
print(lib.openblas_get_corename().decode())' "$1" 2>/dev/null || echo unknown
}

# bench_coretype MODE OMP_BLAS_DIR: exports the OPENBLAS_CORETYPE every process runs with.
# MODE auto keeps the user's value, and replaces OpenBLAS's generic Prescott (SSE3) fallback
# on a CPU it does not know by SkylakeX (AVX-512) or Haswell (AVX2); none leaves OpenBLAS
# alone; anything else is a kernel name. Sets SYS_BLAS_DIR, CORE_DEFAULT and CORE_OMP (the
# kernels the system default and the OpenMP builds then pick), for the table's notes.
bench_coretype() {
    local mode=$1 omp_dir=$2 chosen= core
    SYS_BLAS_DIR=$(dirname "$(readlink -f /usr/lib/x86_64-linux-gnu/libopenblas.so.0 2>/dev/null || echo /x/none)")
    case "$mode" in
        none) ;;
        auto)
            if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
                chosen=$OPENBLAS_CORETYPE
            else
                core=$(unset OPENBLAS_CORETYPE; openblas_core "$SYS_BLAS_DIR")
                if [ "$core" = Prescott ] && grep -qw avx512f /proc/cpuinfo; then
                    chosen=SkylakeX
                    log "OpenBLAS picks its generic Prescott kernels on this AVX-512 CPU: setting OPENBLAS_CORETYPE=SkylakeX for every process (cutkit and torch); --coretype none disables this"
                elif [ "$core" = Prescott ] && grep -qw avx2 /proc/cpuinfo; then
                    chosen=Haswell
                    log "OpenBLAS picks Prescott on an AVX2 CPU: setting OPENBLAS_CORETYPE=Haswell for every process"
                fi
            fi ;;
        *) chosen=$mode ;;
    esac
    if [ -n "$chosen" ]; then export OPENBLAS_CORETYPE=$chosen; else unset OPENBLAS_CORETYPE; fi
    CORE_DEFAULT=$(openblas_core "$SYS_BLAS_DIR")
    CORE_OMP=$( [ -d "$omp_dir" ] && openblas_core "$omp_dir" || echo unknown)
    log "OpenBLAS kernels: system default ($SYS_BLAS_DIR) $CORE_DEFAULT, OpenMP build $CORE_OMP"
}

# busy_jiffies: the CPU time all processes used so far, in clock ticks (HZ a second).
busy_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
HZ=$(getconf CLK_TCK)

# children_cpu FILE: CPU seconds of the shell's finished children, from `times` output in FILE
# (`times` must run in the measuring shell itself, not in $(...), to see its children).
children_cpu() {
    awk 'NR == 2 { split($1, a, /[ms]/); split($2, b, /[ms]/); printf "%.3f", a[1] * 60 + a[2] + b[1] * 60 + b[2] }' "$1"
}

# wait_quiet: waits (at most QUIET_WAIT seconds) until the CPUs were idle, other processes
# under BG_LIMIT cores, for 3 s in a row; then, or when the time is up, returns 0.
wait_quiet() {
    local waited=0 b0 b1
    while [ "$waited" -lt "$QUIET_WAIT" ]; do
        b0=$(busy_jiffies); sleep 3; b1=$(busy_jiffies)
        waited=$((waited + 3))
        if awk -v b="$((b1 - b0))" -v hz="$HZ" -v l="$BG_LIMIT" 'BEGIN { exit !(b / hz / 3 <= l) }'; then
            [ "$waited" -gt 3 ] && log "  waited ${waited} s for other processes to finish"
            return 0
        fi
    done
    [ "$QUIET_WAIT" -gt 0 ] && log "  the machine is still busy after ${QUIET_WAIT} s; measuring anyway"
    return 0
}

# attempt ID SIDE N -- command...: one process; appends a row to runs.tsv
attempt() {
    local id=$1 side=$2 n=$3; shift 4
    local base="$LOGS/$id-$side-$n" rc=0 b0 b1 t0 t1 c0 c1 bg load rate
    wait_quiet
    read -r load _ < /proc/loadavg
    times > "$LOGS/.times0"; b0=$(busy_jiffies); t0=$(date +%s.%N)
    env OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" timeout "$TIMEOUT" "$@" \
        > "$base.out" 2> "$base.err" || rc=$?
    b1=$(busy_jiffies); t1=$(date +%s.%N); times > "$LOGS/.times1"
    c0=$(children_cpu "$LOGS/.times0"); c1=$(children_cpu "$LOGS/.times1")
    # cores that other processes used meanwhile (0 = the machine was ours)
    bg=$(awk -v b="$((b1 - b0))" -v hz="$HZ" -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" \
        'BEGIN { w = t1 - t0; x = (b / hz - (c1 - c0)) / (w > 0 ? w : 1); if (x < 0) x = 0; printf "%.2f", x }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$side" "$n" "$rc" "$bg" "$load" "$base.out" >> "$LOGS/runs.tsv"
    [ "$rc" = 0 ] || log "  $side failed (exit $rc), see $base.err"
    rate=$(grep -o '"\(tokens\|questions\)_per_s": *[0-9.]*' "$base.out" | head -n1 |
        awk -F': *' '{ sub(/^"/, "", $1); sub(/_per_s"$/, "/s", $1); printf "%s %.1f", $1, $2 }' || true)
    log "  $side: ${rate:-no rate}, load $load, others used $bg cores"
    LAST_BG=$bg
}

# measure ID SIDE -- command...: reruns while others used the CPU (up to RETRIES times)
measure() {
    local id=$1 side=$2; shift 3
    local n=0
    while :; do
        attempt "$id" "$side" "$n" -- "$@"
        if awk -v b="$LAST_BG" -v l="$BG_LIMIT" 'BEGIN { exit !(b > l) }' && [ "$n" -lt "$RETRIES" ]; then
            n=$((n + 1))
            log "  others used $LAST_BG cores: measuring $side again ($n/$RETRIES)"
        else
            break
        fi
    done
}
