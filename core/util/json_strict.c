/* json_strict.c — see json_strict.h. */
#include "util/json_strict.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"

static const char BOM[3] = {'\xEF', '\xBB', '\xBF'};

/* JSON's four white-space characters; cJSON skips every byte up to 32 between tokens, but the
 * bytes after the value decide whether a file is one value, so they follow the grammar. */
static int json_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t line_of(const char *text, size_t offset) {
    size_t line = 1;
    for (size_t i = 0; i < offset; i++) line += text[i] == '\n';
    return line;
}

cJSON *json_parse_exact(const char *text, size_t len, JsonStrictError *where) {
    const size_t start = len >= sizeof BOM && memcmp(text, BOM, sizeof BOM) == 0 ? sizeof BOM : 0;
    const char *s = text + start;
    const size_t n = len - start;
    const char *end = NULL;
    /* cJSON refuses a zero length outright, without an error position, and would skip a
     * second BOM itself */
    const int second_bom = n >= sizeof BOM && memcmp(s, BOM, sizeof BOM) == 0;
    cJSON *v = n > 0 && !second_bom ? cJSON_ParseWithLengthOpts(s, n, &end, 0) : NULL;
    size_t at;
    int after_value = 0;
    if (!v) {
        at = end && end >= s && end <= s + n ? (size_t)(end - s) : 0;
    } else {
        at = (size_t)(end - s);
        while (at < n && json_space(s[at])) at++;
        if (at == n) return v;
        cJSON_Delete(v);
        after_value = 1;
    }
    if (where) {
        where->offset = start + at;
        where->line = line_of(text, start + at);
        where->after_value = after_value;
    }
    return NULL;
}

cJSON *json_parse_strict(const char *text, size_t len, const char *source, CkError *err) {
    JsonStrictError where;
    cJSON *v = json_parse_exact(text, len, &where);
    if (!v)
        ck_fail(err, "%s: %s byte %zu (line %zu)", source,
                where.after_value ? "content after the JSON value at" : "not valid JSON near",
                where.offset, where.line);
    return v;
}

cJSON *json_load_file(const char *path, size_t max_bytes, CkError *err) {
    size_t len = 0;
    char *text = fileio_read_text(path, max_bytes, &len, err);
    if (!text) return NULL;
    cJSON *v = json_parse_strict(text, len, path, err);
    free(text);
    return v;
}
