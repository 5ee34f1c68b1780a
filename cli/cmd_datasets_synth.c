/* cmd_datasets_synth.c — `cutkit datasets synth`: write the synthetic judgment world (train/test
 * JSONL with error spans, warm-up records, templates, the test instructions, world.json). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "datasets/synth.h"

static struct {
    const char *out;
    uint64_t seed;
    int n_train, n_test, n_warmup, negatives_only, misconceived_negatives, heldout;
    double negative_rate, two_error_rate, place_rate, misconception;
} opt;

static FlagSpec FLAGS[] = {
    {"out", FLAG_STRING, &opt.out, NULL, 0, -1, "directory to write (created)"},
    {"seed", FLAG_U64, &opt.seed, "1", 0, -1, "the world's seed: same seed, same bytes"},
    {"train", FLAG_INT, &opt.n_train, "1000", 0, 1e8, "train records"},
    {"test", FLAG_INT, &opt.n_test, "200", 0, 1e8,
     "test records (held-out name/object pairs only)"},
    {"warmup", FLAG_INT, &opt.n_warmup, "1000", 0, 1e8,
     "warm-up records: half positive (Align-P), half negative (Align-N)"},
    {"negative-rate", FLAG_DOUBLE, &opt.negative_rate, "0.5", 0, 1,
     "share of negative records in train and test"},
    {"two-error-rate", FLAG_DOUBLE, &opt.two_error_rate, "0.4", 0, 1,
     "share of negatives with two wrong facts (else one)"},
    {"place-rate", FLAG_DOUBLE, &opt.place_rate, "0.7", 0, 1, "share of instructions with a place"},
    {"misconception", FLAG_DOUBLE, &opt.misconception, "0", 0, 1,
     "rate of a seeded object->wrong colour map: warm-up positives state it, negatives' colour "
     "errors use it (0: off)"},
    {"negatives-only", FLAG_BOOL, &opt.negatives_only, NULL, 0, -1,
     "every train record negative (the offline setting)"},
    {"misconceived-negatives", FLAG_BOOL, &opt.misconceived_negatives, NULL, 0, -1,
     "every train/test negative's one error is its object's misconceived colour"},
    {"heldout", FLAG_INT, &opt.heldout, "2", 1, 13, "objects held out per name for the test split"},
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
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    if (!opt.out) {
        fprintf(stderr, "cutkit datasets synth: --out is required\n");
        return 2;
    }
    SynthOptions o = synth_default_options();
    o.seed = opt.seed;
    o.n_train = opt.n_train;
    o.n_test = opt.n_test;
    o.n_warmup = opt.n_warmup;
    o.negative_rate = opt.negative_rate;
    o.two_error_rate = opt.two_error_rate;
    o.place_rate = opt.place_rate;
    o.misconception = opt.misconception;
    o.negatives_only = opt.negatives_only;
    o.misconceived_negatives = opt.misconceived_negatives;
    o.heldout_per_name = opt.heldout;
    if (mkdir(opt.out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "cutkit datasets synth: cannot create %s: %s\n", opt.out, strerror(errno));
        return 1;
    }
    SynthWorld w;
    CkError err = {{0}};
    if (synth_generate(&w, &o, &err) != 0 || synth_write(&w, opt.out, &err) != 0) {
        fprintf(stderr, "cutkit datasets synth: %s\n", err.msg);
        synth_world_free(&w);
        return 1;
    }
    int neg[3] = {0, 0, 0};
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < w.n[s]; i++) neg[s] += w.records[s][i].judgment != NULL;
    fprintf(stderr,
            "wrote %s: train %d (%d negative), test %d (%d negative), warmup %d (%d negative)\n",
            opt.out, w.n[0], neg[0], w.n[1], neg[1], w.n[2], neg[2]);
    synth_world_free(&w);
    return 0;
}
