/* cmd_contrast.c — `cutkit contrast`: per-token log pA / log pM contrasts of a judgment file:
 * DIR/contrast.csv, DIR/detection.json when the records carry error_spans, gnuplot figures
 * in DIR/figures, and a terminal view of the first examples with flagged tokens marked. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "analysis/contrast_run.h"
#include "analysis/figures.h"
#include "formats/lm.h"
#include "formats/peft.h"
#include "util/threads.h"
#include "util/timer.h"

#define MAX_LAMBDAS 32

static struct {
    const char *judgments, *judgment_format, *model, *tokenizer, *adapter, *template_path;
    const char *lambda, *out, *plots;
    int limit, example, show, heatmap_rows, threads, skip_bad;
} opt;

static FlagSpec FLAGS[] = {
    {"judgments", FLAG_STRING, &opt.judgments, NULL, 0, -1,
     "judgment records (negatives are contrasted; positives have no Misalign sequence)"},
    {"judgment-format", FLAG_STRING, &opt.judgment_format, "auto", 0, -1,
     "cut (CUT/Alpaca JSON array), shepherd (JSONL) or jsonl (generic); auto: by extension"},
    {"out", FLAG_STRING, &opt.out, NULL, 0, -1,
     "output folder (created; may be a run directory): contrast.csv, detection.json, figures/"},
    {"model", FLAG_STRING, &opt.model, NULL, 0, -1,
     "llama2.c .bin or Hugging Face folder; default: embedded stories260K"},
    {"tokenizer", FLAG_STRING, &opt.tokenizer, NULL, 0, -1, "tokenizer (default: the model's)"},
    {"adapter", FLAG_STRING, &opt.adapter, NULL, 0, -1, "PEFT LoRA adapter folder to apply"},
    {"template", FLAG_STRING, &opt.template_path, NULL, 0, -1,
     "prompt templates JSON (e.g. a synthetic world's template.json); default: the reference "
     "Alpaca templates"},
    {"lambda", FLAG_STRING, &opt.lambda, "1.1,1.2,2", 0, -1,
     "comma-separated λ values: a flagged@λ column each (the first one for the heatmap, the "
     "strip and --show)"},
    {"limit", FLAG_INT, &opt.limit, "0", 0, 1e9, "contrast the first N negatives (0: all)"},
    {"plots", FLAG_STRING, &opt.plots, "png", 0, -1, "figures: png, svg or none"},
    {"example", FLAG_INT, &opt.example, "-1", -1, 1e9,
     "record index of the example drawn as a strip (-1: the first negative)"},
    {"heatmap-rows", FLAG_INT, &opt.heatmap_rows, "100", 1, 100000,
     "examples (rows) in the heatmap: the first N"},
    {"show", FLAG_INT, &opt.show, "0", 0, 1e9,
     "print the first N examples with flagged tokens highlighted (colour on a terminal, "
     "[[token]]{+ratio} otherwise)"},
    {"skip-bad", FLAG_BOOL, &opt.skip_bad, NULL, 0, -1, "skip and count malformed records"},
    {"threads", FLAG_INT, &opt.threads, "0", 0, 1024, "threads (0: one per core)"},
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

/* ---- collecting what the figures and the terminal view need, example by example ---- */

typedef struct {
    FigureToken *items;
    int n, cap;
} TokenList;

typedef struct {
    TokenList heat, strip;
    int heat_examples;
    long strip_example; /* -1: the first example */
    int strip_found;
    int shown;
    int tty;
    double t0, last_report;
} Collector;

static void token_list_free(TokenList *l) {
    for (int i = 0; i < l->n; i++) free((char *)l->items[i].text);
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* Appends the tokens of v (texts copied) to l. */
static int token_list_add(TokenList *l, const ContrastExampleView *v, CkError *err) {
    const TokenContrast *c = v->contrast;
    const char *resp = v->record->output;
    const int len = (int)strlen(resp);
    if (l->n + c->n > l->cap) {
        int cap = l->cap ? l->cap : 1024;
        while (cap < l->n + c->n) cap *= 2;
        FigureToken *g = realloc(l->items, sizeof *g * (size_t)cap);
        if (!g) return ck_fail(err, "out of memory");
        l->items = g;
        l->cap = cap;
    }
    for (int t = 0; t < c->n; t++) {
        const TokenContrastRow *r = &c->tokens[t];
        const int a = r->start < len ? r->start : len, b = r->end < len ? r->end : len;
        /* EOS has no bytes in the response: name it, so its bar has a label */
        char *text = r->end > r->start ? strndup(resp + a, (size_t)(b - a)) : strdup("</s>");
        if (!text) return ck_fail(err, "out of memory");
        l->items[l->n++] =
            (FigureToken){(int)v->example, t, text, r->log_pa - r->log_pm, v->flags[t]};
    }
    return 0;
}

/* Prints example v with its flagged tokens marked: reverse red on a terminal, else
 * [[token]]{+ratio}; the log ratio beside each flagged token. */
static void show_example(const Collector *col, const ContrastExampleView *v, double lambda) {
    const TokenContrast *c = v->contrast;
    const char *resp = v->record->output;
    const int len = (int)strlen(resp);
    int n_flagged = 0;
    for (int t = 0; t < c->n; t++) n_flagged += v->flags[t];
    printf("%s--- example %ld: %d of %d tokens flagged at lambda %g%s\n", col->tty ? "\033[1m" : "",
           v->example, n_flagged, c->n, lambda, col->tty ? "\033[0m" : "");
    for (int t = 0; t < c->n; t++) {
        const TokenContrastRow *r = &c->tokens[t];
        const int a = r->start < len ? r->start : len, b = r->end < len ? r->end : len;
        const int eos = r->end <= r->start;
        if (!v->flags[t]) {
            fwrite(resp + a, 1, (size_t)(b - a), stdout);
            continue;
        }
        const double ratio = r->log_pa - r->log_pm;
        if (col->tty) {
            printf("\033[1;97;41m");
            if (eos)
                fputs("</s>", stdout);
            else
                fwrite(resp + a, 1, (size_t)(b - a), stdout);
            printf("\033[0m\033[31m{%+.1f}\033[0m", ratio);
        } else {
            fputs("[[", stdout);
            if (eos)
                fputs("</s>", stdout);
            else
                fwrite(resp + a, 1, (size_t)(b - a), stdout);
            printf("]]{%+.1f}", ratio);
        }
    }
    fputc('\n', stdout);
}

static int on_example(void *ctx, const ContrastExampleView *v, CkError *err) {
    Collector *col = ctx;
    if (col->heat_examples < opt.heatmap_rows) {
        if (token_list_add(&col->heat, v, err) != 0) return -1;
        col->heat_examples++;
    }
    if (!col->strip_found && (col->strip_example < 0 || v->example == col->strip_example)) {
        if (token_list_add(&col->strip, v, err) != 0) return -1;
        col->strip_found = 1;
        col->strip_example = v->example;
    }
    if (col->shown < opt.show) {
        show_example(col, v, strtod(opt.lambda, NULL));
        col->shown++;
    }
    return 0;
}

/* Progress with an ETA on stderr: a rewritten line on a terminal, else a line every 10 s. */
static void on_progress(void *ctx, int done, int total) {
    Collector *col = ctx;
    const double now = timer_seconds(), el = now - col->t0;
    const int tty = isatty(2);
    const int last = done == total;
    if (!last && now - col->last_report < (tty ? 0.5 : 10.0)) return;
    if (last && el < 2.0 && col->last_report == col->t0) return; /* quick runs: no progress */
    col->last_report = now;
    const double rate = el > 0 ? done / el : 0;
    const double eta = rate > 0 ? (total - done) / rate : 0;
    fprintf(stderr, "%scontrast: %d/%d examples, %.1f examples/s, ETA %.0f s%s", tty ? "\r" : "",
            done, total, rate, eta, tty ? (last ? "\n" : "   ") : "\n");
}

/* ---- the command ---- */

/* Parses --lambda into l (at most MAX_LAMBDAS); prints and returns 2 on a bad list. */
static int parse_lambdas(double *l, int *n) {
    *n = 0;
    const char *p = opt.lambda;
    while (*p) {
        char *end;
        errno = 0;
        const double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v) || v <= 0 || (*end && *end != ',') ||
            *n == MAX_LAMBDAS) {
            fprintf(stderr,
                    "cutkit contrast: --lambda expects up to %d positive numbers separated by "
                    "commas, got '%s'\n",
                    MAX_LAMBDAS, opt.lambda);
            return 2;
        }
        l[(*n)++] = v;
        p = *end ? end + 1 : end;
    }
    if (*n == 0) {
        fprintf(stderr, "cutkit contrast: --lambda is empty\n");
        return 2;
    }
    return 0;
}

static int judgment_format(JudgmentFormat *fmt) {
    const size_t len = strlen(opt.judgments);
    if (!strcmp(opt.judgment_format, "cut"))
        *fmt = JUDGMENTS_CUT_JSON;
    else if (!strcmp(opt.judgment_format, "shepherd"))
        *fmt = JUDGMENTS_SHEPHERD;
    else if (!strcmp(opt.judgment_format, "jsonl"))
        *fmt = JUDGMENTS_JSONL;
    else if (!strcmp(opt.judgment_format, "auto"))
        *fmt = (len > 6 && !strcmp(opt.judgments + len - 6, ".jsonl")) ? JUDGMENTS_JSONL
                                                                       : JUDGMENTS_CUT_JSON;
    else
        return -1;
    return 0;
}

static const char *FORMAT_NAMES[] = {"", "cut", "shepherd", "jsonl"};

/* Checks that --example names a negative record among the first --limit negatives. */
static int check_example(const JudgmentSet *set) {
    if (opt.example < 0) return 0;
    int negatives = 0;
    for (int i = 0; i < set->n; i++) {
        const JudgmentRecord *r = &set->records[i];
        if (!r->judgment) continue;
        if (opt.limit > 0 && negatives >= opt.limit) break;
        negatives++;
        if (r->source_index == opt.example) return 0;
    }
    fprintf(stderr,
            "cutkit contrast: --example %d is not a negative record among the %s contrasted "
            "(the strip needs log pM)\n",
            opt.example, opt.limit > 0 ? "first --limit negatives" : "records");
    return 2;
}

static void print_detection(const ContrastRunResult *r, const double *lambdas) {
    fprintf(stderr, "detection on %d examples with error_spans (%d with decisive tokens):\n",
            r->n_known, r->n_decisive);
    for (int i = 0; i < r->n_lambdas; i++) {
        const DetectionCounts *c = &r->grid[r->requested[i]];
        const DetectionScores s = detection_scores(c);
        fprintf(stderr,
                "  lambda %g: precision %.3f recall %.3f F1 %.3f (chance precision %.3f), "
                "mention recall %.3f, first-mention %.3f, decisive %.3f, flagged %.3f\n",
                lambdas[i], s.precision, s.recall, s.f1, s.chance_precision, s.mention_recall,
                s.first_mention_recall, s.decisive_recall, s.flagged_fraction);
    }
}

/* The figures of the run into DIR/figures. */
static int make_figures(const Collector *col, const ContrastRunResult *r, const double *lambdas,
                        CkError *err) {
    char dir[4200];
    if ((size_t)snprintf(dir, sizeof dir, "%s/figures", opt.out) >= sizeof dir)
        return ck_fail(err, "%s: the path is too long", opt.out);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return ck_fail(err, "cannot create %s: %s", dir, strerror(errno));
    FigureTarget t;
    memset(&t, 0, sizeof t);
    t.dir = dir;
    t.format = opt.plots;
    if (col->heat.n > 0 && figures_heatmap(&t, col->heat.items, col->heat.n, lambdas[0], err) != 0)
        return -1;
    if (!col->strip_found && opt.example >= 0)
        fprintf(stderr,
                "cutkit contrast: record %d was skipped (too long for the context): no "
                "strip figure\n",
                opt.example);
    if (col->strip.n > 0 && figures_strip(&t, col->strip.items, col->strip.n,
                                          (int)col->strip_example, lambdas[0], err) != 0)
        return -1;
    FigureLambdaPoint *pts = malloc(sizeof *pts * (size_t)(r->n_grid ? r->n_grid : 1));
    if (!pts) return ck_fail(err, "out of memory");
    for (int g = 0; g < r->n_grid; g++) {
        const DetectionScores all = detection_scores(&r->all[g]);
        const DetectionScores known = detection_scores(&r->grid[g]);
        int labelled = 0;
        for (int i = 0; i < r->n_lambdas; i++) labelled |= r->requested[i] == g;
        pts[g] = (FigureLambdaPoint){r->grid_lambdas[g], all.flagged_fraction,
                                     r->n_known ? known.precision : -1,
                                     r->n_known ? known.recall : -1, labelled};
    }
    int rc = r->n_examples > 0 ? figures_lambda(&t, pts, r->n_grid, err) : 0;
    free(pts);
    if (rc != 0) return -1;
    if (t.note[0])
        fprintf(stderr, "cutkit contrast: %s\n", t.note);
    else if (t.gnuplot_ran)
        fprintf(stderr, "figures: %s/{heatmap,strip,lambda%s}.%s\n", dir, r->n_known ? ",pr" : "",
                opt.plots);
    return 0;
}

int cmd_contrast(int argc, char **argv) {
    char *positional[1];
    int n_positional;
    int rc = flags_parse(&SPEC, argc, argv, positional, 0, &n_positional);
    if (rc != 0) return rc;
    if (!opt.judgments || !opt.out) {
        fprintf(stderr, "cutkit contrast: --judgments and --out are required\n");
        return 2;
    }
    double lambdas[MAX_LAMBDAS];
    int n_lambdas;
    if ((rc = parse_lambdas(lambdas, &n_lambdas)) != 0) return rc;
    JudgmentFormat fmt;
    if (judgment_format(&fmt) != 0) {
        fprintf(stderr,
                "cutkit contrast: --judgment-format expects cut, shepherd, jsonl or auto, "
                "got '%s'\n",
                opt.judgment_format);
        return 2;
    }
    const int plots = strcmp(opt.plots, "none") != 0;
    if (plots && strcmp(opt.plots, "png") != 0 && strcmp(opt.plots, "svg") != 0) {
        fprintf(stderr, "cutkit contrast: --plots expects png, svg or none, got '%s'\n", opt.plots);
        return 2;
    }
    threads_set(opt.threads);

    CkError err = {{0}};
    JudgmentSet set;
    KnownErrorSet known;
    Template tpl;
    LanguageModel lm;
    LoraAdapters ad;
    ContrastRunResult res;
    Collector col;
    memset(&set, 0, sizeof set);
    memset(&known, 0, sizeof known);
    memset(&tpl, 0, sizeof tpl);
    memset(&res, 0, sizeof res);
    memset(&col, 0, sizeof col);
    int have_lm = 0, have_ad = 0;
    rc = 1;
    JudgmentLoadOptions lo = {opt.skip_bad, 0};
    if (judgments_load(&set, opt.judgments, fmt, &lo, &err) != 0 ||
        known_errors_load(&known, opt.judgments, fmt, &set, &err) != 0)
        goto fail;
    if (check_example(&set) != 0) {
        rc = 2;
        goto done;
    }
    if ((opt.template_path ? template_load(&tpl, opt.template_path, &err)
                           : template_default(&tpl, &err)) != 0)
        goto fail;
    if (lm_open(&lm, opt.model, opt.tokenizer, &err) != 0) goto fail;
    have_lm = 1;
    if (opt.adapter) {
        if (peft_load(&ad, &lm.model, opt.adapter, &err) != 0) goto fail;
        have_ad = 1;
    }
    if (mkdir(opt.out, 0777) != 0 && errno != EEXIST) {
        ck_fail(&err, "cannot create %s: %s", opt.out, strerror(errno));
        goto fail;
    }
    char csv_path[4200], json_path[4200], comment[4096];
    if ((size_t)snprintf(csv_path, sizeof csv_path, "%s/contrast.csv", opt.out) >=
            sizeof csv_path ||
        (size_t)snprintf(json_path, sizeof json_path, "%s/detection.json", opt.out) >=
            sizeof json_path) {
        ck_fail(&err, "%s: the path is too long", opt.out);
        goto fail;
    }
    int negatives = 0;
    for (int i = 0; i < set.n; i++) negatives += set.records[i].judgment != NULL;
    snprintf(comment, sizeof comment,
             "cutkit contrast: model %s, adapter %s, tokenizer %s, template %s, judgments %s "
             "(%s; %d negative records, %d positives skipped), limit %d%s, lambdas %s, cutoff %d; "
             "deterministic (no seed)",
             lm.model_source, opt.adapter ? opt.adapter : "none", lm.tokenizer_source,
             opt.template_path ? opt.template_path : "built-in Alpaca", opt.judgments,
             FORMAT_NAMES[fmt], negatives, set.n - negatives, opt.limit, opt.limit ? "" : " (all)",
             opt.lambda, lm.model.config.seq_len);
    col.strip_example = opt.example;
    col.tty = isatty(1);
    col.t0 = col.last_report = timer_seconds();
    ContrastRunOptions ro = {&lm.model,     have_ad ? &ad : NULL,
                             &lm.tokenizer, &tpl,
                             &set,          &known,
                             lambdas,       n_lambdas,
                             opt.limit,     csv_path,
                             comment,       on_example,
                             on_progress,   &col};
    if (contrast_run(&ro, &res, &err) != 0) {
        ck_wrap(&err, "%s", opt.judgments);
        goto fail;
    }
    fflush(stdout);
    const DetectionScores first = detection_scores(&res.all[res.requested[0]]);
    fprintf(stderr,
            "wrote %s: %d examples, %ld tokens (%d positives skipped, %d negatives too long for "
            "the context%s); flagged at lambda %g: %.3f\n",
            csv_path, res.n_examples, res.n_tokens, res.n_positive, res.n_too_long,
            res.n_inexact ? ", some token ranges inexact" : "", lambdas[0], first.flagged_fraction);
    if (res.n_known > 0) {
        if (contrast_run_write_detection(&res, json_path, opt.judgments, &err) != 0) goto fail;
        print_detection(&res, lambdas);
        fprintf(stderr, "wrote %s\n", json_path);
    }
    if (plots && make_figures(&col, &res, lambdas, &err) != 0) goto fail;
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "cutkit contrast: %s\n", err.msg);
    rc = 1;
done:
    contrast_run_result_free(&res);
    token_list_free(&col.heat);
    token_list_free(&col.strip);
    if (have_ad) lora_free(&ad);
    if (have_lm) lm_close(&lm);
    template_free(&tpl);
    known_errors_free(&known);
    judgments_free(&set);
    return rc;
}
