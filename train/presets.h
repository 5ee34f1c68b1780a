/* presets.h — named sets of flag values. `cutkit train --preset reference-online` (or
 * reference-offline) stands for every setting of the reference's released scripts, and
 * `cutkit align-online --preset reference` for its online loop (generation as its
 * scripts/generate.py, merges as its merge.py). A preset is a list of flag values that become
 * the command's defaults before its flags are read, so a flag given explicitly (on the command
 * line or in --settings) still wins; OUT/config.json records the values in effect.
 *
 * Where each value comes from is cited beside it in presets.c (wwxu21/CUT at bb1d5de:
 * fine-tuning-unlike.sh, README.md's offline example, finetune_unlikelihood.py, and the
 * transformers 4.33.2 TrainingArguments defaults it relies on), and
 * tests/fixtures/reference_scripts.tsv holds the same values with their script lines for
 * tests/test_presets.c to compare against. */
#ifndef CK_PRESETS_H
#define CK_PRESETS_H

#include "util/ck_error.h"

/* The values --preset takes (a flag table's choices). train's online and offline set λ and α
 * only (cut_preset_options); the reference-* presets set everything. */
#define TRAIN_PRESET_CHOICES  "online|offline|reference-online|reference-offline"
#define ONLINE_PRESET_CHOICES "none|reference"

typedef struct {
    const char *flag;  /* the flag's name, without "--" */
    const char *value; /* its value as a command line gives it ("true" for a switch) */
} PresetSetting;

typedef struct {
    const char *command; /* "train" or "align-online" */
    const char *name;    /* what --preset names */
    /* its settings: its own, then those it shares with others (or NULL), each list ending
     * with {NULL, NULL}; no flag appears in both */
    const PresetSetting *parts[2];
} Preset;

/* The preset called name of command, or NULL when it sets no flag (train's online and offline,
 * align-online's none) or does not exist (the flag table's choices refuse those first). */
const Preset *preset_find(const char *command, const char *name);

/* The value preset p gives flag, or NULL when it leaves the flag alone. */
const char *preset_value(const Preset *p, const char *flag);

/* Parses an --align-p-ratio value into *ratio: "off" gives -1 (every positive kept, the
 * reference's --downsample -1), a number in [0, 1] itself; anything else fails with one line
 * naming the flag and the values allowed. */
int preset_parse_ratio(const char *text, double *ratio, CkError *err);

#endif
