/* cmd_tokenize.c — `cutkit tokenize`: JSON lines of text in, JSON arrays of ids out (or, with
 * --decode, arrays of ids in and {"text": ...} out). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "formats/embedded.h"
#include "tokenizer/tokenizer.h"

#define EMBEDDED_VOCAB 512

static struct {
    const char *tokenizer;
    int no_special, decode;
} opt;

static FlagSpec FLAGS[] = {
    {"tokenizer", FLAG_STRING, &opt.tokenizer, NULL, 0, -1,
     "tokenizer.json, a folder holding one, or a llama2.c tokenizer.bin; default: embedded"},
    {"no-special", FLAG_BOOL, &opt.no_special, NULL, 0, -1, "no BOS/EOS or other special tokens"},
    {"decode", FLAG_BOOL, &opt.decode, NULL, 0, -1, "read arrays of ids, write {\"text\": ...}"},
};

static const CommandSpec SPEC = {
    "tokenize",
    "encode or decode text, one JSON object per line",
    "[--tokenizer PATH] [--no-special] [--decode] < in.jsonl",
    "Encoding reads one JSON object with a \"text\" string per line and writes the array of\n"
    "ids, with the tokenizer's special tokens (e.g. BOS) unless --no-special. Decoding reads\n"
    "one array of ids (or an object with \"ids\") per line and writes {\"text\": ...}; special\n"
    "tokens are printed unless --no-special. Blank lines are skipped; a malformed line stops\n"
    "with its line number and exit status 1.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0]};

const CommandSpec *cmd_tokenize_spec(void) {
    return &SPEC;
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

/* Writes s[0..n) as a JSON string; bytes that are not UTF-8 (only a llama2.c tokenizer's
 * byte pieces can leave them) become U+FFFD so that the output stays valid JSON. */
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
        } else if (c < 0x80) {
            fputc(c, out);
            i++;
        } else {
            /* Copy one well-formed character, or replace one bad byte. */
            int len = c >= 0xC2 && c <= 0xDF   ? 2
                      : c >= 0xE0 && c <= 0xEF ? 3
                      : c >= 0xF0 && c <= 0xF4 ? 4
                                               : 0;
            int ok = len > 0 && (size_t)len <= n - i;
            for (int k = 1; ok && k < len; k++) ok = ((unsigned char)s[i + k] & 0xC0) == 0x80;
            if (ok && len == 3) {
                unsigned char d = (unsigned char)s[i + 1];
                ok = !(c == 0xE0 && d < 0xA0) && !(c == 0xED && d > 0x9F);
            }
            if (ok && len == 4) {
                unsigned char d = (unsigned char)s[i + 1];
                ok = !(c == 0xF0 && d < 0x90) && !(c == 0xF4 && d > 0x8F);
            }
            if (ok) {
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

/* Encodes one input line; returns 0, or -1 after writing the reason into err. */
static int encode_line(const Tokenizer *tok, const char *line, size_t n, CkError *err) {
    if (has_escaped_nul(line, n)) return ck_fail(err, "\\u0000 in the text is not supported");
    cJSON *row = cJSON_ParseWithLength(line, n);
    if (!row) return ck_fail(err, "not valid JSON");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(row, "text");
    int rc = -1;
    if (!cJSON_IsObject(row) || !cJSON_IsString(text)) {
        ck_fail(err, "expected an object with a \"text\" string");
        goto done;
    }
    int *ids = NULL, n_ids = 0;
    if (tokenizer_encode_special(tok, text->valuestring, !opt.no_special, &ids, &n_ids, err) != 0)
        goto done;
    putchar('[');
    for (int i = 0; i < n_ids; i++) printf(i ? ",%d" : "%d", ids[i]);
    fputs("]\n", stdout);
    free(ids);
    rc = 0;
done:
    cJSON_Delete(row);
    return rc;
}

/* Decodes one input line (an array of ids, or an object with "ids"). */
static int decode_line(const Tokenizer *tok, const char *line, size_t n, CkError *err) {
    cJSON *row = cJSON_ParseWithLength(line, n);
    if (!row) return ck_fail(err, "not valid JSON");
    const cJSON *arr = cJSON_IsObject(row) ? cJSON_GetObjectItemCaseSensitive(row, "ids") : row;
    int rc = -1, *ids = NULL;
    if (!cJSON_IsArray(arr)) {
        ck_fail(err, "expected an array of ids or an object with an \"ids\" array");
        goto done;
    }
    int count = cJSON_GetArraySize(arr), k = 0;
    ids = malloc((size_t)(count > 0 ? count : 1) * sizeof *ids);
    if (!ids) {
        ck_fail(err, "out of memory");
        goto done;
    }
    for (const cJSON *x = arr->child; x; x = x->next, k++) {
        double v = cJSON_IsNumber(x) ? x->valuedouble : NAN;
        if (!(v == floor(v)) || v < 0 || v >= tok->vocab_size) {
            char shown[64];
            if (cJSON_IsNumber(x)) {
                snprintf(shown, sizeof shown, "%g", v);
            } else {
                snprintf(shown, sizeof shown, "a non-number");
            }
            ck_fail(err, "ids[%d] is %s, not an id from 0 to %d", k, shown, tok->vocab_size - 1);
            goto done;
        }
        ids[k] = (int)v;
    }
    size_t len;
    char *text = tokenizer_decode_special(tok, ids, count, opt.no_special, &len);
    if (!text) {
        ck_fail(err, "out of memory");
        goto done;
    }
    fputs("{\"text\": ", stdout);
    put_json_string(stdout, text, len);
    fputs("}\n", stdout);
    free(text);
    rc = 0;
done:
    free(ids);
    cJSON_Delete(row);
    return rc;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
    }
    return 1;
}

int cmd_tokenize(int argc, char **argv) {
    char *positional[1];
    int n_positional;
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    Tokenizer tok;
    CkError err = {{0}};
    if (opt.tokenizer) {
        rc = tokenizer_open(&tok, opt.tokenizer, &err);
    } else {
        size_t size;
        const void *data = embedded_tokenizer(&size);
        rc = tokenizer_load_llama2c(&tok, data, size, EMBEDDED_VOCAB, &err);
    }
    if (rc != 0) {
        fprintf(stderr, "cutkit tokenize: %s\n", err.msg);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long line_no = 0;
    rc = 0;
    while ((got = getline(&line, &cap, stdin)) >= 0) {
        line_no++;
        size_t n = (size_t)got;
        if (is_blank(line, n)) continue;
        int ok = opt.decode ? decode_line(&tok, line, n, &err) : encode_line(&tok, line, n, &err);
        if (ok != 0) {
            fflush(stdout);
            fprintf(stderr, "cutkit tokenize: stdin line %ld: %s\n", line_no, err.msg);
            rc = 1;
            break;
        }
    }
    free(line);
    tokenizer_free(&tok);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "cutkit tokenize: cannot write the output\n");
        rc = 1;
    }
    return rc;
}
