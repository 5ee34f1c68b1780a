/* known_errors.c — "error_spans" and "correct_output" of judgment records, and one example's
 * detection inputs. */
#include "analysis/known_errors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/jsonl.h"

void known_errors_free(KnownErrorSet *ks) {
    for (int i = 0; ks->records && i < ks->n; i++) {
        free(ks->records[i].errors);
        free(ks->records[i].correct);
    }
    free(ks->records);
    memset(ks, 0, sizeof *ks);
}

/* Reads the fields of one record object into k; output is the record's response (the spans
 * must lie inside it). where prefixes messages. */
static int parse_known(const cJSON *obj, const char *output, const char *where, KnownErrors *k,
                       CkError *err) {
    const cJSON *spans = cJSON_GetObjectItemCaseSensitive(obj, "error_spans");
    const cJSON *correct = cJSON_GetObjectItemCaseSensitive(obj, "correct_output");
    if (correct && !cJSON_IsNull(correct)) {
        if (!cJSON_IsString(correct))
            return ck_fail(err, "%s: field \"correct_output\" must be a string", where);
        k->correct = strdup(correct->valuestring);
        if (!k->correct) return ck_fail(err, "out of memory");
    }
    if (!spans || cJSON_IsNull(spans)) return 0;
    if (!cJSON_IsArray(spans))
        return ck_fail(err, "%s: field \"error_spans\" must be an array of [start, end] pairs",
                       where);
    const int n = cJSON_GetArraySize(spans);
    const long len = (long)strlen(output);
    k->has_spans = 1;
    k->errors = malloc(sizeof(DetectionSpan) * (size_t)(n > 0 ? n : 1));
    if (!k->errors) return ck_fail(err, "out of memory");
    int i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, spans) {
        const cJSON *a = cJSON_GetArrayItem(s, 0), *b = cJSON_GetArrayItem(s, 1);
        if (!cJSON_IsArray(s) || cJSON_GetArraySize(s) != 2 || !cJSON_IsNumber(a) ||
            !cJSON_IsNumber(b) || a->valuedouble != floor(a->valuedouble) ||
            b->valuedouble != floor(b->valuedouble))
            return ck_fail(err,
                           "%s: field \"error_spans\", span %d: expected [start, end] integers",
                           where, i);
        const double start = a->valuedouble, end = b->valuedouble;
        if (start < 0 || end <= start || end > (double)len)
            return ck_fail(err,
                           "%s: field \"error_spans\", span %d: [%.0f, %.0f] is empty, reversed or "
                           "outside the output (%ld bytes)",
                           where, i, start, end, len);
        if (i > 0 && start < k->errors[i - 1].end)
            return ck_fail(err, "%s: field \"error_spans\", span %d: overlaps or precedes span %d",
                           where, i, i - 1);
        k->errors[i++] = (DetectionSpan){(int)start, (int)end};
    }
    k->n_errors = i;
    return 0;
}

/* Index of the record with source_index idx in s (records are in file order), from *cursor on. */
static int record_at(const JudgmentSet *s, int idx, int *cursor) {
    while (*cursor < s->n && s->records[*cursor].source_index < idx) (*cursor)++;
    return *cursor < s->n && s->records[*cursor].source_index == idx ? *cursor : -1;
}

/* One record's object: its fields into ks->records[r], counting spans. */
static int take(KnownErrorSet *ks, const JudgmentSet *s, int r, const cJSON *obj, const char *where,
                CkError *err) {
    KnownErrors *k = &ks->records[r];
    if (parse_known(obj, s->records[r].output, where, k, err) != 0) return -1;
    ks->n_with_spans += k->has_spans;
    return 0;
}

static int load_jsonl(KnownErrorSet *ks, const JudgmentSet *s, const char *path, const char *text,
                      size_t len, CkError *err) {
    /* lines are counted exactly as judgments_load counts them (the same cursor) */
    JsonlCursor cur;
    jsonl_init(&cur, text, len);
    const char *line;
    size_t n;
    int cursor = 0, rc = 0;
    while (rc == 0 && jsonl_next_line(&cur, &line, &n)) {
        const int r = record_at(s, (int)cur.line - 1, &cursor);
        if (r < 0) continue;
        char where[600];
        snprintf(where, sizeof where, "%s:%ld", path, cur.line);
        cJSON *obj = cJSON_ParseWithLength(line, n);
        rc = obj ? take(ks, s, r, obj, where, err) : ck_fail(err, "%s: invalid JSON", where);
        cJSON_Delete(obj);
    }
    return rc;
}

static int load_array(KnownErrorSet *ks, const JudgmentSet *s, const char *path, const char *text,
                      CkError *err) {
    cJSON *root = cJSON_Parse(text);
    if (!cJSON_IsArray(root)) {
        cJSON_Delete(root);
        return ck_fail(err, "%s: expected a JSON array of records", path);
    }
    int cursor = 0, index = 0, rc = 0;
    for (const cJSON *item = root->child; rc == 0 && item; item = item->next, index++) {
        const int r = record_at(s, index, &cursor);
        if (r < 0) continue;
        char where[600];
        snprintf(where, sizeof where, "%s: record %d", path, index);
        rc = take(ks, s, r, item, where, err);
    }
    cJSON_Delete(root);
    return rc;
}

int known_errors_load(KnownErrorSet *ks, const char *path, JudgmentFormat fmt, const JudgmentSet *s,
                      CkError *err) {
    memset(ks, 0, sizeof *ks);
    ks->records = calloc((size_t)(s->n > 0 ? s->n : 1), sizeof(KnownErrors));
    if (!ks->records) return ck_fail(err, "out of memory");
    ks->n = s->n;
    if (fmt == JUDGMENTS_SHEPHERD || s->n == 0) return 0; /* Shepherd has no such fields */
    size_t len = 0;
    char *text = fileio_read_text(path, (size_t)1 << 31, &len, err);
    if (!text) {
        known_errors_free(ks);
        return -1;
    }
    int rc = fmt == JUDGMENTS_JSONL ? load_jsonl(ks, s, path, text, len, err)
                                    : load_array(ks, s, path, text, err);
    free(text);
    if (rc != 0) known_errors_free(ks);
    return rc;
}

void known_errors_example_free(KnownErrorsExample *e) {
    free(e->log_pa);
    free(e->log_pm);
    free(e->tokens);
    free(e->decisive);
    memset(e, 0, sizeof *e);
}

/* The decisive tokens of the mentions of k into out->decisive, or leaves it NULL when the
 * correct response's token ranges are not exact (the definition compares byte offsets). */
static int find_decisive(const KnownErrors *k, const JudgmentRecord *r, const TokenContrast *c,
                         const Tokenizer *tok, const Template *tpl, int cutoff,
                         KnownErrorsExample *out, CkError *err) {
    JudgmentRecord jc = *r;
    jc.output = k->correct;
    jc.judgment = NULL; /* a positive: the plain prompt, as the Misalign sequence has */
    jc.has_score = 0;
    CutExample cex;
    if (judgments_build_example(tpl, &jc, tok, cutoff, &cex, err) != 0)
        return ck_wrap(err, "correct_output");
    const int n = c->n, nc = cex.n_response;
    int *ids = malloc(sizeof(int) * (size_t)(n ? n : 1));
    int *cids = malloc(sizeof(int) * (size_t)(nc ? nc : 1));
    int *cs = malloc(sizeof(int) * 2 * (size_t)(nc ? nc : 1));
    DetectionSpan *ctoks = malloc(sizeof(DetectionSpan) * (size_t)(nc ? nc : 1));
    int *decisive = malloc(sizeof(int) * (size_t)(k->n_errors ? k->n_errors : 1));
    int rc = 0;
    if (!ids || !cids || !cs || !ctoks || !decisive) rc = ck_fail(err, "out of memory");
    if (rc == 0 && token_contrast_spans(tok, &cex.a, k->correct, cs, cs + nc)) {
        for (int t = 0; t < n; t++) ids[t] = c->tokens[t].token;
        for (int t = 0; t < nc; t++) {
            cids[t] = cex.a.tokens[cex.a.n - nc + t];
            ctoks[t] = (DetectionSpan){cs[t], cs[nc + t]};
        }
        out->n_decisive =
            detection_decisive_tokens(r->output, ids, out->tokens, n, k->correct, cids, ctoks, nc,
                                      k->errors, k->n_errors, decisive);
        out->decisive = decisive;
        decisive = NULL;
    }
    free(ids);
    free(cids);
    free(cs);
    free(ctoks);
    free(decisive);
    judgments_example_free(&cex);
    return rc;
}

int known_errors_example(const KnownErrors *k, const JudgmentRecord *r, const TokenContrast *c,
                         const Tokenizer *tok, const Template *tpl, int cutoff,
                         KnownErrorsExample *out, CkError *err) {
    memset(out, 0, sizeof *out);
    if (!k->has_spans) return ck_fail(err, "the record has no error_spans");
    if (!c->negative) return ck_fail(err, "detection needs a negative example (log pM)");
    const int n = c->n;
    out->log_pa = malloc(sizeof(double) * (size_t)(n ? n : 1));
    out->log_pm = malloc(sizeof(double) * (size_t)(n ? n : 1));
    out->tokens = malloc(sizeof(DetectionSpan) * (size_t)(n ? n : 1));
    if (!out->log_pa || !out->log_pm || !out->tokens) {
        known_errors_example_free(out);
        return ck_fail(err, "out of memory");
    }
    for (int t = 0; t < n; t++) {
        out->log_pa[t] = c->tokens[t].log_pa;
        out->log_pm[t] = c->tokens[t].log_pm;
        out->tokens[t] = (DetectionSpan){c->tokens[t].start, c->tokens[t].end};
    }
    if (k->correct && c->spans_exact && find_decisive(k, r, c, tok, tpl, cutoff, out, err) != 0) {
        known_errors_example_free(out);
        return -1;
    }
    out->ex = (DetectionExample){n,           out->log_pa, out->log_pm,   out->tokens,
                                 k->n_errors, k->errors,   out->decisive, r->output};
    return 0;
}
