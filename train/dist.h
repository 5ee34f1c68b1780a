/* dist.h — data parallelism over MPI processes ("ranks"): every MPI call of cutkit lives in
 * dist.c. Built with -DCUTKIT_MPI=ON these functions call Open MPI (or any MPI); built
 * without, they are single-process stubs (rank 0 of 1, every reduction a no-op, gathers a
 * copy), so callers never need an #ifdef.
 *
 * Only the thread that called dist_init may call the others (MPI_THREAD_FUNNELED): OpenMP
 * regions never communicate. Collectives (the reductions, dist_same_u64, the gathers,
 * dist_bcast_bytes, dist_barrier) must be called by every rank in the same order with the
 * same sizes; a rank that cannot continue calls dist_abort so that no other rank waits
 * forever in a collective. */
#ifndef CK_DIST_H
#define CK_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "util/ck_error.h"

/* Starts MPI (once; later calls do nothing) and records this process's rank and the number
 * of ranks; without MPI, or when not started by mpirun, this is rank 0 of 1. */
int dist_init(int *argc, char ***argv, CkError *err);

/* Ends MPI after every rank has reached it; does nothing without MPI or before dist_init. */
void dist_finalize(void);

/* Returns 1 when cutkit was built with MPI (CUTKIT_MPI), else 0. */
int dist_available(void);

/* Returns this process's rank, 0 .. dist_size() - 1 (0 before dist_init). */
int dist_rank(void);

/* Returns the number of ranks (1 before dist_init or without MPI). */
int dist_size(void);

/* Replaces buf[0 .. n) on every rank by its elementwise sum over all ranks. */
int dist_allreduce_sum_f32(float *buf, size_t n, CkError *err);

/* As dist_allreduce_sum_f32, for doubles. */
int dist_allreduce_sum_f64(double *buf, size_t n, CkError *err);

/* As dist_allreduce_sum_f32, for 64-bit integers. */
int dist_allreduce_sum_i64(int64_t *buf, size_t n, CkError *err);

/* Sets *same to 1 on every rank when every rank passed the same value v, else 0. */
int dist_same_u64(uint64_t v, int *same, CkError *err);

/* Copies root's buf[0 .. n) into buf on every other rank. */
int dist_bcast_bytes(void *buf, size_t n, int root, CkError *err);

/* Waits until every rank has called it. */
int dist_barrier(CkError *err);

/* Gathers every rank's n bytes at buf to rank 0: there *out receives a malloc'd
 * concatenation in rank order (*out_n bytes; the caller frees it) and counts[k] (an array of
 * dist_size() entries) rank k's length; on other ranks *out is NULL, *out_n 0 and counts is
 * not written (may be NULL). */
int dist_gather_bytes(const void *buf, size_t n, char **out, size_t *out_n, size_t *counts,
                      CkError *err);

/* As dist_gather_bytes, but every rank receives the concatenation and counts (non-NULL). */
int dist_allgather_bytes(const void *buf, size_t n, char **out, size_t *out_n, size_t *counts,
                         CkError *err);

/* This rank's contiguous share [*lo, *hi) of n items: rank k of K gets items
 * [k n / K, (k + 1) n / K), so the shares tile 0 .. n in rank order and differ by at most
 * one item (sharded evaluation; concatenating gathered results in rank order restores the
 * item order). */
void dist_shard_range(int64_t n, int64_t *lo, int64_t *hi);

/* Prints "cutkit: rank K: msg" to stderr and ends every rank (MPI_Abort, exit status 1);
 * without MPI, or before dist_init, prints "cutkit: msg" and exits 1. */
void dist_abort(const char *msg) __attribute__((noreturn));

#endif
