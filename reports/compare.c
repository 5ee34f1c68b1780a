/* compare.c — see compare.h. */
#include "reports/compare.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/strbuf.h"

void compare_options_init(CompareOptions *o) {
    *o = (CompareOptions){10000, 1, 0.95, 0.05};
}

/* The items of one side: keys borrowed from its first run's scores, values the means. */
typedef struct {
    int n;
    const char **keys;
    double *values;
} SideItems;

static void side_free(SideItems *s) {
    free(s->keys);
    free(s->values);
    memset(s, 0, sizeof *s);
}

/* The items every run of side has, with their mean values; *present 0 when a run has no
 * per-item file for col. Returns -1 only when out of memory. */
static int side_items(const CompareSide *side, const MetricColumn *col, SideItems *out,
                      int *present) {
    memset(out, 0, sizeof *out);
    *present = 0;
    const ItemScores *first = NULL;
    for (int m = 0; m < side->n; m++) {
        const ItemScores *s = run_items_get(&side->items[side->members[m]], col);
        if (!s || !s->present) return 0;
        if (m == 0) first = s;
    }
    *present = 1;
    out->keys = malloc(sizeof(char *) * (size_t)(first->n + 1));
    out->values = malloc(sizeof(double) * (size_t)(first->n + 1));
    if (!out->keys || !out->values) return -1;
    for (int i = 0; i < first->n; i++) {
        double sum = first->values[i];
        int all = 1;
        for (int m = 1; m < side->n && all; m++) {
            const ItemScores *s = run_items_get(&side->items[side->members[m]], col);
            int j = item_scores_find(s, first->keys[i]);
            if (j < 0)
                all = 0;
            else
                sum += s->values[j];
        }
        if (!all) continue;
        out->keys[out->n] = first->keys[i];
        out->values[out->n++] = sum / side->n;
    }
    return 0;
}

/* The values of the items both sides have, in key order, into a[] and b[] (room for the
 * smaller side); returns their count. */
static int pair_items(const SideItems *sa, const SideItems *sb, double *a, double *b) {
    int i = 0, j = 0, n = 0;
    while (i < sa->n && j < sb->n) {
        int c = strcmp(sa->keys[i], sb->keys[j]);
        if (c == 0) {
            a[n] = sa->values[i++];
            b[n++] = sb->values[j++];
        } else if (c < 0) {
            i++;
        } else {
            j++;
        }
    }
    return n;
}

static int all_binary(const double *x, int n) {
    for (int i = 0; i < n; i++)
        if (x[i] != 0 && x[i] != 1) return 0;
    return 1;
}

/* The tests on the n paired values a[], b[] into out (scaled to the column's units). */
static int test_pairs(const double *a, const double *b, int n, int single_runs, double scale,
                      const CompareOptions *o, CompareMetric *out, CkError *err) {
    double sa = 0, sb = 0;
    for (int i = 0; i < n; i++) sa += a[i], sb += b[i];
    out->mean_a = scale * sa / n;
    out->mean_b = scale * sb / n;
    if (stats_paired_bootstrap(a, b, n, o->resamples, o->seed, o->level, &out->boot, err) != 0)
        return -1;
    out->boot.diff *= scale;
    out->boot.lo *= scale;
    out->boot.hi *= scale;
    out->has_mcnemar = single_runs && all_binary(a, n) && all_binary(b, n);
    if (!out->has_mcnemar) return 0;
    int *ia = malloc(sizeof(int) * (size_t)n), *ib = malloc(sizeof(int) * (size_t)n);
    int rc = ia && ib ? 0 : ck_fail(err, "out of memory");
    for (int i = 0; rc == 0 && i < n; i++) ia[i] = (int)a[i], ib[i] = (int)b[i];
    if (rc == 0) rc = stats_mcnemar_exact(ia, ib, n, &out->mcnemar, err);
    free(ia);
    free(ib);
    return rc;
}

int compare_metric(const MetricColumn *col, const CompareSide *a, const CompareSide *b,
                   const CompareOptions *o, CompareMetric *out, CkError *err) {
    memset(out, 0, sizeof *out);
    out->col = col;
    out->metric = item_metric_for(col->slug);
    out->status = COMPARE_NOT_PER_ITEM;
    if (!out->metric || out->metric->source == ITEMS_NONE) return 0;
    SideItems sa = {0}, sb = {0};
    int present_a, present_b, rc = 0;
    double *va = NULL, *vb = NULL;
    if (side_items(a, col, &sa, &present_a) != 0 || side_items(b, col, &sb, &present_b) != 0) {
        rc = ck_fail(err, "out of memory");
        goto done;
    }
    out->status = COMPARE_MISSING;
    out->missing_side = !present_a && !present_b ? 2 : present_a ? 1 : 0;
    if (!present_a || !present_b) goto done;
    out->items_a = sa.n;
    out->items_b = sb.n;
    int room = (sa.n < sb.n ? sa.n : sb.n) + 1;
    va = malloc(sizeof(double) * (size_t)room);
    vb = malloc(sizeof(double) * (size_t)room);
    if (!va || !vb) {
        rc = ck_fail(err, "out of memory");
        goto done;
    }
    out->shared = pair_items(&sa, &sb, va, vb);
    out->status = out->shared > 0 ? COMPARE_DONE : COMPARE_DISJOINT;
    if (out->shared > 0)
        rc = test_pairs(va, vb, out->shared, a->n == 1 && b->n == 1, out->metric->scale, o, out,
                        err);
done:
    side_free(&sa);
    side_free(&sb);
    free(va);
    free(vb);
    return rc;
}

double compare_p_value(const CompareMetric *m) {
    return m->has_mcnemar ? m->mcnemar.p_value : m->boot.p_value;
}

/* What the marks of a table mean, naming the baseline row, the tests and their settings, and
 * the columns of t that are never marked (no per-item file). */
static char *marker_note(const MetricTable *t, int baseline, const CompareOptions *o) {
    StrBuf b = {0};
    strbuf_printf(
        &b,
        "differs from the row \"%s\" with a two-sided p-value below %g: McNemar's exact test where "
        "both rows are single runs with binary items, else a paired bootstrap of the "
        "mean difference (%d resamples, seed %llu); over the items both rows have, "
        "where both have per-item files (eval/mc/items.jsonl, eval/annotations.json, "
        "eval/fact_items.jsonl).",
        t->labels[baseline], o->p_limit, o->resamples, (unsigned long long)o->seed);
    int listed = 0;
    for (int c = 0; c < t->n_cols; c++) {
        const ItemMetric *m = item_metric_for(t->cols[c].slug);
        if (!m || m->source != ITEMS_NONE) continue;
        strbuf_printf(&b, "%s%s", listed++ ? ", " : " Not tested: ", t->cols[c].title);
    }
    if (listed) strbuf_puts(&b, " (aggregates only).");
    return strbuf_take(&b);
}

int compare_mark_table(MetricTable *t, const RunGroups *groups, const RunItems *items, int baseline,
                       const CompareOptions *o, CkError *err) {
    const RunGroup *gb = &groups->groups[baseline];
    CompareSide base = {items, gb->members, gb->n};
    for (int r = 0; r < t->n_runs; r++) {
        if (r == baseline) continue;
        const RunGroup *g = &groups->groups[r];
        CompareSide row = {items, g->members, g->n};
        for (int c = 0; c < t->n_cols; c++) {
            MetricCell *cell = &t->cells[(size_t)r * t->n_cols + c];
            CompareMetric m;
            if (compare_metric(&t->cols[c], &row, &base, o, &m, err) != 0) return -1;
            cell->marked = m.status == COMPARE_DONE && isfinite(cell->value) &&
                           compare_p_value(&m) < o->p_limit;
        }
    }
    free(t->marker_note);
    if (!(t->marker_note = marker_note(t, baseline, o))) return ck_fail(err, "out of memory");
    return 0;
}
