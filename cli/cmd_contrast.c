/* cmd_contrast.c — `cutkit contrast`: per-token log pA / log pM contrasts of a judgment file:
 * DIR/contrast.csv, DIR/detection.json when the records carry error_spans, gnuplot figures
 * in DIR/figures, and a terminal view of the first examples with flagged tokens marked. The
 * work is analysis/contrast_pipeline.h's; this file parses, calls and prints. */
#include <stdio.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/compute_flag.h"
#include "analysis/contrast_pipeline.h"
#include "util/threads.h"

static struct {
    ContrastPipelineOptions c;
    int threads;
    const char *compute, *base_dtype;
} opt;

static FlagSpec FLAGS[] = {
    {"judgments", FLAG_STRING, &opt.c.judgments, NULL, 0, -1,
     "judgment records (negatives are contrasted; positives have no Misalign sequence)", NULL, 1},
    {"judgment-format", FLAG_STRING, &opt.c.format, "auto", 0, -1,
     "cut (CUT/Alpaca JSON array), shepherd (JSONL) or jsonl (generic); auto: by extension",
     "cut|shepherd|jsonl|auto"},
    FLAG_OUT_REQUIRED(&opt.c.out, "output folder (created; may be a run directory): "
                                  "contrast.csv, detection.json, figures/"),
    FLAG_MODEL(&opt.c.model),
    {"tokenizer", FLAG_STRING, &opt.c.tokenizer, NULL, 0, -1, "tokenizer (default: the model's)"},
    FLAG_ADAPTER(&opt.c.adapter),
    FLAG_BASE_DTYPE(&opt.base_dtype),
    {"template", FLAG_STRING, &opt.c.template_path, NULL, 0, -1,
     "prompt templates JSON (e.g. a synthetic world's template.json); default: the reference "
     "Alpaca templates"},
    {"lambda", FLAG_STRING, &opt.c.lambdas, "1.1,1.2,2", 0, -1,
     "comma-separated λ values: a flagged@λ column each (the first one for the heatmap, the "
     "strip and --show)"},
    {"limit", FLAG_INT, &opt.c.limit, "0", 0, 1e9, "contrast the first N negatives (0: all)"},
    {"plots", FLAG_STRING, &opt.c.plots, "png", 0, -1,
     "image format of the figures (none: no figures)", "png|svg|none"},
    {"example", FLAG_INT, &opt.c.example, "-1", -1, 1e9,
     "record index of the example drawn as a strip (-1: the first negative)"},
    {"heatmap-rows", FLAG_INT, &opt.c.heatmap_rows, "100", 1, 100000,
     "examples (rows) in the heatmap: the first N"},
    {"show", FLAG_INT, &opt.c.show_max, "0", 0, 1e9,
     "print the first N examples with flagged tokens highlighted (colour on a terminal, "
     "[[token]]{+ratio} otherwise)"},
    {"skip-bad", FLAG_BOOL, &opt.c.skip_bad, NULL, 0, -1, "skip and count malformed records"},
    FLAG_THREADS(&opt.threads),
    FLAG_COMPUTE(&opt.compute),
};

static const CommandSpec SPEC = {
    "contrast",
    "per-token log pA / log pM contrasts of judgment data, CSV and heatmaps",
    "--judgments FILE --out DIR [--model PATH] [--adapter DIR] [--template FILE] "
    "[--lambda 1.1,1.2,2]",
    "For every negative record: its CUT example (Align-N: the prompt with the judgment;\n"
    "Misalign: the plain prompt; sequences cut to the model's context as training cuts them),\n"
    "log pA and log pM of each response token from one forward of both, and whether CUT\n"
    "flags it at each λ (log pA - log pM > log λ). Writes DIR/contrast.csv (one row per\n"
    "token: example = the record's index in the file, position, token_id, token_text,\n"
    "log_pa, log_pm, log_ratio, flagged@λ...), atomically. When the records carry\n"
    "error_spans (cutkit datasets synth), DIR/detection.json: token precision/recall/F1,\n"
    "chance precision, mention, first-mention and decisive recall, flagged fraction and\n"
    "counts, per λ and over a dense λ grid. Figures in DIR/figures through gnuplot\n"
    "(heatmap, strip of --example, lambda, and pr when spans are known), each with its\n"
    "data file and script; without gnuplot the data and scripts are written.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_contrast_spec(void) {
    return &SPEC;
}

/* What the run wrote, step by step as far as it got. */
static void print_result(const ContrastPipelineResult *r, int ok) {
    const ContrastRunResult *run = &r->run;
    if (r->csv_written) {
        const DetectionScores first = detection_scores(&run->all[run->requested[0]]);
        fprintf(stderr,
                "wrote %s: %d examples, %ld tokens (%d positives skipped, %d negatives too long "
                "for the context%s); flagged at lambda %g: %.3f\n",
                r->csv_path, run->n_examples, run->n_tokens, run->n_positive, run->n_too_long,
                run->n_inexact ? ", some token ranges inexact" : "", r->lambdas[0],
                first.flagged_fraction);
    }
    if (r->detection_written) {
        fprintf(stderr, "detection on %d examples with error_spans (%d with decisive tokens):\n",
                run->n_known, run->n_decisive);
        for (int i = 0; i < run->n_lambdas; i++) {
            const DetectionScores s = detection_scores(&run->grid[run->requested[i]]);
            fprintf(stderr,
                    "  lambda %g: precision %.3f recall %.3f F1 %.3f (chance precision %.3f), "
                    "mention recall %.3f, first-mention %.3f, decisive %.3f, flagged %.3f\n",
                    r->lambdas[i], s.precision, s.recall, s.f1, s.chance_precision,
                    s.mention_recall, s.first_mention_recall, s.decisive_recall,
                    s.flagged_fraction);
        }
        fprintf(stderr, "wrote %s\n", r->json_path);
    }
    if (r->figures_started && r->strip_missing)
        cli_error(&SPEC, 0, "record %d was skipped (too long for the context): no strip figure",
                  opt.c.example);
    if (!ok || !r->figures_started) return;
    if (r->figures.note[0])
        cli_error(&SPEC, 0, "%s", r->figures.note);
    else if (r->figures.gnuplot_ran)
        fprintf(stderr, "figures: %s/{heatmap,strip,lambda%s}.%s\n", r->figures_dir,
                run->n_known ? ",pr" : "", opt.c.plots);
}

int cmd_contrast(int argc, char **argv) {
    char *positional[1];
    int n_positional;
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    double lambdas[CONTRAST_MAX_LAMBDAS];
    const int n_lambdas = contrast_parse_lambdas(opt.c.lambdas, lambdas, CONTRAST_MAX_LAMBDAS);
    if (n_lambdas < 0)
        return cli_error(&SPEC, 2,
                         "--lambda expects up to %d positive numbers separated by commas, got '%s'",
                         CONTRAST_MAX_LAMBDAS, opt.c.lambdas);
    if (n_lambdas == 0) return cli_error(&SPEC, 2, "--lambda is empty");
    if ((rc = cli_apply_base_dtype(&SPEC, opt.base_dtype, &opt.c.base_dtype)) != 0) return rc;
    threads_set(opt.threads);
    if ((rc = cli_apply_compute(&SPEC, opt.compute)) != 0) return rc;
    opt.c.show = stdout;
    opt.c.show_colour = isatty(1);
    opt.c.progress = stderr;
    ContrastPipelineResult r;
    CkError err = {{0}};
    rc = contrast_pipeline_run(&opt.c, &r, &err);
    fflush(stdout);
    print_result(&r, rc == 0);
    if (rc != 0 && r.bad_example)
        rc = cli_error(&SPEC, 2,
                       "--example %d is not a negative record among the %s contrasted (the "
                       "strip needs log pM)",
                       opt.c.example, opt.c.limit > 0 ? "first --limit negatives" : "records");
    else if (rc != 0)
        rc = cli_fail(&SPEC, 1, &err);
    contrast_pipeline_result_free(&r);
    return rc;
}
