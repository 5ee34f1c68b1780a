/* results.c — results.json pieces and the items.jsonl records (see results.h). Doubles are
 * printed by cJSON with enough digits to read back exactly, so a resumed run computes its
 * metrics from the same numbers as an uninterrupted one. */
#include "eval/results.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"

void results_add_metric(cJSON *obj, const char *name, double value, double stderr_) {
    char key[96];
    snprintf(key, sizeof key, "%s,none", name);
    if (isfinite(value))
        cJSON_AddNumberToObject(obj, key, value);
    else
        cJSON_AddNullToObject(obj, key);
    snprintf(key, sizeof key, "%s_stderr,none", name);
    if (isfinite(stderr_))
        cJSON_AddNumberToObject(obj, key, stderr_);
    else
        cJSON_AddNullToObject(obj, key);
}

int results_write_json(const char *path, const cJSON *root, CkError *err) {
    char *text = cJSON_Print(root);
    if (!text) return ck_fail(err, "%s: out of memory", path);
    size_t n = strlen(text);
    char *buf = realloc(text, n + 2);
    if (!buf) {
        free(text);
        return ck_fail(err, "%s: out of memory", path);
    }
    buf[n] = '\n';
    buf[n + 1] = '\0';
    int rc = fileio_write_atomic(path, buf, n + 1, err);
    free(buf);
    return rc;
}

static cJSON *int_array(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

cJSON *results_mc_item_json(const char *task, const McItem *item, const McItemResult *r,
                            uint64_t fingerprint) {
    char fp[20];
    snprintf(fp, sizeof fp, "%016" PRIx64, fingerprint);
    McItemScores sc;
    mc_item_scores(r, &sc);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task", task);
    cJSON_AddNumberToObject(o, "doc_index", r->doc_index);
    cJSON_AddStringToObject(o, "doc_id", item ? item->doc->id : "");
    cJSON_AddStringToObject(o, "fingerprint", fp);
    cJSON_AddNumberToObject(o, "gold", r->gold);
    cJSON_AddNumberToObject(o, "chosen", mc_argmax(r->ll, r->n_choices));
    cJSON_AddNumberToObject(o, "acc", sc.acc);
    cJSON_AddNumberToObject(o, "acc_norm", sc.acc_norm);
    cJSON_AddNumberToObject(o, "mc2", sc.mc2);
    cJSON_AddNumberToObject(o, "context_tokens", r->n_ctx_tokens);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    for (int i = 0; i < r->n_choices; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "index", i);
        cJSON_AddNumberToObject(c, "label", r->labels[i]);
        cJSON_AddNumberToObject(c, "ll", r->ll[i]);
        cJSON_AddBoolToObject(c, "is_greedy", r->is_greedy[i]);
        cJSON_AddNumberToObject(c, "tokens_n", r->n_tokens[i]);
        cJSON_AddNumberToObject(c, "chars", r->n_chars[i]);
        cJSON_AddNumberToObject(c, "bytes", r->n_bytes[i]);
        cJSON_AddBoolToObject(c, "fallback", r->fallback[i]);
        cJSON_AddNumberToObject(c, "truncated", r->truncated[i]);
        cJSON_AddItemToObject(c, "tokens",
                              int_array(r->cont_tokens + r->cont_offsets[i],
                                        r->cont_offsets[i + 1] - r->cont_offsets[i]));
        cJSON_AddItemToArray(choices, c);
    }
    return o;
}

/* An integer field of o, or a failure naming it. */
static int get_int(const cJSON *o, const char *name, int *out, const char *where,
                   const char *prefix, CkError *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return ck_fail(err, "%s: %s%s: expected an integer", where, prefix, name);
    *out = (int)v->valuedouble;
    return 0;
}

int results_mc_item_parse(const cJSON *rec, const char **task, uint64_t *fingerprint,
                          McItemResult *r, const char *where, CkError *err) {
    memset(r, 0, sizeof *r);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rec, "task");
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(rec, "fingerprint");
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(rec, "choices");
    if (!cJSON_IsString(t)) return ck_fail(err, "%s: task: expected a string", where);
    if (!cJSON_IsString(fp) || sscanf(fp->valuestring, "%" SCNx64, fingerprint) != 1)
        return ck_fail(err, "%s: fingerprint: expected a hex string", where);
    int n = cJSON_IsArray(choices) ? cJSON_GetArraySize(choices) : 0;
    if (n < 1) return ck_fail(err, "%s: choices: expected a non-empty array", where);
    *task = t->valuestring;
    int total = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, choices) {
        const cJSON *toks = cJSON_GetObjectItemCaseSensitive(c, "tokens");
        if (!cJSON_IsArray(toks))
            return ck_fail(err, "%s: choices[].tokens: expected an array", where);
        total += cJSON_GetArraySize(toks);
    }
    if (mc_item_result_alloc(r, n, total, err) != 0) return -1;
    int rc = 0;
    rc |= get_int(rec, "doc_index", &r->doc_index, where, "", err);
    if (!rc) rc |= get_int(rec, "gold", &r->gold, where, "", err);
    if (!rc) rc |= get_int(rec, "context_tokens", &r->n_ctx_tokens, where, "", err);
    int i = 0;
    cJSON_ArrayForEach(c, choices) {
        if (rc) break;
        char prefix[32];
        snprintf(prefix, sizeof prefix, "choices[%d].", i);
        const cJSON *ll = cJSON_GetObjectItemCaseSensitive(c, "ll");
        if (!cJSON_IsNumber(ll)) {
            rc = ck_fail(err, "%s: %sll: expected a number", where, prefix);
            break;
        }
        r->ll[i] = ll->valuedouble;
        rc |= get_int(c, "label", &r->labels[i], where, prefix, err);
        if (!rc) rc |= get_int(c, "tokens_n", &r->n_tokens[i], where, prefix, err);
        if (!rc) rc |= get_int(c, "chars", &r->n_chars[i], where, prefix, err);
        if (!rc) rc |= get_int(c, "bytes", &r->n_bytes[i], where, prefix, err);
        if (!rc) rc |= get_int(c, "is_greedy", &r->is_greedy[i], where, prefix, err);
        if (!rc) rc |= get_int(c, "fallback", &r->fallback[i], where, prefix, err);
        if (!rc) rc |= get_int(c, "truncated", &r->truncated[i], where, prefix, err);
        const cJSON *toks = cJSON_GetObjectItemCaseSensitive(c, "tokens"), *tk;
        r->cont_offsets[i + 1] = r->cont_offsets[i] + cJSON_GetArraySize(toks);
        int j = r->cont_offsets[i];
        cJSON_ArrayForEach(tk, toks) r->cont_tokens[j++] = (int)tk->valuedouble;
        i++;
    }
    if (!rc && (r->gold < 0 || r->gold >= n))
        rc = ck_fail(err, "%s: gold: %d is not a choice index", where, r->gold);
    if (rc) mc_item_result_free(r);
    return rc ? -1 : 0;
}
