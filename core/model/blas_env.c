/* blas_env.c — see blas_env.h for why this exists. */
#include "model/blas_env.h"

#include <stdlib.h>
#include <unistd.h>

const char *blas_env_preferred_coretype(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    return NULL;
}

void blas_env_ensure(char **argv) {
    if (getenv("OPENBLAS_CORETYPE")) return; /* the user's, or ours after the re-exec */
    const char *core = blas_env_preferred_coretype();
    if (!core) return;
    if (setenv("OPENBLAS_CORETYPE", core, 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): carry on with OpenBLAS's own choice */
}
