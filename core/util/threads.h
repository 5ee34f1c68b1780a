/* threads.h — the one thread count that OpenMP loops and OpenBLAS share. */
#ifndef CK_THREADS_H
#define CK_THREADS_H

/* Sets the number of threads for our parallel loops and for OpenBLAS (0: one per core) and
 * returns the count in effect. */
int threads_set(int n);

/* Returns the number of cores the process may run on. */
int threads_available(void);

#endif
