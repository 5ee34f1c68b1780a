/* jsonl.c — see jsonl.h. */
#include "util/jsonl.h"

#include <cjson/cJSON.h>

#include <string.h>

void jsonl_init(JsonlCursor *c, const char *text, size_t len) {
    memset(c, 0, sizeof *c);
    c->text = text;
    c->len = len;
}

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

int jsonl_next_line(JsonlCursor *c, const char **s, size_t *n) {
    while (c->pos < c->len) {
        const char *start = c->text + c->pos;
        const char *nl = memchr(start, '\n', c->len - c->pos);
        size_t k = nl ? (size_t)(nl - start) : c->len - c->pos;
        c->pos += k + (nl ? 1 : 0);
        c->line++;
        c->terminated = nl != NULL;
        if (blank(start, k)) continue;
        if (k && start[k - 1] == '\r') k--;
        *s = start;
        *n = k;
        return 1;
    }
    return 0;
}

int jsonl_next_object(JsonlCursor *c, const char *path, int drop_torn, cJSON **obj, CkError *err) {
    *obj = NULL;
    const char *s;
    size_t n;
    if (!jsonl_next_line(c, &s, &n)) return 0;
    if (!c->terminated && drop_torn) return 0;
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    if (!v || !cJSON_IsObject(v)) {
        cJSON_Delete(v);
        return ck_fail(err, "%s: line %ld: not a JSON object%s", path, c->line,
                       c->terminated ? "" : " (the last line is incomplete)");
    }
    size_t used = (size_t)(end - s);
    if (!blank(s + used, n - used)) {
        cJSON_Delete(v);
        return ck_fail(err, "%s: line %ld: content after the JSON object at column %zu", path,
                       c->line, used + 1);
    }
    *obj = v;
    return 1;
}
