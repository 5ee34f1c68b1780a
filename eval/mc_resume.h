/* mc_resume.h — what `eval mc --resume` trusts: the fingerprint of a scored item (the run's
 * model, tokenizer, adapter and BOS setting, the item's prompt as mc_prompt_build made it, and
 * its choices), and the records of OUT/items.jsonl read back with theirs. An item is skipped
 * only when its stored fingerprint equals the one it would get now. */
#ifndef CK_MC_RESUME_H
#define CK_MC_RESUME_H

#include <stdint.h>
#include <stdio.h>

#include "eval/mc.h"
#include "util/ck_error.h"

/* FNV-1a 64 (util/hash.h) of what every item of a run shares: the model and tokenizer sources
 * (LanguageModel's model_source, tokenizer_source), the adapter path ("" for none) and
 * "bos" or "no-bos", each with its NUL. */
uint64_t mc_run_fingerprint(const char *model_source, const char *tokenizer_source,
                            const char *adapter, int bos);

/* The fingerprint of item in the run run_hash: the hash continued over its context (its whole
 * prompt) and its choices, each with its NUL. items.jsonl stores it in hex. */
uint64_t mc_item_fingerprint(uint64_t run_hash, const McItem *item);

/* One record read back from items.jsonl. */
typedef struct {
    char task[64];
    uint64_t fingerprint;
    int used; /* taken over by a run (mc_previous_take); its result is then the taker's */
    McItemResult r;
} McPrevious;

typedef struct {
    McPrevious *v;
    int n, cap;
} McPreviousList;

/* Reads the records of the items.jsonl at path into p (a missing file is an empty list; blank
 * lines are skipped). A last line without its newline, as a killed run leaves it, is dropped:
 * the file is rewritten atomically without it, and log (when non-NULL) gets
 * "cutkit eval mc: PATH: dropping an incomplete last line (N bytes)". Errors name the line. */
int mc_previous_read(McPreviousList *p, const char *path, FILE *log, CkError *err);

/* Releases the results not taken over and the list; safe on a zeroed list. */
void mc_previous_free(McPreviousList *p);

#endif
