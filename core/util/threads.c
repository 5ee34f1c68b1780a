/* threads.c — OpenMP and the OpenMP build of OpenBLAS draw on one pool, so setting the
 * count once keeps the two cores from being oversubscribed. */
#include "util/threads.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

int threads_available(void) {
    return omp_get_num_procs();
}

int threads_set(int n) {
    if (n <= 0) n = threads_available();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    return n;
}

int threads_for_work(double flops) {
    const int max = omp_get_max_threads();
    if (max <= 1 || !(flops >= 2.0 * THREADS_MIN_FLOPS_PER_THREAD)) return 1;
    const double fit = flops / THREADS_MIN_FLOPS_PER_THREAD;
    return fit < (double)max ? (int)fit : max;
}

int threads_env_defaults(void) {
    /* the user's choice (either variable sets how long threads spin) always stands */
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return 0;
    /* A short spin: decoding's parallel regions follow each other within microseconds, and a
     * sleeping thread takes longer than that to wake (2-thread decoding ran at 1-thread speed
     * with passive waits); on a shared core, 1000 spins before sleeping cost what passive
     * waits cost (bench/shared_cores.sh), where libgomp's default 300000 cost 1.5-30x. */
    return setenv("GOMP_SPINCOUNT", "1000", 1) == 0;
}

void threads_env_ensure(char **argv) {
    if (!threads_env_defaults()) return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): carry on with the runtime's default wait policy */
}
