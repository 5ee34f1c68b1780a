/* hellaswag.c — HellaSwag files into harness-preprocessed items.
 *
 * The preprocessing is lm-evaluation-harness's (lm_eval/tasks/hellaswag/utils.py, the same
 * since harness 0.3): query = preprocess(activity_label + ": " + ctx_a + " " +
 * ctx_b.capitalize()), choices = preprocess(ending). The llama.cpp copy stores klosax's own
 * preprocessing of activity_label + ": " + ctx (ctx_b not capitalised, only four tag kinds
 * removed); the harness's preprocess is applied to it again, which removes the brackets that
 * copy kept, and what is lost stays lost (datasets/README.md). */
#include "datasets/hellaswag.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/jsonl.h"
#include "util/pystr.h"
#include "util/sha256.h"
#include "util/utf8.h"

#define HELLASWAG_MAX_BYTES ((size_t)1 << 30)

/* ---------------------------------------------------------------------------------------- */
/* the harness's preprocess */

/* Appends s[0..n) with every `from` replaced by `to`, left to right without overlaps (Python's
 * str.replace). */
static int replace_all(const char *s, size_t n, const char *from, const char *to, StrBuf *out) {
    size_t fn = strlen(from), tn = strlen(to);
    if (strbuf_reserve(out, n) || strbuf_put(out, "", 0)) return -1;
    for (size_t i = 0; i < n;) {
        if (i + fn <= n && memcmp(s + i, from, fn) == 0) {
            if (strbuf_put(out, to, tn)) return -1;
            i += fn;
        } else {
            size_t j = i + 1; /* copy up to the next possible match at once */
            while (j < n && s[j] != from[0]) j++;
            if (strbuf_put(out, s + i, j - i)) return -1;
            i = j;
        }
    }
    return 0;
}

/* Appends s[0..n) without the matches of the regex \[.*?\] ('.' is anything but '\n'): each
 * '[' up to the first ']' after it, unless a line break comes first. */
static int remove_brackets(const char *s, size_t n, StrBuf *out) {
    if (strbuf_reserve(out, n) || strbuf_put(out, "", 0)) return -1;
    for (size_t i = 0; i < n;) {
        if (s[i] == '[') {
            size_t k = i + 1;
            while (k < n && s[k] != ']' && s[k] != '\n') k++;
            if (k < n && s[k] == ']') {
                i = k + 1;
                continue;
            }
        }
        size_t j = i + 1;
        while (j < n && s[j] != '[') j++;
        if (strbuf_put(out, s + i, j - i)) return -1;
        i = j;
    }
    return 0;
}

int hellaswag_preprocess(const char *s, size_t n, StrBuf *out) {
    size_t a, len;
    pystr_strip(s, n, &a, &len);
    StrBuf titled = {0}, bare = {0};
    int rc = replace_all(s + a, len, " [title]", ". ", &titled) ||
             remove_brackets(titled.p, titled.n, &bare) ||
             replace_all(bare.p, bare.n, "  ", " ", out);
    strbuf_free(&titled);
    strbuf_free(&bare);
    return rc ? -1 : 0;
}

/* The preprocessed copy of s[0..n) (malloc'd), or NULL when out of memory. */
static char *preprocessed(const char *s, size_t n) {
    StrBuf b = {0};
    if (hellaswag_preprocess(s, n, &b)) {
        strbuf_free(&b);
        return NULL;
    }
    return strbuf_take(&b);
}

int hellaswag_context(const HellaswagItem *item, const HellaswagItem *const *shots, int n_shots,
                      StrBuf *out) {
    for (int i = 0; i < n_shots; i++)
        if (strbuf_puts(out, shots[i]->query) || strbuf_put(out, " ", 1) ||
            strbuf_puts(out, shots[i]->choices[shots[i]->gold]) || strbuf_put(out, "\n\n", 2))
            return -1;
    return strbuf_puts(out, item->query);
}

/* ---------------------------------------------------------------------------------------- */
/* items */

static void item_free(HellaswagItem *it) {
    free(it->id);
    free(it->query);
    for (int c = 0; c < HELLASWAG_N_ENDINGS; c++) free(it->choices[c]);
    memset(it, 0, sizeof *it);
}

void hellaswag_free(HellaswagSet *set) {
    if (!set) return;
    for (int i = 0; i < set->n; i++) item_free(&set->items[i]);
    free(set->items);
    memset(set, 0, sizeof *set);
}

/* Appends a zeroed item (NULL when out of memory). */
static HellaswagItem *push_item(HellaswagSet *set, int *cap) {
    if (set->n == *cap) {
        int ncap = *cap ? *cap * 2 : 1024;
        HellaswagItem *items = realloc(set->items, sizeof(HellaswagItem) * (size_t)ncap);
        if (!items) return NULL;
        set->items = items;
        *cap = ncap;
    }
    HellaswagItem *it = &set->items[set->n++];
    memset(it, 0, sizeof *it);
    return it;
}

/* ---------------------------------------------------------------------------------------- */
/* the canonical jsonl */

/* The string field `name` of rec, or NULL with err set. */
static const char *string_field(const cJSON *rec, const char *name, const char *source, long line,
                                CkError *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, name);
    if (!cJSON_IsString(v) || !v->valuestring) {
        ck_fail(err, "%s:%ld: %s: expected a string", source, line, name);
        return NULL;
    }
    if (!utf8_valid(v->valuestring, strlen(v->valuestring))) {
        ck_fail(err, "%s:%ld: %s: invalid UTF-8", source, line, name);
        return NULL;
    }
    return v->valuestring;
}

/* The label: an integer 0-3, or the same as a string (Hugging Face's copy). */
static int label_field(const cJSON *rec, const char *source, long line, CkError *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, "label");
    if (!v)
        return ck_fail(err, "%s:%ld: label: missing (the test split has no labels)", source, line);
    double x = -1;
    if (cJSON_IsNumber(v))
        x = v->valuedouble;
    else if (cJSON_IsString(v) && v->valuestring[0] >= '0' && v->valuestring[0] <= '3' &&
             !v->valuestring[1])
        x = v->valuestring[0] - '0';
    if (x != 0 && x != 1 && x != 2 && x != 3)
        return ck_fail(err, "%s:%ld: label: expected 0, 1, 2 or 3", source, line);
    return (int)x;
}

/* The harness's query of one record: preprocess(activity_label + ": " + ctx_a + " " +
 * ctx_b.capitalize()). */
static char *canonical_query(const char *label, const char *ctx_a, const char *ctx_b) {
    StrBuf raw = {0};
    char *q = NULL;
    if (strbuf_puts(&raw, label) == 0 && strbuf_puts(&raw, ": ") == 0 &&
        strbuf_puts(&raw, ctx_a) == 0 && strbuf_put(&raw, " ", 1) == 0 &&
        pystr_capitalize(ctx_b, strlen(ctx_b), &raw) == 0)
        q = preprocessed(raw.p, raw.n);
    strbuf_free(&raw);
    return q;
}

static int canonical_record(HellaswagItem *it, const cJSON *rec, int index, const char *source,
                            long line, CkError *err) {
    it->line = (int)line;
    const char *label = string_field(rec, "activity_label", source, line, err);
    const char *ctx_a = label ? string_field(rec, "ctx_a", source, line, err) : NULL;
    const char *ctx_b = ctx_a ? string_field(rec, "ctx_b", source, line, err) : NULL;
    if (!ctx_b) return -1;
    const cJSON *endings = cJSON_GetObjectItemCaseSensitive(rec, "endings");
    if (!cJSON_IsArray(endings) || cJSON_GetArraySize(endings) != HELLASWAG_N_ENDINGS)
        return ck_fail(err, "%s:%ld: endings: expected an array of 4 strings", source, line);
    if ((it->gold = label_field(rec, source, line, err)) < 0) return -1;
    const cJSON *ind = cJSON_GetObjectItemCaseSensitive(rec, "ind");
    char id[32];
    snprintf(id, sizeof id, "%d", cJSON_IsNumber(ind) ? (int)ind->valuedouble : index);
    if (!(it->id = strdup(id)) || !(it->query = canonical_query(label, ctx_a, ctx_b)))
        return ck_fail(err, "%s:%ld: out of memory", source, line);
    for (int c = 0; c < HELLASWAG_N_ENDINGS; c++) {
        const cJSON *e = cJSON_GetArrayItem(endings, c);
        if (!cJSON_IsString(e) || !e->valuestring ||
            !utf8_valid(e->valuestring, strlen(e->valuestring)))
            return ck_fail(err, "%s:%ld: endings[%d]: expected a UTF-8 string", source, line, c);
        if (!(it->choices[c] = preprocessed(e->valuestring, strlen(e->valuestring))))
            return ck_fail(err, "%s:%ld: out of memory", source, line);
    }
    return 0;
}

static int parse_canonical(HellaswagSet *set, const char *text, size_t len, const char *source,
                           CkError *err) {
    JsonlCursor cur;
    jsonl_init(&cur, text, len);
    int cap = 0;
    for (;;) {
        cJSON *rec = NULL;
        int got = jsonl_next_object(&cur, source, 0, &rec, err);
        if (got <= 0) return got;
        HellaswagItem *it = push_item(set, &cap);
        int rc = it ? canonical_record(it, rec, set->n - 1, source, cur.line, err)
                    : ck_fail(err, "%s:%ld: out of memory", source, cur.line);
        cJSON_Delete(rec);
        if (rc) return -1;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* llama.cpp's text: per task, the context line, the label line, the four endings */

/* Takes the next line of text (without its '\n' and a '\r' before it); returns 0 at the end. */
static int next_line(const char *text, size_t len, size_t *pos, const char **s, size_t *n) {
    if (*pos >= len) return 0;
    const char *nl = memchr(text + *pos, '\n', len - *pos);
    size_t end = nl ? (size_t)(nl - text) : len;
    *s = text + *pos;
    *n = end - *pos;
    if (*n && (*s)[*n - 1] == '\r') (*n)--;
    *pos = nl ? end + 1 : len;
    return 1;
}

static int llamacpp_task(HellaswagItem *it, const char *lines[6], const size_t lens[6], int index,
                         int first_line, const char *source, CkError *err) {
    it->line = first_line;
    for (int k = 0; k < 6; k++)
        if (!utf8_valid(lines[k], lens[k]))
            return ck_fail(err, "%s:%d: invalid UTF-8", source, first_line + k);
    if (lens[1] != 1 || lines[1][0] < '0' || lines[1][0] > '3')
        return ck_fail(err, "%s:%d: label: expected 0, 1, 2 or 3, found \"%.*s\"", source,
                       first_line + 1, lens[1] < 40 ? (int)lens[1] : 40, lines[1]);
    it->gold = lines[1][0] - '0';
    char id[32];
    snprintf(id, sizeof id, "%d", index);
    if (!(it->id = strdup(id)) || !(it->query = preprocessed(lines[0], lens[0])))
        return ck_fail(err, "%s: out of memory", source);
    for (int c = 0; c < HELLASWAG_N_ENDINGS; c++)
        if (!(it->choices[c] = preprocessed(lines[2 + c], lens[2 + c])))
            return ck_fail(err, "%s: out of memory", source);
    return 0;
}

static int parse_llamacpp(HellaswagSet *set, const char *text, size_t len, const char *source,
                          CkError *err) {
    size_t pos = 0;
    int cap = 0, line = 0;
    const char *lines[6];
    size_t lens[6];
    for (;;) {
        int k = 0;
        while (k < 6 && next_line(text, len, &pos, &lines[k], &lens[k])) k++;
        if (k == 0) return 0;
        if (k < 6)
            return ck_fail(err, "%s:%d: task %d has %d of its 6 lines (context, label, 4 endings)",
                           source, line + 1, set->n, k);
        HellaswagItem *it = push_item(set, &cap);
        if (!it) return ck_fail(err, "%s: out of memory", source);
        if (llamacpp_task(it, lines, lens, set->n - 1, line + 1, source, err)) return -1;
        line += 6;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* loading */

/* Fills the checksum fields, and the warning when the bytes are not the published file's. */
static void check_sha256(HellaswagSet *set, const char *text, size_t len, const char *source) {
    sha256_hex(text, len, set->sha256);
    const char *want = set->lossy ? HELLASWAG_LLAMACPP_SHA256 : HELLASWAG_VAL_SHA256;
    set->sha256_match = strcmp(set->sha256, want) == 0;
    set->warning[0] = '\0';
    if (!set->sha256_match)
        snprintf(set->warning, sizeof set->warning,
                 "%.80s: sha256 %.16s... is not the published %s's (%.16s...): scores may not "
                 "compare with published ones",
                 source, set->sha256,
                 set->lossy ? "hellaswag_val_full.txt (llama.cpp format)" : "hellaswag_val.jsonl",
                 want);
}

int hellaswag_parse(HellaswagSet *set, const char *text, size_t len, HellaswagFormat format,
                    const char *source, CkError *err) {
    memset(set, 0, sizeof *set);
    if (format == HELLASWAG_AUTO) {
        size_t i = 0;
        while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
            i++;
        format = i < len && text[i] == '{' ? HELLASWAG_CANONICAL : HELLASWAG_LLAMACPP;
    }
    set->format = format;
    set->lossy = format == HELLASWAG_LLAMACPP;
    set->task = set->lossy ? "hellaswag_llamacpp" : "hellaswag";
    int rc = set->lossy ? parse_llamacpp(set, text, len, source, err)
                        : parse_canonical(set, text, len, source, err);
    if (rc == 0 && set->n == 0) rc = ck_fail(err, "%s: no HellaSwag items", source);
    if (rc) {
        hellaswag_free(set);
        return -1;
    }
    check_sha256(set, text, len, source);
    return 0;
}

int hellaswag_load(HellaswagSet *set, const char *path, HellaswagFormat format, CkError *err) {
    memset(set, 0, sizeof *set);
    size_t size = 0;
    char *text = fileio_read_text(path, HELLASWAG_MAX_BYTES, &size, err);
    if (!text) return -1;
    int rc = hellaswag_parse(set, text, size, format, path, err);
    free(text);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* McDocs */

static int fill_doc(McDoc *d, const HellaswagItem *it) {
    d->line = it->line;
    d->gold = it->gold;
    d->choices = calloc(HELLASWAG_N_ENDINGS, sizeof(char *));
    d->labels = calloc(HELLASWAG_N_ENDINGS, sizeof(int));
    if (!d->choices || !d->labels) return -1;
    d->n_choices = HELLASWAG_N_ENDINGS; /* only now: benchmarks_free walks the choices */
    if (!(d->id = strdup(it->id)) || !(d->question = strdup(it->query))) return -1;
    for (int c = 0; c < HELLASWAG_N_ENDINGS; c++)
        if (!(d->choices[c] = strdup(it->choices[c]))) return -1;
    d->labels[it->gold] = 1;
    return 0;
}

int hellaswag_to_mc_docs(const HellaswagSet *set, McDocSet *out, CkError *err) {
    memset(out, 0, sizeof *out);
    if (set->n == 0) return 0;
    out->docs = calloc((size_t)set->n, sizeof(McDoc));
    if (!out->docs) return ck_fail(err, "out of memory");
    for (int i = 0; i < set->n; i++) {
        out->n = i + 1; /* so that benchmarks_free releases a half-filled doc too */
        if (fill_doc(&out->docs[i], &set->items[i])) {
            benchmarks_free(out);
            return ck_fail(err, "out of memory");
        }
    }
    return 0;
}
