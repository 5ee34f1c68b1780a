/* pairs.c — see pairs.h. */
#include "train/pairs.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/jsonl.h"

static char *dup_str(const char *s) {
    const size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void record_free(PairRecord *r) {
    free(r->instruction);
    free(r->input);
    free(r->chosen);
    free(r->rejected);
    memset(r, 0, sizeof *r);
}

void pairs_free(PairSet *s) {
    for (int i = 0; i < s->n; i++) record_free(&s->records[i]);
    free(s->records);
    memset(s, 0, sizeof *s);
}

/* The member name of o, NULL when absent. */
static const cJSON *field(const cJSON *o, const char *name) {
    return cJSON_GetObjectItemCaseSensitive(o, name);
}

/* An optional string field (absent or null: *out NULL). */
static int opt_string(const cJSON *o, const char *name, const char *where, const char **out,
                      CkError *err) {
    const cJSON *v = field(o, name);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v))
        return ck_fail(err, "%s: field \"%s\": expected a string or null", where, name);
    *out = v->valuestring;
    return 0;
}

static int req_string(const cJSON *o, const char *name, const char *where, const char **out,
                      CkError *err) {
    const cJSON *v = field(o, name);
    if (!v) return ck_fail(err, "%s: missing field \"%s\" (expected a string)", where, name);
    if (!cJSON_IsString(v)) return ck_fail(err, "%s: field \"%s\": expected a string", where, name);
    *out = v->valuestring;
    return 0;
}

/* Walks a list of {"role", "content"} messages (field name): *user = the last user turn's
 * content (NULL: none), *last_role / *last = the final message's. */
static int scan_messages(const cJSON *v, const char *name, const char *where, const char **user,
                         const char **last_role, const char **last, CkError *err) {
    const int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
    *user = *last_role = *last = NULL;
    if (n == 0)
        return ck_fail(err, "%s: field \"%s\": expected a string or a non-empty list of messages",
                       where, name);
    for (int i = 0; i < n; i++) {
        const cJSON *m = cJSON_GetArrayItem(v, i);
        const cJSON *role = field(m, "role"), *content = field(m, "content");
        if (!cJSON_IsString(role) || !cJSON_IsString(content))
            return ck_fail(err,
                           "%s: field \"%s\": message %d: expected {\"role\": str, "
                           "\"content\": str}",
                           where, name, i);
        if (!strcmp(role->valuestring, "user")) *user = content->valuestring;
        *last_role = role->valuestring;
        *last = content->valuestring;
    }
    return 0;
}

/* A chosen/rejected value: a string (*prompt NULL), or a list of messages ending with the
 * assistant's answer (*answer), whose last user turn, if any, is *prompt (none: TRL's
 * conversational form, where the prompt is its own field). */
static int answer_of(const cJSON *o, const char *name, const char *where, const char **answer,
                     const char **prompt, CkError *err) {
    const cJSON *v = field(o, name);
    *prompt = NULL;
    if (!v)
        return ck_fail(err, "%s: missing field \"%s\" (expected a string or a list of messages)",
                       where, name);
    if (cJSON_IsString(v)) {
        *answer = v->valuestring;
        return 0;
    }
    const char *role;
    if (scan_messages(v, name, where, prompt, &role, answer, err) != 0) return -1;
    if (strcmp(role, "assistant") != 0)
        return ck_fail(err, "%s: field \"%s\": the last message must be the assistant's", where,
                       name);
    return 0;
}

/* The "prompt" field: absent or null (*out NULL), a string, or TRL's conversational form, a
 * list of messages whose last user turn is the prompt. */
static int prompt_of(const cJSON *o, const char *where, const char **out, CkError *err) {
    const cJSON *v = field(o, "prompt");
    *out = NULL;
    if (!cJSON_IsArray(v)) return opt_string(o, "prompt", where, out, err);
    const char *role, *last;
    if (scan_messages(v, "prompt", where, out, &role, &last, err) != 0) return -1;
    if (!*out) return ck_fail(err, "%s: field \"prompt\": no user message", where);
    return 0;
}

/* One line of a preference file into r's borrowed strings. */
static int parse_preference(const cJSON *o, const char *where, const char *s[4], CkError *err) {
    const char *prompt = NULL, *instruction = NULL, *pc, *pr;
    if (prompt_of(o, where, &prompt, err) != 0 ||
        opt_string(o, "instruction", where, &instruction, err) != 0 ||
        opt_string(o, "input", where, &s[1], err) != 0 ||
        answer_of(o, "chosen", where, &s[2], &pc, err) != 0 ||
        answer_of(o, "rejected", where, &s[3], &pr, err) != 0)
        return -1;
    if (pc && pr && strcmp(pc, pr) != 0)
        return ck_fail(err,
                       "%s: field \"rejected\": its user turn differs from \"chosen\"'s: "
                       "a pair must share one prompt",
                       where);
    const char *given = instruction ? instruction : prompt;
    const char *from_messages = pc ? pc : pr;
    if (given && from_messages && strcmp(given, from_messages) != 0)
        return ck_fail(err,
                       "%s: field \"%s\": the messages' user turn differs from it: a pair "
                       "must share one prompt",
                       where, instruction ? "instruction" : "prompt");
    s[0] = given ? given : from_messages;
    if (!s[0])
        return ck_fail(err,
                       "%s: missing field \"prompt\" (or \"instruction\"): expected a "
                       "string",
                       where);
    return 0;
}

/* One line of a refinement file (the refinement in field); 1 when it is empty, null or the
 * output itself (skip it). */
static int parse_refinement(const cJSON *o, const char *field_name, const char *where,
                            const char *s[4], CkError *err) {
    const char *judgment, *refinement;
    if (req_string(o, "instruction", where, &s[0], err) != 0 ||
        opt_string(o, "input", where, &s[1], err) != 0 ||
        req_string(o, "output", where, &s[3], err) != 0 ||
        opt_string(o, "judgment", where, &judgment, err) != 0)
        return -1;
    if (!field(o, field_name) && !strcmp(field_name, "refinement"))
        return ck_fail(err, "%s: missing field \"refinement\" (expected a string or null)", where);
    if (opt_string(o, field_name, where, &refinement, err) != 0) return -1;
    if (!refinement || !*refinement || !strcmp(refinement, s[3])) return 1;
    s[2] = refinement;
    return 0;
}

static int add_record(PairSet *set, int *cap, const char *s[4], int line, CkError *err) {
    if (set->n == *cap) {
        const int nc = *cap ? 2 * *cap : 64;
        PairRecord *r = realloc(set->records, sizeof *r * (size_t)nc);
        if (!r) return ck_fail(err, "out of memory");
        set->records = r;
        *cap = nc;
    }
    PairRecord *r = &set->records[set->n];
    memset(r, 0, sizeof *r);
    r->line = line;
    r->instruction = dup_str(s[0]);
    r->input = s[1] && *s[1] ? dup_str(s[1]) : NULL;
    r->chosen = dup_str(s[2]);
    r->rejected = dup_str(s[3]);
    set->n++;
    if (!r->instruction || (s[1] && *s[1] && !r->input) || !r->chosen || !r->rejected)
        return ck_fail(err, "out of memory");
    return 0;
}

int pairs_load(PairSet *set, const char *path, PairFileKind kind, const char *chosen_field,
               CkError *err) {
    const char *field_name = chosen_field ? chosen_field : "refinement";
    memset(set, 0, sizeof *set);
    size_t size = 0;
    char *text = fileio_read_text(path, (size_t)1 << 34, &size, err);
    if (!text) return -1;
    JsonlCursor c;
    jsonl_init(&c, text, size);
    int cap = 0, rc = 0;
    for (;;) {
        cJSON *o = NULL;
        rc = jsonl_next_object(&c, path, 0, &o, err);
        if (rc <= 0) break;
        char where[4200];
        snprintf(where, sizeof where, "%s:%ld", path, c.line);
        const char *s[4] = {NULL, NULL, NULL, NULL};
        rc = kind == PAIRS_REFINEMENT ? parse_refinement(o, field_name, where, s, err)
                                      : parse_preference(o, where, s, err);
        if (rc == 1) set->n_no_refinement++;
        if (rc == 0) rc = add_record(set, &cap, s, (int)c.line, err);
        cJSON_Delete(o);
        if (rc < 0) break;
    }
    free(text);
    if (rc == 0 && set->n == 0)
        rc = ck_fail(err,
                     "%s: no pair to train on (%d lines without a \"%s\" other than the "
                     "output)",
                     path, set->n_no_refinement, field_name);
    if (rc < 0) pairs_free(set);
    return rc < 0 ? -1 : 0;
}
