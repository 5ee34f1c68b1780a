/* benchmarks.c — ARC JSONL and TruthfulQA mc_task.json into McDoc records.
 *
 * mc_task.json is one JSON array spread over thousands of lines, and cJSON keeps no source
 * positions; so a small scanner first finds where each array element starts and ends, and each
 * element is parsed on its own. That gives every message the element's line, and the line of
 * the field inside it. */
#include "datasets/benchmarks.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/jsonl.h"
#include "util/utf8.h"

#define BENCHMARKS_MAX_BYTES ((size_t)1 << 30)

/* ---------------------------------------------------------------------------------------- */
/* records */

static void doc_free(McDoc *d) {
    free(d->id);
    free(d->question);
    for (int i = 0; i < d->n_choices; i++) free(d->choices[i]);
    free(d->choices);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

void benchmarks_free(McDocSet *set) {
    if (!set) return;
    for (int i = 0; i < set->n; i++) doc_free(&set->docs[i]);
    free(set->docs);
    memset(set, 0, sizeof *set);
}

/* Appends a zeroed doc to set and returns it (NULL when out of memory). */
static McDoc *set_push(McDocSet *set, int *cap) {
    if (set->n == *cap) {
        int ncap = *cap ? *cap * 2 : 256;
        McDoc *nd = realloc(set->docs, sizeof(McDoc) * (size_t)ncap);
        if (!nd) return NULL;
        set->docs = nd;
        *cap = ncap;
    }
    McDoc *d = &set->docs[set->n++];
    memset(d, 0, sizeof *d);
    return d;
}

/* Copies a JSON string item into *out; fails naming the field when it is not a valid UTF-8
 * string. */
static int take_string(const cJSON *item, char **out, const char *source, int line,
                       const char *field, CkError *err) {
    if (!cJSON_IsString(item) || !item->valuestring)
        return ck_fail(err, "%s:%d: %s: expected a string", source, line, field);
    if (!utf8_valid(item->valuestring, strlen(item->valuestring)))
        return ck_fail(err, "%s:%d: %s: invalid UTF-8", source, line, field);
    *out = strdup(item->valuestring);
    return *out ? 0 : ck_fail(err, "%s:%d: out of memory", source, line);
}

/* ---------------------------------------------------------------------------------------- */
/* ARC */

static int arc_record(McDoc *d, const cJSON *rec, const char *source, int line, CkError *err) {
    char field[64];
    d->line = line;
    if (!cJSON_IsObject(rec)) return ck_fail(err, "%s:%d: expected a JSON object", source, line);
    if (take_string(cJSON_GetObjectItemCaseSensitive(rec, "id"), &d->id, source, line, "id", err))
        return -1;
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(rec, "question");
    if (!cJSON_IsObject(q))
        return ck_fail(err, "%s:%d: question: expected an object with \"stem\" and \"choices\"",
                       source, line);
    if (take_string(cJSON_GetObjectItemCaseSensitive(q, "stem"), &d->question, source, line,
                    "question.stem", err))
        return -1;
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(q, "choices");
    int n = cJSON_IsArray(choices) ? cJSON_GetArraySize(choices) : 0;
    if (n < 2)
        return ck_fail(err, "%s:%d: question.choices: expected an array of at least 2 choices",
                       source, line);
    d->choices = calloc((size_t)n, sizeof(char *));
    d->labels = calloc((size_t)n, sizeof(int));
    char **labels = calloc((size_t)n, sizeof(char *));
    if (!d->choices || !d->labels || !labels) {
        free(labels);
        return ck_fail(err, "%s:%d: out of memory", source, line);
    }
    int rc = 0;
    const cJSON *c;
    int i = 0;
    cJSON_ArrayForEach(c, choices) {
        d->n_choices = i + 1;
        snprintf(field, sizeof field, "question.choices[%d]", i);
        if (!cJSON_IsObject(c)) {
            rc = ck_fail(err, "%s:%d: %s: expected an object with \"text\" and \"label\"", source,
                         line, field);
            break;
        }
        snprintf(field, sizeof field, "question.choices[%d].text", i);
        if ((rc = take_string(cJSON_GetObjectItemCaseSensitive(c, "text"), &d->choices[i], source,
                              line, field, err)) != 0)
            break;
        snprintf(field, sizeof field, "question.choices[%d].label", i);
        if ((rc = take_string(cJSON_GetObjectItemCaseSensitive(c, "label"), &labels[i], source,
                              line, field, err)) != 0)
            break;
        for (int j = 0; j < i && rc == 0; j++)
            if (strcmp(labels[j], labels[i]) == 0)
                rc = ck_fail(err, "%s:%d: %s: label \"%s\" repeats choice %d's", source, line,
                             field, labels[i], j);
        if (rc) break;
        i++;
    }
    if (rc == 0) {
        const cJSON *key = cJSON_GetObjectItemCaseSensitive(rec, "answerKey");
        if (!cJSON_IsString(key)) {
            rc = ck_fail(err, "%s:%d: answerKey: expected a string", source, line);
        } else {
            d->gold = -1;
            for (int j = 0; j < n; j++)
                if (strcmp(labels[j], key->valuestring) == 0) d->gold = j;
            if (d->gold < 0)
                rc = ck_fail(err, "%s:%d: answerKey: \"%s\" is not the label of any choice", source,
                             line, key->valuestring);
            else
                d->labels[d->gold] = 1;
        }
    }
    for (int j = 0; j < n; j++) free(labels[j]);
    free(labels);
    return rc;
}

int benchmarks_parse_arc(McDocSet *set, const char *text, size_t len, const char *source,
                         CkError *err) {
    memset(set, 0, sizeof *set);
    int cap = 0;
    JsonlCursor cur;
    jsonl_init(&cur, text, len);
    const char *s;
    size_t n;
    while (jsonl_next_line(&cur, &s, &n)) {
        /* columns in messages count from the first non-blank byte */
        while (n && (*s == ' ' || *s == '\t' || *s == '\r')) s++, n--;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
        const int line = (int)cur.line;
        const char *parse_end = NULL;
        cJSON *rec = cJSON_ParseWithLengthOpts(s, n, &parse_end, 0);
        if (!rec) {
            benchmarks_free(set);
            return ck_fail(err, "%s:%d: not valid JSON (column %d)", source, line,
                           parse_end ? (int)(parse_end - s) + 1 : 1);
        }
        McDoc *d = set_push(set, &cap);
        int rc = d ? arc_record(d, rec, source, line, err) : ck_fail(err, "out of memory");
        cJSON_Delete(rec);
        if (rc) {
            benchmarks_free(set);
            return -1;
        }
    }
    if (set->n == 0) return ck_fail(err, "%s: no records", source);
    return 0;
}

int benchmarks_load_arc(McDocSet *set, const char *path, CkError *err) {
    size_t size = 0;
    memset(set, 0, sizeof *set);
    char *text = fileio_read_text(path, BENCHMARKS_MAX_BYTES, &size, err);
    if (!text) return -1;
    int rc = benchmarks_parse_arc(set, text, size, path, err);
    free(text);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* TruthfulQA */

/* Finds lines by offset. Lookups mostly move forward through the file, so it counts on from
 * the previous answer (from the start when asked about an earlier offset). */
typedef struct {
    const char *text;
    size_t off;
    int line;
} LineCursor;

/* The 1-based line of text[off]. */
static int line_at(LineCursor *c, size_t off) {
    if (off < c->off) {
        c->off = 0;
        c->line = 1;
    }
    for (; c->off < off; c->off++)
        if (c->text[c->off] == '\n') c->line++;
    return c->line;
}

/* Skips one JSON value starting at text[*pos] (strings, nesting), leaving *pos after it;
 * returns 0, or -1 when the text ends inside it or holds an unbalanced bracket. This only
 * finds the element boundaries; cJSON judges the contents. */
static int skip_value(const char *text, size_t len, size_t *pos) {
    int depth = 0;
    size_t i = *pos;
    do {
        if (i >= len) return -1;
        char ch = text[i];
        if (ch == '"') {
            for (i++; i < len && text[i] != '"'; i++)
                if (text[i] == '\\') i++;
            if (i >= len) return -1;
        } else if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            if (--depth < 0) return -1;
        } else if (depth == 0) {
            /* a scalar at the top: up to the next delimiter */
            while (i + 1 < len && !strchr(",]} \t\r\n", text[i + 1])) i++;
        }
        i++;
    } while (depth > 0);
    *pos = i;
    return 0;
}

static size_t skip_ws(const char *text, size_t len, size_t i) {
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
        i++;
    return i;
}

/* The line of `"key"` inside text[a..b), or `fallback` when it is not there. */
static int key_line(LineCursor *lc, size_t a, size_t b, const char *key, int fallback) {
    const char *text = lc->text;
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    size_t n = strlen(pat);
    for (size_t i = a; i + n <= b; i++)
        if (memcmp(text + i, pat, n) == 0) return line_at(lc, i);
    return fallback;
}

static int tqa_record(McDoc *d, const cJSON *rec, int index, TqaTargets which, LineCursor *lc,
                      size_t a, size_t b, const char *source, CkError *err) {
    int line = line_at(lc, a);
    char id[32];
    d->line = line;
    snprintf(id, sizeof id, "tqa-%d", index);
    if (!(d->id = strdup(id))) return ck_fail(err, "out of memory");
    if (!cJSON_IsObject(rec))
        return ck_fail(err, "%s:%d: record %d: expected a JSON object", source, line, index);
    int qline = key_line(lc, a, b, "question", line);
    if (take_string(cJSON_GetObjectItemCaseSensitive(rec, "question"), &d->question, source, qline,
                    "question", err))
        return -1;
    const char *field = which == TQA_MC1 ? "mc1_targets" : "mc2_targets";
    int fline = key_line(lc, a, b, field, line);
    const cJSON *targets = cJSON_GetObjectItemCaseSensitive(rec, field);
    int n = cJSON_IsObject(targets) ? cJSON_GetArraySize(targets) : 0;
    if (n < 2)
        return ck_fail(err, "%s:%d: %s: expected an object of at least 2 answers: 0|1", source,
                       fline, field);
    d->choices = calloc((size_t)n, sizeof(char *));
    d->labels = calloc((size_t)n, sizeof(int));
    if (!d->choices || !d->labels) return ck_fail(err, "out of memory");
    const cJSON *t;
    cJSON_ArrayForEach(t, targets) {
        if (!cJSON_IsNumber(t) || (t->valuedouble != 0 && t->valuedouble != 1))
            return ck_fail(err, "%s:%d: %s[\"%.60s\"]: expected 0 or 1", source, fline, field,
                           t->string ? t->string : "");
        if (!t->string || !utf8_valid(t->string, strlen(t->string)))
            return ck_fail(err, "%s:%d: %s: an answer is not valid UTF-8", source, fline, field);
        int j = 0;
        while (j < d->n_choices && strcmp(d->choices[j], t->string) != 0) j++;
        if (j == d->n_choices) { /* a repeated key keeps its place and takes the last value */
            if (!(d->choices[j] = strdup(t->string))) return ck_fail(err, "out of memory");
            d->n_choices++;
        }
        d->labels[j] = (int)t->valuedouble;
    }
    int n_true = 0;
    d->gold = -1;
    for (int j = 0; j < d->n_choices; j++)
        if (d->labels[j]) {
            n_true++;
            if (d->gold < 0) d->gold = j;
        }
    if (n_true == 0 || (which == TQA_MC1 && n_true != 1))
        return ck_fail(err, "%s:%d: %s: %d true answers; %s needs %s", source, fline, field, n_true,
                       field, which == TQA_MC1 ? "exactly one" : "at least one");
    if (d->n_choices < 2)
        return ck_fail(err, "%s:%d: %s: fewer than 2 distinct answers", source, fline, field);
    return 0;
}

int benchmarks_parse_truthfulqa(McDocSet *set, const char *text, size_t len, TqaTargets which,
                                const char *source, CkError *err) {
    memset(set, 0, sizeof *set);
    int cap = 0;
    LineCursor lc = {text, 0, 1};
    size_t i = skip_ws(text, len, 0);
    if (i >= len || text[i] != '[')
        return ck_fail(err, "%s:%d: expected a JSON array of questions", source,
                       line_at(&lc, i < len ? i : len));
    i = skip_ws(text, len, i + 1);
    if (i < len && text[i] == ']') return ck_fail(err, "%s: no records", source);
    for (int index = 0;; index++) {
        size_t a = i;
        if (skip_value(text, len, &i) != 0) {
            benchmarks_free(set);
            return ck_fail(err, "%s:%d: record %d: unterminated or unbalanced JSON", source,
                           line_at(&lc, a), index);
        }
        const char *parse_end = NULL;
        cJSON *rec = cJSON_ParseWithLengthOpts(text + a, i - a, &parse_end, 0);
        if (!rec) {
            size_t at = parse_end ? (size_t)(parse_end - text) : a;
            benchmarks_free(set);
            return ck_fail(err, "%s:%d: record %d: not valid JSON", source, line_at(&lc, at),
                           index);
        }
        McDoc *d = set_push(set, &cap);
        int rc = d ? tqa_record(d, rec, index, which, &lc, a, i, source, err)
                   : ck_fail(err, "out of memory");
        cJSON_Delete(rec);
        if (rc) {
            benchmarks_free(set);
            return -1;
        }
        i = skip_ws(text, len, i);
        if (i < len && text[i] == ',') {
            i = skip_ws(text, len, i + 1);
            continue;
        }
        if (i < len && text[i] == ']') break;
        benchmarks_free(set);
        return ck_fail(err, "%s:%d: expected ',' or ']' after record %d", source,
                       line_at(&lc, i < len ? i : len), index);
    }
    if (skip_ws(text, len, i + 1) != len) {
        int line = line_at(&lc, skip_ws(text, len, i + 1));
        benchmarks_free(set);
        return ck_fail(err, "%s:%d: text after the closing ']'", source, line);
    }
    return 0;
}

int benchmarks_load_truthfulqa(McDocSet *set, const char *path, TqaTargets which, CkError *err) {
    size_t size = 0;
    memset(set, 0, sizeof *set);
    char *text = fileio_read_text(path, BENCHMARKS_MAX_BYTES, &size, err);
    if (!text) return -1;
    int rc = benchmarks_parse_truthfulqa(set, text, size, which, path, err);
    free(text);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* locating the shipped files */

static int try_path(const char *dir, const char *sub, const char *file, char *out, size_t cap) {
    int n = snprintf(out, cap, "%s%s/%s", dir, sub, file);
    return n > 0 && (size_t)n < cap && access(out, R_OK) == 0;
}

int benchmarks_data_path(const char *file, char *out, size_t cap, CkError *err) {
    const char *env = getenv("CUTKIT_DATA_DIR");
    if (env && *env && try_path(env, "", file, out, cap)) return 0;
    /* beside the executable, above it (build/ inside the sources), or where `cmake --install`
     * puts it (PREFIX/bin/cutkit -> PREFIX/share/cutkit/datasets/data) */
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
        if (try_path(exe, "/datasets/data", file, out, cap) ||
            try_path(exe, "/../datasets/data", file, out, cap) ||
            try_path(exe, "/../share/cutkit/datasets/data", file, out, cap))
            return 0;
    }
    /* the source tree this file was compiled from (CMake passes absolute paths) */
    char src[PATH_MAX];
    snprintf(src, sizeof src, "%s", __FILE__);
    char *slash = strrchr(src, '/');
    if (slash) {
        *slash = '\0';
        if (try_path(src, "/data", file, out, cap)) return 0;
    }
    return ck_fail(err,
                   "cannot find %s: looked in $CUTKIT_DATA_DIR, datasets/data beside and above "
                   "the executable, and %s/data; pass --data PATH",
                   file, src);
}
