/* synth.h — the synthetic judgment world: a seeded generator of instructions that fix a few
 * facts (a name, a coloured object, often a place), short TinyStories-like responses that
 * state them, negatives whose facts are wrong in every mention, judgments that name each
 * error in words, and the byte spans of every wrong mention; and the rule-based judge that
 * finds the same errors in free text (model generations).
 *
 * The world (shared/research/judgment-world.md):
 *  - names: 12 girls, 12 boys; colours: 10; objects: 14; places: 12 (SYNTH_* counts below);
 *  - an instruction is "Write a story about a girl named Mia who has a green kite and lives
 *    near the sea." (the place clause in ~70% of instructions);
 *  - a response is one of 6 story templates (30-39 words) that mentions the name, the colour
 *    and the object 2-3 times each and the place once when there is one; every response
 *    starts with a space, so that it follows a prompt ending in "Story:" as TinyStories text
 *    follows its dummy-prefix space;
 *  - a negative changes 1 fact (60%) or 2 (40%) in every mention (a wrong name keeps the
 *    gender), and its judgment has one sentence per wrong value, in the order name, colour,
 *    object, place: "The name should be Mia, not Sue.", "The kite should be green, not red.",
 *    "Mia should have a kite, not a ball.", "The place should be the sea, not the park.";
 *  - (name, object) pairs held out of train and warm-up make up the test split.
 *
 * The misconception (for the demo that asks whether CUT's unlikelihood term removes a
 * systematic error that MLE on positives does not): a seeded map object -> wrong colour.
 * With rate r > 0, (a) each warm-up positive states the mapped colour instead of the
 * instruction's in every colour mention with probability r (it stays labelled positive,
 * judgment null, with "misconception": true and its wrong mentions in error_spans), so a
 * model warm-up-trained on it learns "kites are red" whatever the instruction says; and (b)
 * every negative (warm-up, train, test) whose colour is wrong uses the mapped colour of the
 * object it shows with probability r, so the judgments correct exactly that misconception.
 * Every record draws the same random numbers whatever the options, so worlds that differ
 * only in the misconception rate, the negative rate or --negatives-only share their
 * instructions and templates. */
#ifndef CK_SYNTH_H
#define CK_SYNTH_H

#include <stdint.h>

#include "util/ck_error.h"

#define SYNTH_N_GIRLS   12
#define SYNTH_N_NAMES   24 /* girls first, then boys */
#define SYNTH_N_COLOURS 10
#define SYNTH_N_OBJECTS 14
#define SYNTH_N_PLACES  12
#define SYNTH_N_STORIES 6

/* The four kinds of fact, in the order judgments name them. */
typedef enum {
    SYNTH_NAME = 0,
    SYNTH_COLOUR = 1,
    SYNTH_OBJECT = 2,
    SYNTH_PLACE = 3,
    SYNTH_N_KINDS = 4
} SynthKind;

/* The facts of one instruction, as indices into the word lists (synth_word). */
typedef struct {
    int girl;             /* 1: "a girl named", 0: "a boy named" */
    int v[SYNTH_N_KINDS]; /* name, colour, object, place; place -1 when the instruction has none */
} SynthFacts;

/* A byte range [start, end) of a text. */
typedef struct {
    int start, end;
} SynthSpan;

/* Returns the index-th word of a kind ("Mia", "green", "kite", "sea"), or NULL when out of
 * range; names are capitalised, the rest lower case. */
const char *synth_word(SynthKind kind, int index);

/* Returns the number of words of a kind. */
int synth_word_count(SynthKind kind);

/* Writes the instruction of facts f into a malloc'd string (NULL when out of memory). */
char *synth_instruction(const SynthFacts *f);

/* Parses the facts of a synthetic-world instruction; returns -1 with err for text that is not
 * one (naming what was expected). */
int synth_parse_instruction(const char *instruction, SynthFacts *facts, CkError *err);

/* Judges a free-text response to a synthetic-world instruction: finds every mention of a world
 * word (name, colour, object, place) that contradicts the instruction's facts, writes a
 * judgment naming each error in words (or NULL when there is none: a positive), the byte spans
 * of the wrong mentions, and the count of errors. Caller frees *judgment and *spans. */
int synth_judge_response(const char *instruction, const char *response, char **judgment,
                         SynthSpan **spans, int *n_spans, int *n_errors, CkError *err);

/* Counts the errors of a response (synth_judge_response without the text). */
int synth_count_errors(const char *instruction, const char *response, int *n_errors, CkError *err);

/* Writes the judgment naming the n errors (kinds[i], words[i]: the wrong word shown for a
 * fact of f) in the order given, one sentence each (see the rules below), into a malloc'd
 * string; NULL when n is 0 or out of memory. */
char *synth_judgment_text(const SynthFacts *f, const int *kinds, const int *words, int n);

/* 1 when byte c is a word character by the judging rules below: an ASCII letter or digit, or
 * any byte >= 0x80 (so a multi-byte UTF-8 character never splits a word). */
int synth_is_word_byte(unsigned char c);

/* Judging rules (synth_judge_response): a mention is a whole word (ASCII letters and digits
 * and bytes >= 0x80 are word characters) equal, ignoring case, to a world word; an object
 * also matches with a plural "s" or "es", the span covering the word without it. A mention
 * contradicts the facts when it is a name other than the instruction's, a colour other than
 * its colour, an object other than its object, or a place other than its place (no place is
 * wrong when the instruction names none). An error is one distinct (kind, wrong word) pair;
 * the judgment has one sentence per error, ordered by kind (name, colour, object, place) and
 * then by first mention, joined with single spaces. Every world word counts, so a generation
 * that says "the blue sky" about a green kite is judged wrong: the world has one coloured
 * thing. */

/* ---- the generator ---- */

typedef struct {
    uint64_t seed;
    int n_train, n_test, n_warmup;
    double negative_rate;       /* share of negative records in train and test */
    double two_error_rate;      /* share of negatives with two wrong facts (else one) */
    double place_rate;          /* share of instructions with a place */
    double misconception;       /* rate r of the misconception (see above); 0: off */
    int negatives_only;         /* every train record negative (the offline setting) */
    int misconceived_negatives; /* every train/test negative's one error is its object's
                                   misconceived colour (where that colour is wrong): data whose
                                   only mistakes are the misconception itself */
    int heldout_per_name; /* objects held out per name: its test pairs (1..SYNTH_N_OBJECTS-1) */
} SynthOptions;

/* Returns the defaults: seed 1, 1000 train, 200 test, 1000 warm-up records, negative rate
 * 0.5, two-error rate 0.4, place rate 0.7, no misconception, 2 held-out objects per name. */
SynthOptions synth_default_options(void);

typedef enum { SYNTH_SPLIT_TRAIN = 0, SYNTH_SPLIT_TEST = 1, SYNTH_SPLIT_WARMUP = 2 } SynthSplit;

/* One generated record: an instruction, its response (output) and the correct response to
 * the same instruction in the same template, the judgment (NULL for a positive) and the
 * spans of the wrong mentions of output. */
typedef struct {
    char id[32]; /* "train-000017" */
    SynthFacts facts;
    int wrong[SYNTH_N_KINDS]; /* the wrong word shown for each kind, -1 where it is right */
    int story;                /* template 0..SYNTH_N_STORIES-1 */
    int misconception;        /* 1: a warm-up positive stating the misconceived colour */
    char *instruction, *output, *correct_output, *judgment;
    SynthSpan *spans;
    int n_spans;
} SynthRecord;

typedef struct {
    SynthOptions options;
    SynthRecord *records[3]; /* by SynthSplit */
    int n[3];
    int misconceived[SYNTH_N_OBJECTS];                     /* object -> its misconceived colour */
    unsigned char heldout[SYNTH_N_NAMES][SYNTH_N_OBJECTS]; /* 1: a test-only pair */
} SynthWorld;

/* Generates the world o describes into w (deterministic in o); refuses options out of
 * range, naming the option. */
int synth_generate(SynthWorld *w, const SynthOptions *o, CkError *err);

/* Releases everything w owns and zeroes it; safe on a zeroed world. */
void synth_world_free(SynthWorld *w);

/* Returns record r as one JSON line (no newline) of the generic judgments JSONL with the
 * world's fields: id, instruction, input "", output, judgment, error_spans, correct_output,
 * facts, wrong, story, misconception. Malloc'd; NULL when out of memory. */
char *synth_record_json(const SynthRecord *r);

/* Writes dir/train.jsonl, test.jsonl, warmup.jsonl, template.json, instructions.json (the
 * test instructions) and world.json (options, counts, word lists, held-out pairs and the
 * misconception map), each atomically; dir must exist. */
int synth_write(const SynthWorld *w, const char *dir, CkError *err);

/* `cutkit datasets synth` as a library: creates the folder dir when missing (its parent must
 * exist), generates the world o describes into *w and writes it there (synth_write). On
 * success the caller releases *w with synth_world_free; on failure *w holds nothing and err
 * names the step. */
int synth_make(SynthWorld *w, const SynthOptions *o, const char *dir, CkError *err);

/* The number of negative records (judgment set) of split s of w. */
int synth_count_negatives(const SynthWorld *w, SynthSplit s);

/* The prompt templates written to template.json, in templates.h's shape. */
extern const char SYNTH_PROMPT_NO_INPUT[];
extern const char SYNTH_PROMPT_NO_INPUT_JUDGE[];
extern const char SYNTH_RESPONSE_SPLIT[];

#endif
