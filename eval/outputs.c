/* outputs.c — model_outputs.json and instruction lists in, model_outputs.json out. */
#include "eval/outputs.h"

#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/json_strict.h"
#include "util/strbuf.h"
#include "datasets/templates.h"

static char *dup_or_null(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

int outputs_append(ModelOutputs *o, const char *instruction, const char *output,
                   const char *generator, const char *dataset, CkError *err) {
    if (o->n == o->cap) {
        int cap = o->cap ? o->cap * 2 : 64;
        ModelOutput *items = realloc(o->items, (size_t)cap * sizeof *items);
        if (!items) return ck_fail(err, "out of memory");
        o->items = items;
        o->cap = cap;
    }
    ModelOutput r = {dup_or_null(instruction), dup_or_null(output), dup_or_null(generator),
                     dup_or_null(dataset)};
    if (!r.instruction || (output && !r.output) || (generator && !r.generator) ||
        (dataset && !r.dataset)) {
        free(r.instruction), free(r.output), free(r.generator), free(r.dataset);
        return ck_fail(err, "out of memory");
    }
    o->items[o->n++] = r;
    return 0;
}

void outputs_free(ModelOutputs *o) {
    for (int i = 0; i < o->n; i++) {
        free(o->items[i].instruction);
        free(o->items[i].output);
        free(o->items[i].generator);
        free(o->items[i].dataset);
    }
    free(o->items);
    memset(o, 0, sizeof *o);
}

/* An optional string field: absent or null gives NULL; anything else but a string fails. */
static int opt_string(const cJSON *rec, const char *name, const char **out, const char *path,
                      int index, CkError *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, name);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v))
        return ck_fail(err, "%s: record %d: field \"%s\" must be a string", path, index, name);
    *out = v->valuestring;
    return 0;
}

static int load_record(ModelOutputs *o, const cJSON *rec, const char *path, int index,
                       int need_output, CkError *err) {
    if (cJSON_IsString(rec)) {
        if (need_output)
            return ck_fail(err, "%s: record %d: expected an object with an \"output\"", path,
                           index);
        return outputs_append(o, rec->valuestring, NULL, NULL, NULL, err);
    }
    if (!cJSON_IsObject(rec))
        return ck_fail(err, "%s: record %d: expected an object or a string", path, index);
    const char *instruction, *input, *output, *generator, *dataset;
    if (opt_string(rec, "instruction", &instruction, path, index, err) != 0 ||
        opt_string(rec, "input", &input, path, index, err) != 0 ||
        opt_string(rec, "output", &output, path, index, err) != 0 ||
        opt_string(rec, "generator", &generator, path, index, err) != 0 ||
        opt_string(rec, "dataset", &dataset, path, index, err) != 0)
        return -1;
    if (!instruction)
        return ck_fail(err, "%s: record %d: missing field \"instruction\"", path, index);
    if (need_output && !output)
        return ck_fail(err, "%s: record %d: missing field \"output\"", path, index);
    /* the Alpaca convention: instruction, newline, input (as training joins them) */
    char *joined = template_join_input(instruction, input);
    if (!joined) return ck_fail(err, "out of memory");
    int rc = outputs_append(o, joined, output, generator, dataset, err);
    free(joined);
    return rc;
}

int outputs_parse(ModelOutputs *o, const char *text, size_t len, int need_output, const char *path,
                  CkError *err) {
    memset(o, 0, sizeof *o);
    cJSON *root = json_parse_strict(text, len, path, err);
    if (!root) return -1;
    if (!cJSON_IsArray(root)) {
        cJSON_Delete(root);
        return ck_fail(err, "%s: expected a JSON array of records", path);
    }
    int index = 0, rc = 0;
    const cJSON *rec;
    cJSON_ArrayForEach(rec, root) {
        if ((rc = load_record(o, rec, path, index, need_output, err)) != 0) break;
        index++;
    }
    cJSON_Delete(root);
    if (rc != 0) outputs_free(o);
    return rc;
}

int outputs_load(ModelOutputs *o, const char *path, int need_output, CkError *err) {
    memset(o, 0, sizeof *o);
    size_t len = 0;
    char *text = fileio_read_text(path, (size_t)1 << 30, &len, err);
    if (!text) return -1;
    int rc = outputs_parse(o, text, len, need_output, path, err);
    free(text);
    return rc;
}

char *outputs_print_records(const cJSON *array) {
    StrBuf t = {0};
    int bad = strbuf_puts(&t, "[");
    const cJSON *rec;
    int first = 1;
    cJSON_ArrayForEach(rec, array) {
        bad |= strbuf_puts(&t, first ? "\n  {" : ",\n  {");
        first = 0;
        const cJSON *field;
        int first_field = 1;
        cJSON_ArrayForEach(field, rec) {
            char *key = cJSON_PrintUnformatted(
                &(cJSON){.type = cJSON_String, .valuestring = field->string});
            char *value = cJSON_PrintUnformatted(field);
            bad |= !key || !value;
            if (key && value) {
                bad |= strbuf_puts(&t, first_field ? "\n    " : ",\n    ");
                bad |= strbuf_puts(&t, key);
                bad |= strbuf_puts(&t, ":");
                bad |= strbuf_puts(&t, value);
            }
            first_field = 0;
            free(key);
            free(value);
        }
        bad |= strbuf_puts(&t, "\n  }");
    }
    bad |= strbuf_puts(&t, first ? "]\n" : "\n]\n");
    if (bad) {
        free(t.p);
        return NULL;
    }
    return t.p;
}

int outputs_save(const ModelOutputs *o, const char *path, CkError *err) {
    cJSON *root = cJSON_CreateArray();
    int bad = !root;
    for (int i = 0; !bad && i < o->n; i++) {
        const ModelOutput *r = &o->items[i];
        cJSON *rec = cJSON_CreateObject();
        bad |= !rec || !cJSON_AddItemToArray(root, rec);
        if (bad) break;
        bad |= !cJSON_AddStringToObject(rec, "instruction", r->instruction);
        bad |= !cJSON_AddStringToObject(rec, "output", r->output ? r->output : "");
        bad |= !(r->generator ? cJSON_AddStringToObject(rec, "generator", r->generator)
                              : cJSON_AddNullToObject(rec, "generator"));
        bad |= !(r->dataset ? cJSON_AddStringToObject(rec, "dataset", r->dataset)
                            : cJSON_AddNullToObject(rec, "dataset"));
    }
    char *text = bad ? NULL : outputs_print_records(root);
    cJSON_Delete(root);
    if (!text) return ck_fail(err, "%s: out of memory", path);
    int rc = fileio_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}
