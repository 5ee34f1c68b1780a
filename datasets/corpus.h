/* corpus.h — training text as token sequences: a plain text file cut into windows, or a
 * JSONL file of {"text": ...} records (one sequence each) or {"prompt": ..., "response": ...}
 * records (the prompt masked out of the loss, EOS after the response). */
#ifndef CK_CORPUS_H
#define CK_CORPUS_H

#include <stdint.h>

#include "util/ck_error.h"
#include "util/rng.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    int n_seqs;
    int *offsets;         /* [n_seqs + 1] into tokens */
    int *tokens;          /* all sequences packed */
    unsigned char *train; /* [n tokens] 1 where the token is a prediction target */
    int max_len;          /* longest sequence */
} Corpus;

/* Loads path (".jsonl" by extension, else plain text) with tokenizer t into c, cutting or
 * truncating to seq_len tokens (BOS included). Plain text becomes consecutive windows of
 * seq_len tokens (each starting with BOS); a malformed JSONL line is refused with the file,
 * line number and field. */
int corpus_load(Corpus *c, const char *path, const Tokenizer *t, int seq_len, CkError *err);

/* corpus_load on a text already in memory (text[0..len), NUL-terminated at len): JSON Lines
 * when jsonl, else plain text; path names it in messages. */
int corpus_load_text(Corpus *c, const char *text, size_t len, int jsonl, const char *path,
                     const Tokenizer *t, int seq_len, CkError *err);

/* Releases the corpus. */
void corpus_free(Corpus *c);

/* A deterministic pass over a corpus in shuffled order, one epoch after another; its whole
 * state is (epoch, position, seed), which a train state saves to resume exactly. */
typedef struct {
    uint64_t seed;
    int64_t epoch;
    int64_t position; /* index into the epoch's order */
    int n;
    int *order; /* permutation of 0..n-1 for the current epoch (owned) */
} CorpusCursor;

/* The most epochs a cursor may start from (a saved cursor beyond it is refused as corrupt). */
#define CORPUS_MAX_EPOCH ((int64_t)1 << 53)

/* Starts (or, with epoch/position from a saved state, resumes) a pass over n sequences;
 * refuses an epoch outside 0..CORPUS_MAX_EPOCH or a position outside 0..n. */
int corpus_cursor_init(CorpusCursor *cur, int n, uint64_t seed, int64_t epoch, int64_t position,
                       CkError *err);

/* Returns the next sequence index, moving to the next epoch (a new shuffle) at the end. */
int corpus_cursor_next(CorpusCursor *cur);

/* Releases the cursor's order. */
void corpus_cursor_free(CorpusCursor *cur);

#endif
