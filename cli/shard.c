/* shard.c — see shard.h. */
#include "cli/shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/dist.h"

int shard_put(ShardBuf *b, const void *p, size_t n, CkError *err) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) return ck_fail(err, "out of memory packing %zu bytes", b->n + n);
        b->data = d;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->n, p, n);
    b->n += n;
    return 0;
}

int shard_put_int(ShardBuf *b, int v, CkError *err) {
    return shard_put(b, &v, sizeof v, err);
}

int shard_put_str(ShardBuf *b, const char *s, CkError *err) {
    int64_t len = s ? (int64_t)strlen(s) : -1;
    if (shard_put(b, &len, sizeof len, err) != 0) return -1;
    return s ? shard_put(b, s, (size_t)len, err) : 0;
}

void shard_buf_reset(ShardBuf *b) {
    b->n = 0;
}

void shard_buf_free(ShardBuf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
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

int64_t shard_round_size(int per_rank) {
    if (dist_size() == 1) return 1;
    return (int64_t)dist_size() * (per_rank > 0 ? per_rank : 1);
}

void shard_round_share(int64_t round_lo, int64_t round_hi, int64_t *lo, int64_t *hi) {
    dist_shard_range(round_hi - round_lo, lo, hi);
    *lo += round_lo;
    *hi += round_lo;
}

int shard_gather(const ShardBuf *mine, char **all, size_t *all_n, CkError *err) {
    size_t *counts = calloc((size_t)dist_size(), sizeof(size_t));
    if (!counts) return ck_fail(err, "out of memory");
    int rc = dist_gather_bytes(mine->data, mine->n, all, all_n, counts, err);
    free(counts);
    return rc;
}

int shard_fail(const char *command, const char *msg) {
    if (dist_size() > 1) {
        char line[1200];
        snprintf(line, sizeof line, "%s: %s", command, msg);
        dist_abort(line);
    }
    fprintf(stderr, "cutkit %s: %s\n", command, msg);
    return 1;
}
