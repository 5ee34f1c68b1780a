/* contrast_pipeline.c — options -> inputs (records, known errors, templates, model) -> the
 * contrast run with its views -> contrast.csv, detection.json, figures/. */
#include "analysis/contrast_pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analysis/contrast_views.h"
#include "analysis/known_errors.h"
#include "datasets/judgments.h"
#include "datasets/templates.h"
#include "formats/lm.h"
#include "formats/peft.h"
#include "model/matmul.h"
#include "util/outdir.h"
#include "util/timer.h"

ContrastPipelineOptions contrast_pipeline_defaults(void) {
    ContrastPipelineOptions o;
    memset(&o, 0, sizeof o);
    o.format = "auto";
    o.lambdas = "1.1,1.2,2";
    o.plots = "png";
    o.example = -1;
    o.heatmap_rows = 100;
    o.base_dtype = WEIGHT_F32;
    return o;
}

int contrast_parse_lambdas(const char *text, double *out, int max) {
    int n = 0;
    for (const char *p = text; *p;) {
        char *end;
        errno = 0;
        const double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v) || v <= 0 || (*end && *end != ',') || n == max)
            return -1;
        out[n++] = v;
        p = *end ? end + 1 : end;
    }
    return n;
}

void contrast_pipeline_result_free(ContrastPipelineResult *r) {
    contrast_run_result_free(&r->run);
    free(r->csv_path);
    free(r->json_path);
    free(r->figures_dir);
    memset(r, 0, sizeof *r);
}

/* What a run opens, released together. */
typedef struct {
    const ContrastPipelineOptions *o;
    JudgmentFormat fmt;
    JudgmentSet set;
    KnownErrorSet known;
    Template tpl;
    LanguageModel lm;
    LoraAdapters ad;
    int have_lm, have_ad;
    RunLock lock; /* out, while the run writes it */
    ContrastViews views;
    double t0, last_report; /* progress: the run's start, the last line's time */
} Session;

static void session_close(Session *s) {
    contrast_views_free(&s->views);
    if (s->have_ad) lora_free(&s->ad);
    if (s->have_lm) lm_close(&s->lm);
    template_free(&s->tpl);
    known_errors_free(&s->known);
    judgments_free(&s->set);
    runlock_release(&s->lock);
}

/* The options the flags cannot check by themselves. */
static int check_options(Session *s, ContrastPipelineResult *r, CkError *err) {
    const ContrastPipelineOptions *o = s->o;
    if (!o->judgments || !o->out)
        return ck_fail(err, "contrast: a judgment file and an output folder are needed");
    r->n_lambdas =
        o->lambdas ? contrast_parse_lambdas(o->lambdas, r->lambdas, CONTRAST_MAX_LAMBDAS) : -1;
    if (r->n_lambdas < 1) {
        r->n_lambdas = 0;
        return ck_fail(err, "contrast: '%s' is not a list of up to %d positive λ values",
                       o->lambdas ? o->lambdas : "", CONTRAST_MAX_LAMBDAS);
    }
    s->fmt = judgments_format_from_name(o->format ? o->format : "auto", o->judgments);
    if (!s->fmt) return ck_fail(err, "contrast: unknown judgment format '%s'", o->format);
    if (o->plots && strcmp(o->plots, "none") != 0 && strcmp(o->plots, "png") != 0 &&
        strcmp(o->plots, "svg") != 0)
        return ck_fail(err, "contrast: figures are png, svg or none, not '%s'", o->plots);
    return 0;
}

/* Fails unless o->example names a negative record among the first o->limit negatives. */
static int check_example(const Session *s, ContrastPipelineResult *r, CkError *err) {
    const ContrastPipelineOptions *o = s->o;
    if (o->example < 0) return 0;
    int negatives = 0;
    for (int i = 0; i < s->set.n; i++) {
        const JudgmentRecord *rec = &s->set.records[i];
        if (!rec->judgment) continue;
        if (o->limit > 0 && negatives >= o->limit) break;
        negatives++;
        if (rec->source_index == o->example) return 0;
    }
    r->bad_example = 1;
    return ck_fail(err,
                   "record %d is not a negative record among the %s contrasted (the strip "
                   "needs log pM)",
                   o->example, o->limit > 0 ? "first negatives" : "records");
}

/* The records and their known errors, the templates, the model and the adapter. */
static int open_inputs(Session *s, ContrastPipelineResult *r, CkError *err) {
    const ContrastPipelineOptions *o = s->o;
    JudgmentLoadOptions lo = {o->skip_bad, 0};
    if (judgments_load(&s->set, o->judgments, s->fmt, &lo, err) != 0 ||
        known_errors_load(&s->known, o->judgments, s->fmt, &s->set, err) != 0 ||
        check_example(s, r, err) != 0)
        return -1;
    if ((o->template_path ? template_load(&s->tpl, o->template_path, err)
                          : template_default(&s->tpl, err)) != 0)
        return -1;
    if (lm_open_held(&s->lm, o->model, o->tokenizer, o->base_dtype, err) != 0) return -1;
    s->have_lm = 1;
    if (o->adapter) {
        if (peft_load(&s->ad, &s->lm.model, o->adapter, err) != 0) return -1;
        s->have_ad = 1;
    }
    return 0;
}

/* dir + "/" + name, malloc'd (NULL when out of memory). */
static char *join(const char *dir, const char *name) {
    const size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Creates o->out (with its parents), locks it for this run (a second writer is refused:
 * "OUT is in use by pid N"), removes what killed runs left in it and names the files in it. */
static int make_paths(Session *s, ContrastPipelineResult *r, CkError *err) {
    const ContrastPipelineOptions *o = s->o;
    if (outdir_open(&s->lock, o->out, err) != 0) return -1;
    r->csv_path = join(o->out, "contrast.csv");
    r->json_path = join(o->out, "detection.json");
    r->figures_dir = join(o->out, "figures");
    if (!r->csv_path || !r->json_path || !r->figures_dir) return ck_fail(err, "out of memory");
    outdir_remove_stale_temps(r->figures_dir);
    return 0;
}

/* contrast.csv's comment line: everything that decides its numbers. */
static void describe(const Session *s, char *out, size_t size) {
    const ContrastPipelineOptions *o = s->o;
    int negatives = 0;
    for (int i = 0; i < s->set.n; i++) negatives += s->set.records[i].judgment != NULL;
    snprintf(out, size,
             "cutkit contrast: model %s (held as %s, %s products), adapter %s, tokenizer %s, "
             "template %s, judgments %s (%s; %d negative records, %d positives skipped), limit "
             "%d%s, lambdas %s, cutoff %d; deterministic (no seed)",
             s->lm.model_source, model_held_name(o->base_dtype), matmul_compute_name(),
             o->adapter ? o->adapter : "none", s->lm.tokenizer_source,
             o->template_path ? o->template_path : "built-in Alpaca", o->judgments,
             judgments_format_name(s->fmt), negatives, s->set.n - negatives, o->limit,
             o->limit ? "" : " (all)", o->lambdas, s->lm.model.config.seq_len);
}

/* contrast_run's progress callback: examples done of total, with rate and ETA. */
static void on_progress(void *ctx, int done, int total) {
    Session *s = ctx;
    FILE *out = s->o->progress;
    const double now = timer_seconds(), el = now - s->t0;
    const int tty = isatty(fileno(out)), last = done == total;
    if (!last && now - s->last_report < (tty ? 0.5 : 10.0)) return;
    if (last && el < 2.0 && s->last_report == s->t0) return; /* quick runs: no progress */
    s->last_report = now;
    const double rate = el > 0 ? done / el : 0;
    const double eta = rate > 0 ? (total - done) / rate : 0;
    fprintf(out, "%scontrast: %d/%d examples, %.1f examples/s, ETA %.0f s%s", tty ? "\r" : "", done,
            total, rate, eta, tty ? (last ? "\n" : "   ") : "\n");
}

static int on_example(void *ctx, const ContrastExampleView *v, CkError *err) {
    Session *s = ctx;
    return contrast_views_add(&s->views, v, err);
}

/* contrast_run over the negatives, its views collected; contrast.csv written. */
static int run_contrast(Session *s, ContrastPipelineResult *r, CkError *err) {
    const ContrastPipelineOptions *o = s->o;
    char comment[4096];
    describe(s, comment, sizeof comment);
    contrast_views_init(&s->views, o->heatmap_rows, o->example, r->lambdas[0]);
    s->views.show = o->show;
    s->views.show_max = o->show_max;
    s->views.show_colour = o->show_colour;
    ContrastRunOptions ro = {.model = &s->lm.model,
                             .lora = s->have_ad ? &s->ad : NULL,
                             .tok = &s->lm.tokenizer,
                             .tpl = &s->tpl,
                             .set = &s->set,
                             .known = &s->known,
                             .lambdas = r->lambdas,
                             .n_lambdas = r->n_lambdas,
                             .limit = o->limit,
                             .csv_path = r->csv_path,
                             .comment = comment,
                             .on_example = on_example,
                             .on_progress = o->progress ? on_progress : NULL,
                             .ctx = s};
    s->t0 = s->last_report = timer_seconds();
    if (contrast_run(&ro, &r->run, err) != 0) return ck_wrap(err, "%s", o->judgments);
    r->csv_written = 1;
    return 0;
}

/* The figures into out/figures. gnuplot is told its folder in single quotes, which cannot
 * hold a ' or a newline: when out/figures does, the figures are drawn from inside out, as
 * "figures", and the working directory is restored after (the process's: the run holds no
 * other thread that uses paths). */
static int draw_figures(Session *s, ContrastPipelineResult *r, CkError *err) {
    const ContrastPipelineOptions *o = s->o;
    r->figures_started = 1;
    if (mkdir(r->figures_dir, 0777) != 0 && errno != EEXIST)
        return ck_fail(err, "cannot create %s: %s", r->figures_dir, strerror(errno));
    memset(&r->figures, 0, sizeof r->figures);
    r->figures.dir = r->figures_dir;
    r->figures.format = o->plots;
    r->strip_missing = !s->views.strip_found && o->example >= 0;
    if (!strpbrk(r->figures_dir, "'\n") || !figures_have_gnuplot(&r->figures))
        return contrast_views_draw(&s->views, &r->run, &r->figures, err);
    const int back = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (back < 0 || chdir(o->out) != 0) {
        const int saved = errno;
        if (back >= 0) close(back);
        return ck_fail(err, "cannot change into %s to draw: %s", o->out, strerror(saved));
    }
    r->figures.dir = "figures";
    int rc = contrast_views_draw(&s->views, &r->run, &r->figures, err);
    if (fchdir(back) != 0 && rc == 0)
        rc = ck_fail(err, "cannot change back from %s: %s", o->out, strerror(errno));
    close(back);
    r->figures.dir = r->figures_dir;
    return rc;
}

int contrast_pipeline_run(const ContrastPipelineOptions *o, ContrastPipelineResult *r,
                          CkError *err) {
    memset(r, 0, sizeof *r);
    Session s;
    memset(&s, 0, sizeof s);
    s.o = o;
    int rc = check_options(&s, r, err);
    if (rc == 0) rc = open_inputs(&s, r, err);
    if (rc == 0) rc = make_paths(&s, r, err);
    if (rc == 0) rc = run_contrast(&s, r, err);
    if (rc == 0 && r->run.n_known > 0) {
        rc = contrast_run_write_detection(&r->run, r->json_path, o->judgments, err);
        r->detection_written = rc == 0;
    }
    if (rc == 0 && o->plots && strcmp(o->plots, "none") != 0) rc = draw_figures(&s, r, err);
    session_close(&s);
    return rc;
}
