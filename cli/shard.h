/* shard.h — sharded evaluation under mpirun (`mpirun -np K cutkit eval mc|generate|judge`):
 * the records still to do are cut into rounds, every rank does its contiguous share of a
 * round (dist_shard_range), packs its results into bytes, and rank 0 gathers them in rank
 * order, which is record order, then writes them as one process would. Without MPI, or on
 * one rank, a round is one record and the gather a copy, so the commands behave as before.
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

/* A growable buffer of packed values. */
typedef struct {
    char *data;
    size_t n, cap;
} ShardBuf;

/* Appends n bytes at p to b. */
int shard_put(ShardBuf *b, const void *p, size_t n, CkError *err);

/* Appends one int. */
int shard_put_int(ShardBuf *b, int v, CkError *err);

/* Appends a string (NULL allowed; it reads back as NULL). */
int shard_put_str(ShardBuf *b, const char *s, CkError *err);

/* Empties b, keeping its memory. */
void shard_buf_reset(ShardBuf *b);

/* Releases b and zeroes it; safe on a zeroed buffer. */
void shard_buf_free(ShardBuf *b);

/* Reads back what the shard_put functions wrote, in the same order. */
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

/* Records per round: 1 on one rank (every record is written as soon as it is done, as
 * before), else per_rank records for each of the dist_size() ranks. */
int64_t shard_round_size(int per_rank);

/* This rank's share [*lo, *hi) of the round [round_lo, round_hi) (dist_shard_range within it,
 * so that the ranks' shares concatenated in rank order are the round in order). */
void shard_round_share(int64_t round_lo, int64_t round_hi, int64_t *lo, int64_t *hi);

/* Gathers every rank's packed bytes of a round to rank 0 (*all: their concatenation in rank
 * order, malloc'd, the caller frees it; NULL with *all_n 0 on other ranks). */
int shard_gather(const ShardBuf *mine, char **all, size_t *all_n, CkError *err);

/* A command's failure: on one process prints "cutkit <command>: <msg>" and returns 1; under
 * mpirun prints "cutkit: rank K: <command>: <msg>" and ends every rank (dist_abort), because
 * the other ranks may already wait for this one in a gather. */
int shard_fail(const char *command, const char *msg);

#endif
