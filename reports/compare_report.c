/* compare_report.c — see compare_report.h. */
#include "reports/compare_report.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reports/escape.h"
#include "util/fileio.h"
#include "util/strbuf.h"

#define MAX_NOTES (2 * METRIC_MAX_COLUMNS + 2)

/* Everything a comparison shows. */
typedef struct {
    RunDir *runs;    /* n_a + n_b: side A's first */
    RunItems *items; /* per run */
    int *members;    /* 0 .. n_a + n_b - 1: side A is members[0..n_a), B the rest */
    int n_a, n_b;
    char *label_a, *label_b;
    CompareOptions o;
    int n_done, n_skipped, n_notes;
    CompareMetric done[METRIC_MAX_COLUMNS];    /* compared */
    CompareMetric skipped[METRIC_MAX_COLUMNS]; /* not compared, with the reason in status */
    char *notes[MAX_NOTES];
} Comparison;

static void comparison_free(Comparison *c) {
    for (int r = 0; c->runs && r < c->n_a + c->n_b; r++) rundir_close(&c->runs[r]);
    for (int r = 0; c->items && r < c->n_a + c->n_b; r++) run_items_free(&c->items[r]);
    free(c->runs);
    free(c->items);
    free(c->members);
    free(c->label_a);
    free(c->label_b);
    for (int i = 0; i < c->n_notes; i++) free(c->notes[i]);
    memset(c, 0, sizeof *c);
}

static void add_note(Comparison *c, char *note) {
    if (note && c->n_notes < MAX_NOTES)
        c->notes[c->n_notes++] = note;
    else
        free(note);
}

static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

/* Opens the runs of both sides, their per-item files and labels. */
static int open_sides(Comparison *c, const char *const *dirs_a, const char *const *dirs_b,
                      CkError *err) {
    int n = c->n_a + c->n_b;
    c->runs = calloc((size_t)n, sizeof *c->runs);
    c->items = calloc((size_t)n, sizeof *c->items);
    c->members = malloc(sizeof(int) * (size_t)n);
    if (!c->runs || !c->items || !c->members) return ck_fail(err, "out of memory");
    for (int r = 0; r < n; r++) {
        c->members[r] = r;
        const char *dir = r < c->n_a ? dirs_a[r] : dirs_b[r - c->n_a];
        if (rundir_open(&c->runs[r], dir, err) != 0 ||
            run_items_load(&c->items[r], &c->runs[r], err) != 0)
            return -1;
    }
    c->label_a = run_group_label(c->runs, c->members, c->n_a);
    c->label_b = run_group_label(c->runs, c->members + c->n_a, c->n_b);
    if (!c->label_a || !c->label_b) return ck_fail(err, "out of memory");
    return 0;
}

/* A note when a side's runs are not the seeds of one setting (groups.h). */
static int check_side_setting(Comparison *c, int side, CkError *err) {
    const RunDir *runs = c->runs + (side ? c->n_a : 0);
    RunGroups g;
    if (run_groups_build(&g, runs, side ? c->n_b : c->n_a, 0, err) != 0) return -1;
    if (g.n > 1)
        add_note(c, format("The runs of %c are not the seeds of one setting: their config.json "
                           "files differ in more than the seed (%d settings).",
                           side ? 'B' : 'A', g.n));
    run_groups_free(&g);
    return 0;
}

/* Whether any run of either side has a value or per-item records for column col. */
static int column_has_data(const Comparison *c, const MetricColumn *col) {
    for (int r = 0; r < c->n_a + c->n_b; r++) {
        const ItemScores *s = run_items_get(&c->items[r], col);
        if (isfinite(metric_value(col, &c->runs[r])) || (s && s->present)) return 1;
    }
    return 0;
}

/* The reason a metric was not compared, for the notes and compare.json (malloc'd). */
static char *skip_reason(const CompareMetric *m) {
    if (m->status == COMPARE_NOT_PER_ITEM) return strdup(m->metric->why_not);
    const char *who = m->missing_side == 2 ? "neither A nor B has"
                      : m->missing_side    ? "not every run of B has"
                                           : "not every run of A has";
    if (m->metric->source == ITEMS_MC)
        return format("%s per-item records (%s, task %s)", who, item_source_file(m->metric->source),
                      m->metric->task);
    return format("%s a per-item file (%s)", who, item_source_file(m->metric->source));
}

/* Runs the comparisons of every column; refuses a metric whose items are disjoint. */
static int compare_columns(Comparison *c, CkError *err) {
    int n_cols;
    const MetricColumn *cols = metric_all_columns(&n_cols);
    CompareSide a = {c->items, c->members, c->n_a}, b = {c->items, c->members + c->n_a, c->n_b};
    for (int k = 0; k < n_cols; k++) {
        CompareMetric m;
        if (compare_metric(&cols[k], &a, &b, &c->o, &m, err) != 0) return -1;
        if (!m.metric || !column_has_data(c, &cols[k])) continue;
        if (m.status == COMPARE_DISJOINT)
            return ck_fail(err,
                           "%s: A and B share none of their items (A has %d, B has %d, keyed "
                           "as %s): a paired comparison needs runs evaluated on the same items",
                           cols[k].title, m.items_a, m.items_b,
                           m.metric->source == ITEMS_MC ? "task/doc_index" : "instruction");
        if (m.status != COMPARE_DONE) {
            c->skipped[c->n_skipped++] = m;
            continue;
        }
        c->done[c->n_done++] = m;
        if (m.shared < m.items_a || m.shared < m.items_b)
            add_note(c, format("%s: A has %d items, B has %d; compared on the %d both have.",
                               cols[k].title, m.items_a, m.items_b, m.shared));
    }
    if (c->n_done == 0)
        return ck_fail(err, "nothing to compare: no metric has per-item files in the runs of "
                            "both sides (eval/mc/items.jsonl, eval/annotations.json, "
                            "eval/fact_items.jsonl)");
    return 0;
}

/* p as text: four decimals, or two significant digits below 0.0001. */
static void format_p(char *buf, size_t size, double p) {
    snprintf(buf, size, p >= 0.0001 ? "%.4f" : "%.1e", p);
}

/* "- A: label (2 runs: dir1, dir2)" */
static void write_side(FILE *f, char name, const char *label, const RunDir *runs, int n) {
    fprintf(f, "- %c: ", name);
    escape_markdown(f, label);
    fprintf(f, " (%d run%s: ", n, n == 1 ? "" : "s");
    for (int r = 0; r < n; r++) {
        fputs(r ? ", " : "", f);
        escape_markdown(f, runs[r].path);
    }
    fputs(")\n", f);
}

static void write_row(FILE *f, const CompareMetric *m) {
    const int d = m->col->decimals;
    char p[32], q[32];
    format_p(p, sizeof p, m->boot.p_value);
    if (m->has_mcnemar)
        format_p(q, sizeof q, m->mcnemar.p_value);
    else
        snprintf(q, sizeof q, "\xE2\x80\x94");
    fputs("| ", f);
    escape_markdown(f, m->col->title);
    fprintf(f, " | %d | %.*f | %.*f | %+.*f | [%+.*f, %+.*f] | %s | %s |\n", m->shared, d,
            m->mean_a, d, m->mean_b, d, m->boot.diff, d, m->boot.lo, d, m->boot.hi, p, q);
}

static void write_markdown(FILE *f, const Comparison *c) {
    fputs("# Paired comparison\n\n", f);
    write_side(f, 'A', c->label_a, c->runs, c->n_a);
    write_side(f, 'B', c->label_b, c->runs + c->n_a, c->n_b);
    fprintf(f,
            "\nA \xE2\x88\x92 B over the items both have (a side of several runs: the items "
            "every run has, each the mean over its runs), in the column's units. Paired "
            "bootstrap: %d resamples, seed %llu, %g%% percentile interval, two-sided p; "
            "McNemar's exact test where both sides are single runs with binary items.\n\n",
            c->o.resamples, (unsigned long long)c->o.seed, 100 * c->o.level);
    fprintf(f,
            "| Metric | Items | A | B | A \xE2\x88\x92 B | %g%% interval | p (bootstrap) | "
            "p (McNemar) |\n|:---|---:|---:|---:|---:|:---:|---:|---:|\n",
            100 * c->o.level);
    for (int i = 0; i < c->n_done; i++) write_row(f, &c->done[i]);
    if (c->n_skipped + c->n_notes == 0) return;
    fputc('\n', f);
    for (int i = 0; i < c->n_skipped; i++) {
        char *why = skip_reason(&c->skipped[i]);
        fputs("- ", f);
        escape_markdown(f, c->skipped[i].col->title);
        fputs(": not compared: ", f);
        escape_markdown(f, why ? why : "");
        fputs(".\n", f);
        free(why);
    }
    for (int i = 0; i < c->n_notes; i++) {
        fputs("- ", f);
        escape_markdown(f, c->notes[i]);
        fputc('\n', f);
    }
}

static cJSON *side_json(const char *label, const RunDir *runs, int n) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "label", label);
    cJSON *dirs = cJSON_AddArrayToObject(o, "runs");
    for (int r = 0; dirs && r < n; r++)
        cJSON_AddItemToArray(dirs, cJSON_CreateString(runs[r].path));
    return o;
}

static cJSON *metric_json(const CompareMetric *m) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "metric", m->col->title);
    cJSON_AddStringToObject(o, "slug", m->col->slug);
    cJSON_AddStringToObject(o, "file", item_source_file(m->metric->source));
    if (m->metric->task)
        cJSON_AddStringToObject(o, "task", m->metric->task);
    else
        cJSON_AddNullToObject(o, "task");
    cJSON_AddStringToObject(o, "field", m->metric->field ? m->metric->field : "preference - 1");
    cJSON_AddNumberToObject(o, "items_a", m->items_a);
    cJSON_AddNumberToObject(o, "items_b", m->items_b);
    cJSON_AddNumberToObject(o, "items_shared", m->shared);
    cJSON_AddNumberToObject(o, "mean_a", m->mean_a);
    cJSON_AddNumberToObject(o, "mean_b", m->mean_b);
    cJSON_AddNumberToObject(o, "diff", m->boot.diff);
    cJSON_AddNumberToObject(o, "lo", m->boot.lo);
    cJSON_AddNumberToObject(o, "hi", m->boot.hi);
    cJSON_AddNumberToObject(o, "p_bootstrap", m->boot.p_value);
    if (!m->has_mcnemar) {
        cJSON_AddNullToObject(o, "mcnemar");
        return o;
    }
    cJSON *mc = cJSON_AddObjectToObject(o, "mcnemar");
    cJSON_AddNumberToObject(mc, "both", m->mcnemar.both);
    cJSON_AddNumberToObject(mc, "neither", m->mcnemar.neither);
    cJSON_AddNumberToObject(mc, "a_only", m->mcnemar.a_only);
    cJSON_AddNumberToObject(mc, "b_only", m->mcnemar.b_only);
    cJSON_AddNumberToObject(mc, "p_value", m->mcnemar.p_value);
    return o;
}

/* compare.json's text (malloc'd), NULL when out of memory. */
static char *comparison_json(const Comparison *c) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "a", side_json(c->label_a, c->runs, c->n_a));
    cJSON_AddItemToObject(root, "b", side_json(c->label_b, c->runs + c->n_a, c->n_b));
    cJSON *boot = cJSON_AddObjectToObject(root, "bootstrap");
    cJSON_AddNumberToObject(boot, "resamples", c->o.resamples);
    cJSON_AddNumberToObject(boot, "seed", (double)c->o.seed);
    cJSON_AddNumberToObject(boot, "level", c->o.level);
    cJSON *ms = cJSON_AddArrayToObject(root, "metrics");
    for (int i = 0; ms && i < c->n_done; i++) cJSON_AddItemToArray(ms, metric_json(&c->done[i]));
    cJSON *skipped = cJSON_AddArrayToObject(root, "not_compared");
    for (int i = 0; skipped && i < c->n_skipped; i++) {
        cJSON *o = cJSON_CreateObject();
        char *why = skip_reason(&c->skipped[i]);
        cJSON_AddStringToObject(o, "metric", c->skipped[i].col->title);
        cJSON_AddStringToObject(o, "slug", c->skipped[i].col->slug);
        cJSON_AddStringToObject(o, "reason", why ? why : "");
        free(why);
        cJSON_AddItemToArray(skipped, o);
    }
    cJSON *notes = cJSON_AddArrayToObject(root, "notes");
    for (int i = 0; notes && i < c->n_notes; i++)
        cJSON_AddItemToArray(notes, cJSON_CreateString(c->notes[i]));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return NULL;
    char *with_newline = format("%s\n", text);
    free(text);
    return with_newline;
}

static int write_in(const char *dir, const char *name, const char *text, CkError *err) {
    char *path = format("%s/%s", dir, name);
    if (!path) return ck_fail(err, "out of memory");
    int rc = fileio_write_atomic(path, text, strlen(text), err);
    free(path);
    return rc;
}

/* Renders and writes compare.md and compare.json; *markdown gets compare.md's text. */
static int write_outputs(const Comparison *c, const char *out_dir, char **markdown, CkError *err) {
    size_t len;
    FILE *f = open_memstream(markdown, &len);
    if (!f) return ck_fail(err, "out of memory");
    write_markdown(f, c);
    if (fclose(f) != 0 || !*markdown) return ck_fail(err, "out of memory");
    char *json = comparison_json(c);
    int rc = json ? 0 : ck_fail(err, "out of memory");
    if (rc == 0 && (fileio_make_dirs(out_dir, err) != 0 ||
                    write_in(out_dir, "compare.md", *markdown, err) != 0 ||
                    write_in(out_dir, "compare.json", json, err) != 0))
        rc = -1;
    free(json);
    return rc;
}

int report_compare(const char *const *dirs_a, int n_a, const char *const *dirs_b, int n_b,
                   const char *out_dir, const CompareOptions *o, char **markdown, CkError *err) {
    *markdown = NULL;
    if (n_a < 1 || n_b < 1) return ck_fail(err, "--compare needs at least one run on each side");
    Comparison c = {0};
    c.n_a = n_a;
    c.n_b = n_b;
    c.o = *o;
    int rc = open_sides(&c, dirs_a, dirs_b, err);
    if (rc == 0) rc = check_side_setting(&c, 0, err);
    if (rc == 0) rc = check_side_setting(&c, 1, err);
    if (rc == 0) rc = compare_columns(&c, err);
    if (rc == 0) rc = write_outputs(&c, out_dir, markdown, err);
    if (rc != 0) {
        free(*markdown);
        *markdown = NULL;
    }
    comparison_free(&c);
    return rc;
}
