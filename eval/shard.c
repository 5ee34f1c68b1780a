/* shard.c — see shard.h. */
#include "eval/shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/dist.h"

int shard_put(StrBuf *b, const void *p, size_t n, CkError *err) {
    if (strbuf_put(b, p, n) != 0) return ck_fail(err, "out of memory packing %zu bytes", b->n + n);
    return 0;
}

int shard_put_int(StrBuf *b, int v, CkError *err) {
    return shard_put(b, &v, sizeof v, err);
}

int shard_put_str(StrBuf *b, const char *s, CkError *err) {
    int64_t len = s ? (int64_t)strlen(s) : -1;
    if (shard_put(b, &len, sizeof len, err) != 0) return -1;
    return s ? shard_put(b, s, (size_t)len, err) : 0;
}

int shard_get(ShardReader *r, void *out, size_t n, CkError *err) {
    if (n > r->n - r->pos)
        return ck_fail(err, "gathered results end early (byte %zu of %zu, %zu more wanted)", r->pos,
                       r->n, n);
    if (n) memcpy(out, r->p + r->pos, n);
    r->pos += n;
    return 0;
}

int shard_get_int(ShardReader *r, int *v, CkError *err) {
    return shard_get(r, v, sizeof *v, err);
}

int shard_get_str(ShardReader *r, char **s, CkError *err) {
    int64_t len = 0;
    *s = NULL;
    if (shard_get(r, &len, sizeof len, err) != 0) return -1;
    if (len < 0) return 0;
    if ((uint64_t)len > r->n - r->pos)
        return ck_fail(err, "gathered results end early (a string of %lld bytes at byte %zu)",
                       (long long)len, r->pos);
    *s = malloc((size_t)len + 1);
    if (!*s) return ck_fail(err, "out of memory unpacking %lld bytes", (long long)len);
    memcpy(*s, r->p + r->pos, (size_t)len);
    (*s)[len] = '\0';
    r->pos += (size_t)len;
    return 0;
}

/* One round [lo, hi): this rank's share, packed into mine; then on rank 0 every record of the
 * round, read from the gathered bytes (rank 0's own first, as the shares tile the round in
 * rank order). */
static int run_round(const ShardLoop *loop, int64_t lo, int64_t hi, StrBuf *mine, CkError *err) {
    int64_t a = 0, b = 0;
    dist_shard_range(hi - lo, &a, &b);
    strbuf_clear(mine);
    for (int64_t k = lo + a; k < lo + b; k++)
        if (loop->work(loop->ctx, k, mine, err) != 0) return -1;
    char *gathered = NULL;
    size_t n_gathered = mine->n;
    if (dist_size() > 1) {
        size_t *counts = calloc((size_t)dist_size(), sizeof(size_t));
        if (!counts) return ck_fail(err, "out of memory");
        int rc = dist_gather_bytes(mine->p, mine->n, &gathered, &n_gathered, counts, err);
        free(counts);
        if (rc != 0) return -1;
        if (dist_rank() != 0) return 0;
    }
    ShardReader rd = {gathered ? gathered : mine->p, n_gathered, 0};
    int rc = 0;
    for (int64_t k = lo; k < hi && rc == 0; k++) rc = loop->collect(loop->ctx, k, &rd, err);
    free(gathered);
    if (rc == 0 && loop->round_done) rc = loop->round_done(loop->ctx, lo, hi, err);
    return rc;
}

int shard_run(const ShardLoop *loop, CkError *err) {
    /* one record a round on one process: every record is taken in as soon as it is done */
    const int64_t per_rank = loop->per_rank > 0 ? loop->per_rank : 1;
    const int64_t round = dist_size() == 1 ? 1 : (int64_t)dist_size() * per_rank;
    StrBuf mine = {0};
    int rc = 0;
    for (int64_t lo = 0; lo < loop->n && rc == 0; lo += round)
        rc = run_round(loop, lo, lo + round < loop->n ? lo + round : loop->n, &mine, err);
    strbuf_free(&mine);
    return rc;
}

void shard_abort_ranks(const char *command, const CkError *err) {
    if (dist_size() <= 1) return;
    char line[sizeof err->msg + 128];
    snprintf(line, sizeof line, "%s: %s", command, err->msg);
    dist_abort(line);
}
