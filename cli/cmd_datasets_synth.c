/* cmd_datasets_synth.c — `cutkit datasets synth`: write the synthetic judgment world (train/test
 * JSONL with error spans, warm-up records, templates, the test instructions, world.json). */
#include <stdio.h>

#include "cli/commands.h"
#include "datasets/synth.h"

/* The flags' targets; the table's defaults are synth_default_options()'s. */
static struct {
    const char *out;
    SynthOptions synth;
} opt;

static FlagSpec FLAGS[] = {
    FLAG_OUT_REQUIRED(&opt.out, "directory to write (created)"),
    {"seed", FLAG_U64, &opt.synth.seed, "1", 0, -1, "the world's seed: same seed, same bytes"},
    {"train", FLAG_INT, &opt.synth.n_train, "1000", 0, 1e8, "train records"},
    {"test", FLAG_INT, &opt.synth.n_test, "200", 0, 1e8,
     "test records (held-out name/object pairs only)"},
    {"warmup", FLAG_INT, &opt.synth.n_warmup, "1000", 0, 1e8,
     "warm-up records: half positive (Align-P), half negative (Align-N)"},
    {"negative-rate", FLAG_DOUBLE, &opt.synth.negative_rate, "0.5", 0, 1,
     "share of negative records in train and test"},
    {"two-error-rate", FLAG_DOUBLE, &opt.synth.two_error_rate, "0.4", 0, 1,
     "share of negatives with two wrong facts (else one)"},
    {"place-rate", FLAG_DOUBLE, &opt.synth.place_rate, "0.7", 0, 1,
     "share of instructions with a place"},
    {"misconception", FLAG_DOUBLE, &opt.synth.misconception, "0", 0, 1,
     "rate of a seeded object->wrong colour map: warm-up positives state it, negatives' colour "
     "errors use it (0: off)"},
    {"negatives-only", FLAG_BOOL, &opt.synth.negatives_only, NULL, 0, -1,
     "every train record negative (the offline setting)"},
    {"misconceived-negatives", FLAG_BOOL, &opt.synth.misconceived_negatives, NULL, 0, -1,
     "every train/test negative's one error is its object's misconceived colour"},
    {"heldout", FLAG_INT, &opt.synth.heldout_per_name, "2", 1, 13,
     "objects held out per name for the test split"},
};

static const CommandSpec SPEC = {
    "datasets synth",
    "write the synthetic judgment world (train/test JSONL with error spans)",
    "--out DIR [--seed N] [--train N] [--test N] [--warmup N] [--misconception R] "
    "[--negatives-only]",
    "Writes DIR/train.jsonl, test.jsonl and warmup.jsonl (generic judgment JSONL: id,\n"
    "instruction, input, output, judgment (null: positive), error_spans (byte ranges of the\n"
    "wrong mentions in output), correct_output, facts, wrong, story, misconception),\n"
    "DIR/template.json (short prompts for --template), DIR/instructions.json (the test\n"
    "instructions) and DIR/world.json (options, counts, vocabulary, held-out pairs, the\n"
    "misconception map). Train with:\n"
    "  cutkit train --objective cut --judgments DIR/train.jsonl --template DIR/template.json",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_datasets_synth_spec(void) {
    return &SPEC;
}

int cmd_datasets_synth(int argc, char **argv) {
    char *positional[1];
    int n_positional;
    opt.synth = synth_default_options(); /* the fields no flag sets */
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    SynthWorld w;
    CkError err = {{0}};
    if (synth_make(&w, &opt.synth, opt.out, &err) != 0) return cli_fail(&SPEC, 1, &err);
    fprintf(stderr,
            "wrote %s: train %d (%d negative), test %d (%d negative), warmup %d (%d negative)\n",
            opt.out, w.n[SYNTH_SPLIT_TRAIN], synth_count_negatives(&w, SYNTH_SPLIT_TRAIN),
            w.n[SYNTH_SPLIT_TEST], synth_count_negatives(&w, SYNTH_SPLIT_TEST),
            w.n[SYNTH_SPLIT_WARMUP], synth_count_negatives(&w, SYNTH_SPLIT_WARMUP));
    synth_world_free(&w);
    return 0;
}
