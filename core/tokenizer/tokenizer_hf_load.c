/* tokenizer_hf_load.c — reading tokenizer.json (and tokenizer_config.json) into an
 * HfTokenizer: the JSON checks serde_json would make, the normalizer, pre-tokenizer, decoder
 * and post-processor specs, the BPE model (vocabulary and merges), the added tokens, and the
 * per-id tables that decoding uses. Anything the file asks for that is not implemented is
 * refused by name, and every message names the field by its JSON path. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_hf_internal.h"
#include "util/json_strict.h"
#include "util/utf8.h"

/* ---- JSON helpers ---------------------------------------------------------------------------- */

typedef struct {
    const char *source; /* the file name in messages */
    CkError *err;
    HfTokenizer *hf;
    pcre2_match_data *md;
    RangeVec tmp;
} Load;

static int lfail(Load *l, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fails with "source: path: message". */
static int lfail(Load *l, const char *path, const char *fmt, ...) {
    char msg[360];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ck_fail(l->err, "%s: %s: %s", l->source, path, msg);
}

static int oom(Load *l) {
    return ck_fail(l->err, "%s: out of memory", l->source);
}

/* Writes s[0..n) into out for a message: quoted, at most 40 bytes, bytes below 0x20 escaped. */
static const char *quote(char *out, size_t cap, const char *s, size_t n) {
    size_t k = 0;
    out[k++] = '\'';
    for (size_t i = 0; i < n && k + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= 40) {
            k += (size_t)snprintf(out + k, cap - k, "...");
            break;
        }
        if (c < 0x20 || c == 0x7F) {
            k += (size_t)snprintf(out + k, cap - k, "\\x%02X", c);
        } else {
            out[k++] = (char)c;
        }
    }
    out[k++] = '\'';
    out[k] = '\0';
    return out;
}

static const char *jkind(const cJSON *j) {
    if (!j) return "nothing";
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsArray(j)) return "an array";
    return "an object";
}

/* path + "." + key into buf (just key at the top level), cut to fit: paths are for messages. */
static const char *sub(char *buf, size_t cap, const char *path, const char *key) {
    const char *parts[3] = {path, *path ? "." : "", key};
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        for (const char *c = parts[i]; *c && n + 1 < cap; c++) buf[n++] = *c;
    }
    buf[n] = '\0';
    return buf;
}

static const char *sub_index(char *buf, size_t cap, const char *path, const char *key, int i) {
    snprintf(buf, cap, "%s%s%s[%d]", path, *path && *key ? "." : "", key, i);
    return buf;
}

/* obj[key], or NULL when absent or null (the reference treats null as absent). */
static const cJSON *jget(const cJSON *obj, const char *key) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    return j && !cJSON_IsNull(j) ? j : NULL;
}

static int jbool(Load *l, const cJSON *obj, const char *path, const char *key, int def, int *out) {
    const cJSON *j = jget(obj, key);
    *out = def;
    if (!j) return 0;
    char p[200];
    if (!cJSON_IsBool(j)) {
        return lfail(l, sub(p, sizeof p, path, key), "expected true or false, found %s", jkind(j));
    }
    *out = cJSON_IsTrue(j);
    return 0;
}

/* A string field: *out is NULL when absent or null and not required. */
static int jstr(Load *l, const cJSON *obj, const char *path, const char *key, int required,
                const char **out) {
    const cJSON *j = jget(obj, key);
    char p[200];
    *out = NULL;
    if (!j) return required ? lfail(l, sub(p, sizeof p, path, key), "missing") : 0;
    if (!cJSON_IsString(j)) {
        return lfail(l, sub(p, sizeof p, path, key), "expected a string, found %s", jkind(j));
    }
    *out = j->valuestring;
    return 0;
}

static int jint_value(Load *l, const cJSON *j, const char *path, double lo, double hi, int *out) {
    if (!cJSON_IsNumber(j)) return lfail(l, path, "expected an integer, found %s", jkind(j));
    double v = j->valuedouble;
    if (!(v == floor(v)) || v < lo || v > hi) {
        return lfail(l, path, "expected an integer from %.0f to %.0f, found %g", lo, hi, v);
    }
    *out = (int)v;
    return 0;
}

static int jint(Load *l, const cJSON *obj, const char *path, const char *key, double lo, double hi,
                int def, int *out) {
    const cJSON *j = jget(obj, key);
    *out = def;
    if (!j) return 0;
    char p[200];
    return jint_value(l, j, sub(p, sizeof p, path, key), lo, hi, out);
}

static int jobject(Load *l, const cJSON *j, const char *path) {
    return cJSON_IsObject(j) ? 0 : lfail(l, path, "expected an object, found %s", jkind(j));
}

static int jarray(Load *l, const cJSON *obj, const char *path, const char *key, const cJSON **out) {
    char p[200];
    *out = jget(obj, key);
    if (!*out) return lfail(l, sub(p, sizeof p, path, key), "missing");
    if (!cJSON_IsArray(*out)) {
        return lfail(l, sub(p, sizeof p, path, key), "expected an array, found %s", jkind(*out));
    }
    return 0;
}

/* Checks what cJSON does not: that the text is UTF-8 (serde_json, which the reference uses,
 * insists), that strings hold no raw control characters and no \u0000 (cJSON strings end at
 * a NUL, which would silently shorten a token). */
static int check_json_text(Load *l, const char *s, size_t len) {
    size_t bad = utf8_first_invalid(s, len);
    size_t line = 1;
    for (size_t i = 0; i < len && i < bad; i++) line += s[i] == '\n';
    if (bad < len) return ck_fail(l->err, "%s: line %zu: not valid UTF-8", l->source, line);
    int in_string = 0;
    line = 1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '\n') line++;
        if (!in_string) {
            if (c == '"') in_string = 1;
            continue;
        }
        if (c == '"') {
            in_string = 0;
        } else if ((unsigned char)c < 0x20) {
            return ck_fail(l->err, "%s: line %zu: a control character inside a JSON string",
                           l->source, line);
        } else if (c == '\\' && i + 1 < len) {
            if (s[i + 1] == 'u' && i + 5 < len && memcmp(s + i + 2, "0000", 4) == 0) {
                return ck_fail(l->err, "%s: line %zu: \\u0000 in a JSON string is not supported",
                               l->source, line);
            }
            i++; /* the escaped character cannot end the string */
        }
    }
    return 0;
}

/* Parses JSON text that must be an object; refuses trailing garbage as serde_json does. */
static cJSON *parse_json(Load *l, const char *s, size_t len) {
    if (check_json_text(l, s, len) != 0) return NULL;
    JsonStrictError where;
    cJSON *root = json_parse_exact(s, len, &where);
    if (!root) {
        ck_fail(l->err, "%s: line %zu: not valid JSON (at byte %zu)", l->source, where.line,
                where.offset);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        ck_fail(l->err, "%s: expected a JSON object at the top level, found %s", l->source,
                jkind(root));
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* ---- the pipeline: normalizer, pre-tokenizer, decoder, post-processor ------------------------ */

static Step *add_step(Load *l, StepList *list, const char *path, StepKind kind) {
    if (list->n >= HF_MAX_STEPS) {
        lfail(l, path, "more than %d steps", HF_MAX_STEPS);
        return NULL;
    }
    Step *p = realloc(list->p, (size_t)(list->n + 1) * sizeof *p);
    if (!p) {
        oom(l);
        return NULL;
    }
    list->p = p;
    Step *s = &p[list->n++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    return s;
}

/* A {"String": s} or {"Regex": r} pattern, compiled into re. */
static int load_pattern(Load *l, const cJSON *obj, const char *path, Regex *re) {
    char p[200];
    const cJSON *pat = jget(obj, "pattern");
    sub(p, sizeof p, path, "pattern");
    if (!pat) return lfail(l, p, "missing");
    if (jobject(l, pat, p) != 0) return -1;
    const char *str, *rx;
    if (jstr(l, pat, p, "String", 0, &str) != 0 || jstr(l, pat, p, "Regex", 0, &rx) != 0) return -1;
    if (!str == !rx) return lfail(l, p, "expected exactly one of \"String\" and \"Regex\"");
    char msg[260];
    if (hf_regex_compile(re, str ? str : rx, str != NULL, msg, sizeof msg) != 0) {
        char q[200];
        return lfail(l, sub(q, sizeof q, p, str ? "String" : "Regex"), "cannot compile: %s", msg);
    }
    return 0;
}

static int dup_text(Load *l, Step *s, const char *text) {
    s->text_len = strlen(text);
    s->text = malloc(s->text_len + 1);
    if (!s->text) return oom(l);
    memcpy(s->text, text, s->text_len + 1);
    return 0;
}

/* A one-character string field (Metaspace's replacement, Strip's content). */
static int load_char(Load *l, const cJSON *obj, const char *path, const char *key, const char *def,
                     Step *s) {
    const char *c;
    if (jstr(l, obj, path, key, 0, &c) != 0) return -1;
    if (!c) c = def;
    size_t n = strlen(c);
    char p[200];
    if (n == 0 || n > 4 || utf8_char_len((unsigned char)c[0]) != n) {
        return lfail(l, sub(p, sizeof p, path, key), "expected a single character");
    }
    memcpy(s->rep, c, n);
    s->rep[n] = '\0';
    s->rep_len = n;
    return 0;
}

static int load_prepend_scheme(Load *l, const cJSON *obj, const char *path, Step *s) {
    const char *scheme;
    char p[200];
    if (jstr(l, obj, path, "prepend_scheme", 0, &scheme) != 0) return -1;
    if (scheme) {
        if (!strcmp(scheme, "always")) {
            s->scheme = PREPEND_ALWAYS;
        } else if (!strcmp(scheme, "first")) {
            s->scheme = PREPEND_FIRST;
        } else if (!strcmp(scheme, "never")) {
            s->scheme = PREPEND_NEVER;
        } else {
            return lfail(l, sub(p, sizeof p, path, "prepend_scheme"),
                         "unsupported prepend_scheme '%s' (expected always, first or never)",
                         scheme);
        }
        return 0;
    }
    /* The older form: add_prefix_space true means "always". */
    int add;
    if (jbool(l, obj, path, "add_prefix_space", 1, &add) != 0) return -1;
    s->scheme = add ? PREPEND_ALWAYS : PREPEND_NEVER;
    return 0;
}

static int load_metaspace(Load *l, const cJSON *j, const char *path, Step *s) {
    if (load_char(l, j, path, "replacement", "\xE2\x96\x81", s) != 0) return -1;
    if (load_prepend_scheme(l, j, path, s) != 0) return -1;
    return jbool(l, j, path, "split", 1, &s->split);
}

/* Reads obj["type"] as a string. */
static int jtype(Load *l, const cJSON *j, const char *path, const char **type) {
    if (jobject(l, j, path) != 0) return -1;
    return jstr(l, j, path, "type", 1, type);
}

static int load_normalizer(Load *l, const cJSON *j, const char *path) {
    const char *type;
    char p[200];
    if (jtype(l, j, path, &type) != 0) return -1;
    HfTokenizer *hf = l->hf;
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr;
        if (jarray(l, j, path, "normalizers", &arr) != 0) return -1;
        int i = 0;
        for (const cJSON *c = arr->child; c; c = c->next, i++) {
            if (load_normalizer(l, c, sub_index(p, sizeof p, path, "normalizers", i)) != 0)
                return -1;
        }
        return 0;
    }
    if (!strcmp(type, "Prepend")) {
        const char *text;
        if (jstr(l, j, path, "prepend", 1, &text) != 0) return -1;
        Step *s = add_step(l, &hf->norm, path, STEP_PREPEND);
        return s ? dup_text(l, s, text) : -1;
    }
    if (!strcmp(type, "Replace")) {
        const char *content;
        if (jstr(l, j, path, "content", 1, &content) != 0) return -1;
        Step *s = add_step(l, &hf->norm, path, STEP_REPLACE);
        if (!s || dup_text(l, s, content) != 0) return -1;
        return load_pattern(l, j, path, &s->re);
    }
    int unicode = hf_unicode_form(type);
    if (unicode) {
        Step *s = add_step(l, &hf->norm, path, STEP_UNICODE);
        if (!s) return -1;
        s->unicode_options = unicode;
        return 0;
    }
    return lfail(l, sub(p, sizeof p, path, "type"),
                 "unsupported normalizer '%s' (cutkit reads Sequence, Prepend, Replace, NFC, "
                 "NFD, NFKC and NFKD)",
                 type);
}

/* GPT-2's pre-tokenizer pattern, which ByteLevel applies when use_regex is true. */
static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int load_pre_tokenizer(Load *l, const cJSON *j, const char *path) {
    const char *type;
    char p[200];
    if (jtype(l, j, path, &type) != 0) return -1;
    HfTokenizer *hf = l->hf;
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr;
        if (jarray(l, j, path, "pretokenizers", &arr) != 0) return -1;
        int i = 0;
        for (const cJSON *c = arr->child; c; c = c->next, i++) {
            if (load_pre_tokenizer(l, c, sub_index(p, sizeof p, path, "pretokenizers", i)) != 0)
                return -1;
        }
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) {
        Step *s = add_step(l, &hf->pre, path, STEP_BYTE_LEVEL);
        if (!s || jbool(l, j, path, "add_prefix_space", 1, &s->add_prefix_space) != 0 ||
            jbool(l, j, path, "use_regex", 1, &s->use_regex) != 0) {
            return -1;
        }
        if (s->use_regex) {
            char msg[260];
            if (hf_regex_compile(&s->re, GPT2_PATTERN, 0, msg, sizeof msg) != 0) {
                return lfail(l, path, "cannot compile the GPT-2 pattern: %s", msg);
            }
        }
        return 0;
    }
    if (!strcmp(type, "Split")) {
        const char *behavior;
        Step *s = add_step(l, &hf->pre, path, STEP_SPLIT);
        if (!s || load_pattern(l, j, path, &s->re) != 0 ||
            jstr(l, j, path, "behavior", 1, &behavior) != 0 ||
            jbool(l, j, path, "invert", 0, &s->invert) != 0) {
            return -1;
        }
        static const char *const NAMES[] = {"Removed", "Isolated", "MergedWithPrevious",
                                            "MergedWithNext", "Contiguous"};
        for (int b = 0; b < 5; b++) {
            if (!strcmp(behavior, NAMES[b])) {
                s->behavior = (SplitBehavior)b;
                return 0;
            }
        }
        return lfail(l, sub(p, sizeof p, path, "behavior"), "unsupported split behavior '%s'",
                     behavior);
    }
    if (!strcmp(type, "Metaspace")) {
        Step *s = add_step(l, &hf->pre, path, STEP_METASPACE);
        return s ? load_metaspace(l, j, path, s) : -1;
    }
    return lfail(l, sub(p, sizeof p, path, "type"), "unsupported pre-tokenizer '%s'", type);
}

static int load_decoder(Load *l, const cJSON *j, const char *path) {
    const char *type;
    char p[200];
    if (jtype(l, j, path, &type) != 0) return -1;
    HfTokenizer *hf = l->hf;
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr;
        if (jarray(l, j, path, "decoders", &arr) != 0) return -1;
        int i = 0;
        for (const cJSON *c = arr->child; c; c = c->next, i++) {
            if (load_decoder(l, c, sub_index(p, sizeof p, path, "decoders", i)) != 0) return -1;
        }
        return 0;
    }
    if (!strcmp(type, "Replace")) {
        const char *content;
        if (jstr(l, j, path, "content", 1, &content) != 0) return -1;
        Step *s = add_step(l, &hf->dec, path, STEP_REPLACE);
        if (!s || dup_text(l, s, content) != 0) return -1;
        return load_pattern(l, j, path, &s->re);
    }
    if (!strcmp(type, "ByteLevel")) return add_step(l, &hf->dec, path, STEP_BYTE_LEVEL) ? 0 : -1;
    if (!strcmp(type, "ByteFallback")) {
        return add_step(l, &hf->dec, path, STEP_BYTE_FALLBACK) ? 0 : -1;
    }
    if (!strcmp(type, "Fuse")) return add_step(l, &hf->dec, path, STEP_FUSE) ? 0 : -1;
    if (!strcmp(type, "Strip")) {
        Step *s = add_step(l, &hf->dec, path, STEP_STRIP);
        if (!s || load_char(l, j, path, "content", " ", s) != 0) return -1;
        if (jint(l, j, path, "start", 0, INT_MAX, 0, &s->start) != 0) return -1;
        return jint(l, j, path, "stop", 0, INT_MAX, 0, &s->stop);
    }
    if (!strcmp(type, "Metaspace")) {
        Step *s = add_step(l, &hf->dec, path, STEP_METASPACE);
        return s ? load_metaspace(l, j, path, s) : -1;
    }
    return lfail(l, sub(p, sizeof p, path, "type"), "unsupported decoder '%s'", type);
}

/* Appends the ids of template items before "$A" to prefix and after it to suffix. */
static int load_template(Load *l, const cJSON *j, const char *path, IntVec *prefix,
                         IntVec *suffix) {
    char p[200], q[240], r[280];
    const cJSON *single, *specials = jget(j, "special_tokens");
    if (jarray(l, j, path, "single", &single) != 0) return -1;
    if (specials && jobject(l, specials, sub(p, sizeof p, path, "special_tokens")) != 0) return -1;
    int seen_a = 0, i = 0;
    IntVec pre = {0}, post = {0};
    int rc = -1;
    for (const cJSON *item = single->child; item; item = item->next, i++) {
        sub_index(p, sizeof p, path, "single", i);
        if (jobject(l, item, p) != 0) goto done;
        const cJSON *seq = jget(item, "Sequence"), *tok = jget(item, "SpecialToken");
        if (!seq == !tok) {
            lfail(l, p, "expected exactly one of \"Sequence\" and \"SpecialToken\"");
            goto done;
        }
        const char *name;
        if (seq) {
            sub(q, sizeof q, p, "Sequence");
            if (jobject(l, seq, q) != 0 || jstr(l, seq, q, "id", 1, &name) != 0) goto done;
            if (strcmp(name, "A") != 0 || seen_a) {
                lfail(l, q, "only one \"A\" sequence is supported in \"single\", found '%s'", name);
                goto done;
            }
            seen_a = 1;
            continue;
        }
        sub(q, sizeof q, p, "SpecialToken");
        if (jobject(l, tok, q) != 0 || jstr(l, tok, q, "id", 1, &name) != 0) goto done;
        const cJSON *def = specials ? cJSON_GetObjectItemCaseSensitive(specials, name) : NULL;
        if (!def) {
            lfail(l, q, "'%s' is not in %s.special_tokens", name, path);
            goto done;
        }
        snprintf(r, sizeof r, "%s.special_tokens.%s", path, name);
        const cJSON *ids;
        if (jobject(l, def, r) != 0 || jarray(l, def, r, "ids", &ids) != 0) goto done;
        int k = 0;
        for (const cJSON *x = ids->child; x; x = x->next, k++) {
            int id = 0;
            char s[320];
            snprintf(s, sizeof s, "%s.ids[%d]", r, k);
            if (jint_value(l, x, s, 0, HF_MAX_ID, &id) != 0) goto done;
            if (hf_intvec_push(seen_a ? &post : &pre, id) != 0) {
                oom(l);
                goto done;
            }
        }
    }
    if (!seen_a) {
        lfail(l, sub(p, sizeof p, path, "single"), "no \"A\" sequence");
        goto done;
    }
    /* A later processor wraps what the earlier ones produced. */
    for (size_t k = 0; k < prefix->len; k++) {
        if (hf_intvec_push(&pre, prefix->p[k]) != 0) goto out_of_memory;
    }
    for (size_t k = 0; k < post.len; k++) {
        if (hf_intvec_push(suffix, post.p[k]) != 0) goto out_of_memory;
    }
    free(prefix->p);
    *prefix = pre;
    pre = (IntVec){0};
    rc = 0;
    goto done;
out_of_memory:
    oom(l);
done:
    free(pre.p);
    free(post.p);
    return rc;
}

/* Bert/Roberta processors: cls before the text, sep after it, each a [token, id] pair. */
static int load_cls_sep(Load *l, const cJSON *j, const char *path, const char *key, IntVec *into,
                        int in_front) {
    char p[200], q[220];
    const cJSON *pair;
    if (jarray(l, j, path, key, &pair) != 0) return -1;
    sub(p, sizeof p, path, key);
    if (cJSON_GetArraySize(pair) != 2 || !cJSON_IsString(pair->child)) {
        return lfail(l, p, "expected a [token, id] pair");
    }
    int id = 0;
    if (jint_value(l, pair->child->next, sub_index(q, sizeof q, p, "", 1), 0, HF_MAX_ID, &id) != 0)
        return -1;
    if (!in_front) return hf_intvec_push(into, id) == 0 ? 0 : oom(l);
    if (hf_intvec_push(into, id) != 0) return oom(l);
    memmove(into->p + 1, into->p, (into->len - 1) * sizeof *into->p);
    into->p[0] = id;
    return 0;
}

static int load_post_processor(Load *l, const cJSON *j, const char *path) {
    const char *type;
    char p[200];
    if (jtype(l, j, path, &type) != 0) return -1;
    HfTokenizer *hf = l->hf;
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr;
        if (jarray(l, j, path, "processors", &arr) != 0) return -1;
        int i = 0;
        for (const cJSON *c = arr->child; c; c = c->next, i++) {
            if (load_post_processor(l, c, sub_index(p, sizeof p, path, "processors", i)) != 0)
                return -1;
        }
        return 0;
    }
    /* ByteLevel's post-processing only trims offsets, which encode does not return. */
    if (!strcmp(type, "ByteLevel")) return 0;
    if (!strcmp(type, "TemplateProcessing")) {
        return load_template(l, j, path, &hf->prefix, &hf->suffix);
    }
    if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
        if (load_cls_sep(l, j, path, "cls", &hf->prefix, 1) != 0) return -1;
        return load_cls_sep(l, j, path, "sep", &hf->suffix, 0);
    }
    return lfail(l, sub(p, sizeof p, path, "type"), "unsupported post-processor '%s'", type);
}

/* ---- the model ------------------------------------------------------------------------------- */

static int arena_add(Load *l, const char *s, size_t n, uint32_t *off) {
    StrBuf *a = &l->hf->arena;
    if (a->n + n + 1 > UINT32_MAX) return ck_fail(l->err, "%s: too much text", l->source);
    *off = (uint32_t)a->n;
    if (strbuf_put(a, s, n) != 0 || strbuf_put(a, "", 1) != 0) return oom(l);
    return 0;
}

static int load_vocab(Load *l, const cJSON *vocab) {
    HfTokenizer *hf = l->hf;
    char p[200], q[120];
    int max_id = -1, n = 0;
    for (const cJSON *it = vocab->child; it; it = it->next, n++) {
        double v = cJSON_IsNumber(it) ? it->valuedouble : -1;
        if (!(v == floor(v) && v >= 0 && v <= HF_MAX_ID)) {
            /* The message (and its path) only when something is wrong: 128k snprintf calls
             * would be a good part of the loading time. */
            int id = 0;
            snprintf(p, sizeof p, "model.vocab[%s]",
                     quote(q, sizeof q, it->string, strlen(it->string)));
            if (jint_value(l, it, p, 0, HF_MAX_ID, &id) != 0) return -1;
        }
        if ((int)v > max_id) max_id = (int)v;
    }
    hf->n_vocab = n;
    hf->n_model_ids = max_id + 1;
    size_t m = (size_t)hf->n_model_ids;
    hf->voff = malloc((m ? m : 1) * sizeof *hf->voff);
    hf->vlen = malloc((m ? m : 1) * sizeof *hf->vlen);
    if (!hf->voff || !hf->vlen || hf_strtab_init(&hf->vocab, (size_t)n) != 0) return oom(l);
    for (size_t i = 0; i < m; i++) hf->vlen[i] = -1;
    for (const cJSON *it = vocab->child; it; it = it->next) {
        int id = (int)it->valuedouble;
        size_t len = strlen(it->string);
        if (hf->vlen[id] >= 0) {
            char q2[120];
            return lfail(l, "model.vocab", "%s and %s both have id %d",
                         quote(q, sizeof q, hf_arena_str(hf, hf->voff[id]), (size_t)hf->vlen[id]),
                         quote(q2, sizeof q2, it->string, len), id);
        }
        size_t slot = hf_strtab_slot(&hf->vocab, hf->arena.p, hf->voff, hf->vlen, it->string, len);
        if (hf->vocab.slots[slot] >= 0) {
            return lfail(l, "model.vocab", "the token %s appears twice",
                         quote(q, sizeof q, it->string, len));
        }
        if (arena_add(l, it->string, len, &hf->voff[id]) != 0) return -1;
        hf->vlen[id] = (int)len;
        hf->vocab.slots[slot] = id;
    }
    return 0;
}

/* Reads merge i into its two parts: "a b" (exactly one space, as the reference splits it) or
 * ["a", "b"]. */
static int merge_parts(Load *l, const cJSON *item, int i, const char **a, size_t *alen,
                       const char **b, size_t *blen) {
    char p[80];
    if (cJSON_IsString(item)) {
        const char *s = item->valuestring, *space = strchr(s, ' ');
        if (!space || strchr(space + 1, ' ')) {
            snprintf(p, sizeof p, "model.merges[%d]", i);
            return lfail(l, p, "expected \"a b\" with exactly one space");
        }
        *a = s;
        *alen = (size_t)(space - s);
        *b = space + 1;
        *blen = strlen(*b);
        return 0;
    }
    if (cJSON_IsArray(item) && cJSON_GetArraySize(item) == 2 && cJSON_IsString(item->child) &&
        cJSON_IsString(item->child->next)) {
        *a = item->child->valuestring;
        *alen = strlen(*a);
        *b = item->child->next->valuestring;
        *blen = strlen(*b);
        return 0;
    }
    snprintf(p, sizeof p, "model.merges[%d]", i);
    return lfail(l, p, "expected a string \"a b\" or a pair [\"a\", \"b\"], found %s", jkind(item));
}

static int load_merges(Load *l, const cJSON *merges) {
    HfTokenizer *hf = l->hf;
    PairTable *t = &hf->merges;
    int n = cJSON_GetArraySize(merges);
    size_t cap = 16;
    int bits = 4;
    while (cap < 2 * (size_t)n) {
        cap *= 2;
        bits++;
    }
    t->keys = malloc(cap * sizeof *t->keys);
    t->rank = malloc(cap * sizeof *t->rank);
    t->merged = malloc(cap * sizeof *t->merged);
    if (!t->keys || !t->rank || !t->merged) return oom(l);
    for (size_t i = 0; i < cap; i++) t->keys[i] = UINT64_MAX;
    t->mask = cap - 1;
    t->shift = 64 - bits;
    StrBuf concat = {0};
    int rank = 0, rc = -1;
    for (const cJSON *item = merges->child; item; item = item->next, rank++) {
        const char *a = NULL, *b = NULL;
        size_t alen = 0, blen = 0;
        char p[80], q[120];
        if (merge_parts(l, item, rank, &a, &alen, &b, &blen) != 0) goto done;
        int ida = hf_vocab_find(hf, a, alen), idb = hf_vocab_find(hf, b, blen);
        if (ida < 0 || idb < 0) {
            snprintf(p, sizeof p, "model.merges[%d]", rank);
            lfail(l, p, "%s is not in model.vocab",
                  ida < 0 ? quote(q, sizeof q, a, alen) : quote(q, sizeof q, b, blen));
            goto done;
        }
        strbuf_clear(&concat);
        if (strbuf_put(&concat, a, alen) != 0 || strbuf_put(&concat, b, blen) != 0) {
            oom(l);
            goto done;
        }
        int merged = hf_vocab_find(hf, hf_bytes(&concat), concat.n);
        if (merged < 0) {
            snprintf(p, sizeof p, "model.merges[%d]", rank);
            lfail(l, p, "the merged token %s is not in model.vocab",
                  quote(q, sizeof q, hf_bytes(&concat), concat.n));
            goto done;
        }
        if (alen > 0 && blen >= 3 && !memcmp(b, HF_SPACE_MARK, 3) &&
            (alen < 3 || memcmp(a + alen - 3, HF_SPACE_MARK, 3) != 0)) {
            hf->merge_into_space = 1;
        }
        /* A repeated pair takes the later rank, as the reference's map does. */
        uint64_t key = (uint64_t)(uint32_t)ida << 32 | (uint32_t)idb;
        size_t h = hf_pair_slot(t, key);
        while (t->keys[h] != UINT64_MAX && t->keys[h] != key) h = (h + 1) & t->mask;
        t->keys[h] = key;
        t->rank[h] = rank;
        t->merged[h] = merged;
    }
    rc = 0;
done:
    strbuf_free(&concat);
    return rc;
}

static int load_model(Load *l, const cJSON *model) {
    HfTokenizer *hf = l->hf;
    if (!model) return lfail(l, "model", "missing");
    if (jobject(l, model, "model") != 0) return -1;
    const char *type, *s;
    if (jstr(l, model, "model", "type", 0, &type) != 0) return -1;
    /* GPT-2's file has no "type"; the reference then recognises BPE by its fields. */
    if (type && strcmp(type, "BPE") != 0) {
        return lfail(l, "model.type", "unsupported model type '%s'", type);
    }
    const cJSON *dropout = jget(model, "dropout");
    if (dropout && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0.0)) {
        return lfail(l, "model.dropout", "unsupported: BPE dropout makes encoding random");
    }
    static const char *const AFFIXES[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        if (jstr(l, model, "model", AFFIXES[i], 0, &s) != 0) return -1;
        if (s && *s) {
            char p[80];
            return lfail(l, sub(p, sizeof p, "model", AFFIXES[i]), "unsupported BPE option '%s'",
                         s);
        }
    }
    const cJSON *vocab = jget(model, "vocab"), *merges;
    if (!vocab) return lfail(l, "model.vocab", "missing");
    if (jobject(l, vocab, "model.vocab") != 0) return -1;
    if (jarray(l, model, "model", "merges", &merges) != 0) return -1;
    if (jbool(l, model, "model", "fuse_unk", 0, &hf->fuse_unk) != 0 ||
        jbool(l, model, "model", "byte_fallback", 0, &hf->byte_fallback) != 0 ||
        jbool(l, model, "model", "ignore_merges", 0, &hf->ignore_merges) != 0) {
        return -1;
    }
    if (load_vocab(l, vocab) != 0 || load_merges(l, merges) != 0) return -1;
    hf->unk_id = -1;
    if (jstr(l, model, "model", "unk_token", 0, &s) != 0) return -1;
    if (s) {
        hf->unk_id = hf_vocab_find(hf, s, strlen(s));
        char q[120];
        if (hf->unk_id < 0) {
            return lfail(l, "model.unk_token", "%s is not in model.vocab",
                         quote(q, sizeof q, s, strlen(s)));
        }
    }
    for (int cp = 0; cp < HF_SMALL_CP; cp++) {
        char tmp[4];
        size_t n = utf8_encode((uint32_t)cp, tmp);
        hf->small_id[cp] = hf_vocab_find(hf, tmp, n);
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        hf->byte_id[b] = hf_vocab_find(hf, name, 6);
    }
    return 0;
}

/* ---- added tokens ---------------------------------------------------------------------------- */

/* The reference decides single_word with Rust regex's \w, which is narrower than PCRE2's
 * (no other numbers such as '½' or '²'). */
static const char RUST_WORD_CLASS[] = "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]";

/* Reads added_tokens[i] (it) and, unless its content was listed before, adds it to
 * hf->added. *max_added is the highest id so far (-1 at first). */
static int load_added_token(Load *l, const cJSON *it, int i, int *max_added) {
    HfTokenizer *hf = l->hf;
    char p[80], q[120];
    snprintf(p, sizeof p, "added_tokens[%d]", i);
    AddedToken *a = &hf->added[hf->n_added];
    const char *content;
    int id, flag;
    if (jobject(l, it, p) != 0 || jstr(l, it, p, "content", 1, &content) != 0) return -1;
    if (!cJSON_GetObjectItemCaseSensitive(it, "id")) return lfail(l, p, "no \"id\"");
    if (jint(l, it, p, "id", 0, HF_MAX_ID, -1, &id) != 0) return -1;
    if (!*content) return lfail(l, p, "the content is empty");
    if (jbool(l, it, p, "special", 0, &flag) != 0) return -1;
    a->special = (unsigned char)flag;
    if (jbool(l, it, p, "single_word", 0, &flag) != 0) return -1;
    a->single_word = (unsigned char)flag;
    if (jbool(l, it, p, "lstrip", 0, &flag) != 0) return -1;
    a->lstrip = (unsigned char)flag;
    if (jbool(l, it, p, "rstrip", 0, &flag) != 0) return -1;
    a->rstrip = (unsigned char)flag;
    if (jbool(l, it, p, "normalized", 1, &flag) != 0) return -1;
    a->normalized = (unsigned char)flag;
    size_t len = strlen(content);
    size_t slot =
        hf_strtab_slot(&hf->added_table, hf->arena.p, hf->added_off, hf->added_len, content, len);
    /* The reference gives an added token the model's id when the model has the token,
     * otherwise the next id after the model vocabulary and the added tokens so far; the
     * file's ids must agree, or ids would differ from the reference's. */
    int expect;
    if (hf->added_table.slots[slot] >= 0) {
        expect = hf->added[hf->added_table.slots[slot]].id;
    } else if ((expect = hf_vocab_find(hf, content, len)) < 0) {
        expect = *max_added < 0                                    ? hf->n_vocab
                 : (*max_added >= hf->n_vocab || hf->n_vocab == 0) ? *max_added + 1
                                                                   : hf->n_vocab;
    }
    if (id != expect) {
        return lfail(l, p,
                     "%s has id %d, but the tokenizers library gives it id %d (the model's id of "
                     "the token, else the next id after the vocabulary and the earlier added "
                     "tokens)",
                     quote(q, sizeof q, content, len), id, expect);
    }
    if (id < hf->n_model_ids && hf->vlen[id] >= 0 &&
        ((size_t)hf->vlen[id] != len || memcmp(hf_arena_str(hf, hf->voff[id]), content, len))) {
        return lfail(l, p, "id %d is the model's token %s", id,
                     quote(q, sizeof q, hf_arena_str(hf, hf->voff[id]), (size_t)hf->vlen[id]));
    }
    if (id > *max_added) *max_added = id;
    if (hf->added_table.slots[slot] >= 0) return 0; /* listed twice: the first one counts */
    if (arena_add(l, content, len, &a->off) != 0) return -1;
    a->len = (int)len;
    a->id = id;
    hf->added_off[hf->n_added] = a->off;
    hf->added_len[hf->n_added] = a->len;
    hf->added_table.slots[slot] = hf->n_added++;
    return 0;
}

/* Puts the added tokens into the two tries: special tokens before the others (the
 * reference's order, which decides only between equal patterns); normalized ones are matched
 * in normalized text, so their pattern is the normalized content. */
static int add_patterns(Load *l) {
    HfTokenizer *hf = l->hf;
    StrBuf nb[2] = {{0}, {0}};
    int rc = -1;
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < hf->n_added; k++) {
            AddedToken *a = &hf->added[k];
            if (a->special != (pass == 0)) continue;
            const char *pat = hf_arena_str(hf, a->off);
            size_t plen = (size_t)a->len;
            if (a->normalized &&
                hf_normalize(hf, l->md, &l->tmp, pat, plen, nb, &pat, &plen, l->err) != 0) {
                goto done;
            }
            if (hf_trie_add(a->normalized ? &hf->norm_trie : &hf->raw_trie, pat, plen, k) != 0) {
                oom(l);
                goto done;
            }
            if (a->single_word && !hf->word_re.code) {
                char msg[260];
                if (hf_regex_compile(&hf->word_re, RUST_WORD_CLASS, 0, msg, sizeof msg) != 0) {
                    lfail(l, "added_tokens", "cannot compile the word class: %s", msg);
                    goto done;
                }
            }
        }
    }
    rc = 0;
done:
    strbuf_free(&nb[0]);
    strbuf_free(&nb[1]);
    return rc;
}

static int load_added_tokens(Load *l, const cJSON *arr) {
    HfTokenizer *hf = l->hf;
    size_t n = (size_t)cJSON_GetArraySize(arr);
    hf->added = calloc(n > 0 ? n : 1, sizeof *hf->added);
    hf->added_off = malloc((n > 0 ? n : 1) * sizeof *hf->added_off);
    hf->added_len = malloc((n > 0 ? n : 1) * sizeof *hf->added_len);
    if (!hf->added || !hf->added_off || !hf->added_len ||
        hf_strtab_init(&hf->added_table, n) != 0) {
        return oom(l);
    }
    int max_added = -1, i = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        if (load_added_token(l, it, i, &max_added) != 0) return -1;
    }
    return add_patterns(l);
}

/* ---- tokenizer_config.json ------------------------------------------------------------------- */

/* The id of a token named by its content: an added token first, else the model's; -1. */
static int token_id_by_content(const HfTokenizer *hf, const char *s) {
    size_t len = strlen(s);
    int k = hf_added_find(hf, s, len);
    return k >= 0 ? hf->added[k].id : hf_vocab_find(hf, s, len);
}

/* bos_token / eos_token: a string, or an object with "content" (an AddedToken); NULL when
 * absent. */
static int config_token(Load *l, const cJSON *cfg, const char *key, const char **name) {
    const cJSON *j = jget(cfg, key);
    *name = NULL;
    if (!j) return 0;
    if (cJSON_IsString(j)) {
        *name = j->valuestring;
        return 0;
    }
    if (cJSON_IsObject(j)) return jstr(l, j, key, "content", 1, name);
    return lfail(l, key, "expected a string or an object with \"content\", found %s", jkind(j));
}

static int load_config(Load *l, Tokenizer *t, const char *text) {
    HfTokenizer *hf = l->hf;
    cJSON *cfg = parse_json(l, text, strlen(text));
    if (!cfg) return -1;
    int rc = -1, add_bos = -1, add_eos = -1;
    const char *bos_name, *eos_name;
    if (jbool(l, cfg, "", "add_bos_token", -1, &add_bos) != 0 ||
        jbool(l, cfg, "", "add_eos_token", -1, &add_eos) != 0 ||
        config_token(l, cfg, "bos_token", &bos_name) != 0 ||
        config_token(l, cfg, "eos_token", &eos_name) != 0) {
        goto done;
    }
    int bos = bos_name ? token_id_by_content(hf, bos_name) : -1;
    int eos = eos_name ? token_id_by_content(hf, eos_name) : -1;
    if (bos >= 0) t->bos_id = bos;
    if (eos >= 0) t->eos_id = eos;
    char q[120];
    if (add_bos >= 0) {
        hf->prefix.len = 0;
        if (add_bos) {
            /* A bos_token that names no token is an error here, not a fallback to the
             * template's BOS: the config would be asking for a token that does not exist. */
            if (t->bos_id < 0 || (bos_name && bos < 0)) {
                lfail(l, "add_bos_token",
                      bos_name ? "true, but bos_token %s is not a token"
                               : "true, but there is "
                                 "no bos_token%s",
                      bos_name ? quote(q, sizeof q, bos_name, strlen(bos_name)) : "");
                goto done;
            }
            if (hf_intvec_push(&hf->prefix, t->bos_id) != 0) {
                oom(l);
                goto done;
            }
        }
    }
    if (add_eos >= 0) {
        hf->suffix.len = 0;
        if (add_eos) {
            if (t->eos_id < 0 || (eos_name && eos < 0)) {
                lfail(l, "add_eos_token",
                      eos_name ? "true, but eos_token %s is not a token"
                               : "true, but there is "
                                 "no eos_token%s",
                      eos_name ? quote(q, sizeof q, eos_name, strlen(eos_name)) : "");
                goto done;
            }
            if (hf_intvec_push(&hf->suffix, t->eos_id) != 0) {
                oom(l);
                goto done;
            }
        }
    }
    rc = 0;
done:
    cJSON_Delete(cfg);
    return rc;
}

/* ---- per-id tables --------------------------------------------------------------------------- */

/* A byte-level token's piece: its characters mapped back to their bytes, into out. Returns 1,
 * or 0 when a character is outside the byte alphabet (the piece is then the token itself), or
 * -1 when out of memory. decode_steps with only the token would give its bytes lossily at the
 * end, which a piece must not be, hence this mapping. */
static int byte_level_piece(const HfTokenizer *hf, const char *tok, size_t len, StrBuf *out) {
    strbuf_clear(out);
    for (size_t i = 0; i < len;) {
        size_t cl = utf8_char_len((unsigned char)tok[i]);
        uint32_t cp = utf8_decode((const unsigned char *)tok + i, cl);
        if (cp >= HF_BYTE_LEVEL_CP_END || hf->bl_dec[cp] < 0) return 0;
        char b = (char)hf->bl_dec[cp];
        if (strbuf_put(out, &b, 1) != 0) return -1;
        i += cl;
    }
    return 1;
}

/* Applies the per-token decoder steps (Replace, Metaspace's replacement) to the token in
 * *cur, swapping *cur and *next as it goes; stops at a ByteFallback step that meets a <0xNN>
 * token, setting *pbyte to its byte. */
static int stepped_piece(Load *l, StrBuf **cur, StrBuf **next, short *pbyte) {
    const HfTokenizer *hf = l->hf;
    for (int k = 0; k < hf->dec.n; k++) {
        const Step *s = &hf->dec.p[k];
        if (s->kind == STEP_REPLACE || s->kind == STEP_METASPACE) {
            const char *one = hf_bytes(*cur);
            size_t one_len = (*cur)->n;
            strbuf_clear(*next);
            if (s->kind == STEP_REPLACE) {
                if (hf_replace_all(&s->re, l->md, &l->tmp, one, one_len, s->text, s->text_len,
                                   *next, l->err) != 0)
                    return -1;
            } else {
                for (size_t i = 0; i < one_len;) {
                    size_t cl = utf8_char_len((unsigned char)one[i]);
                    int hit = cl == s->rep_len && !memcmp(one + i, s->rep, cl);
                    if (strbuf_put(*next, hit ? " " : one + i, hit ? 1 : cl) != 0) return oom(l);
                    i += cl;
                }
            }
            StrBuf *tmp = *cur;
            *cur = *next;
            *next = tmp;
        } else if (s->kind == STEP_BYTE_FALLBACK) {
            int byte;
            if (hf_is_byte_token(hf_bytes(*cur), (*cur)->n, &byte)) {
                *pbyte = (short)byte;
                return 0;
            }
        }
    }
    return 0;
}

/* The streaming piece of each id: the token with the per-token decoder steps applied
 * (Replace, Metaspace's replacement, ByteFallback's <0xNN> -> byte), or for byte-level
 * decoders the token's raw bytes. */
static int build_pieces(Load *l, Tokenizer *t) {
    HfTokenizer *hf = l->hf;
    size_t n = (size_t)hf->n_ids;
    hf->poff = malloc(n * sizeof *hf->poff);
    hf->plen = malloc(n * sizeof *hf->plen);
    hf->pbyte = malloc(n * sizeof *hf->pbyte);
    if (!hf->poff || !hf->plen || !hf->pbyte) return oom(l);
    int byte_level = 0;
    for (int k = 0; k < hf->dec.n; k++) {
        const Step *s = &hf->dec.p[k];
        if (s->kind == STEP_BYTE_LEVEL) byte_level = 1;
        if ((s->kind == STEP_STRIP && s->start > 0 && !strcmp(s->rep, " ")) ||
            (s->kind == STEP_METASPACE && s->scheme != PREPEND_NEVER)) {
            hf->strip_first = 1;
        }
    }
    StrBuf bufs[2] = {{0}, {0}};
    int longest = 0, rc = -1;
    for (size_t id = 0; id < n; id++) {
        hf->plen[id] = -1;
        hf->pbyte[id] = -1;
        if (hf->dlen[id] < 0) continue;
        const char *tok = hf_arena_str(hf, hf->doff[id]);
        size_t len = (size_t)hf->dlen[id];
        StrBuf *cur = &bufs[0], *next = &bufs[1];
        strbuf_clear(cur);
        if (strbuf_put(cur, tok, len) != 0) goto out_of_memory;
        if (byte_level) {
            int all = byte_level_piece(hf, tok, len, next);
            if (all < 0) goto out_of_memory;
            if (all) cur = next;
        } else if (stepped_piece(l, &cur, &next, &hf->pbyte[id]) != 0) {
            goto done;
        }
        if (cur->n > (size_t)INT_MAX / 2) goto out_of_memory;
        if (arena_add(l, hf_bytes(cur), cur->n, &hf->poff[id]) != 0) goto done;
        hf->plen[id] = (int)cur->n;
        if (hf->pbyte[id] >= 0) hf->plen[id] = 1;
        if (hf->plen[id] > longest) longest = hf->plen[id];
    }
    t->max_piece_len = longest;
    rc = 0;
    goto done;
out_of_memory:
    oom(l);
done:
    strbuf_free(&bufs[0]);
    strbuf_free(&bufs[1]);
    return rc;
}

static int build_id_tables(Load *l, Tokenizer *t) {
    HfTokenizer *hf = l->hf;
    int n = hf->n_model_ids;
    for (int k = 0; k < hf->n_added; k++) {
        if (hf->added[k].id >= n) n = hf->added[k].id + 1;
    }
    if (n == 0) return lfail(l, "model.vocab", "no tokens");
    hf->n_ids = n;
    hf->doff = malloc((size_t)n * sizeof *hf->doff);
    hf->dlen = malloc((size_t)n * sizeof *hf->dlen);
    hf->special = calloc((size_t)n, 1);
    if (!hf->doff || !hf->dlen || !hf->special) return oom(l);
    for (int id = 0; id < n; id++) {
        int model = id < hf->n_model_ids && hf->vlen[id] >= 0;
        hf->doff[id] = model ? hf->voff[id] : 0;
        hf->dlen[id] = model ? hf->vlen[id] : -1;
    }
    StrBuf nb[2] = {{0}, {0}};
    for (int k = 0; k < hf->n_added; k++) {
        const AddedToken *a = &hf->added[k];
        hf->doff[a->id] = a->off;
        hf->dlen[a->id] = a->len;
        if (!a->normalized || hf->norm.n == 0) continue;
        /* The reference decodes a normalized added token as its normalized content, which
         * the decoder then undoes (TinyLlama: "</s>" -> "▁</s>" -> " </s>"). */
        const char *norm;
        size_t norm_len;
        int rc = hf_normalize(hf, l->md, &l->tmp, hf_arena_str(hf, a->off), (size_t)a->len, nb,
                              &norm, &norm_len, l->err);
        uint32_t off = 0;
        if (rc == 0) rc = norm_len > (size_t)INT_MAX / 2 ? oom(l) : 0;
        if (rc == 0) rc = arena_add(l, norm, norm_len, &off);
        if (rc != 0) {
            strbuf_free(&nb[0]);
            strbuf_free(&nb[1]);
            return -1;
        }
        hf->doff[a->id] = off;
        hf->dlen[a->id] = (int)norm_len;
    }
    strbuf_free(&nb[0]);
    strbuf_free(&nb[1]);
    /* skip_special_tokens drops a token when its string is the content of a special added
     * token: the reference tests the string, so a normalized special token ("▁</s>") stays. */
    for (int id = 0; id < n; id++) {
        if (hf->dlen[id] < 0) continue;
        int k = hf_added_find(hf, hf_arena_str(hf, hf->doff[id]), (size_t)hf->dlen[id]);
        hf->special[id] = k >= 0 && hf->added[k].special;
    }
    /* The post-processor's ids must be tokens, or decode and the model would meet ids that
     * do not exist. */
    const IntVec *sides[2] = {&hf->prefix, &hf->suffix};
    for (int s = 0; s < 2; s++) {
        for (size_t k = 0; k < sides[s]->len; k++) {
            int id = sides[s]->p[k];
            if (id >= n || hf->dlen[id] < 0) {
                return lfail(l, "post_processor", "id %d is not a token of the vocabulary", id);
            }
        }
    }
    t->vocab_size = n;
    t->bos_id = hf->prefix.len > 0 ? hf->prefix.p[0] : -1;
    t->eos_id = hf->suffix.len > 0 ? hf->suffix.p[0] : -1;
    return 0;
}

/* Reads the sections of tokenizer.json in the order their dependencies need. */
static int load_sections(Load *l, const cJSON *root) {
    HfTokenizer *hf = l->hf;
    const cJSON *j;
    if (load_model(l, jget(root, "model")) != 0) return -1;
    /* The normalizer comes first: normalized added tokens are matched by normalized text. */
    if ((j = jget(root, "normalizer")) && load_normalizer(l, j, "normalizer") != 0) return -1;
    if ((j = jget(root, "added_tokens"))) {
        if (!cJSON_IsArray(j))
            return lfail(l, "added_tokens", "expected an array, found %s", jkind(j));
        if (load_added_tokens(l, j) != 0) return -1;
    } else if (hf_strtab_init(&hf->added_table, 0) != 0) {
        return oom(l);
    }
    if ((j = jget(root, "pre_tokenizer")) && load_pre_tokenizer(l, j, "pre_tokenizer") != 0)
        return -1;
    /* Without a pre-tokenizer (Llama 2) a whole text is one word. When no merge joins a token
     * that does not end in "▁" to one that starts with "▁", no merge crosses the point before
     * such a "▁", so merging the stretches between those points one by one gives the same
     * tokens as merging the whole word (each stretch sees the same merges in the same order),
     * with small heaps that stay in cache. "▁" must be a token, or fused <unk>s could span
     * the point. */
    hf->split_at_space =
        hf->pre.n == 0 && !hf->merge_into_space && hf_vocab_find(hf, HF_SPACE_MARK, 3) >= 0;
    if ((j = jget(root, "post_processor")) && load_post_processor(l, j, "post_processor") != 0)
        return -1;
    if ((j = jget(root, "decoder"))) {
        hf->has_decoder = 1;
        if (load_decoder(l, j, "decoder") != 0) return -1;
    }
    if (jget(root, "truncation"))
        return lfail(l, "truncation", "unsupported: truncation must be null");
    if ((j = jget(root, "padding"))) {
        /* Padding to the longest of a batch changes nothing for one text. */
        const cJSON *strategy = jget(j, "strategy");
        if (!cJSON_IsString(strategy) || strcmp(strategy->valuestring, "BatchLongest") != 0)
            return lfail(l, "padding", "unsupported: padding must be null or BatchLongest");
    }
    return 0;
}

/* load_config with messages that name the tokenizer_config.json beside the tokenizer.json. */
static int load_config_beside(Load *l, Tokenizer *t, const char *config_text) {
    char config_source[600];
    const char *slash = strrchr(l->source, '/');
    snprintf(config_source, sizeof config_source, "%.*stokenizer_config.json",
             slash ? (int)(slash - l->source + 1) : 0, l->source);
    const char *saved = l->source;
    l->source = config_source;
    int rc = load_config(l, t, config_text);
    l->source = saved;
    return rc;
}

int hf_load(Tokenizer *t, const char *json_text, size_t json_len, const char *config_text,
            const char *source, CkError *err) {
    memset(t, 0, sizeof *t);
    Load l = {.source = source ? source : "tokenizer.json", .err = err};
    if (!json_text) return ck_fail(err, "%s: no data", l.source);
    cJSON *root = parse_json(&l, json_text, json_len);
    if (!root) return -1;
    l.hf = calloc(1, sizeof *l.hf);
    l.md = pcre2_match_data_create(1, NULL);
    int rc = -1;
    if (!l.hf || !l.md) {
        oom(&l);
        goto done;
    }
    hf_init_byte_level(l.hf);
    if (load_sections(&l, root) != 0 || build_id_tables(&l, t) != 0) goto done;
    if (config_text && load_config_beside(&l, t, config_text) != 0) goto done;
    if (build_pieces(&l, t) != 0) goto done;
    t->kind = TOKENIZER_HF_BPE;
    t->hf = l.hf;
    l.hf = NULL;
    rc = 0;
done:
    cJSON_Delete(root);
    pcre2_match_data_free(l.md);
    free(l.tmp.p);
    hf_free(l.hf);
    if (rc != 0) memset(t, 0, sizeof *t);
    return rc;
}
