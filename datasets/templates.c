/* templates.c — the reference Alpaca templates and Python-str.format-style filling. */
#include "datasets/templates.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/strbuf.h"

/* Copied from cut-spec §1.1 ([R] templates/alpaca.json); no space after "### Response:\n". */
const char TEMPLATE_ALPACA_PROMPT_NO_INPUT[] =
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n";
const char TEMPLATE_ALPACA_PROMPT_NO_INPUT_JUDGE[] =
    "Below is an instruction that describes a task. Write a response to the instruction and "
    "the response should match the corresponding judgment.\n\n### Instruction:\n{instruction}"
    "\n\n### Judgment:\n{judgment}\n\n### Response:\n";
const char TEMPLATE_ALPACA_RESPONSE_SPLIT[] = "### Response:";
const char TEMPLATE_FORWARD_JUDGMENT_HEADING[] = "\n\n### Judgment:\n";
const char TEMPLATE_POSITIVE_JUDGMENT[] = "Your response to the instruction is satisfactory.";

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

int template_default(Template *t, CkError *err) {
    t->prompt_no_input = dup_str(TEMPLATE_ALPACA_PROMPT_NO_INPUT);
    t->prompt_no_input_judge = dup_str(TEMPLATE_ALPACA_PROMPT_NO_INPUT_JUDGE);
    t->response_split = dup_str(TEMPLATE_ALPACA_RESPONSE_SPLIT);
    if (!t->prompt_no_input || !t->prompt_no_input_judge || !t->response_split) {
        template_free(t);
        return ck_fail(err, "out of memory");
    }
    return 0;
}

void template_free(Template *t) {
    free(t->prompt_no_input);
    free(t->prompt_no_input_judge);
    free(t->response_split);
    memset(t, 0, sizeof *t);
}

/* Appends k bytes of s to b, failing with err when out of memory. */
static int put(StrBuf *b, const char *s, size_t k, CkError *err) {
    return strbuf_put(b, s, k) == 0 ? 0 : ck_fail(err, "out of memory");
}

char *template_format(const char *fmt, const char *instruction, const char *judgment,
                      CkError *err) {
    StrBuf b = {0};
    int rc = put(&b, "", 0, err);
    for (const char *s = fmt; rc == 0 && *s;) {
        if ((s[0] == '{' && s[1] == '{') || (s[0] == '}' && s[1] == '}')) {
            rc = put(&b, s, 1, err);
            s += 2;
        } else if (*s == '}') {
            rc = ck_fail(err, "single '}' at byte %zu of the template", (size_t)(s - fmt));
        } else if (*s == '{') {
            const char *end = strchr(s, '}');
            size_t k = end ? (size_t)(end - s - 1) : 0;
            const char *value = NULL;
            if (end && k == 11 && !strncmp(s + 1, "instruction", k))
                value = instruction;
            else if (end && k == 8 && !strncmp(s + 1, "judgment", k))
                value = judgment;
            else if (end)
                rc = ck_fail(err, "unknown placeholder {%.*s} in the template", (int)k, s + 1);
            else
                rc =
                    ck_fail(err, "unterminated '{' at byte %zu of the template", (size_t)(s - fmt));
            if (rc == 0 && !value)
                rc = ck_fail(err, "placeholder {%.*s} has no value here", (int)k, s + 1);
            if (rc == 0) rc = put(&b, value, strlen(value), err);
            s = end ? end + 1 : s + 1;
        } else {
            size_t k = strcspn(s, "{}");
            rc = put(&b, s, k, err);
            s += k;
        }
    }
    if (rc != 0) {
        strbuf_free(&b);
        return NULL;
    }
    return strbuf_take(&b);
}

char *template_join_input(const char *instruction, const char *input) {
    if (!input || !*input) return dup_str(instruction);
    size_t a = strlen(instruction), c = strlen(input);
    char *s = malloc(a + c + 2);
    if (!s) return NULL;
    memcpy(s, instruction, a);
    s[a] = '\n';
    memcpy(s + a + 1, input, c + 1);
    return s;
}

static int take_string(const cJSON *root, const char *name, const char *source, char **out,
                       CkError *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!v) return ck_fail(err, "%s: missing field \"%s\"", source, name);
    if (!cJSON_IsString(v)) return ck_fail(err, "%s: field \"%s\" must be a string", source, name);
    *out = dup_str(v->valuestring);
    return *out ? 0 : ck_fail(err, "out of memory");
}

int template_parse(Template *t, const char *json_text, const char *source, CkError *err) {
    memset(t, 0, sizeof *t);
    cJSON *root = cJSON_Parse(json_text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ck_fail(err, "%s: expected a JSON object", source);
    }
    int rc = take_string(root, "prompt_no_input", source, &t->prompt_no_input, err);
    if (rc == 0)
        rc = take_string(root, "prompt_no_input_judge", source, &t->prompt_no_input_judge, err);
    if (rc == 0) rc = take_string(root, "response_split", source, &t->response_split, err);
    cJSON_Delete(root);
    /* try both prompts now, so a bad placeholder is reported at load, not mid-training */
    if (rc == 0) {
        char *s = template_format(t->prompt_no_input, "x", NULL, err);
        if (!s) rc = ck_wrap(err, "%s: field \"prompt_no_input\"", source);
        free(s);
    }
    if (rc == 0) {
        char *s = template_format(t->prompt_no_input_judge, "x", "y", err);
        if (!s) rc = ck_wrap(err, "%s: field \"prompt_no_input_judge\"", source);
        free(s);
    }
    if (rc != 0) template_free(t);
    return rc;
}

int template_load(Template *t, const char *path, CkError *err) {
    memset(t, 0, sizeof *t);
    char *text = fileio_read_text(path, (size_t)1 << 24, NULL, err);
    if (!text) return -1;
    int rc = template_parse(t, text, path, err);
    free(text);
    return rc;
}
