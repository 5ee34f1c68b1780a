/* test_stats.c — the paired bootstrap and McNemar's exact test: small cases computed by hand,
 * and an independent Python implementation's values (tests/fixtures/make_stats_fixture.py);
 * the pairing of items by compare.h (shared items, sides of several runs) by hand. */
#include <cjson/cJSON.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reports/compare.h"
#include "reports/stats.h"
#include "tests/test_util.h"

static void test_mean_sd(void **state) {
    (void)state;
    double x[] = {2, 4, 4, 4, 5, 5, 7, 9}, mean, sd;
    stats_mean_sd(x, 8, &mean, &sd);
    assert_close(mean, 5.0, 1e-15);
    assert_close(sd, sqrt(32.0 / 7.0), 1e-15); /* sum of squares 32 over n - 1 = 7 */
    stats_mean_sd(x, 1, &mean, &sd);
    assert_close(sd, 0.0, 0);
}

/* By hand: McNemar's p is 2 * P(Bin(m, 1/2) <= min(b, c)), capped at 1. */
static void test_mcnemar_by_hand(void **state) {
    (void)state;
    CkError err = {{0}};
    McNemar m;
    int a[10], b[10];
    /* 1 pair right in a only, 9 right in b only: 2 * (1 + 10) / 1024 */
    for (int i = 0; i < 10; i++) a[i] = i == 0, b[i] = i != 0;
    assert_int_equal(stats_mcnemar_exact(a, b, 10, &m, &err), 0);
    assert_int_equal(m.a_only, 1);
    assert_int_equal(m.b_only, 9);
    assert_close(m.p_value, 22.0 / 1024.0, 1e-15);
    /* 0 vs 5 discordant plus 3 concordant: 2 / 32 */
    int c[8] = {0, 0, 0, 0, 0, 1, 1, 0}, d[8] = {1, 1, 1, 1, 1, 1, 1, 0};
    assert_int_equal(stats_mcnemar_exact(c, d, 8, &m, &err), 0);
    assert_int_equal(m.both, 2);
    assert_int_equal(m.neither, 1);
    assert_close(m.p_value, 0.0625, 1e-15);
    /* 3 vs 3: 2 * 42 / 64 > 1, capped; no discordant pair: 1 */
    int e[6] = {1, 1, 1, 0, 0, 0}, f[6] = {0, 0, 0, 1, 1, 1};
    assert_int_equal(stats_mcnemar_exact(e, f, 6, &m, &err), 0);
    assert_close(m.p_value, 1.0, 0);
    assert_int_equal(stats_mcnemar_exact(e, e, 6, &m, &err), 0);
    assert_close(m.p_value, 1.0, 0);
    /* bad input names the pair */
    int g[2] = {0, 2};
    assert_int_equal(stats_mcnemar_exact(g, e, 2, &m, &err), -1);
    assert_non_null(strstr(err.msg, "pair 1 is not binary"));
    assert_int_equal(stats_mcnemar_exact(g, e, 0, &m, &err), -1);
    assert_non_null(strstr(err.msg, "no pairs in common"));
}

/* By hand: identical runs differ by 0 with p = 1; a constant shift c gives every resample c,
 * the interval [c, c] and p = 1 / (B + 1). */
static void test_bootstrap_by_hand(void **state) {
    (void)state;
    CkError err = {{0}};
    PairedBootstrap pb;
    double a[5] = {0.1, 0.5, 0.9, 0.3, 0.7}, b[5];
    assert_int_equal(stats_paired_bootstrap(a, a, 5, 100, 1, 0.95, &pb, &err), 0);
    assert_close(pb.diff, 0, 0);
    assert_close(pb.lo, 0, 0);
    assert_close(pb.hi, 0, 0);
    assert_close(pb.p_value, 1.0, 0);
    for (int i = 0; i < 5; i++) b[i] = a[i] - 0.25;
    assert_int_equal(stats_paired_bootstrap(a, b, 5, 199, 3, 0.95, &pb, &err), 0);
    assert_close(pb.diff, 0.25, 1e-15);
    assert_close(pb.lo, 0.25, 1e-15);
    assert_close(pb.hi, 0.25, 1e-15);
    assert_close(pb.p_value, 1.0 / 200.0, 1e-15);
    assert_int_equal(pb.resamples, 199);
    assert_int_equal(stats_paired_bootstrap(a, b, 0, 10, 3, 0.95, &pb, &err), -1);
    assert_non_null(strstr(err.msg, "no items in common"));
    assert_int_equal(stats_paired_bootstrap(a, b, 5, 10, 3, 1.5, &pb, &err), -1);
}

static double *doubles(const cJSON *arr, int *n) {
    *n = cJSON_GetArraySize(arr);
    double *x = malloc((size_t)*n * sizeof *x);
    for (int i = 0; i < *n; i++) x[i] = cJSON_GetArrayItem(arr, i)->valuedouble;
    return x;
}

static int *ints(const cJSON *arr, int *n) {
    *n = cJSON_GetArraySize(arr);
    int *x = malloc((size_t)*n * sizeof *x);
    for (int i = 0; i < *n; i++) x[i] = cJSON_GetArrayItem(arr, i)->valueint;
    return x;
}

static double num(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(obj, key);
    assert_non_null(v);
    return v->valuedouble;
}

/* The same index stream and definitions in Python: equal to the last bits (the same sums in
 * the same order), so the tolerance only absorbs the JSON round trip. */
static void test_against_python(void **state) {
    (void)state;
    char *text = test_read_file(CUTKIT_SOURCE_DIR "/tests/fixtures/stats_ref.json", NULL);
    assert_non_null(text);
    cJSON *root = cJSON_Parse(text);
    assert_non_null(root);
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "bootstrap")) {
        int n, nb;
        double *a = doubles(cJSON_GetObjectItem(c, "a"), &n);
        double *b = doubles(cJSON_GetObjectItem(c, "b"), &nb);
        assert_int_equal(n, nb);
        CkError err = {{0}};
        PairedBootstrap pb;
        assert_int_equal(stats_paired_bootstrap(a, b, n, (int)num(c, "resamples"),
                                                (uint64_t)num(c, "seed"), num(c, "level"), &pb,
                                                &err),
                         0);
        const cJSON *e = cJSON_GetObjectItem(c, "expect");
        assert_close(pb.diff, num(e, "diff"), 1e-12);
        assert_close(pb.lo, num(e, "lo"), 1e-12);
        assert_close(pb.hi, num(e, "hi"), 1e-12);
        assert_close(pb.p_value, num(e, "p_value"), 1e-12);
        free(a);
        free(b);
    }
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "mcnemar")) {
        int n, nb;
        int *a = ints(cJSON_GetObjectItem(c, "a"), &n), *b = ints(cJSON_GetObjectItem(c, "b"), &nb);
        assert_int_equal(n, nb);
        CkError err = {{0}};
        McNemar m;
        assert_int_equal(stats_mcnemar_exact(a, b, n, &m, &err), 0);
        const cJSON *e = cJSON_GetObjectItem(c, "expect");
        assert_int_equal(m.a_only, (int)num(e, "a_only"));
        assert_int_equal(m.b_only, (int)num(e, "b_only"));
        /* lgamma sums against exact integers: relative 1e-12 */
        assert_close(m.p_value, num(e, "p_value"), 1e-12 * num(e, "p_value"));
        free(a);
        free(b);
    }
    cJSON_Delete(root);
    free(text);
}

/* One run's ARC-C items: keys[0..n) with values v (the other columns absent). */
static void fake_run(RunItems *it, char **keys, const double *v, int n) {
    int n_cols;
    metric_columns(&n_cols);
    it->n_cols = n_cols;
    it->cols = calloc((size_t)n_cols, sizeof *it->cols);
    it->cols[0] = (ItemScores){1, n, keys, (double *)v};
}

/* compare_metric by hand: items of one side only are left out and counted; a side of two runs
 * keeps the items both have, each the mean; McNemar only between single runs. */
static void test_compare_by_hand(void **state) {
    (void)state;
    char *k5[5] = {"k1", "k2", "k3", "k4", "k5"};
    const double a1[4] = {1, 1, 0, 1}, a2[3] = {0, 1, 1}, b1[5] = {0, 1, 0, 0, 1};
    RunItems items[3];
    fake_run(&items[0], k5, a1, 4);
    fake_run(&items[1], k5, a2, 3);
    fake_run(&items[2], k5, b1, 5);
    int n_cols;
    const MetricColumn *cols = metric_columns(&n_cols);
    CompareOptions o;
    compare_options_init(&o);
    o.resamples = 500;
    CkError err = {{0}};
    CompareMetric m;
    int ia[2] = {0, 1}, ib[1] = {2};
    CompareSide one = {items, ia, 1}, two = {items, ia, 2}, b = {items, ib, 1};
    assert_int_equal(compare_metric(&cols[0], &one, &b, &o, &m, &err), 0);
    assert_int_equal(m.status, COMPARE_DONE);
    assert_int_equal(m.items_a, 4);
    assert_int_equal(m.items_b, 5);
    assert_int_equal(m.shared, 4);
    assert_close(m.mean_a, 75.0, 1e-12);
    assert_close(m.mean_b, 25.0, 1e-12);
    assert_close(m.boot.diff, 50.0, 1e-12);
    assert_true(m.has_mcnemar);
    assert_int_equal(m.mcnemar.a_only, 2); /* k1, k4 */
    assert_int_equal(m.mcnemar.b_only, 0);
    assert_close(m.mcnemar.p_value, 0.5, 1e-15); /* 2 * P(Bin(2, 1/2) = 0) */
    assert_close(compare_p_value(&m), 0.5, 1e-15);
    /* A = {a1, a2}: k1..k3 with means 0.5, 1, 0.5 against 0, 1, 0: diff 1/3 */
    assert_int_equal(compare_metric(&cols[0], &two, &b, &o, &m, &err), 0);
    assert_int_equal(m.items_a, 3);
    assert_int_equal(m.shared, 3);
    assert_close(m.mean_a, 200.0 / 3, 1e-12);
    assert_close(m.boot.diff, 100.0 / 3, 1e-12);
    assert_false(m.has_mcnemar);
    assert_close(compare_p_value(&m), m.boot.p_value, 0);
    /* every item differs by the same amount: the interval is that amount, p = 1 / (B + 1) */
    const double ones[2] = {1, 1}, zeros[2] = {0, 0};
    RunItems c[2];
    fake_run(&c[0], k5, ones, 2);
    fake_run(&c[1], k5, zeros, 2);
    int i0[1] = {0}, i1[1] = {1};
    CompareSide c0 = {c, i0, 1}, c1 = {c, i1, 1};
    assert_int_equal(compare_metric(&cols[0], &c0, &c1, &o, &m, &err), 0);
    assert_close(m.boot.lo, 100.0, 1e-12);
    assert_close(m.boot.hi, 100.0, 1e-12);
    assert_close(m.boot.p_value, 1.0 / 501.0, 1e-15);
    /* disjoint keys; a column the runs lack; a column without per-item files */
    free(c[1].cols);
    fake_run(&c[1], k5 + 2, zeros, 2);
    assert_int_equal(compare_metric(&cols[0], &c0, &c1, &o, &m, &err), 0);
    assert_int_equal(m.status, COMPARE_DISJOINT);
    assert_int_equal(compare_metric(&cols[1], &c0, &c1, &o, &m, &err), 0);
    assert_int_equal(m.status, COMPARE_MISSING);
    assert_int_equal(m.missing_side, 2);
    for (int k = 0; k < n_cols; k++) {
        if (strcmp(cols[k].slug, "detection_f1") != 0) continue;
        assert_int_equal(compare_metric(&cols[k], &c0, &c1, &o, &m, &err), 0);
        assert_int_equal(m.status, COMPARE_NOT_PER_ITEM);
        assert_non_null(strstr(m.metric->why_not, "aggregates only"));
    }
    for (int r = 0; r < 3; r++) free(items[r].cols);
    for (int r = 0; r < 2; r++) free(c[r].cols);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mean_sd),           cmocka_unit_test(test_mcnemar_by_hand),
        cmocka_unit_test(test_bootstrap_by_hand), cmocka_unit_test(test_against_python),
        cmocka_unit_test(test_compare_by_hand),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
