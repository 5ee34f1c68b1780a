/* threads.c — OpenMP and the OpenMP build of OpenBLAS draw on one pool, so setting the
 * count once keeps the two cores from being oversubscribed. */
#include "util/threads.h"

#include <cblas.h>
#include <omp.h>

int threads_available(void) {
    return omp_get_num_procs();
}

int threads_set(int n) {
    if (n <= 0) n = threads_available();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    return n;
}
