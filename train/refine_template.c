/* refine_template.c — see refine_template.h. */
#include "train/refine_template.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_strict.h"
#include "util/strbuf.h"

/* Alpaca's framing (a preamble, "### Section:" headers) so that an instruction-tuned model
 * reads the sections as it was trained to; the last header is where it writes. */
const char REFINE_PROMPT_NO_INPUT[] =
    "Below is an instruction that describes a task, a response to it, and a judgment of that "
    "response. Write an improved response that keeps what the judgment approves of and fixes "
    "what it criticizes.\n\n"
    "### Instruction:\n{instruction}\n\n"
    "### Response:\n{output}\n\n"
    "### Judgment:\n{judgment}\n\n"
    "### Improved response:\n";
const char REFINE_PROMPT_INPUT[] =
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context, a response to it, and a judgment of that response. Write an improved response "
    "that keeps what the judgment approves of and fixes what it criticizes.\n\n"
    "### Instruction:\n{instruction}\n\n"
    "### Input:\n{input}\n\n"
    "### Response:\n{output}\n\n"
    "### Judgment:\n{judgment}\n\n"
    "### Improved response:\n";
/* a model that goes on to open another section has finished its response */
const char REFINE_STOP[] = "\n\n###";

#define MAX_TEMPLATE_BYTES ((size_t)1 << 20)

static int template_set(RefineTemplate *t, const char *no_input, const char *input,
                        const char *stop, CkError *err) {
    t->prompt_no_input = strdup(no_input);
    t->prompt_input = strdup(input);
    t->stop = strdup(stop);
    if (t->prompt_no_input && t->prompt_input && t->stop) return 0;
    refine_template_free(t);
    return ck_fail(err, "out of memory");
}

int refine_template_default(RefineTemplate *t, CkError *err) {
    memset(t, 0, sizeof *t);
    return template_set(t, REFINE_PROMPT_NO_INPUT, REFINE_PROMPT_INPUT, REFINE_STOP, err);
}

void refine_template_free(RefineTemplate *t) {
    free(t->prompt_no_input);
    free(t->prompt_input);
    free(t->stop);
    memset(t, 0, sizeof *t);
}

/* The value of the field name[0..n), or NULL (with *known 0) for a name we do not have. */
static const char *field_value(const char *name, size_t n, const char *const values[4],
                               int *known) {
    static const char *const NAMES[4] = {"instruction", "input", "output", "judgment"};
    for (int i = 0; i < 4; i++)
        if (strlen(NAMES[i]) == n && !memcmp(NAMES[i], name, n)) {
            *known = 1;
            return values[i];
        }
    *known = 0;
    return NULL;
}

/* Python's str.format for the four names: a field's value is inserted as is, "{{"/"}}" are
 * braces, anything else in braces (or a lone brace) is an error, as Python would raise. */
static char *format_fields(const char *fmt, const char *const values[4], CkError *err) {
    StrBuf b = {0};
    int rc = strbuf_put(&b, "", 0);
    for (const char *p = fmt; rc == 0 && *p; p++) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            rc = strbuf_put(&b, p++, 1);
        } else if (*p == '}') {
            rc = ck_fail(err, "single '}' at offset %ld", (long)(p - fmt));
        } else if (*p == '{') {
            const char *end = strchr(p + 1, '}');
            int known = 0;
            const char *v = end ? field_value(p + 1, (size_t)(end - p - 1), values, &known) : NULL;
            if (!end)
                rc = ck_fail(err, "unmatched '{' at offset %ld", (long)(p - fmt));
            else if (!known)
                rc = ck_fail(err,
                             "unknown field {%.*s} (expected {instruction}, {input}, {output} "
                             "or {judgment})",
                             (int)(end - p - 1), p + 1);
            else if (!v)
                rc = ck_fail(err, "field {%.*s} has no value here", (int)(end - p - 1), p + 1);
            else {
                rc = strbuf_puts(&b, v);
                p = end;
            }
        } else {
            rc = strbuf_put(&b, p, 1);
        }
    }
    if (rc != 0) {
        if (!err->msg[0]) ck_fail(err, "out of memory");
        strbuf_free(&b);
        return NULL;
    }
    return strbuf_take(&b);
}

char *refine_format(const RefineTemplate *t, const char *instruction, const char *input,
                    const char *output, const char *judgment, CkError *err) {
    const int has_input = input && input[0];
    const char *const values[4] = {instruction, has_input ? input : NULL, output, judgment};
    return format_fields(has_input ? t->prompt_input : t->prompt_no_input, values, err);
}

/* A required (or, with def, optional) string field of the template object. */
static int string_field(const cJSON *obj, const char *path, const char *name, const char *def,
                        const char **out, CkError *err) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!f && def) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsString(f))
        return ck_fail(err, "%s: field \"%s\": expected a string%s", path, name,
                       f ? "" : " (missing)");
    *out = f->valuestring;
    return 0;
}

/* Each prompt must format with sample values, so that a mistake shows before the model loads;
 * prompt_no_input may not use {input}, which it never has. */
static int check_prompts(const RefineTemplate *t, const char *path, CkError *err) {
    const char *const names[2] = {"prompt_no_input", "prompt_input"};
    const char *const inputs[2] = {NULL, "x"};
    for (int i = 0; i < 2; i++) {
        const char *const values[4] = {"x", inputs[i], "x", "x"};
        char *s = format_fields(i == 0 ? t->prompt_no_input : t->prompt_input, values, err);
        if (!s) return ck_wrap(err, "%s: field \"%s\"", path, names[i]);
        free(s);
    }
    return 0;
}

int refine_template_load(RefineTemplate *t, const char *path, CkError *err) {
    memset(t, 0, sizeof *t);
    cJSON *obj = json_load_file(path, MAX_TEMPLATE_BYTES, err);
    if (!obj) return -1;
    const char *no_input = NULL, *input = NULL, *stop = NULL;
    int rc = -1;
    if (!cJSON_IsObject(obj))
        ck_fail(err, "%s: expected a JSON object with \"prompt_no_input\" and \"prompt_input\"",
                path);
    else if (string_field(obj, path, "prompt_no_input", NULL, &no_input, err) == 0 &&
             string_field(obj, path, "prompt_input", NULL, &input, err) == 0 &&
             string_field(obj, path, "stop", REFINE_STOP, &stop, err) == 0 &&
             template_set(t, no_input, input, stop, err) == 0)
        rc = check_prompts(t, path, err);
    cJSON_Delete(obj);
    if (rc != 0) refine_template_free(t);
    return rc;
}
