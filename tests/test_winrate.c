/* test_winrate.c — AlpacaEval's win-rate metrics: the real annotation files in
 * shared/data/alpaca_eval give the rows of its leaderboard CSVs (every model with both), the
 * pairwise sum equals numpy's bit for bit, hand-derived counts and errors, cutkit's
 * length-controlled GLM: closed forms, the L1 optimality conditions and the symmetry
 * win_rate(m, b) = 1 - win_rate(b, m); AlpacaEval's length-controlled win rate against an
 * independent Python computation (tests/fixtures/make_lc_fixture.py), its tables and their
 * errors. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include <cjson/cJSON.h>

#include "eval/annotations.h"
#include "eval/lc_alpaca.h"
#include "eval/winrate.h"
#include "eval/winrate_run.h"
#include "util/rng.h"
#include "util/utf8.h"

/* |a - b| within k units in the last place of b: the CSVs print Python's shortest repr of a
 * double, and the order of pandas' operations can move the last bit. */
static int within_ulps(double a, double b, int k) {
    if (a == b) return 1;
    double ulp = nextafter(fabs(b), INFINITY) - fabs(b);
    return fabs(a - b) <= k * ulp;
}

/* Finds the row `model` of csv_path; fills the values of the header's columns (NaN when
 * empty). Returns 1 when found. Model names here contain no commas or quotes. */
static int csv_row(const char *csv_path, const char *model, char header[][40], double *vals,
                   int *n_cols) {
    char *text = test_read_file(csv_path, NULL);
    if (!text) return 0;
    int found = 0;
    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    *n_cols = 0;
    for (char *p = line, *q; p; p = q ? q + 1 : NULL) {
        q = strchr(p, ',');
        snprintf(header[*n_cols], 40, "%.*s", (int)(q ? q - p : (long)strlen(p)), p);
        (*n_cols)++;
    }
    size_t mlen = strlen(model);
    while ((line = strtok_r(NULL, "\n", &save))) {
        if (strncmp(line, model, mlen) != 0 || line[mlen] != ',') continue;
        int c = 0;
        for (char *p = line, *q; p && c < *n_cols; p = q ? q + 1 : NULL, c++) {
            q = strchr(p, ',');
            char *end;
            vals[c] = strtod(p, &end);
            if (end == p) vals[c] = NAN;
        }
        found = 1;
        break;
    }
    free(text);
    return found;
}

static void check_against_leaderboards(const char *results, const char *model,
                                       const char *annotator, const char *boards, int *checked) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s/annotations.json", results, model, annotator);
    const char *dirs[2] = {"data_AlpacaEval", "data_AlpacaEval_2"};
    for (int d = 0; d < 2; d++) {
        char csv[1024], header[32][40];
        double vals[32];
        int n_cols;
        snprintf(csv, sizeof csv, "%s/%s/%s_leaderboard.csv", boards, dirs[d], annotator);
        if (!csv_row(csv, model, header, vals, &n_cols)) continue;
        AnnotationSet s;
        CkError err = {{0}};
        assert_int_equal(annotations_load(&s, path, &err), 0);
        double *pref = malloc(sizeof(double) * (size_t)s.n);
        double len_sum = 0;
        for (int i = 0; i < s.n; i++) {
            pref[i] = s.items[i].preference;
            len_sum += (double)utf8_length(s.items[i].output_2);
        }
        WinRate w;
        winrate_compute(pref, s.n, &w);
        printf("  %s / %s vs %s:\n", model, annotator, csv + strlen(boards) + 1);
        for (int c = 1; c < n_cols; c++) {
            const char *h = header[c];
            double want = vals[c], got;
            int ulps = 2;
            if (!strcmp(h, "win_rate"))
                got = w.win_rate;
            else if (!strcmp(h, "standard_error"))
                got = w.standard_error;
            else if (!strcmp(h, "discrete_win_rate"))
                got = w.discrete_win_rate;
            else if (!strcmp(h, "n_wins"))
                got = w.n_wins, ulps = 0;
            else if (!strcmp(h, "n_wins_base"))
                got = w.n_wins_base, ulps = 0;
            else if (!strcmp(h, "n_draws"))
                got = w.n_draws, ulps = 0;
            else if (!strcmp(h, "n_total"))
                got = w.n_total, ulps = 0;
            else if (!strcmp(h, "avg_length"))
                got = (int)(len_sum / s.n), ulps = 0;
            else
                continue;
            if (isnan(want)) continue;
            printf("    %-18s %.17g  csv %.17g  %s\n", h, got, want,
                   got == want ? "exact" : "(last-bit difference)");
            assert_true(within_ulps(got, want, ulps));
        }
        free(pref);
        annotations_free(&s);
        (*checked)++;
    }
}

/* Every results/<model>/<annotator>/annotations.json whose model has a row in
 * <annotator>_leaderboard.csv. */
static void test_leaderboards(void **state) {
    (void)state;
    char *results = test_shared_path("data/alpaca_eval/results");
    char *boards = test_shared_path("data/alpaca_eval/leaderboards");
    if (!results || !boards) {
        free(results);
        free(boards);
        skip();
    }
    int checked = 0;
    DIR *models = opendir(results);
    assert_non_null(models);
    struct dirent *m;
    while ((m = readdir(models))) {
        if (m->d_name[0] == '.') continue;
        char sub[1024];
        snprintf(sub, sizeof sub, "%s/%s", results, m->d_name);
        DIR *ann = opendir(sub);
        if (!ann) continue;
        struct dirent *a;
        while ((a = readdir(ann))) {
            if (a->d_name[0] == '.') continue;
            char path[1400];
            snprintf(path, sizeof path, "%s/%s/annotations.json", sub, a->d_name);
            FILE *f = fopen(path, "r");
            if (!f) continue;
            fclose(f);
            check_against_leaderboards(results, m->d_name, a->d_name, boards, &checked);
        }
        closedir(ann);
    }
    closedir(models);
    printf("  %d (model, annotator) rows checked\n", checked);
    assert_true(checked >= 3); /* alpaca-7b v1 and v2, llama-2-7b-chat-hf v1 */
    free(results);
    free(boards);
}

/* Counts and errors derived by hand, with a legacy 0 draw, a missing and an invalid value. */
static void test_hand_counts(void **state) {
    (void)state;
    const double p[8] = {1, 2, 0, 1.5, NAN, 2.5, 1.75, 1.25};
    WinRate w;
    winrate_compute(p, 8, &w);
    assert_int_equal(w.n_total, 6);
    assert_int_equal(w.n_missing, 2);
    assert_int_equal(w.n_draws, 2);
    assert_int_equal(w.n_wins, 2);
    assert_int_equal(w.n_wins_base, 2);
    /* x = 0, 1, .5, .5, .75, .25: mean .5; squares .25 .25 0 0 .0625 .0625 = .625; var .125 */
    assert_close(w.win_rate, 50, 1e-12);
    assert_close(w.standard_error, 100 * sqrt(0.125) / sqrt(6.0), 1e-12);
    assert_close(w.discrete_win_rate, 50, 1e-12);
    assert_true(isnan(w.lc_win_rate));
    const double none[2] = {NAN, 3};
    winrate_compute(none, 2, &w);
    assert_int_equal(w.n_total, 0);
    assert_int_equal(w.n_missing, 2);
    assert_true(isnan(w.win_rate));
    assert_int_equal(utf8_length("h\xC3\xA9llo \xE2\x82\xAC"), 7); /* é, € */
}

/* The order matters: 1e16 and -1e16 meet in the same partial sum in numpy's order. */
static void test_pairwise_order(void **state) {
    (void)state;
    double x[16];
    for (int i = 0; i < 16; i++) x[i] = 1;
    x[0] = 1e16;
    x[8] = -1e16;
    assert_true(winrate_pairwise_sum(x, 16) == 14);
    double seq = 0;
    for (int i = 0; i < 16; i++) seq += x[i];
    assert_true(seq != 14); /* a left-to-right sum loses the ones */
}

/* Against numpy itself (Debian's python3 with numpy), bit for bit, on ragged lengths. */
static void test_pairwise_numpy(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    char path[600], cmd[1400];
    snprintf(path, sizeof path, "%s/x.txt", dir);
    Rng r;
    rng_seed(&r, 5);
    const int sizes[6] = {7, 8, 129, 805, 1000, 4099};
    FILE *f = fopen(path, "w");
    double *all[6];
    for (int k = 0; k < 6; k++) {
        all[k] = malloc(sizeof(double) * (size_t)sizes[k]);
        for (int i = 0; i < sizes[k]; i++) {
            all[k][i] = (double)rng_float(&r) * 1000.0 / (1.0 + (double)rng_float(&r) * 1e3);
            fprintf(f, "%s%.17g", i ? " " : "", all[k][i]);
        }
        fprintf(f, "\n");
    }
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import numpy as np,sys\n"
             "for l in open(sys.argv[1]): print(repr(float(np.sum(np.array([float(v) for v in "
             "l.split()])))))' '%s'",
             path);
    char *out = NULL;
    int status = test_run(cmd, &out, NULL);
    if (status != 0) {
        printf("  skipping: no numpy under /usr/bin/python3\n");
    } else {
        char *p = out;
        for (int k = 0; k < 6; k++) {
            double want = strtod(p, &p);
            double got = winrate_pairwise_sum(all[k], (size_t)sizes[k]);
            printf("  n %5d: numpy %.17g cutkit %.17g\n", sizes[k], want, got);
            assert_true(got == want);
        }
    }
    free(out);
    for (int k = 0; k < 6; k++) free(all[k]);
    assert_int_equal(test_remove_dir(dir), 0);
    free(dir);
}

/* With one constant feature and no penalty, the fit is the log-odds of the mean label. */
static void test_fit_closed_form(void **state) {
    (void)state;
    double X[5] = {1, 1, 1, 1, 1}, y[5] = {1, 0.25, 0, 1, 0.6}, w = 0;
    CkError err = {{0}};
    assert_int_equal(lc_logistic_fit(X, y, 5, 1, 0, &w, &err), 0);
    double m = (1 + 0.25 + 0 + 1 + 0.6) / 5;
    assert_close(w, log(m / (1 - m)), 1e-10);
    /* an L1 penalty larger than the gradient at zero keeps the weight at zero */
    w = 0.3;
    assert_int_equal(lc_logistic_fit(X, y, 5, 1, fabs(0.5 - m) + 1e-3, &w, &err), 0);
    assert_true(w == 0);
    /* labels outside [0, 1] are refused */
    y[2] = 1.5;
    assert_int_equal(lc_logistic_fit(X, y, 5, 1, 0, &w, &err), -1);
    assert_non_null(strstr(err.msg, "row 2"));
}

/* The L1 optimality (KKT) conditions at the solution on random data: for w_j != 0 the mean
 * log-loss gradient is -l1 sign(w_j); for w_j == 0 its size is at most l1. */
static void test_fit_kkt(void **state) {
    (void)state;
    enum { N = 300, P = 3 };
    double X[N * P], y[N];
    Rng r;
    rng_seed(&r, 11);
    for (int i = 0; i < N; i++) {
        X[i * P] = tanh(4 * (rng_float(&r) - 0.5));
        X[i * P + 1] = 2 * rng_float(&r) - 1;
        X[i * P + 2] = 1;
        double z = -1.3 * X[i * P] + 0.02 * X[i * P + 1] + 0.4;
        y[i] = rng_float(&r) < 1 / (1 + exp(-z)) ? 0.9 : 0.1 * rng_float(&r);
    }
    const double l1s[3] = {0, 0.01, 0.05};
    for (int k = 0; k < 3; k++) {
        double w[P] = {0, 0, 0}, g[P] = {0, 0, 0};
        CkError err = {{0}};
        assert_int_equal(lc_logistic_fit(X, y, N, P, l1s[k], w, &err), 0);
        for (int i = 0; i < N; i++) {
            double z = 0;
            for (int j = 0; j < P; j++) z += X[i * P + j] * w[j];
            double s = 1 / (1 + exp(-z));
            for (int j = 0; j < P; j++) g[j] += (s - y[i]) * X[i * P + j] / N;
        }
        printf("  l1 %.2f: w = %+.6f %+.6f %+.6f, gradient %+.2e %+.2e %+.2e\n", l1s[k], w[0], w[1],
               w[2], g[0], g[1], g[2]);
        int zeros = 0;
        for (int j = 0; j < P; j++) {
            if (w[j] != 0)
                assert_close(g[j], -l1s[k] * (w[j] > 0 ? 1 : -1), 1e-9);
            else
                assert_close(g[j], 0, l1s[k] + 1e-12), zeros++;
        }
        if (k == 2) assert_true(zeros >= 1); /* the weak feature is dropped */
    }
}

/* AlpacaEval's stated properties: win_rate(m, b) = 1 - win_rate(b, m), and equal lengths
 * leave the raw win rate unchanged. */
static void test_length_controlled(void **state) {
    (void)state;
    enum { N = 200 };
    double pref[N], swapped[N], l1[N], l2[N], same[N];
    Rng r;
    rng_seed(&r, 3);
    for (int i = 0; i < N; i++) {
        l1[i] = 200 + 400 * rng_float(&r);
        l2[i] = 100 + 900 * rng_float(&r);
        double z = 1.5 * tanh((l2[i] - l1[i]) / 300) - 0.3; /* longer answers win more */
        pref[i] = 1 + 1 / (1 + exp(-z - (rng_float(&r) - 0.5)));
        swapped[i] = 3 - pref[i];
        same[i] = l1[i];
    }
    pref[7] = NAN; /* missing: dropped from the fit */
    swapped[7] = NAN;
    LcOptions lc = {0};
    WinRate a, b, c;
    CkError err = {{0}};
    winrate_compute(pref, N, &a);
    assert_int_equal(winrate_length_controlled(pref, l1, l2, NULL, N, &lc, &a, &err), 0);
    winrate_compute(swapped, N, &b);
    assert_int_equal(winrate_length_controlled(swapped, l2, l1, NULL, N, &lc, &b, &err), 0);
    printf("  win rate %.4f, length-controlled %.4f (length weight %.4f); swapped %.4f\n",
           a.win_rate, a.lc_win_rate, a.lc_coef_length, b.lc_win_rate);
    assert_close(a.lc_win_rate + b.lc_win_rate, 100, 1e-8);
    assert_true(a.lc_coef_length < 0); /* baseline longer than the model: the model loses */
    assert_true(a.lc_standard_error == 0);
    winrate_compute(pref, N, &c);
    assert_int_equal(winrate_length_controlled(pref, same, same, NULL, N, &lc, &c, &err), 0);
    assert_close(c.lc_win_rate, c.win_rate, 1e-8);
    /* with a difficulty column the predictions vary, so the error is positive */
    double diff[N];
    for (int i = 0; i < N; i++) diff[i] = (i % 5) - 2.0;
    assert_int_equal(winrate_length_controlled(pref, l1, l2, diff, N, &lc, &c, &err), 0);
    assert_true(c.lc_standard_error > 0 && isfinite(c.lc_coef_difficulty));
}

/* The pipeline: a row per file, sorted by win rate, in each format; the CSV row equals the
 * library's numbers (AlpacaEval's leaderboard values for alpaca-7b). */
static void test_pipeline(void **state) {
    (void)state;
    char *path =
        test_shared_path("data/alpaca_eval/results/alpaca-7b/alpaca_eval_gpt4/annotations.json");
    if (!path) skip();
    char *dir = test_temp_dir();
    char swapped[700];
    snprintf(swapped, sizeof swapped, "%s/swapped.json", dir);
    /* the same file with every preference flipped: the other side of each pair wins */
    AnnotationSet s;
    CkError err = {{0}};
    assert_int_equal(annotations_load(&s, path, &err), 0);
    for (int i = 0; i < s.n; i++) {
        if (s.items[i].preference >= 1) s.items[i].preference = 3 - s.items[i].preference;
        free(s.items[i].generator_2);
        s.items[i].generator_2 = strdup("flipped");
    }
    assert_int_equal(annotations_save(&s, swapped, &err), 0);
    annotations_free(&s);
    const char *files[2] = {path, swapped};
    WinrateRunOptions o;
    winrate_run_options_init(&o);
    o.files = files;
    o.n_files = 2;
    o.format = WINRATE_FORMAT_CSV;
    char *out = NULL;
    size_t len = 0;
    o.out = open_memstream(&out, &len);
    WinrateRow *rows = NULL;
    assert_int_equal(winrate_run(&o, &rows, &err), 0);
    fclose(o.out);
    printf("%s", out);
    assert_string_equal(rows[0].name, "flipped"); /* the higher win rate first */
    assert_string_equal(rows[1].name, "alpaca-7b");
    assert_close(rows[0].w.win_rate + rows[1].w.win_rate, 100, 1e-9);
    assert_non_null(strstr(out, "\nalpaca-7b,26.4596273291925"));
    assert_non_null(strstr(out, ",205,584,16,805,0,"));
    free(rows);
    free(out);
    const WinrateFormat formats[3] = {WINRATE_FORMAT_MARKDOWN, WINRATE_FORMAT_JSON,
                                      WINRATE_FORMAT_TABLE};
    char table_row[64];
    snprintf(table_row, sizeof table_row, "%-32s %9s %6s", "alpaca-7b", "26.46", "1.54");
    const char *want[3] = {"| alpaca-7b | 26.46 | 1.54 |",
                           "{\"model\": \"alpaca-7b\", \"win_rate\": 26.4596273291925", table_row};
    for (int k = 0; k < 3; k++) {
        o.format = formats[k];
        o.out = open_memstream(&out, &len);
        assert_int_equal(winrate_run(&o, NULL, &err), 0);
        fclose(o.out);
        assert_non_null(strstr(out, want[k]));
        free(out);
    }
    files[1] = "/nonexistent.json";
    assert_int_equal(winrate_run(&o, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent.json"));
    WinrateFormat f;
    assert_int_equal(winrate_format_parse("markdown", &f), 0);
    assert_int_equal(f, WINRATE_FORMAT_MARKDOWN);
    assert_int_equal(winrate_format_parse("xml", &f), -1);
    assert_int_equal(test_remove_dir(dir), 0);
    free(dir);
    free(path);
}

/* ---- AlpacaEval's length-controlled win rate (eval/lc_alpaca.h) ------------------------ */

#define LC_FIXTURE CUTKIT_SOURCE_DIR "/tests/fixtures/lc_alpaca/"

static cJSON *lc_expected(void) {
    char *text = test_read_file(LC_FIXTURE "expected.json", NULL);
    assert_non_null(text);
    cJSON *e = cJSON_Parse(text);
    free(text);
    assert_non_null(e);
    return e;
}

static double json_number(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

/* sklearn's GroupKFold as numpy 1.24's argsort deals the groups, against numpy itself. */
static void test_group_kfold(void **state) {
    (void)state;
    cJSON *e = lc_expected();
    const cJSON *folds = cJSON_GetObjectItemCaseSensitive(e, "folds"), *f;
    int checked = 0;
    cJSON_ArrayForEach(f, folds) {
        int n = atoi(f->string);
        assert_int_equal(cJSON_GetArraySize(f), n);
        int *got = malloc(sizeof *got * (size_t)n);
        lc_group_kfold(n, 5, got);
        for (int g = 0; g < n; g++) assert_int_equal(got[g], cJSON_GetArrayItem(f, g)->valueint);
        free(got);
        checked++;
    }
    /* every count from 5 to 2999 through a positional checksum */
    const cJSON *sums = cJSON_GetObjectItemCaseSensitive(e, "fold_checksums");
    assert_int_equal(cJSON_GetArraySize(sums), 2995);
    int *fold = malloc(sizeof *fold * 3000);
    for (int n = 5; n < 3000; n++) {
        lc_group_kfold(n, 5, fold);
        double sum = 0;
        for (int g = 0; g < n; g++) sum += (double)(g + 1) * (fold[g] + 1) * (g % 7 + 1);
        if (sum != cJSON_GetArrayItem(sums, n - 5)->valuedouble)
            fail_msg("the folds of %d groups differ from numpy's", n);
    }
    free(fold);
    printf("  folds of %d group counts equal numpy's, and of every count from 5 to 2999\n",
           checked);
    assert_true(checked >= 5);
    for (int k = 0; k < 10; k++) /* numpy.logspace(-4, 4, 10) */
        assert_close(lc_alpaca_c(k), pow(10, -4 + 8.0 * k / 9), 1e-12 * lc_alpaca_c(k));
    cJSON_Delete(e);
}

/* Runs the fixture's annotations through winrate_run with glm and the given tables. */
static WinrateRow lc_fixture_row(LcGlm glm, const LcDifficulty *d, const LcGamed *g) {
    const char *files[1] = {LC_FIXTURE "annotations.json"};
    WinrateRunOptions o;
    winrate_run_options_init(&o);
    o.files = files;
    o.n_files = 1;
    o.lc_glm = glm;
    o.lc_difficulty = d;
    o.lc_gamed = g;
    o.out = NULL;
    WinrateRow *rows = NULL;
    CkError err = {{0}};
    if (winrate_run(&o, &rows, &err) != 0) fail_msg("%s", err.msg);
    WinrateRow r = rows[0];
    free(rows);
    return r;
}

/* The three GLMs of AlpacaEval on the fixture, against tests/fixtures/make_lc_fixture.py's
 * independent computation (exact L1 optima by sign patterns, numpy's own folds). */
static void test_lc_alpaca_fixture(void **state) {
    (void)state;
    cJSON *e = lc_expected();
    LcDifficulty d;
    LcGamed g;
    CkError err = {{0}};
    assert_int_equal(lc_difficulty_load(&d, LC_FIXTURE "instruction_difficulty.csv", &err), 0);
    assert_int_equal(lc_gamed_load(&g, LC_FIXTURE "df_gamed.csv", &err), 0);
    assert_int_equal(g.n, 120);
    const LcGlm glms[4] = {LC_GLM_ALPACA_MINIMAL, LC_GLM_ALPACA_NOREG, LC_GLM_ALPACA_V1,
                           LC_GLM_ALPACA_V1};
    for (int k = 0; k < 4; k++) {
        /* the last: length_controlled_v1 with the difficulty taken from the gamed rows, as
         * AlpacaEval's code takes it */
        WinrateRow r = lc_fixture_row(glms[k], k == 3 ? NULL : &d, &g);
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(e, lc_glm_name(glms[k]));
        assert_non_null(x);
        double want = json_number(x, "length_controlled_winrate");
        double want_se = json_number(x, "lc_standard_error");
        const cJSON *coef = cJSON_GetObjectItemCaseSensitive(x, "coef");
        printf("  %-26s LC %.10f (python %.10f)  SE %.10f (%.10f)  C %g (%g)\n",
               lc_glm_name(glms[k]), r.w.lc_win_rate, want, r.w.lc_standard_error, want_se,
               r.w.lc_c, json_number(x, "c"));
        assert_int_equal(r.w.lc_glm, glms[k]);
        assert_close(r.w.lc_c, json_number(x, "c"), 1e-9 * r.w.lc_c);
        assert_close(r.w.lc_win_rate, want, 1e-10);
        assert_close(r.w.lc_standard_error, want_se, 1e-10);
        assert_close(r.w.lc_coef_length, cJSON_GetArrayItem(coef, 0)->valuedouble, 1e-9);
        assert_close(r.w.lc_coef_baseline,
                     cJSON_GetArrayItem(coef, cJSON_GetArraySize(coef) - 1)->valuedouble, 1e-9);
        if (glms[k] != LC_GLM_ALPACA_MINIMAL)
            assert_close(r.w.lc_coef_difficulty, cJSON_GetArrayItem(coef, 1)->valuedouble, 1e-9);
        assert_int_equal(r.w.n_total, 58); /* two null preferences */
    }
    lc_difficulty_free(&d);
    lc_gamed_free(&g);
    cJSON_Delete(e);
}

/* A difficulty table keyed by instruction text gives the same number; a model against itself
 * is 50 by construction; tables that do not fit are refused naming the file and what. */
static void test_lc_alpaca_tables(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    char path[700];
    AnnotationSet s;
    CkError err = {{0}};
    assert_int_equal(annotations_load(&s, LC_FIXTURE "annotations.json", &err), 0);
    LcDifficulty d, by_text;
    assert_int_equal(lc_difficulty_load(&d, LC_FIXTURE "instruction_difficulty.csv", &err), 0);
    snprintf(path, sizeof path, "%s/by_instruction.csv", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "instruction,instruction_difficulty\n");
    for (int i = s.n - 1; i >= 0; i--) { /* any order */
        double v;
        assert_int_equal(lc_difficulty_lookup(&d, i, NULL, &v), 0);
        fprintf(f, "\"%s\",%.17g\n", s.items[i].instruction, v);
    }
    fclose(f);
    assert_int_equal(lc_difficulty_load(&by_text, path, &err), 0);
    assert_true(by_text.by_instruction);
    WinrateRow a = lc_fixture_row(LC_GLM_ALPACA_NOREG, &d, NULL);
    WinrateRow b = lc_fixture_row(LC_GLM_ALPACA_NOREG, &by_text, NULL);
    assert_true(a.w.lc_win_rate == b.w.lc_win_rate);

    /* the baseline against itself */
    for (int i = 0; i < s.n; i++) {
        free(s.items[i].generator_2);
        s.items[i].generator_2 = strdup(s.items[i].generator_1);
    }
    snprintf(path, sizeof path, "%s/self.json", dir);
    assert_int_equal(annotations_save(&s, path, &err), 0);
    WinrateRow row;
    LcOptions lc = {.glm = LC_GLM_ALPACA_NOREG, .difficulty = &d};
    assert_int_equal(winrate_row_load(path, &lc, 1, &row, &err), 0);
    assert_true(row.w.lc_win_rate == 50 && row.w.lc_standard_error == 0);

    /* a table two rows short: the first annotation without a difficulty is named */
    LcDifficulty short_d;
    assert_int_equal(
        lc_difficulty_load(&short_d, LC_FIXTURE "instruction_difficulty_short.csv", &err), 0);
    lc.difficulty = &short_d;
    assert_int_equal(winrate_row_load(LC_FIXTURE "annotations.json", &lc, 1, &row, &err), -1);
    printf("  %s\n", err.msg);
    assert_non_null(
        strstr(err.msg, "instruction_difficulty_short.csv: no difficulty for index 58"));
    assert_non_null(strstr(err.msg, "\"Instruction 58: "));
    assert_null(strchr(err.msg, '\n'));
    lc.glm = LC_GLM_ALPACA_V1; /* without the gamed rows */
    assert_int_equal(winrate_row_load(LC_FIXTURE "annotations.json", &lc, 1, &row, &err), -1);
    assert_non_null(strstr(err.msg, "df_gamed.csv"));

    /* malformed tables */
    const char *bad[][2] = {
        {"index,instruction_difficulty\n0,1.5\n1,x\n", "row 3: difficulty \"x\" is not a finite"},
        {"index,instruction_difficulty\n0,1.5\n0,2\n", "rows 2 and 3 give the same key"},
        {"index,instruction_difficulty\nfirst,1.5\n", "is not an integer index"},
        {"index,a,b\n0,1,2\n", "expected 2 columns"},
        {"model,index,preference,std_delta_len,instruction_difficulty,not_gamed_baseline\n"
         "m,0,1.5,0.1,0.2,False\n",
         "row 2: preference 1.5 is outside [0, 1]"},
        {"model,index,preference,std_delta_len,instruction_difficulty,not_gamed_baseline\n"
         "m,0,0.5,0.1,0.2,maybe\n",
         "row 2: not_gamed_baseline \"maybe\" is not True or False"},
        {"model,index,preference,instruction_difficulty,not_gamed_baseline\nm,0,0.5,0.2,False\n",
         "no column \"std_delta_len\""},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        snprintf(path, sizeof path, "%s/bad%zu.csv", dir, k);
        f = fopen(path, "w");
        assert_non_null(f);
        fputs(bad[k][0], f);
        fclose(f);
        LcDifficulty t;
        LcGamed g;
        int rc = strncmp(bad[k][0], "model,", 6) == 0 ? lc_gamed_load(&g, path, &err)
                                                      : lc_difficulty_load(&t, path, &err);
        assert_int_equal(rc, -1);
        if (!strstr(err.msg, bad[k][1]) || !strstr(err.msg, path))
            fail_msg("got \"%s\", expected \"%s\" naming the file", err.msg, bad[k][1]);
    }
    lc_difficulty_free(&short_d);
    lc_difficulty_free(&by_text);
    lc_difficulty_free(&d);
    annotations_free(&s);
    assert_int_equal(test_remove_dir(dir), 0);
    free(dir);
}

/* The binary: the renamed column without tables, AlpacaEval's with them; a table that does
 * not cover the instructions is one line and exit 1; a GLM without its table is usage (2). */
static void test_lc_cli(void **state) {
    (void)state;
    char cmd[2000];
    char *out = NULL, *errout = NULL;
    snprintf(cmd, sizeof cmd, "'%s' eval winrate --format csv '%s'", CUTKIT_BINARY,
             LC_FIXTURE "annotations.json");
    assert_int_equal(test_run(cmd, &out, NULL), 0);
    assert_non_null(
        strstr(out, ",avg_length,lc_winrate_glm_minimal,lc_glm_minimal_standard_error,"));
    assert_null(strstr(out, "length_controlled_winrate"));
    free(out);
    snprintf(cmd, sizeof cmd,
             "'%s' eval winrate --format json '%s' --lc-difficulty '%s' --lc-gamed '%s'",
             CUTKIT_BINARY, LC_FIXTURE "annotations.json", LC_FIXTURE "instruction_difficulty.csv",
             LC_FIXTURE "df_gamed.csv");
    assert_int_equal(test_run(cmd, &out, NULL), 0);
    cJSON *row = cJSON_Parse(out), *e = lc_expected();
    assert_non_null(row);
    const cJSON *glm = cJSON_GetObjectItemCaseSensitive(row, "lc_glm");
    assert_true(cJSON_IsString(glm));
    assert_string_equal(glm->valuestring, "length_controlled_v1");
    assert_close(json_number(row, "length_controlled_winrate"),
                 json_number(cJSON_GetObjectItemCaseSensitive(e, "length_controlled_v1"),
                             "length_controlled_winrate"),
                 1e-8);
    cJSON_Delete(row);
    cJSON_Delete(e);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' eval winrate '%s' --lc-difficulty '%s'", CUTKIT_BINARY,
             LC_FIXTURE "annotations.json", LC_FIXTURE "instruction_difficulty_short.csv");
    assert_int_equal(test_run(cmd, NULL, &errout), 1);
    printf("  %s", errout);
    assert_non_null(strstr(errout, "note: without --lc-gamed"));
    const char *last = strstr(errout, "cutkit eval winrate: " LC_FIXTURE "annotations.json: ");
    assert_non_null(last);
    assert_non_null(strstr(last, "instruction_difficulty_short.csv: no difficulty for index 58"));
    assert_int_equal(strchr(last, '\n') - last + 1, (long)strlen(last)); /* one line */
    free(errout);
    snprintf(cmd, sizeof cmd, "'%s' eval winrate '%s' --lc-glm length_controlled_v1", CUTKIT_BINARY,
             LC_FIXTURE "annotations.json");
    assert_int_equal(test_run(cmd, NULL, &errout), 2);
    assert_non_null(strstr(errout, "--lc-glm length_controlled_v1 needs --lc-gamed"));
    free(errout);
    snprintf(cmd, sizeof cmd, "'%s' eval winrate '%s' --lc-difficulty /nonexistent.csv",
             CUTKIT_BINARY, LC_FIXTURE "annotations.json");
    assert_int_equal(test_run(cmd, NULL, &errout), 1);
    assert_non_null(strstr(errout, "/nonexistent.csv"));
    free(errout);
}

/* The binary prints the leaderboard to stdout; bad usage is 2, an unreadable file 1. */
static void test_cli(void **state) {
    (void)state;
    char *path =
        test_shared_path("data/alpaca_eval/results/alpaca-7b/alpaca_eval_gpt4/annotations.json");
    if (!path) skip();
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "'%s' eval winrate --format markdown '%s' '%s'", CUTKIT_BINARY, path,
             path);
    char *out = NULL, *errout = NULL;
    assert_int_equal(test_run(cmd, &out, NULL), 0);
    assert_non_null(strstr(out, "| alpaca-7b | 26.46 | 1.54 |"));
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' eval winrate /nonexistent.json", CUTKIT_BINARY);
    assert_int_equal(test_run(cmd, NULL, &errout), 1);
    assert_non_null(strstr(errout, "cutkit eval winrate: /nonexistent.json"));
    free(errout);
    snprintf(cmd, sizeof cmd, "'%s' eval winrate --format xml '%s'", CUTKIT_BINARY, path);
    assert_int_equal(test_run(cmd, NULL, &errout), 2);
    assert_non_null(strstr(errout, "--format expects table, csv, markdown or json"));
    free(errout);
    snprintf(cmd, sizeof cmd, "'%s' eval winrate", CUTKIT_BINARY);
    assert_int_equal(test_run(cmd, NULL, &errout), 2);
    assert_non_null(strstr(errout, "give one or more annotations.json files"));
    free(errout);
    free(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leaderboards),
        cmocka_unit_test(test_hand_counts),
        cmocka_unit_test(test_pairwise_order),
        cmocka_unit_test(test_pairwise_numpy),
        cmocka_unit_test(test_fit_closed_form),
        cmocka_unit_test(test_fit_kkt),
        cmocka_unit_test(test_length_controlled),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_group_kfold),
        cmocka_unit_test(test_lc_alpaca_fixture),
        cmocka_unit_test(test_lc_alpaca_tables),
        cmocka_unit_test(test_lc_cli),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
