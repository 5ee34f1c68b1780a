/* judge.c — AlpacaEval's pairwise protocol around any judge: draws for identical outputs,
 * seeded order switching with the flip back, both orders, failures kept as missing. */
#include "eval/judge.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"
#include "util/utf8.h"

static uint64_t splitmix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int judge_is_switched(const char *instruction, uint64_t seed) {
    /* FNV-1a over a fixed prefix and the instruction bytes, then mixed with the seed: the
     * prefix keeps this stream apart from other per-instruction hashes */
    static const char PREFIX[] = "is_switched_outputs";
    uint64_t h = hash_fnv1a64(HASH_FNV1A64_OFFSET, PREFIX, sizeof PREFIX - 1);
    h = hash_fnv1a64(h, instruction, strlen(instruction));
    return (int)(splitmix64(h ^ splitmix64(seed)) & 1);
}

void judge_close(Judge *j) {
    if (j->close && j->ctx) j->close(j->ctx);
    j->ctx = NULL;
    j->close = NULL;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Runs the judge on one order; a preference outside [1, 2] is the judge's failure too. */
static int run_once(const Judge *j, const char *instruction, const char *first, const char *second,
                    double *pref, char **raw, CkError *err) {
    *raw = NULL;
    if (j->judge(j->ctx, instruction, first, second, pref, raw, err) != 0) return -1;
    if (!(*pref >= 1 && *pref <= 2))
        return ck_fail(err, "the judge returned preference %g, outside [1, 2]", *pref);
    return 0;
}

/* a->error = "judge NAME: why", made valid UTF-8 (why may quote a command's stderr, or be cut
 * inside a character), as annotations.json must be. */
static int set_error(Annotation *a, const Judge *j, const CkError *e) {
    StrBuf b = {0};
    if (strbuf_printf(&b, "judge %s: ", j->name) != 0 ||
        utf8_put_lossy(&b, e->msg, strlen(e->msg)) != 0) {
        strbuf_free(&b);
        return -1;
    }
    a->error = strbuf_take(&b);
    return a->error ? 0 : -1;
}

int judge_annotate(const Judge *j, const JudgeOptions *opt, Annotation *a, CkError *err) {
    free(a->raw_completion), free(a->error), free(a->annotator);
    a->raw_completion = a->error = NULL;
    a->preference = NAN;
    a->is_switched = 0;
    a->annotator = dup_str(j->name);
    if (!a->annotator) return ck_fail(err, "out of memory");
    const char *o1 = a->output_1 ? a->output_1 : "", *o2 = a->output_2 ? a->output_2 : "";
    if (strcmp(o1, o2) == 0) { /* AlpacaEval: identical outputs are a draw, unjudged */
        a->preference = 1.5;
        return 0;
    }
    CkError e = {{0}};
    if (opt->both_orders) {
        double p1, p2;
        char *r1 = NULL, *r2 = NULL;
        int ok = run_once(j, a->instruction, o1, o2, &p1, &r1, &e) == 0 &&
                 run_once(j, a->instruction, o2, o1, &p2, &r2, &e) == 0;
        if (ok) {
            a->preference = (p1 + (3 - p2)) / 2;
            size_t n = (r1 ? strlen(r1) : 4) + (r2 ? strlen(r2) : 4) + 160;
            a->raw_completion = malloc(n);
            if (a->raw_completion)
                snprintf(a->raw_completion, n,
                         "{\"both_orders\":true,\"preference_given_order\":%.17g,"
                         "\"preference_switched_order\":%.17g,\"given_order\":%s,"
                         "\"switched_order\":%s}",
                         p1, p2, r1 ? r1 : "null", r2 ? r2 : "null");
        }
        free(r1);
        free(r2);
        if (ok && !a->raw_completion) return ck_fail(err, "out of memory");
        if (!ok && set_error(a, j, &e) != 0) return ck_fail(err, "out of memory");
        return 0;
    }
    a->is_switched = opt->randomize ? judge_is_switched(a->instruction, opt->seed) : 0;
    double p;
    char *raw = NULL;
    if (run_once(j, a->instruction, a->is_switched ? o2 : o1, a->is_switched ? o1 : o2, &p, &raw,
                 &e) != 0) {
        free(raw);
        if (set_error(a, j, &e) != 0) return ck_fail(err, "out of memory");
        return 0;
    }
    a->preference = a->is_switched ? 3 - p : p; /* back to output_1 = baseline */
    a->raw_completion = raw;
    return 0;
}
