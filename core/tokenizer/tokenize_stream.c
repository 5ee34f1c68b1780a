/* tokenize_stream.c — see tokenize_stream.h. */
#include "tokenizer/tokenize_stream.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_strict.h"
#include "util/utf8.h"

void tokenize_stream_options_init(TokenizeStreamOptions *o) {
    *o = (TokenizeStreamOptions){.source = "stdin"};
}

/* True when a JSON string in the line holds the escape \u0000: cJSON would cut the string
 * there and the text would silently lose its end. */
static int has_escaped_nul(const char *s, size_t n) {
    int in_string = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_string) {
            in_string = s[i] == '"';
        } else if (s[i] == '"') {
            in_string = 0;
        } else if (s[i] == '\\' && i + 1 < n) {
            if (s[i + 1] == 'u' && i + 5 < n && memcmp(s + i + 2, "0000", 4) == 0) return 1;
            i++;
        }
    }
    return 0;
}

/* Writes s[0..n) as a JSON string; each byte that does not start a well-formed UTF-8
 * character becomes one U+FFFD. */
static void put_json_string(FILE *out, const char *s, size_t n) {
    fputc('"', out);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            fputc('\\', out);
            fputc(c, out);
            i++;
        } else if (c == '\n') {
            fputs("\\n", out);
            i++;
        } else if (c == '\r') {
            fputs("\\r", out);
            i++;
        } else if (c == '\t') {
            fputs("\\t", out);
            i++;
        } else if (c < 0x20) {
            fprintf(out, "\\u%04x", c);
            i++;
        } else {
            int len = utf8_scan((const unsigned char *)s + i, n - i);
            if (len > 0) {
                fwrite(s + i, 1, (size_t)len, out);
                i += (size_t)len;
            } else {
                fputs("\\ufffd", out);
                i++;
            }
        }
    }
    fputc('"', out);
}

/* Parses one line as exactly one JSON value; NULL with err saying why. */
static cJSON *parse_line(const char *line, size_t n, CkError *err) {
    JsonStrictError where;
    cJSON *row = json_parse_exact(line, n, &where);
    if (!row && where.after_value)
        ck_fail(err, "content after the JSON value at column %zu", where.offset + 1);
    else if (!row)
        ck_fail(err, "not valid JSON");
    return row;
}

/* Encodes one input line; returns 0, or -1 after writing the reason into err. */
static int encode_line(const Tokenizer *tok, const TokenizeStreamOptions *o, const char *line,
                       size_t n, FILE *out, CkError *err) {
    if (has_escaped_nul(line, n)) return ck_fail(err, "\\u0000 in the text is not supported");
    cJSON *row = parse_line(line, n, err);
    if (!row) return -1;
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(row, "text");
    int rc = -1;
    if (!cJSON_IsObject(row) || !cJSON_IsString(text)) {
        ck_fail(err, "expected an object with a \"text\" string");
        goto done;
    }
    int *ids = NULL, n_ids = 0;
    if (tokenizer_encode_special(tok, text->valuestring, !o->no_special, &ids, &n_ids, err) != 0)
        goto done;
    fputc('[', out);
    for (int i = 0; i < n_ids; i++) fprintf(out, i ? ",%d" : "%d", ids[i]);
    fputs("]\n", out);
    free(ids);
    rc = 0;
done:
    cJSON_Delete(row);
    return rc;
}

/* Reads the ids of one decode line (an array, or an object with "ids") into a malloc'd
 * array; returns their count, or -1 with err filled. */
static int parse_ids(const Tokenizer *tok, const cJSON *row, int **ids, CkError *err) {
    const cJSON *arr = cJSON_IsObject(row) ? cJSON_GetObjectItemCaseSensitive(row, "ids") : row;
    if (!cJSON_IsArray(arr))
        return ck_fail(err, "expected an array of ids or an object with an \"ids\" array");
    int count = cJSON_GetArraySize(arr), k = 0;
    *ids = malloc((size_t)(count > 0 ? count : 1) * sizeof **ids);
    if (!*ids) return ck_fail(err, "out of memory");
    for (const cJSON *x = arr->child; x; x = x->next, k++) {
        double v = cJSON_IsNumber(x) ? x->valuedouble : NAN;
        if (!(v == floor(v)) || v < 0 || v >= tok->vocab_size) {
            char shown[64];
            if (cJSON_IsNumber(x)) {
                snprintf(shown, sizeof shown, "%g", v);
            } else {
                snprintf(shown, sizeof shown, "a non-number");
            }
            free(*ids);
            *ids = NULL;
            return ck_fail(err, "ids[%d] is %s, not an id from 0 to %d", k, shown,
                           tok->vocab_size - 1);
        }
        (*ids)[k] = (int)v;
    }
    return count;
}

/* Decodes one input line. */
static int decode_line(const Tokenizer *tok, const TokenizeStreamOptions *o, const char *line,
                       size_t n, FILE *out, CkError *err) {
    cJSON *row = parse_line(line, n, err);
    if (!row) return -1;
    int *ids = NULL;
    int count = parse_ids(tok, row, &ids, err);
    cJSON_Delete(row);
    if (count < 0) return -1;
    size_t len;
    char *text = tokenizer_decode_special(tok, ids, count, o->no_special, &len);
    free(ids);
    if (!text) return ck_fail(err, "out of memory");
    fputs("{\"text\": ", out);
    put_json_string(out, text, len);
    fputs("}\n", out);
    free(text);
    return 0;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
    }
    return 1;
}

int tokenize_stream(const Tokenizer *t, FILE *in, FILE *out, const TokenizeStreamOptions *o,
                    CkError *err) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long line_no = 0;
    int rc = 0;
    while ((got = getline(&line, &cap, in)) >= 0) {
        line_no++;
        size_t n = (size_t)got;
        if (is_blank(line, n)) continue;
        rc =
            o->decode ? decode_line(t, o, line, n, out, err) : encode_line(t, o, line, n, out, err);
        if (rc != 0) {
            ck_wrap(err, "%s line %ld", o->source ? o->source : "stdin", line_no);
            break;
        }
    }
    free(line);
    if (fflush(out) != 0 || ferror(out)) {
        if (rc == 0) ck_fail(err, "cannot write the output");
        rc = -1;
    }
    return rc;
}
