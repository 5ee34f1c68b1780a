/* tokenizer.h — text <-> token ids.
 *
 * One Tokenizer struct serves every tokenizer family cutkit reads:
 *  - the llama2.c `tokenizer.bin` format (SentencePiece-style BPE by piece score, with byte
 *    fallback), which is what the embedded tok512 uses;
 *  - Hugging Face `tokenizer.json` files with a BPE model, both families: SentencePiece-style
 *    (Llama 2, Mistral, TinyLlama: "▁" for spaces, <0xNN> byte fallback) and byte-level
 *    (GPT-2, Llama 3). Their ids equal those of the Hugging Face `tokenizers` library; see
 *    README.md for the pipeline and tokenizer_hf.c for what is refused.
 * tokenizer_open picks the family from the file. */
#ifndef CK_TOKENIZER_H
#define CK_TOKENIZER_H

#include <stddef.h>

#include "util/ck_error.h"

typedef enum {
    TOKENIZER_LLAMA2C = 1, /* llama2.c tokenizer.bin: merge the pair with the best score */
    TOKENIZER_HF_BPE = 2,  /* Hugging Face tokenizer.json with a BPE model: merges by rank */
} TokenizerKind;

/* The state of a tokenizer.json tokenizer (vocabulary, merges, pipeline), private to the
 * tokenizer_hf*.c files (tokenizer_hf_internal.h). */
typedef struct HfTokenizer HfTokenizer;

/* For TOKENIZER_HF_BPE only kind, vocab_size, bos_id, eos_id, max_piece_len and hf are set;
 * the llama2.c fields are zero / NULL. */
typedef struct {
    TokenizerKind kind;
    int vocab_size;    /* number of ids: 1 + the highest id of the vocabulary and added tokens */
    int bos_id;        /* 1 for llama2.c tokenizers; HF: tokenizer_config.json's bos_token, else
                          the post-processor's first special token; -1 when there is none */
    int eos_id;        /* 2 for llama2.c tokenizers; HF: tokenizer_config.json's eos_token, else
                          the post-processor's token after the text; -1 when there is none */
    int max_piece_len; /* longest piece in bytes (HF: longest decoded piece) */
    HfTokenizer *hf;   /* tokenizer.json state (owned); NULL for llama2.c */
    char **pieces;     /* [vocab_size] NUL-terminated piece strings (owned) */
    int *piece_lens;   /* [vocab_size] byte lengths (pieces may hold no NULs, but be exact) */
    float *scores;     /* [vocab_size] merge scores */
    int *sorted_ids;   /* [vocab_size] ids sorted by piece bytes, for binary search */
    int byte_fallback_base;   /* id of <0x00>; byte b encodes as base + b (3 for llama2.c);
                                 -1 when ids 3..258 are not <0x00>..<0xFF> (bytes become <unk>) */
    int *piece_hash;          /* [piece_hash_mask + 1] ids by hash of piece bytes, -1 = empty:
                                 the O(1) lookups of encode's merge loop */
    unsigned piece_hash_mask; /* table size - 1 (a power of two) */
    int splits_at_spaces;     /* 1 when no piece joins a non-space to a following space, so
                                 encode may merge each " word" stretch on its own */
} Tokenizer;

/* Parses a llama2.c tokenizer.bin image of `size` bytes holding `vocab_size` records into t;
 * the data is copied, so the caller may free it afterwards. Refuses truncated or
 * inconsistent data with a message naming the record. */
int tokenizer_load_llama2c(Tokenizer *t, const void *data, size_t size, int vocab_size,
                           CkError *err);

/* Reads a llama2.c tokenizer.bin file from disk into t (see tokenizer_load_llama2c). */
int tokenizer_load_llama2c_file(Tokenizer *t, const char *path, int vocab_size, CkError *err);

/* Opens the tokenizer at path, which is a tokenizer.json, a folder holding one (or a
 * tokenizer.bin), or a llama2.c tokenizer.bin whose vocabulary size is the number of records
 * it holds. For tokenizer.json, a tokenizer_config.json in the same folder is read too: its
 * bos_token / eos_token name bos_id / eos_id, and its add_bos_token / add_eos_token, when
 * present, win over the post-processor's template (each decides its own side: BOS before the
 * text, EOS after it), as transformers' Llama tokenizers do. Messages name the file. */
int tokenizer_open(Tokenizer *t, const char *path, CkError *err);

/* Loads a tokenizer from the bytes of its file (data, size), choosing the format by content:
 * a llama2.c tokenizer.bin (its int32 max_token_length has a zero byte among the first 4
 * bytes; the vocabulary size is the number of records), else UTF-8 text, read as a
 * tokenizer.json (a leading byte-order mark is skipped) with the optional tokenizer_config.json
 * text config_text. Empty and binary data, and JSON that is not an object, are refused saying
 * so; `source` names the file in messages. */
int tokenizer_load(Tokenizer *t, const void *data, size_t size, const char *config_text,
                   const char *source, CkError *err);

/* Loads a Hugging Face tokenizer.json from json_text (json_len bytes, need not be
 * NUL-terminated) and the optional tokenizer_config.json text config_text (NUL-terminated,
 * or NULL); `source` names the file in messages. Refuses unsupported features by name
 * ("unsupported normalizer 'NFKC'") and malformed JSON with the JSON path of the field. */
int tokenizer_load_hf(Tokenizer *t, const char *json_text, size_t json_len, const char *config_text,
                      const char *source, CkError *err);

/* Releases everything t owns and zeroes it; safe on a zeroed or already-freed Tokenizer. */
void tokenizer_free(Tokenizer *t);

/* Encodes UTF-8 text into a newly malloc'd array *ids of *n_ids tokens (caller frees),
 * prefixed with BOS when add_bos and followed by EOS when add_eos. Follows llama2.c run.c:
 * a dummy-prefix " " for non-empty text, one token per UTF-8 code point (bytes + base
 * where the code point is not a piece), then greedy merging of the best-scoring pair. */
/* For tokenizer.json tokenizers the text goes through the whole pipeline without the
 * post-processor, and BOS / EOS are bos_id / eos_id when those are not -1 (nothing otherwise);
 * the text must be valid UTF-8. */
int tokenizer_encode(const Tokenizer *t, const char *text, int add_bos, int add_eos, int **ids,
                     int *n_ids, CkError *err);

/* Encodes text as Hugging Face's encode(text, add_special_tokens) does: with
 * add_special_tokens the post-processor's special tokens (e.g. BOS) are added. For llama2.c
 * tokenizers add_special_tokens means BOS only. Same ownership rules as tokenizer_encode. */
int tokenizer_encode_special(const Tokenizer *t, const char *text, int add_special_tokens,
                             int **ids, int *n_ids, CkError *err);

/* Returns the bytes that token `id` contributes to the text when it follows token `prev`
 * (a pointer into t or into the 2-byte buffer byte_buf, valid until the next call with
 * that buffer), with its length in *len. The piece after BOS loses its leading space;
 * <0xXX> pieces become the raw byte; BOS/EOS/unknown ids decode to nothing. For tokenizer.json
 * tokenizers every special token decodes to nothing, byte-level tokens to their raw bytes
 * (so that concatenated pieces form UTF-8 characters split across tokens), and the leading
 * space is dropped after BOS or at the start (prev < 0) when the decoder strips it. */
const char *tokenizer_decode_piece(const Tokenizer *t, int prev, int id, char byte_buf[2],
                                   size_t *len);

/* Decodes ids[0..n) into a newly malloc'd NUL-terminated string (caller frees), as the
 * concatenation of tokenizer_decode_piece over consecutive pairs. Returns NULL only when
 * out of memory. For tokenizer.json tokenizers it is tokenizer_decode_special(..., 1, NULL). */
char *tokenizer_decode(const Tokenizer *t, const int *ids, int n);

/* Decodes ids[0..n) as Hugging Face's decode(ids, skip_special_tokens) does: the ids' tokens
 * (special ones left out when skip_special) go through the tokenizer.json decoder, and
 * invalid UTF-8 becomes U+FFFD as the reference prints it. Ids outside the vocabulary are
 * ignored. Returns a malloc'd NUL-terminated string (caller frees) with its length in *len
 * when len is not NULL (the text may hold NUL bytes), or NULL when out of memory (or when a
 * decoder regex gives up). llama2.c
 * tokenizers ignore skip_special: their BOS/EOS/<unk> always decode to nothing. */
char *tokenizer_decode_special(const Tokenizer *t, const int *ids, int n, int skip_special,
                               size_t *len);

/* Returns 1 when id is a special token, else 0: BOS/EOS/<unk> for llama2.c; for tokenizer.json
 * a token that skip_special drops (its string is the content of an added token marked
 * "special"). */
int tokenizer_is_special(const Tokenizer *t, int id);

#endif
