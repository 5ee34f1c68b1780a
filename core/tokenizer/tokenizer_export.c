/* tokenizer_export.c — a llama2.c tokenizer written out as Hugging Face tokenizer files.
 *
 * llama2.c encodes SentencePiece-style: a " " is prepended, each code point becomes its piece
 * (or its <0xXX> byte pieces), and then the adjacent pair whose concatenation is the
 * best-scoring piece is merged, the leftmost one on equal scores, until no pair forms a piece.
 * A tokenizer.json BPE merges the adjacent pair with the lowest merge rank instead. Listing,
 * for every piece p, every split p = a + b whose halves are pieces, with the merges ranked by
 * the score of p, gives the same mergeable pairs in the same order, so the same ids, except
 * where two different pieces share a score: llama2.c then takes the leftmost pair and BPE the
 * lower rank. The only ties in the Llama 2 vocabulary are its runs of spaces (all scored -1e9);
 * test_tokenizer_export.c measures what that does.
 *
 * The rest of the file is the SentencePiece-style pipeline the Llama 2 tokenizer.json uses:
 * spaces as "▁" via the normalizer, no pre-tokenizer (the whole text is one word), byte
 * fallback, BOS from the post-processor, and the decoder that undoes all of it. */
#include "tokenizer/tokenizer_export.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/hash.h"
#include "util/utf8.h"

enum { UNK_ID = 0, BOS_ID = 1, EOS_ID = 2, BYTE_BASE = 3, FIRST_PIECE_ID = BYTE_BASE + 256 };

/* run.c's merge loop only takes pieces scored above this (see tokenizer.c), so pieces at or
 * below it get no merges. */
static const float MERGE_SCORE_FLOOR = -1e10f;

static const char SPACE_MARK[] = "\xE2\x96\x81"; /* U+2581, SentencePiece's space */

/* Everything but the vocabulary and the merges, in the order Hugging Face writes the keys.
 * Ids 0, 1, 2 are fixed by the llama2.c format. */
static const char SKELETON[] =
    "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null,"
    " \"added_tokens\": ["
    "  {\"id\": 0, \"content\": \"<unk>\", \"single_word\": false, \"lstrip\": false,"
    "   \"rstrip\": false, \"normalized\": false, \"special\": true},"
    "  {\"id\": 1, \"content\": \"<s>\", \"single_word\": false, \"lstrip\": false,"
    "   \"rstrip\": false, \"normalized\": false, \"special\": true},"
    "  {\"id\": 2, \"content\": \"</s>\", \"single_word\": false, \"lstrip\": false,"
    "   \"rstrip\": false, \"normalized\": false, \"special\": true}],"
    " \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": ["
    "  {\"type\": \"Prepend\", \"prepend\": \"\\u2581\"},"
    "  {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\\u2581\"}]},"
    " \"pre_tokenizer\": null,"
    " \"post_processor\": {\"type\": \"TemplateProcessing\","
    "  \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}},"
    "   {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}],"
    "  \"pair\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}},"
    "   {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}},"
    "   {\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 1}},"
    "   {\"Sequence\": {\"id\": \"B\", \"type_id\": 1}}],"
    "  \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [1], \"tokens\": [\"<s>\"]}}},"
    " \"decoder\": {\"type\": \"Sequence\", \"decoders\": ["
    "  {\"type\": \"Replace\", \"pattern\": {\"String\": \"\\u2581\"}, \"content\": \" \"},"
    "  {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"},"
    "  {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}]},"
    " \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": \"<unk>\","
    "  \"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, \"fuse_unk\": true,"
    "  \"byte_fallback\": true, \"ignore_merges\": false}}";

/* The vocabulary under its tokenizer.json names, with a hash table from name to id. */
typedef struct {
    int n;
    char **names; /* [n] NUL-terminated (owned) */
    int *lens;    /* [n] byte lengths */
    int *slots;   /* [mask + 1] ids by hash of name, -1 = empty */
    uint32_t mask;
} Names;

static void names_free(Names *v) {
    if (v->names) {
        for (int i = 0; i < v->n; i++) free(v->names[i]);
    }
    free(v->names);
    free(v->lens);
    free(v->slots);
    memset(v, 0, sizeof *v);
}

/* The slot holding s[0..len), or the empty slot where it would go. */
static uint32_t names_slot(const Names *v, const char *s, int len) {
    uint32_t h = (uint32_t)(hash_bytes(s, (size_t)len) & v->mask);
    while (v->slots[h] >= 0) {
        int id = v->slots[h];
        if (v->lens[id] == len && memcmp(v->names[id], s, (size_t)len) == 0) break;
        h = (h + 1) & v->mask;
    }
    return h;
}

static int names_find(const Names *v, const char *s, int len) {
    return v->slots[names_slot(v, s, len)];
}

/* Names id's piece as tokenizer.json does: "<unk>", "<s>", "</s>" for ids 0..2, else the piece
 * with each space written as "▁". Refuses pieces that would not survive the trip. */
static char *make_name(const Tokenizer *t, int id, CkError *err) {
    static const char *const SPECIAL[] = {"<unk>", "<s>", "</s>"};
    if (id < BYTE_BASE) {
        char *s = strdup(SPECIAL[id]);
        if (!s) ck_fail(err, "tokenizer export: out of memory");
        return s;
    }
    const char *p = t->pieces[id];
    size_t len = (size_t)t->piece_lens[id];
    if (len == 0) {
        ck_fail(err, "tokenizer export: piece %d is empty, which tokenizer.json cannot hold", id);
        return NULL;
    }
    if (strlen(p) != len) {
        ck_fail(err, "tokenizer export: piece %d holds a NUL byte", id);
        return NULL;
    }
    size_t spaces = 0;
    for (size_t i = 0; i < len;) {
        /* tokenizer.json is JSON, whose strings must be valid UTF-8 */
        int n = utf8_scan((const unsigned char *)p + i, len - i);
        if (n <= 0) {
            ck_fail(err, "tokenizer export: piece %d is not valid UTF-8 (byte %zu)", id, i);
            return NULL;
        }
        /* A literal "▁" would become indistinguishable from a space after the normalizer. */
        if (n == 3 && !memcmp(p + i, SPACE_MARK, 3)) {
            ck_fail(err,
                    "tokenizer export: piece %d holds a literal U+2581, which tokenizer.json "
                    "uses for the space",
                    id);
            return NULL;
        }
        spaces += p[i] == ' ';
        i += (size_t)n;
    }
    char *s = malloc(len + 2 * spaces + 1);
    if (!s) {
        ck_fail(err, "tokenizer export: out of memory");
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == ' ') {
            memcpy(s + k, SPACE_MARK, 3);
            k += 3;
        } else {
            s[k++] = p[i];
        }
    }
    s[k] = '\0';
    return s;
}

static int names_build(Names *v, const Tokenizer *t, CkError *err) {
    memset(v, 0, sizeof *v);
    int n = t->vocab_size;
    size_t cap = 16;
    while (cap < 2 * (size_t)n) cap *= 2;
    v->n = n;
    v->names = calloc((size_t)n, sizeof *v->names);
    v->lens = malloc((size_t)n * sizeof *v->lens);
    v->slots = malloc(cap * sizeof *v->slots);
    if (!v->names || !v->lens || !v->slots) return ck_fail(err, "tokenizer export: out of memory");
    v->mask = (uint32_t)(cap - 1);
    for (size_t i = 0; i < cap; i++) v->slots[i] = -1;
    for (int id = 0; id < n; id++) {
        if (!(v->names[id] = make_name(t, id, err))) return -1;
        v->lens[id] = (int)strlen(v->names[id]);
        uint32_t slot = names_slot(v, v->names[id], v->lens[id]);
        /* tokenizer.json maps names to ids, so two ids cannot share one. */
        if (v->slots[slot] >= 0) {
            return ck_fail(err, "tokenizer export: pieces %d and %d are both \"%s\"",
                           v->slots[slot], id, v->names[id]);
        }
        v->slots[slot] = id;
    }
    return 0;
}

typedef struct {
    float score; /* of the merged piece */
    int id;      /* the merged piece */
    int split;   /* byte offset of the split in its name */
} Merge;

/* Best score first, as llama2.c merges; then the merged piece's id and the split position,
 * so that the order is total and the file reproducible. -0 equals +0 here as in run.c. */
static int compare_merges(const void *pa, const void *pb) {
    const Merge *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->id != b->id) return a->id < b->id ? -1 : 1;
    return (a->split > b->split) - (a->split < b->split);
}

/* Lists every merge, sorted. The special ids are left out as halves and as results: their
 * llama2.c pieces ("\n<s>\n") are not their tokenizer.json names, and no vocabulary cutkit
 * has seen builds them from other pieces. */
static int collect_merges(const Tokenizer *t, const Names *v, Merge **out, size_t *n_out,
                          CkError *err) {
    size_t n = 0, cap = 1024;
    Merge *m = malloc(cap * sizeof *m);
    if (!m) return ck_fail(err, "tokenizer export: out of memory");
    for (int id = BYTE_BASE; id < v->n; id++) {
        if (!(t->scores[id] > MERGE_SCORE_FLOOR)) continue;
        const char *s = v->names[id];
        int len = v->lens[id];
        /* Splits at code point boundaries: llama2.c's symbols are whole code points or
         * byte pieces, never parts of a code point. */
        for (int k = utf8_scan((const unsigned char *)s, (size_t)len); k < len;
             k += utf8_scan((const unsigned char *)s + k, (size_t)(len - k))) {
            if (names_find(v, s, k) < BYTE_BASE || names_find(v, s + k, len - k) < BYTE_BASE) {
                continue;
            }
            if (n == cap) {
                Merge *grown = realloc(m, 2 * cap * sizeof *m);
                if (!grown) {
                    free(m);
                    return ck_fail(err, "tokenizer export: out of memory");
                }
                m = grown;
                cap *= 2;
            }
            m[n++] = (Merge){t->scores[id], id, k};
        }
    }
    qsort(m, n, sizeof *m, compare_merges);
    *out = m;
    *n_out = n;
    return 0;
}

/* Adds model.vocab and model.merges to root (the parsed SKELETON). */
static int fill_model(cJSON *root, const Tokenizer *t, const Names *v, CkError *err) {
    cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    if (!vocab || !merges) return ck_fail(err, "tokenizer export: out of memory");
    for (int id = 0; id < v->n; id++) {
        if (!cJSON_AddNumberToObject(vocab, v->names[id], id)) {
            return ck_fail(err, "tokenizer export: out of memory");
        }
    }
    Merge *m = NULL;
    size_t n = 0;
    if (collect_merges(t, v, &m, &n, err) != 0) return -1;
    char *pair = malloc((size_t)t->max_piece_len * 3 + 2); /* a name is at most 3x its piece */
    int rc = pair ? 0 : -1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *s = v->names[m[i].id];
        int k = m[i].split, len = v->lens[m[i].id];
        /* "a b": names hold no spaces (those became "▁"), so the space splits it exactly. */
        memcpy(pair, s, (size_t)k);
        pair[k] = ' ';
        memcpy(pair + k + 1, s + k, (size_t)(len - k));
        pair[len + 1] = '\0';
        cJSON *item = cJSON_CreateString(pair);
        if (!item || !cJSON_AddItemToArray(merges, item)) {
            cJSON_Delete(item);
            rc = -1;
        }
    }
    free(pair);
    free(m);
    return rc == 0 ? 0 : ck_fail(err, "tokenizer export: out of memory");
}

/* Prints json and writes it to dir/name atomically. */
static int write_json(const cJSON *json, const char *dir, const char *name, CkError *err) {
    char *text = cJSON_Print(json);
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    int rc = -1;
    if (!text || !path) {
        ck_fail(err, "tokenizer export: out of memory");
    } else {
        snprintf(path, n, "%s/%s", dir, name);
        rc = fileio_write_atomic(path, text, strlen(text), err);
    }
    free(path);
    cJSON_free(text);
    return rc;
}

static cJSON *make_config(int model_max_length) {
    cJSON *c = cJSON_CreateObject();
    /* BOS only, as llama2.c's encode(text, bos=1, eos=0) for prompts and training text. */
    if (!c || !cJSON_AddBoolToObject(c, "add_bos_token", 1) ||
        !cJSON_AddBoolToObject(c, "add_eos_token", 0) ||
        !cJSON_AddStringToObject(c, "bos_token", "<s>") ||
        !cJSON_AddStringToObject(c, "eos_token", "</s>") ||
        !cJSON_AddStringToObject(c, "unk_token", "<unk>") ||
        !cJSON_AddNumberToObject(c, "model_max_length", model_max_length) ||
        !cJSON_AddStringToObject(c, "tokenizer_class", "LlamaTokenizerFast") ||
        /* Cleaning up would drop spaces before punctuation that the text had. */
        !cJSON_AddBoolToObject(c, "clean_up_tokenization_spaces", 0)) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

int tokenizer_export_hf(const Tokenizer *t, const char *dir, int model_max_length, CkError *err) {
    if (!t || t->kind != TOKENIZER_LLAMA2C) {
        return ck_fail(err, "tokenizer export: only llama2.c tokenizers (tokenizer.bin) can be "
                            "written as tokenizer.json; a Hugging Face tokenizer already has "
                            "its own files");
    }
    if (t->byte_fallback_base != BYTE_BASE) {
        return ck_fail(err, "tokenizer export: ids 3..258 are not the byte pieces <0x00>..<0xFF> "
                            "that tokenizer.json's byte fallback needs");
    }
    if (model_max_length <= 0) {
        return ck_fail(err, "tokenizer export: model_max_length must be positive, got %d",
                       model_max_length);
    }
    Names v;
    cJSON *root = NULL, *config = NULL;
    int rc = -1;
    if (names_build(&v, t, err) != 0) goto done;
    root = cJSON_Parse(SKELETON);
    config = make_config(model_max_length);
    if (!root || !config) {
        ck_fail(err, "tokenizer export: out of memory");
        goto done;
    }
    if (fill_model(root, t, &v, err) != 0) goto done;
    if (write_json(root, dir, "tokenizer.json", err) != 0) goto done;
    rc = write_json(config, dir, "tokenizer_config.json", err);
done:
    cJSON_Delete(root);
    cJSON_Delete(config);
    names_free(&v);
    return rc;
}
