/* detection.c — detection quality against known error spans: counts, scores, decisive
 * tokens. */
#include "analysis/detection.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "datasets/synth.h"
#include "train/cut.h"

void detection_counts_init(DetectionCounts *counts, const double *lambdas, int n) {
    for (int i = 0; i < n; i++) {
        memset(&counts[i], 0, sizeof counts[i]);
        counts[i].lambda = lambdas[i];
    }
}

void detection_counts_add(DetectionCounts *a, const DetectionCounts *b) {
    a->n_examples += b->n_examples;
    a->n_tokens += b->n_tokens;
    a->n_error_tokens += b->n_error_tokens;
    a->n_flagged += b->n_flagged;
    a->n_flagged_errors += b->n_flagged_errors;
    a->n_mentions += b->n_mentions;
    a->n_mentions_found += b->n_mentions_found;
    a->n_decisive += b->n_decisive;
    a->n_decisive_found += b->n_decisive_found;
    a->n_first += b->n_first;
    a->n_first_found += b->n_first_found;
}

static double ratio(long num, long den) {
    return den > 0 ? (double)num / (double)den : 0.0;
}

DetectionScores detection_scores(const DetectionCounts *c) {
    DetectionScores s;
    s.precision = ratio(c->n_flagged_errors, c->n_flagged);
    s.recall = ratio(c->n_flagged_errors, c->n_error_tokens);
    s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0;
    s.chance_precision = ratio(c->n_error_tokens, c->n_tokens);
    s.mention_recall = ratio(c->n_mentions_found, c->n_mentions);
    s.decisive_recall = ratio(c->n_decisive_found, c->n_decisive);
    s.first_mention_recall = ratio(c->n_first_found, c->n_first);
    s.flagged_fraction = ratio(c->n_flagged, c->n_tokens);
    return s;
}

static int overlaps(DetectionSpan t, DetectionSpan e) {
    return t.start < e.end && e.start < t.end;
}

/* Returns 1 when mention i of ex repeats no earlier mention's text (ignoring ASCII case). */
static int first_mention(const DetectionExample *ex, int i) {
    const DetectionSpan e = ex->errors[i];
    for (int j = 0; j < i; j++) {
        const DetectionSpan p = ex->errors[j];
        if (p.end - p.start == e.end - e.start &&
            !strncasecmp(ex->response + p.start, ex->response + e.start, (size_t)(e.end - e.start)))
            return 0;
    }
    return 1;
}

static int check_example(const DetectionExample *ex, CkError *err) {
    if (ex->n < 0 || ex->n_errors < 0)
        return ck_fail(err, "detection: negative counts (%d tokens, %d errors)", ex->n,
                       ex->n_errors);
    for (int k = 0; k < ex->n; k++) {
        const DetectionSpan t = ex->tokens[k];
        if (t.start < 0 || t.end < t.start || (k > 0 && t.start < ex->tokens[k - 1].end))
            return ck_fail(err, "detection: token %d has range [%d, %d), out of order or reversed",
                           k, t.start, t.end);
    }
    for (int i = 0; i < ex->n_errors; i++) {
        const DetectionSpan e = ex->errors[i];
        if (e.start < 0 || e.end <= e.start || (i > 0 && e.start < ex->errors[i - 1].end))
            return ck_fail(err,
                           "detection: error span %d [%d, %d) is empty, reversed or overlaps "
                           "the one before",
                           i, e.start, e.end);
        if (ex->response && (size_t)e.end > strlen(ex->response))
            return ck_fail(err, "detection: error span %d [%d, %d) runs past the response", i,
                           e.start, e.end);
        if (ex->decisive && (ex->decisive[i] < -1 || ex->decisive[i] >= ex->n))
            return ck_fail(err, "detection: decisive token %d of error span %d is out of range",
                           ex->decisive[i], i);
    }
    return 0;
}

int detection_accumulate(const DetectionExample *ex, DetectionCounts *counts, int n, CkError *err) {
    if (check_example(ex, err) != 0) return -1;
    unsigned char *is_err = calloc((size_t)(ex->n ? 2 * ex->n : 2), 1);
    if (!is_err) return ck_fail(err, "out of memory");
    unsigned char *flags = is_err + (ex->n ? ex->n : 1);
    /* error tokens: one sweep, since both lists are sorted */
    long n_err_tokens = 0;
    for (int k = 0, i = 0; k < ex->n; k++) {
        while (i < ex->n_errors && ex->errors[i].end <= ex->tokens[k].start) i++;
        for (int j = i; j < ex->n_errors && ex->errors[j].start < ex->tokens[k].end && !is_err[k];
             j++)
            is_err[k] = overlaps(ex->tokens[k], ex->errors[j]);
        n_err_tokens += is_err[k];
    }
    for (int l = 0; l < n; l++) {
        DetectionCounts *c = &counts[l];
        const CutDetectCounts dc = cut_detect(ex->log_pa, ex->log_pm, ex->n, c->lambda, flags);
        c->n_examples++;
        c->n_tokens += ex->n;
        c->n_error_tokens += n_err_tokens;
        c->n_flagged += dc.n_flagged;
        for (int k = 0; k < ex->n; k++) c->n_flagged_errors += flags[k] && is_err[k];
        for (int i = 0, k0 = 0; i < ex->n_errors; i++) {
            while (k0 < ex->n && ex->tokens[k0].end <= ex->errors[i].start) k0++;
            int found = 0;
            for (int k = k0; k < ex->n && ex->tokens[k].start < ex->errors[i].end && !found; k++)
                found = flags[k] && overlaps(ex->tokens[k], ex->errors[i]);
            c->n_mentions++;
            c->n_mentions_found += found;
            if (ex->response && first_mention(ex, i)) {
                c->n_first++;
                c->n_first_found += found;
            }
            if (ex->decisive && ex->decisive[i] >= 0) {
                c->n_decisive++;
                c->n_decisive_found += flags[ex->decisive[i]];
            }
        }
    }
    free(is_err);
    return 0;
}

/* ---- decisive tokens ---- */

/* Finds the counterpart end of a mention whose counterpart starts at cs in correct (length
 * clen), given the response text `after` (alen bytes) that follows the mention up to the next
 * mention (last: to the end). Returns -1 when there is none. */
static int counterpart_end(const char *correct, int clen, int cs, const char *after, int alen,
                           int last) {
    if (last) {
        const int e = clen - alen;
        return e > cs && !memcmp(correct + e, after, (size_t)alen) ? e : -1;
    }
    if (alen == 0) {
        int e = cs;
        while (e < clen && synth_is_word_byte((unsigned char)correct[e])) e++;
        return e > cs ? e : -1;
    }
    for (int e = cs + 1; e + alen <= clen; e++)
        if (!memcmp(correct + e, after, (size_t)alen)) return e;
    return -1;
}

int detection_decisive_tokens(const char *response, const int *ids, const DetectionSpan *tokens,
                              int n, const char *correct, const int *correct_ids,
                              const DetectionSpan *correct_tokens, int n_correct,
                              const DetectionSpan *errors, int n_errors, int *decisive) {
    const int rlen = (int)strlen(response), clen = (int)strlen(correct);
    int rpos = 0, cpos = 0, found = 0, mapped = 1;
    for (int i = 0; i < n_errors; i++) {
        decisive[i] = -1;
        const DetectionSpan e = errors[i];
        /* the common text before the mention */
        const int gap = e.start - rpos;
        if (!mapped || gap < 0 || e.end > rlen || cpos + gap > clen ||
            memcmp(response + rpos, correct + cpos, (size_t)gap) != 0) {
            mapped = 0;
            continue;
        }
        const int cs = cpos + gap;
        const int last = i + 1 == n_errors;
        const int next = last ? rlen : errors[i + 1].start;
        if (next < e.end) {
            mapped = 0;
            continue;
        }
        const int ce = counterpart_end(correct, clen, cs, response + e.end, next - e.end, last);
        if (ce < 0) {
            mapped = 0;
            continue;
        }
        rpos = e.end;
        cpos = ce;
        const DetectionSpan ce_span = {cs, ce};
        /* walk the two token lists side by side from the mention and its counterpart on, up
         * to the next mention: a wrong word that is a prefix of the right one ("ball" for
         * "balloon") is decided by the token after it */
        int r = 0, c = 0;
        while (r < n && !overlaps(tokens[r], e)) r++;
        while (c < n_correct && !overlaps(correct_tokens[c], ce_span)) c++;
        const int limit = last ? rlen + 1 : next; /* EOS (at rlen) decides "ball" at the end */
        for (; r < n && (tokens[r].start < limit || overlaps(tokens[r], e)); r++, c++) {
            if (c >= n_correct || ids[r] != correct_ids[c] ||
                tokens[r].start - e.start != correct_tokens[c].start - cs) {
                decisive[i] = r;
                found++;
                break;
            }
        }
    }
    return found;
}
