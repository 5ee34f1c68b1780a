/* bench_util.h — what every benchmark program needs: medians of repeated timings, process CPU
 * time, the token stream the PyTorch references draw too, and strict number parsing. */
#ifndef CK_BENCH_UTIL_H
#define CK_BENCH_UTIL_H

#include <stdint.h>

/* Median of n values (sorts them in place). */
double bench_median(double *v, int n);

/* CPU seconds of this process, all threads: a rate that other load on the machine barely
 * moves (wall time is what the tables report beside it). */
double bench_cpu_seconds(void);

/* splitmix64: the token stream the torch_*_ref.py scripts draw from the same seed. */
uint64_t bench_splitmix64(uint64_t *state);

/* Parses s as an integer in [min, 1e9] into *out; returns 0, or -1 for anything else. */
int bench_parse_int(const char *s, int min, int *out);

/* Parses s as a number into *out; returns 0, or -1 when s is not entirely one. */
int bench_parse_double(const char *s, double *out);

#endif
