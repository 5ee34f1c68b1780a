/* annotations.c — annotations.json in and out. */
#include "eval/annotations.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/json_strict.h"
#include "eval/outputs.h"

static char *dup_str(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void annotation_clear(Annotation *a) {
    free(a->instruction), free(a->output_1), free(a->output_2), free(a->generator_1);
    free(a->generator_2), free(a->dataset), free(a->annotator), free(a->raw_completion);
    free(a->error);
    memset(a, 0, sizeof *a);
    a->preference = NAN;
    a->is_switched = -1;
}

Annotation *annotations_add(AnnotationSet *s) {
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 64;
        Annotation *items = realloc(s->items, (size_t)cap * sizeof *items);
        if (!items) return NULL;
        s->items = items;
        s->cap = cap;
    }
    Annotation *a = &s->items[s->n++];
    memset(a, 0, sizeof *a);
    a->preference = NAN;
    a->is_switched = -1;
    return a;
}

void annotations_free(AnnotationSet *s) {
    for (int i = 0; i < s->n; i++) annotation_clear(&s->items[i]);
    free(s->items);
    memset(s, 0, sizeof *s);
}

/* Copies an optional string field; a present non-string, non-null value is refused. */
static int take(const cJSON *rec, const char *name, char **out, const char *path, int index,
                CkError *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v))
        return ck_fail(err, "%s: record %d: field \"%s\" must be a string", path, index, name);
    *out = dup_str(v->valuestring);
    return *out ? 0 : ck_fail(err, "out of memory");
}

static int load_record(Annotation *a, const cJSON *rec, const char *path, int index, CkError *err) {
    if (!cJSON_IsObject(rec)) return ck_fail(err, "%s: record %d: expected an object", path, index);
    if (take(rec, "instruction", &a->instruction, path, index, err) != 0 ||
        take(rec, "output_1", &a->output_1, path, index, err) != 0 ||
        take(rec, "output_2", &a->output_2, path, index, err) != 0 ||
        take(rec, "generator_1", &a->generator_1, path, index, err) != 0 ||
        take(rec, "generator_2", &a->generator_2, path, index, err) != 0 ||
        take(rec, "dataset", &a->dataset, path, index, err) != 0 ||
        take(rec, "annotator", &a->annotator, path, index, err) != 0 ||
        take(rec, "error", &a->error, path, index, err) != 0)
        return -1;
    if (!a->instruction)
        return ck_fail(err, "%s: record %d: missing field \"instruction\"", path, index);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(rec, "preference");
    if (cJSON_IsNumber(p))
        a->preference = p->valuedouble;
    else if (p && !cJSON_IsNull(p))
        return ck_fail(err, "%s: record %d: field \"preference\" must be a number or null", path,
                       index);
    const cJSON *sw = cJSON_GetObjectItemCaseSensitive(rec, "is_switched");
    if (cJSON_IsBool(sw)) a->is_switched = cJSON_IsTrue(sw);
    const cJSON *raw = cJSON_GetObjectItemCaseSensitive(rec, "raw_completion");
    if (raw && !cJSON_IsNull(raw)) {
        a->raw_completion = cJSON_PrintUnformatted(raw);
        if (!a->raw_completion) return ck_fail(err, "out of memory");
    }
    return 0;
}

int annotations_parse(AnnotationSet *s, const char *text, size_t len, const char *path,
                      CkError *err) {
    memset(s, 0, sizeof *s);
    cJSON *root = json_parse_strict(text, len, path, err);
    if (!root) return -1;
    if (!cJSON_IsArray(root)) {
        cJSON_Delete(root);
        return ck_fail(err, "%s: expected a JSON array of annotations", path);
    }
    int rc = 0, index = 0;
    const cJSON *rec;
    cJSON_ArrayForEach(rec, root) {
        Annotation *a = annotations_add(s);
        if (!a) {
            rc = ck_fail(err, "out of memory");
            break;
        }
        if ((rc = load_record(a, rec, path, index++, err)) != 0) break;
    }
    cJSON_Delete(root);
    if (rc != 0) annotations_free(s);
    return rc;
}

int annotations_load(AnnotationSet *s, const char *path, CkError *err) {
    memset(s, 0, sizeof *s);
    size_t len = 0;
    char *text = fileio_read_text(path, (size_t)1 << 31, &len, err);
    if (!text) return -1;
    int rc = annotations_parse(s, text, len, path, err);
    free(text);
    return rc;
}

static int add_opt_string(cJSON *rec, const char *name, const char *value) {
    return value ? cJSON_AddStringToObject(rec, name, value) != NULL
                 : cJSON_AddNullToObject(rec, name) != NULL;
}

int annotations_save(const AnnotationSet *s, const char *path, CkError *err) {
    cJSON *root = cJSON_CreateArray();
    int ok = root != NULL;
    for (int i = 0; ok && i < s->n; i++) {
        const Annotation *a = &s->items[i];
        cJSON *rec = cJSON_CreateObject();
        ok = rec && cJSON_AddItemToArray(root, rec);
        if (!ok) break;
        ok &= add_opt_string(rec, "instruction", a->instruction);
        ok &= add_opt_string(rec, "output_1", a->output_1);
        ok &= add_opt_string(rec, "generator_1", a->generator_1);
        ok &= add_opt_string(rec, "dataset", a->dataset);
        ok &= add_opt_string(rec, "output_2", a->output_2);
        ok &= add_opt_string(rec, "generator_2", a->generator_2);
        ok &= add_opt_string(rec, "annotator", a->annotator);
        ok &= (isnan(a->preference)
                   ? cJSON_AddNullToObject(rec, "preference")
                   : cJSON_AddNumberToObject(rec, "preference", a->preference)) != NULL;
        if (a->is_switched >= 0)
            ok &= cJSON_AddBoolToObject(rec, "is_switched", a->is_switched) != NULL;
        if (a->raw_completion) {
            cJSON *raw = cJSON_Parse(a->raw_completion);
            if (!raw) raw = cJSON_CreateString(a->raw_completion);
            ok &= raw && cJSON_AddItemToObject(rec, "raw_completion", raw);
        }
        if (a->error) ok &= cJSON_AddStringToObject(rec, "error", a->error) != NULL;
    }
    char *text = ok ? outputs_print_records(root) : NULL;
    cJSON_Delete(root);
    if (!text) return ck_fail(err, "%s: out of memory", path);
    int rc = fileio_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}
