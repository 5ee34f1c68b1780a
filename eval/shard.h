/* shard.h — the one sharding loop of the evaluation pipelines (eval mc, generate and judge
 * under `mpirun -np K`): the records still to do are cut into rounds, every rank does its
 * contiguous share of a round (dist_shard_range), packs each result into bytes, and rank 0
 * gathers the round in rank order, which is record order, and takes the results in one by one
 * as one process would, so the files it writes equal the one-process run's byte for byte.
 * On one process a round is one record and nothing is gathered.
 *
 * The packer is a flat byte stream in the machine's own byte order (the ranks run the same
 * binary on the same kind of machine): fixed-size values are copied as they lie in memory
 * (doubles bit for bit, so gathered scores equal the computed ones exactly), strings are a
 * 64-bit length (-1: NULL) and their bytes. */
#ifndef CK_SHARD_H
#define CK_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "util/ck_error.h"
#include "util/strbuf.h"

/* Appends n bytes at p to b; fails only when out of memory. */
int shard_put(StrBuf *b, const void *p, size_t n, CkError *err);

/* Appends one int. */
int shard_put_int(StrBuf *b, int v, CkError *err);

/* Appends a string (NULL allowed; it reads back as NULL). */
int shard_put_str(StrBuf *b, const char *s, CkError *err);

/* Reads back what the shard_put functions wrote, in the same order (p is borrowed). */
typedef struct {
    const char *p;
    size_t n, pos;
} ShardReader;

/* Copies the next n bytes into out; fails when fewer remain (a corrupt gather). */
int shard_get(ShardReader *r, void *out, size_t n, CkError *err);

/* Reads one int. */
int shard_get_int(ShardReader *r, int *v, CkError *err);

/* Reads a string into *s (malloc'd, or NULL when NULL was packed; the caller frees it). */
int shard_get_str(ShardReader *r, char **s, CkError *err);

/* One sharded pass over records 0 .. n-1 (the caller maps them to its own items). */
typedef struct {
    int64_t n;    /* records to do */
    int per_rank; /* records per rank in a round under mpirun (>= 1): few enough that a killed
                     run loses little and rank 0 reports progress, enough that waiting for the
                     slowest rank of a round averages out */
    void *ctx;    /* passed to the callbacks */
    /* Every rank: does record k and appends its result to out with the shard_put functions. */
    int (*work)(void *ctx, int64_t k, StrBuf *out, CkError *err);
    /* Rank 0 only, records in order: reads record k's result from in (the same puts, in the
     * same order) and keeps it. */
    int (*collect)(void *ctx, int64_t k, ShardReader *in, CkError *err);
    /* Rank 0 only, optional (NULL): after the records [lo, hi) of a round were collected. */
    int (*round_done)(void *ctx, int64_t lo, int64_t hi, CkError *err);
} ShardLoop;

/* Runs the loop: rounds of per_rank records per rank (one record on one process), each rank
 * working on its share, rank 0 collecting every record of the round in order. A callback's
 * failure, or a failed gather, ends the loop with -1 and err; under mpirun the other ranks may
 * then wait in a gather, so the caller ends them (shard_abort_ranks). Collective: every rank
 * calls it with the same n and per_rank. */
int shard_run(const ShardLoop *loop, CkError *err);

/* For a command whose pipeline failed under mpirun: prints "cutkit: rank K: <command>: <msg>"
 * and ends every rank (dist_abort), because the other ranks may wait for this one in a
 * gather. On one process it returns and the command reports the error itself. Only commands
 * call it: library functions return their errors. */
void shard_abort_ranks(const char *command, const CkError *err);

#endif
