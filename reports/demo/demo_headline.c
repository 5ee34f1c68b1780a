/* demo_headline.c — the demo's headline: CUT against its baselines on the same test items,
 * each difference with a paired-bootstrap interval (reports/stats.h).
 *
 * Pairing. Within a seed every model answers the same test instructions in the same order,
 * so item i of run A pairs with item i of run B (their instructions are checked to agree).
 * Seeds have different worlds, hence different items: the pairs of all seeds are pooled, and
 * the bootstrap resamples those pooled pairs. Its interval is about the items, the seeds'
 * trainings held fixed; the spread between seeds is the report's ± sd, and the per-seed
 * differences are listed beside the interval. */
#include <cjson/cJSON.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/annotations.h"
#include "reports/compare.h"
#include "reports/demo/demo_internal.h"
#include "reports/stats.h"
#include "util/fileio.h"
#include "util/jsonl.h"
#include "util/strbuf.h"

#define PATH_BUF 4096

/* The comparisons: CUT (a) against a baseline (b), both trained on the same world. */
static const struct {
    const char *a, *b;
} PAIRS[] = {
    {"offline-cut-l1.1-a1", "offline-mle-all"},
    {"offline-cut-l1.1-a1", "offline-align-n"},
    {"offline-cut-l1.1-a1", "offline-dpo"},
    {"offline-cut-l1.1-a0.5", "offline-mle-all"},
    {"offline-cut-l1.1-a0.5", "offline-align-n"},
    {"mixed-cut", "mixed-mle-positive"},
    {"mixed-cut", "mixed-align-n"},
};
#define N_PAIRS (int)(sizeof PAIRS / sizeof PAIRS[0])

/* The metrics, each a per-item value in percent. */
typedef enum { M_MISCONCEPTION, M_ERROR, M_WIN, N_METRICS } Metric;
static const char *const METRIC_NAMES[N_METRICS] = {"misconception %", "error rate %",
                                                    "win rate vs warm-up %"};
static const char *const METRIC_KEYS[N_METRICS] = {"misconception", "error_rate", "win_rate"};

/* One run's per-item outcomes: instruction and value (NAN: the item has none) per metric. */
typedef struct {
    int n;
    char **instruction;
    double *v[N_METRICS];
} RunOutcomes;

static void outcomes_free(RunOutcomes *r) {
    for (int i = 0; r->instruction && i < r->n; i++) free(r->instruction[i]);
    free(r->instruction);
    for (int m = 0; m < N_METRICS; m++) free(r->v[m]);
    memset(r, 0, sizeof *r);
}

/* Appends one item of fact_items.jsonl to r. */
static int outcomes_push(RunOutcomes *r, const cJSON *obj, const char *path, long line,
                         CkError *err) {
    const cJSON *ins = cJSON_GetObjectItemCaseSensitive(obj, "instruction");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(obj, "error");
    const cJSON *mc = cJSON_GetObjectItemCaseSensitive(obj, "misconception");
    if (!cJSON_IsString(ins) || !cJSON_IsNumber(e) || !(cJSON_IsNumber(mc) || cJSON_IsNull(mc)))
        return ck_fail(err,
                       "%s: line %ld: expected \"instruction\" (a string), \"error\" (a number) "
                       "and \"misconception\" (a number or null)",
                       path, line);
    char **ni = realloc(r->instruction, sizeof *ni * (size_t)(r->n + 1));
    if (ni) r->instruction = ni;
    int ok = ni != NULL;
    for (int m = 0; ok && m < N_METRICS; m++) {
        double *nv = realloc(r->v[m], sizeof *nv * (size_t)(r->n + 1));
        if (nv) r->v[m] = nv;
        ok = nv != NULL;
    }
    if (!ok || !(r->instruction[r->n] = strdup(ins->valuestring)))
        return ck_fail(err, "out of memory");
    r->v[M_ERROR][r->n] = 100.0 * e->valuedouble;
    r->v[M_MISCONCEPTION][r->n] = cJSON_IsNull(mc) ? NAN : 100.0 * mc->valuedouble;
    r->v[M_WIN][r->n] = NAN;
    r->n++;
    return 0;
}

/* Reads RUN/eval/fact_items.jsonl into r. */
static int read_fact_items(RunOutcomes *r, const char *run_dir, CkError *err) {
    char path[PATH_BUF];
    fileio_path(path, sizeof path, run_dir, "eval/fact_items.jsonl");
    size_t size = 0;
    char *text = fileio_read_text(path, (size_t)1 << 28, &size, err);
    if (!text)
        return ck_wrap(err, "the demo's per-item fact errors (a demo folder evaluated before "
                            "cutkit wrote them: start it afresh in a new --out)");
    JsonlCursor c;
    jsonl_init(&c, text, size);
    cJSON *obj;
    int got, rc = 0;
    while (rc == 0 && (got = jsonl_next_object(&c, path, 0, &obj, err)) != 0) {
        rc = got < 0 ? -1 : outcomes_push(r, obj, path, c.line, err);
        if (got > 0) cJSON_Delete(obj);
    }
    free(text);
    return rc;
}

/* Adds the win of each item (preference - 1, as eval/winrate.h reads AlpacaEval's
 * preferences: 2 the model, 1 the warm-up model, legacy 0 a draw) from
 * RUN/eval/annotations.json, whose records follow the responses' order. */
static int read_wins(RunOutcomes *r, const char *run_dir, CkError *err) {
    char path[PATH_BUF];
    fileio_path(path, sizeof path, run_dir, "eval/annotations.json");
    AnnotationSet set;
    if (annotations_load(&set, path, err) != 0) return -1;
    int rc = set.n == r->n ? 0 : ck_fail(err, "%s: %d records for %d responses", path, set.n, r->n);
    for (int i = 0; rc == 0 && i < set.n; i++) {
        const double p = set.items[i].preference;
        if (strcmp(set.items[i].instruction, r->instruction[i]) != 0)
            rc = ck_fail(err, "%s: record %d is not about the instruction of response %d", path,
                         i + 1, i + 1);
        else
            r->v[M_WIN][i] = p == 0 ? 50.0 : p >= 1 && p <= 2 ? 100.0 * (p - 1) : NAN;
    }
    annotations_free(&set);
    return rc;
}

static int load_run(RunOutcomes *r, const char *seed_dir, const char *name, CkError *err) {
    char dir[PATH_BUF];
    memset(r, 0, sizeof *r);
    if (snprintf(dir, sizeof dir, "%s/runs/%s", seed_dir, name) >= (int)sizeof dir)
        return ck_fail(err, "%s: the path is too long", seed_dir);
    return read_fact_items(r, dir, err) != 0 || read_wins(r, dir, err) != 0 ? -1 : 0;
}

/* The paired values of one comparison and metric, pooled over the seeds. */
typedef struct {
    int n, cap;
    double *a, *b;
    double seed_diff[DEMO_MAX_SEEDS]; /* mean(a) - mean(b) within each seed (NAN: no pairs) */
} Pairs;

static int pairs_push(Pairs *p, double a, double b) {
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 256;
        double *na = realloc(p->a, sizeof *na * (size_t)cap);
        if (na) p->a = na;
        double *nb = na ? realloc(p->b, sizeof *nb * (size_t)cap) : NULL;
        if (nb) p->b = nb;
        if (!nb) return -1;
        p->cap = cap;
    }
    p->a[p->n] = a;
    p->b[p->n++] = b;
    return 0;
}

/* Appends the pairs of one seed (runs ra, rb) for every metric of comparison k. */
static int pair_seed(Pairs *pm, int seed_index, const RunOutcomes *ra, const RunOutcomes *rb, int k,
                     CkError *err) {
    if (ra->n != rb->n)
        return ck_fail(err, "%s and %s answered %d and %d test instructions", PAIRS[k].a,
                       PAIRS[k].b, ra->n, rb->n);
    for (int i = 0; i < ra->n; i++)
        if (strcmp(ra->instruction[i], rb->instruction[i]) != 0)
            return ck_fail(err, "%s and %s: item %d has different instructions", PAIRS[k].a,
                           PAIRS[k].b, i + 1);
    for (int m = 0; m < N_METRICS; m++) {
        Pairs *p = &pm[m];
        const int first = p->n;
        for (int i = 0; i < ra->n; i++)
            if (!isnan(ra->v[m][i]) && !isnan(rb->v[m][i]) &&
                pairs_push(p, ra->v[m][i], rb->v[m][i]) != 0)
                return ck_fail(err, "out of memory");
        double d = 0;
        for (int i = first; i < p->n; i++) d += p->a[i] - p->b[i];
        p->seed_diff[seed_index] = p->n > first ? d / (p->n - first) : NAN;
    }
    return 0;
}

/* One row of the headline: comparison k, metric m, over pairs p; appended to md and rows. */
static int headline_row(StrBuf *md, cJSON *rows, int k, int m, const Pairs *p, int n_seeds,
                        const CompareOptions *co, CkError *err) {
    if (p->n == 0) return 0;
    PairedBootstrap b;
    if (stats_paired_bootstrap(p->a, p->b, p->n, co->resamples, co->seed, co->level, &b, err) != 0)
        return -1;
    double ma = 0, mb = 0;
    for (int i = 0; i < p->n; i++) ma += p->a[i], mb += p->b[i];
    ma /= p->n, mb /= p->n;
    StrBuf seeds = {0};
    int rc = strbuf_put(&seeds, "", 0);
    cJSON *by_seed = cJSON_CreateArray();
    for (int s = 0; rc == 0 && s < n_seeds; s++) {
        rc = strbuf_printf(&seeds, "%s%+.1f", s ? ", " : "", p->seed_diff[s]);
        cJSON_AddItemToArray(by_seed, cJSON_CreateNumber(p->seed_diff[s]));
    }
    if (rc == 0)
        rc = strbuf_printf(
            md, "| %s | %s | %s | %.1f | %.1f | %+.1f [%+.1f, %+.1f] | %.4f | %d | %s |\n",
            PAIRS[k].a, PAIRS[k].b, METRIC_NAMES[m], ma, mb, b.diff, b.lo, b.hi, b.p_value, p->n,
            seeds.p);
    strbuf_free(&seeds);
    cJSON *row = cJSON_CreateObject();
    cJSON_AddStringToObject(row, "a", PAIRS[k].a);
    cJSON_AddStringToObject(row, "b", PAIRS[k].b);
    cJSON_AddStringToObject(row, "metric", METRIC_KEYS[m]);
    cJSON_AddNumberToObject(row, "mean_a", ma);
    cJSON_AddNumberToObject(row, "mean_b", mb);
    cJSON_AddNumberToObject(row, "diff", b.diff);
    cJSON_AddNumberToObject(row, "lo", b.lo);
    cJSON_AddNumberToObject(row, "hi", b.hi);
    cJSON_AddNumberToObject(row, "p_bootstrap", b.p_value);
    cJSON_AddNumberToObject(row, "pairs", p->n);
    cJSON_AddItemToObject(row, "diff_by_seed", by_seed);
    cJSON_AddItemToArray(rows, row);
    return rc == 0 ? 0 : ck_fail(err, "out of memory");
}

/* Comparison k over every seed: loads its two runs per seed, pairs and compares them. */
static int headline_pair(const DemoOptions *o, int k, StrBuf *md, cJSON *rows,
                         const CompareOptions *co, CkError *err) {
    Pairs pm[N_METRICS];
    memset(pm, 0, sizeof pm);
    int rc = 0;
    for (int s = 0; rc == 0 && s < o->n_seeds; s++) {
        char seed_dir[PATH_BUF];
        RunOutcomes ra, rb;
        memset(&ra, 0, sizeof ra);
        memset(&rb, 0, sizeof rb);
        rc = demo_seed_dir(o, s, seed_dir, sizeof seed_dir) != 0
                 ? ck_fail(err, "%s: the path is too long", o->out)
                 : load_run(&ra, seed_dir, PAIRS[k].a, err);
        if (rc == 0) rc = load_run(&rb, seed_dir, PAIRS[k].b, err);
        if (rc == 0) rc = pair_seed(pm, s, &ra, &rb, k, err);
        outcomes_free(&ra);
        outcomes_free(&rb);
    }
    for (int m = 0; rc == 0 && m < N_METRICS; m++)
        rc = headline_row(md, rows, k, m, &pm[m], o->n_seeds, co, err);
    for (int m = 0; m < N_METRICS; m++) {
        free(pm[m].a);
        free(pm[m].b);
    }
    return rc;
}

/* The text above and below the headline table. */
static int headline_prose(StrBuf *md, const DemoOptions *o, const CompareOptions *co, int below) {
    if (!below)
        return strbuf_printf(
            md,
            "## Headline: CUT against its baselines, paired on the same test items\n\n"
            "| CUT run | baseline | metric | CUT | baseline | CUT - baseline [%.0f %% CI] | p | "
            "pairs | by seed |\n|:---|:---|:---|---:|---:|---:|---:|---:|---:|\n",
            100 * co->level);
    char seeds[DEMO_MAX_SEEDS * 24] = "";
    for (int s = 0; s < o->n_seeds; s++)
        snprintf(seeds + strlen(seeds), sizeof seeds - strlen(seeds), "%s%llu", s ? ", " : "",
                 (unsigned long long)o->seeds[s]);
    return strbuf_printf(
        md,
        "\nEach row pairs the two runs' responses to the same test instructions (per item: "
        "misconception stated, 0/100, on the items whose object has a misconceived colour; "
        "at least one wrong fact, 0/100; the synthetic judge's preference against the warm-up "
        "model, 0/50/100), pooled over seed%s %s (each seed has its own world, so items pair "
        "within a seed only). CUT and baseline: means over the pooled pairs. The interval is a "
        "paired bootstrap of the mean difference (%d resamples, seed %llu, percentile) and p "
        "its two-sided p-value (reports/stats.h): it is about the test items, the trainings "
        "held fixed; the spread between seeds is in the by-seed differences and in the "
        "table's ± sd.\n\n"
        "The rows: mle-positive, mle-all: MLE on the positive, on all responses; align-n: MLE "
        "on the positives and on the negatives under their judgment (no unlikelihood); "
        "forward-prediction: MLE on the response followed by its judgment; hindsight: MLE on "
        "the response given its judgment (`train --objective hindsight`); dpo: DPO (beta %g) "
        "preferring the world's correct response over the judged one, a response the offline "
        "CUT runs never see; cut-no-l1, cut-no-align-n-mle, cut-no-detection: CUT (lambda 1.1, "
        "alpha 1) without one of its parts (the paper's Table 4). ILF is not run: the "
        "synthetic judge names errors but writes no rewrite, and a model's refinements "
        "(`cutkit refine`) of 800 records would not fit the demo's few minutes.\n",
        o->n_seeds == 1 ? "" : "s", seeds, co->resamples, (unsigned long long)co->seed,
        DEMO_DPO_BETA);
}

int demo_headline_write(const DemoOptions *o, const char *report_dir, char **markdown,
                        CkError *err) {
    CompareOptions co;
    compare_options_init(&co);
    StrBuf md = {0};
    cJSON *root = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(root, "comparisons");
    int rc = headline_prose(&md, o, &co, 0) == 0 ? 0 : ck_fail(err, "out of memory");
    for (int k = 0; rc == 0 && k < N_PAIRS; k++) rc = headline_pair(o, k, &md, rows, &co, err);
    if (rc == 0 && headline_prose(&md, o, &co, 1) != 0) rc = ck_fail(err, "out of memory");
    cJSON *boot = cJSON_AddObjectToObject(root, "bootstrap");
    cJSON_AddNumberToObject(boot, "resamples", co.resamples);
    cJSON_AddNumberToObject(boot, "seed", (double)co.seed);
    cJSON_AddNumberToObject(boot, "level", co.level);
    cJSON *seeds = cJSON_AddArrayToObject(root, "seeds");
    for (int s = 0; s < o->n_seeds; s++)
        cJSON_AddItemToArray(seeds, cJSON_CreateNumber((double)o->seeds[s]));
    char path[PATH_BUF];
    if (rc == 0 && fileio_path(path, sizeof path, report_dir, "headline.md") == 0)
        rc = fileio_write_atomic(path, md.p, md.n, err);
    char *json = rc == 0 ? cJSON_Print(root) : NULL;
    if (rc == 0 && !json) rc = ck_fail(err, "out of memory");
    if (rc == 0 && fileio_path(path, sizeof path, report_dir, "headline.json") == 0)
        rc = fileio_write_atomic(path, json, strlen(json), err);
    free(json);
    cJSON_Delete(root);
    if (rc == 0 && markdown) *markdown = strbuf_take(&md);
    strbuf_free(&md);
    return rc;
}
