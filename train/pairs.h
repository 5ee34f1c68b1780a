/* pairs.h — the pair files of the DPO and ILF objectives (train/OBJECTIVES.md):
 *  - a preference file (`--objective dpo`): JSON Lines, one pair per line, either
 *    {"prompt": str, "chosen": str, "rejected": str} or {"instruction": str, "input": str|null
 *    (optional), "chosen": str, "rejected": str}, or UltraFeedback-style (as
 *    HuggingFaceH4/ultrafeedback_binarized) "chosen"/"rejected" as lists of {"role", "content"}
 *    messages ending with the assistant's answer, whose user turn is the prompt: both lists must
 *    carry the same prompt (and "prompt", when given, must equal it); TRL's conversational form
 *    ("prompt" a list of messages, its last user turn the prompt; "chosen"/"rejected" the
 *    assistant's messages alone) too. TRL's implicit-prompt form (no prompt at all) is refused;
 *  - a refinement file (`--objective ilf-mle`, `ilf-dpo`), as `cutkit refine` writes it: one
 *    {"instruction": str, "input": str|null, "output": str, "judgment": str|null,
 *    "refinement": str|null} per line, extra fields ignored; a line whose refinement is null,
 *    empty or equal to the output is skipped and counted. Its pair is chosen = refinement,
 *    rejected = output. Another field may stand for "refinement": DPO on a JSONL judgment file
 *    whose records carry an improved response (`datasets synth`'s "correct_output", Shepherd's
 *    converted "i_ans"), `--chosen-field NAME`.
 * A malformed line fails as "path:LINE: field \"NAME\": what was expected". */
#ifndef CK_PAIRS_H
#define CK_PAIRS_H

#include "util/ck_error.h"

typedef struct {
    char *instruction; /* the prompt (filled into the plain template as {instruction}) */
    char *input;       /* NULL when absent, null or empty */
    char *chosen, *rejected;
    int line; /* 1-based line in the file */
} PairRecord;

typedef struct {
    PairRecord *records;
    int n;               /* pairs kept */
    int n_no_refinement; /* refinement files: lines skipped for an empty or null refinement,
                            or one equal to the output (no pair) */
} PairSet;

typedef enum {
    PAIRS_PREFERENCE = 1, /* prompt/instruction + chosen + rejected */
    PAIRS_REFINEMENT = 2, /* cutkit refine's output: chosen = refinement, rejected = output */
} PairFileKind;

/* Loads path as kind into s (PAIRS_REFINEMENT: chosen from the field chosen_field, NULL:
 * "refinement"); on failure s holds nothing and err names the file, line and field. An empty
 * result (no pair) is refused too. */
int pairs_load(PairSet *s, const char *path, PairFileKind kind, const char *chosen_field,
               CkError *err);

/* Releases s and zeroes it; safe on a zeroed set. */
void pairs_free(PairSet *s);

#endif
