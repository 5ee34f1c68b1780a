/* corpus.c — loading training text into token sequences. */
#include "datasets/corpus.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/json_strict.h"
#include "util/jsonl.h"

/* Growable packed sequences: token ids, their target flags and the offsets, grown together
 * (int arrays beside a byte array, so not a StrBuf). */
typedef struct {
    Corpus *c;
    const char *path; /* names the file in messages */
    size_t n_tokens, cap_tokens;
    size_t cap_seqs;
} Builder;

/* Appends one sequence; returns 0, or -1 with err set when out of memory or when the corpus
 * would outgrow the int offsets that index it. */
static int builder_add(Builder *b, const int *ids, const unsigned char *train, int n,
                       CkError *err) {
    Corpus *c = b->c;
    if ((size_t)n > (size_t)INT_MAX - b->n_tokens || c->n_seqs > INT_MAX - 2)
        return ck_fail(err, "%s: more than %d tokens or sequences; split the file", b->path,
                       INT_MAX);
    if (b->n_tokens + (size_t)n > b->cap_tokens) {
        size_t cap = b->cap_tokens ? b->cap_tokens : 4096;
        while (cap < b->n_tokens + (size_t)n) cap *= 2;
        int *tokens = realloc(c->tokens, cap * sizeof(int));
        if (tokens) c->tokens = tokens;
        unsigned char *tr = realloc(c->train, cap);
        if (tr) c->train = tr;
        if (!tokens || !tr) return ck_fail(err, "out of memory");
        b->cap_tokens = cap;
    }
    if ((size_t)c->n_seqs + 2 > b->cap_seqs) {
        size_t cap = b->cap_seqs ? 2 * b->cap_seqs : 256;
        int *offsets = realloc(c->offsets, cap * sizeof(int));
        if (!offsets) return ck_fail(err, "out of memory");
        c->offsets = offsets;
        b->cap_seqs = cap;
    }
    if (c->n_seqs == 0) c->offsets[0] = 0;
    memcpy(c->tokens + b->n_tokens, ids, (size_t)n * sizeof(int));
    memcpy(c->train + b->n_tokens, train, (size_t)n);
    b->n_tokens += (size_t)n;
    c->offsets[++c->n_seqs] = (int)b->n_tokens;
    if (n > c->max_len) c->max_len = n;
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Plain text: one long token stream cut into windows of seq_len, each led by BOS. */
static int load_text(Builder *b, const char *path, const char *text, const Tokenizer *t,
                     int seq_len, CkError *err) {
    int *ids = NULL, n = 0;
    if (tokenizer_encode(t, text, 0, 0, &ids, &n, err) != 0) return ck_wrap(err, "%s", path);
    int *window = malloc((size_t)seq_len * sizeof(int));
    unsigned char *train = malloc((size_t)seq_len);
    int rc = (window && train) ? 0 : ck_fail(err, "out of memory");
    if (rc == 0) {
        memset(train, 1, (size_t)seq_len);
        train[0] = 0; /* BOS is given, never predicted */
    }
    for (int start = 0; rc == 0 && start < n; start += seq_len - 1) {
        int len = n - start < seq_len - 1 ? n - start : seq_len - 1;
        window[0] = t->bos_id;
        memcpy(window + 1, ids + start, (size_t)len * sizeof(int));
        rc = builder_add(b, window, train, len + 1, err);
    }
    free(ids);
    free(window);
    free(train);
    return rc;
}

/* Encodes s (NULL: nothing) and appends its ids to ids/train with flag `trained`. */
static int append_text(const Tokenizer *t, const char *s, int bos, int eos, int trained, int **ids,
                       unsigned char **train, int *n, CkError *err) {
    int *part = NULL, k = 0;
    if (tokenizer_encode(t, s, bos, eos, &part, &k, err) != 0) return -1;
    int *grown = realloc(*ids, (size_t)(*n + k + 1) * sizeof(int));
    unsigned char *tgrown = grown ? realloc(*train, (size_t)(*n + k + 1)) : NULL;
    if (grown) *ids = grown;
    if (tgrown) *train = tgrown;
    if (!grown || !tgrown) {
        free(part);
        return ck_fail(err, "out of memory");
    }
    memcpy(*ids + *n, part, (size_t)k * sizeof(int));
    memset(*train + *n, trained, (size_t)k);
    *n += k;
    free(part);
    return 0;
}

/* One JSONL record (a "text", or a "prompt" and a "response") appended to b; line names it
 * in messages. */
static int load_record(Builder *b, const char *path, long line, const cJSON *rec,
                       const Tokenizer *t, int seq_len, CkError *err) {
    const cJSON *txt = cJSON_GetObjectItemCaseSensitive(rec, "text");
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(rec, "prompt");
    const cJSON *response = cJSON_GetObjectItemCaseSensitive(rec, "response");
    int *ids = NULL, n = 0, rc = 0;
    unsigned char *train = NULL;
    if (txt) {
        if (!cJSON_IsString(txt))
            rc = ck_fail(err, "%s:%ld: field \"text\" must be a string", path, line);
        else
            rc = append_text(t, txt->valuestring, 1, 0, 1, &ids, &train, &n, err);
    } else if (prompt || response) {
        if (!cJSON_IsString(prompt))
            rc = ck_fail(err, "%s:%ld: field \"prompt\" must be a string", path, line);
        else if (!cJSON_IsString(response))
            rc = ck_fail(err, "%s:%ld: field \"response\" must be a string", path, line);
        /* the response is encoded after the prompt, with the EOS that ends it trained */
        if (rc == 0) rc = append_text(t, prompt->valuestring, 1, 0, 0, &ids, &train, &n, err);
        if (rc == 0) rc = append_text(t, response->valuestring, 0, 1, 1, &ids, &train, &n, err);
    } else {
        rc = ck_fail(err, "%s:%ld: expected a \"text\" field, or \"prompt\" and \"response\"", path,
                     line);
    }
    if (rc == 0 && n > 0) {
        train[0] = 0; /* the first token has no context: never a target */
        if (n > seq_len) n = seq_len;
        rc = builder_add(b, ids, train, n, err);
    }
    free(ids);
    free(train);
    return rc;
}

/* JSONL: one record per non-blank line; messages name the line as the file counts it. */
static int load_jsonl(Builder *b, const char *path, const char *text, size_t len,
                      const Tokenizer *t, int seq_len, CkError *err) {
    JsonlCursor cur;
    jsonl_init(&cur, text, len);
    const char *line;
    size_t n;
    int rc = 0;
    while (rc == 0 && jsonl_next_line(&cur, &line, &n)) {
        JsonStrictError where;
        cJSON *rec = json_parse_exact(line, n, &where);
        if (!rec && where.after_value)
            rc = ck_fail(err, "%s:%ld: content after the JSON value at column %zu", path, cur.line,
                         where.offset + 1);
        else if (!cJSON_IsObject(rec))
            rc = ck_fail(err, "%s:%ld: expected a JSON object", path, cur.line);
        else
            rc = load_record(b, path, cur.line, rec, t, seq_len, err);
        cJSON_Delete(rec);
    }
    return rc;
}

int corpus_load_text(Corpus *c, const char *text, size_t len, int jsonl, const char *path,
                     const Tokenizer *t, int seq_len, CkError *err) {
    memset(c, 0, sizeof *c);
    if (seq_len < 2) return ck_fail(err, "sequence length %d is too short to train on", seq_len);
    Builder b = {c, path, 0, 0, 0};
    int rc = jsonl ? load_jsonl(&b, path, text, len, t, seq_len, err)
                   : load_text(&b, path, text, t, seq_len, err);
    if (rc == 0 && c->n_seqs == 0) rc = ck_fail(err, "%s: no training text", path);
    if (rc != 0) corpus_free(c);
    return rc;
}

int corpus_load(Corpus *c, const char *path, const Tokenizer *t, int seq_len, CkError *err) {
    memset(c, 0, sizeof *c);
    if (seq_len < 2) return ck_fail(err, "sequence length %d is too short to train on", seq_len);
    size_t len = 0;
    char *text = fileio_read_text(path, (size_t)1 << 31, &len, err);
    if (!text) return -1;
    int rc = corpus_load_text(c, text, len, ends_with(path, ".jsonl"), path, t, seq_len, err);
    free(text);
    return rc;
}

void corpus_free(Corpus *c) {
    free(c->offsets);
    free(c->tokens);
    free(c->train);
    memset(c, 0, sizeof *c);
}

/* Fisher-Yates shuffle of 0..n-1 from an Rng seeded by (seed, epoch): any epoch's order can
 * be rebuilt from the cursor alone. */
static void shuffle_epoch(CorpusCursor *cur) {
    Rng r;
    /* epoch + 1 in unsigned arithmetic: the same value for every epoch a cursor accepts */
    rng_seed(&r, cur->seed ^ (0x9E3779B97F4A7C15ull * ((uint64_t)cur->epoch + 1)));
    for (int i = 0; i < cur->n; i++) cur->order[i] = i;
    for (int i = cur->n - 1; i > 0; i--) {
        int j = (int)(rng_next(&r) % (uint64_t)(i + 1));
        int tmp = cur->order[i];
        cur->order[i] = cur->order[j];
        cur->order[j] = tmp;
    }
}

int corpus_cursor_init(CorpusCursor *cur, int n, uint64_t seed, int64_t epoch, int64_t position,
                       CkError *err) {
    memset(cur, 0, sizeof *cur);
    if (n <= 0) return ck_fail(err, "no sequences to iterate over");
    /* a saved cursor may be anything: past 2^53 epochs, ++epoch would near INT64_MAX */
    if (epoch < 0 || epoch > CORPUS_MAX_EPOCH || position < 0 || position > n)
        return ck_fail(err, "data cursor (epoch %lld, position %lld) outside a corpus of %d",
                       (long long)epoch, (long long)position, n);
    cur->order = malloc((size_t)n * sizeof(int));
    if (!cur->order) return ck_fail(err, "out of memory");
    cur->n = n;
    cur->seed = seed;
    cur->epoch = epoch;
    cur->position = position;
    shuffle_epoch(cur);
    return 0;
}

int corpus_cursor_next(CorpusCursor *cur) {
    if (cur->position >= cur->n) {
        cur->epoch++;
        cur->position = 0;
        shuffle_epoch(cur);
    }
    return cur->order[cur->position++];
}

void corpus_cursor_free(CorpusCursor *cur) {
    free(cur->order);
    memset(cur, 0, sizeof *cur);
}
