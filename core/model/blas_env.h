/* blas_env.h — choosing OpenBLAS's kernels before it starts.
 *
 * Debian's OpenBLAS 0.3.21 does not recognise recent Intel CPUs (Sapphire Rapids) and falls
 * back to its "Prescott" (SSE3) kernels, 5-10x slower than the AVX-512 ones. It reads
 * OPENBLAS_CORETYPE only when the library is loaded, so a program must set it before it
 * starts: blas_env_ensure() re-executes the program once with it set. */
#ifndef CK_BLAS_ENV_H
#define CK_BLAS_ENV_H

/* The OpenBLAS core type that suits this CPU ("SkylakeX" with AVX-512, "Haswell" with AVX2),
 * or NULL when OpenBLAS's own detection should stand. */
const char *blas_env_preferred_coretype(void);

/* For main() only, before anything else: when OPENBLAS_CORETYPE is unset and this CPU wants
 * one, sets it and re-executes /proc/self/exe with the same argv; returns when nothing needs
 * doing (or when re-executing failed, in which case the program simply runs slower). A user's
 * own OPENBLAS_CORETYPE is always respected. */
void blas_env_ensure(char **argv);

#endif
