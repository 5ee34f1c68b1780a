/* cmd_eval_rouge.c — `cutkit eval rouge`: ROUGE-1/2/L/Lsum of predictions against references
 * with rouge-score's semantics (eval/rouge.h), written to OUT/rouge.json and OUT/items.jsonl. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "eval/rouge.h"

static struct {
    const char *out, *stemmer, *prediction_field, *reference_field;
    int bootstrap;
    double confidence;
    uint64_t seed;
} opt;

static FlagSpec FLAGS[] = {
    FLAG_OUT_REQUIRED(&opt.out, "directory for rouge.json and items.jsonl"),
    {"stemmer", FLAG_STRING, &opt.stemmer, "none", 0, -1,
     "porter: stem tokens longer than 3 characters (rouge_score's use_stemmer=True)",
     "none|porter"},
    {"prediction-field", FLAG_STRING, &opt.prediction_field, "prediction", 0, -1,
     "the records' field holding the prediction (a string)"},
    {"reference-field", FLAG_STRING, &opt.reference_field, "reference", 0, -1,
     "the records' field holding the reference (a string, or an array of strings)"},
    {"bootstrap", FLAG_INT, &opt.bootstrap, "0", 0, 1000000,
     "resamples for rouge_score's bootstrap low/mid/high (0: only the mean; it uses 1000)"},
    {"confidence", FLAG_DOUBLE, &opt.confidence, "0.95", 0, 1, "the bootstrap interval"},
    {"seed", FLAG_U64, &opt.seed, "0", 0, -1, "seed of the bootstrap resampling"},
};

static const CommandSpec SPEC = {
    "eval rouge",
    "ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum as rouge-score computes them",
    "DATA.jsonl [REFERENCES.jsonl] --out DIR [--stemmer none|porter] [--bootstrap N]",
    "DATA.jsonl holds one record per item with \"prediction\" and \"reference\" (the fields are\n"
    "chosen with --prediction-field/--reference-field); with REFERENCES.jsonl the references\n"
    "come from its records, paired with DATA's in order (an \"id\" in both must agree). A list\n"
    "of references keeps, per type, the one with the highest F (rouge_score's score_multi).\n"
    "Tokens: lowercase, runs of characters other than a-z0-9 split them; ROUGE-Lsum splits\n"
    "sentences at newlines. The scores are the plain mean over items of P, R and F; rouge_score\n"
    "reports its BootstrapAggregator's mid instead (the median of resampled means), which\n"
    "--bootstrap adds. See eval/ROUGE.md.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_eval_rouge_spec(void) {
    return &SPEC;
}

static void print_table(const RougeRunOptions *o, const RougeSummary *s) {
    printf("%d items, stemmer %s; mean x 100%s\n", s->n, o->stem ? "porter" : "none",
           o->bootstrap ? "; F's bootstrap low/mid/high x 100" : "");
    printf("%-10s %9s %9s %9s", "type", "precision", "recall", "fmeasure");
    printf(o->bootstrap ? " %8s %8s %8s\n" : "\n", "F_low", "F_mid", "F_high");
    for (int t = 0; t < ROUGE_N_TYPES; t++) {
        const RougeScore *m = &s->mean[t];
        printf("%-10s %9.2f %9.2f %9.2f", rouge_type_name((RougeType)t), 100 * m->precision,
               100 * m->recall, 100 * m->fmeasure);
        if (o->bootstrap)
            printf(" %8.2f %8.2f %8.2f", 100 * s->low[t].fmeasure, 100 * s->mid[t].fmeasure,
                   100 * s->high[t].fmeasure);
        putchar('\n');
    }
    printf("wrote %s/rouge.json and %s/items.jsonl\n", o->out, o->out);
}

int cmd_eval_rouge(int argc, char **argv) {
    char *files[2];
    int n_files;
    int rc = flags_parse(&SPEC, argc, argv, files, 2, &n_files);
    if (rc != 0) return rc;
    if (n_files == 0)
        return cli_error(&SPEC, 2, "give DATA.jsonl (and optionally REFERENCES.jsonl)");
    RougeRunOptions o;
    rouge_run_options_init(&o);
    o.data = files[0];
    o.references = n_files > 1 ? files[1] : NULL;
    o.out = opt.out;
    o.prediction_field = opt.prediction_field;
    o.reference_field = opt.reference_field;
    o.stem = !strcmp(opt.stemmer, "porter");
    o.bootstrap = opt.bootstrap > 0;
    if (o.bootstrap) o.boot.samples = opt.bootstrap;
    o.boot.confidence = opt.confidence;
    o.boot.seed = opt.seed;
    RougeSummary s;
    CkError err = {{0}};
    if (rouge_run(&o, &s, &err) != 0) return cli_fail(&SPEC, 1, &err);
    print_table(&o, &s);
    return 0;
}
