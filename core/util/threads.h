/* threads.h — the one thread count that OpenMP loops and OpenBLAS share, and the defaults that
 * keep them from hurting when the cores are shared with other processes.
 *
 * On a machine where another process keeps a core busy, every parallel region waits for its
 * slowest thread, which the kernel may have descheduled: thousands of tiny regions then cost
 * far more than they gain, and threads that spin while waiting take time from the busy core's
 * other process (and it from them). Two remedies live here: OpenMP's passive wait policy by
 * default (threads_env_ensure), and a size test for parallel regions (threads_for_work). */
#ifndef CK_THREADS_H
#define CK_THREADS_H

/* Sets the number of threads for our parallel loops and for OpenBLAS (0: one per core) and
 * returns the count in effect. */
int threads_set(int n);

/* Returns the number of cores the process may run on. */
int threads_available(void);

/* Floating-point operations a parallel region must hold per thread to gain from it: below
 * this the fork, the join and a possibly descheduled thread cost more than the work (about
 * 0.1-0.5 ms of one core; a region wakes a sleeping thread in ~10 us on a quiet machine, and
 * waits a scheduler slice, ~1-4 ms, for one that shares its core with another process). */
#define THREADS_MIN_FLOPS_PER_THREAD 1048576.0

/* How many threads a parallel region of about `flops` operations should use: 1 below
 * 2 * THREADS_MIN_FLOPS_PER_THREAD, else flops / THREADS_MIN_FLOPS_PER_THREAD capped at the
 * count in effect. For `#pragma omp parallel for num_threads(threads_for_work(f))` or
 * `if (threads_for_work(f) > 1)`. */
int threads_for_work(double flops);

/* The environment defaults of the OpenMP runtime, which reads them once, when it is loaded
 * (before main): sets GOMP_SPINCOUNT=1000 unless the user set OMP_WAIT_POLICY or
 * GOMP_SPINCOUNT, so that idle threads spin briefly, then sleep (not for libgomp's default
 * 300000 spins, which a descheduled partner turns into lost timeslices on a shared core).
 * Returns 1 when it changed the environment (which then takes effect only in a re-executed
 * program), else 0. */
int threads_env_defaults(void);

/* For main() only, before anything else: threads_env_defaults, and when that changed the
 * environment, re-executes /proc/self/exe with the same argv (as blas_env_ensure does; the
 * environment survives, so it happens once). Returns when nothing needed doing, or when the
 * re-execution failed (the program then runs with the runtime's own wait policy). */
void threads_env_ensure(char **argv);

#endif
