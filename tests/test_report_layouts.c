/* test_report_layouts.c — `cutkit report --layout`: the CUT paper's Table 2, 4 and 6 layouts of
 * the fixture run directories equal the Markdown that make_layouts_fixture.py computed on its
 * own from the numbers it wrote (tests/fixtures/report_layouts/); the 2 x 3 seed sweep of
 * tests/fixtures/report-seeds in the Table-2 layout has the cells (mean ± sd (n=3), † against
 * a baseline) of that fixture's own expected table; plots against λ never join runs of
 * different data conditions (the demo's mixed-world CUT run and the offline runs at α = 1);
 * the Figure-4 and Figure-7 plots; the row names from config.json; a bad --layout.
 *
 * The expected files are generated, then reviewed: when the data or the format changes on
 * purpose, rerun /usr/bin/python3 tests/fixtures/report_layouts/make_layouts_fixture.py and
 * review the diff line by line before committing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/test_util.h"

#include "reports/labels.h"
#include "reports/layout.h"
#include "reports/report.h"
#include "reports/rundir.h"

#define FIXTURES CUTKIT_SOURCE_DIR "/tests/fixtures/report_layouts"
#define RUNS     FIXTURES "/runs/"
#define SEEDS    CUTKIT_SOURCE_DIR "/tests/fixtures/report-seeds/runs/"

static char *tmp;

static int setup(void **state) {
    (void)state;
    tmp = test_temp_dir();
    return tmp ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    int rc = test_remove_dir(tmp);
    free(tmp);
    return rc;
}

static char *path_in(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static char *read_in(const char *dir, const char *name) {
    char *p = path_in(dir, name);
    char *text = test_read_file(p, NULL);
    free(p);
    return text;
}

static void write_in(const char *dir, const char *name, const char *text) {
    char *p = path_in(dir, name);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", p);
    assert_int_equal(test_run(cmd, NULL, NULL), 0);
    *slash = '/';
    assert_int_equal(test_write_file(p, text, strlen(text)), 0);
    free(p);
}

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *c = s; (c = strstr(c, what)); c++) n++;
    return n;
}

static void assert_same_text(const char *got, const char *want, const char *what) {
    assert_non_null(got);
    assert_non_null(want);
    if (strcmp(got, want) != 0) {
        fprintf(stderr,
                "%s differs from the expected file.\n--- got:\n%s--- want:\n%s---\n"
                "If the data or format changed on purpose, see the top of "
                "tests/test_report_layouts.c.\n",
                what, got, want);
        fail();
    }
}

/* Writes the report of the runs with o into tmp/name and returns that directory. */
static char *report(const char *name, const char *const *runs, int n, ReportOptions *o) {
    char *out = path_in(tmp, name);
    CkError err = {{0}};
    int rc = report_write(runs, n, out, o, &err);
    if (rc != 0) fprintf(stderr, "report_write: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return out;
}

/* ---------------------------------------------------------------------------------------- */

static void test_table2(void **state) {
    (void)state;
    const char *runs[] = {RUNS "base",      RUNS "forward-prediction",
                          RUNS "hindsight", RUNS "ilf-mle",
                          RUNS "ilf-dpo",   RUNS "cut-s1",
                          RUNS "cut-s2",    RUNS "cut-s3"};
    ReportOptions o = report_default_options();
    o.title = "Layout fixture";
    o.layouts = "table2";
    char *out = report("t2", runs, 8, &o);
    char *got = read_in(out, "table2.md"), *want = read_in(FIXTURES, "table2.md");
    assert_same_text(got, want, "table2.md");
    char *tex = read_in(out, "table2.tex");
    assert_non_null(tex);
    assert_non_null(strstr(tex, "\\begin{tabular}{llrrrrrr}"));
    assert_non_null(strstr(tex, "    Method & Objective & ARC & HellaSwag & MMLU & TruthfulQA & "
                                "Avg. & AlpacaEval \\\\\n"));
    assert_non_null(strstr(tex, "    ILF-DPO & DPO & 58.79 & 81.07$^\\ddagger$ & 55.48 & 41.84 & "
                                "59.29$^\\ddagger$ & 3.11 $\\pm$ 0.61 \\\\\n"));
    assert_non_null(
        strstr(tex, "    CUT (n=3) & MLE+UT & \\textbf{60.75}{\\scriptsize$\\pm$0.59}"));
    char *html = read_in(out, "index.html");
    assert_non_null(html);
    assert_non_null(strstr(html, "<h2 id=\"table2\">Table 2 layout"));
    assert_non_null(strstr(html, "<thead><tr><th>Method</th><th>Objective</th><th>ARC</th>"));
    assert_non_null(strstr(html, "81.07<sup class=\"variant\">\xE2\x80\xA1</sup>"));
    assert_non_null(strstr(html, "<strong>60.75</strong> \xC2\xB1 0.59 <small>(n=3)</small>"));
    /* the main table is still there, with the new benchmark columns */
    char *main_md = read_in(out, "tables.md");
    assert_non_null(
        strstr(main_md, "| Run | ARC-C acc\\_norm | HellaSwag acc\\_norm | MMLU acc |"));
    free(main_md);
    free(html);
    free(tex);
    free(got);
    free(want);
    free(out);
}

static void test_table4(void **state) {
    (void)state;
    const char *runs[] = {RUNS "base",
                          RUNS "cut-s1",
                          RUNS "cut-s2",
                          RUNS "cut-s3",
                          RUNS "cut-no-l1",
                          RUNS "cut-no-align-p",
                          RUNS "cut-no-align-n-mle",
                          RUNS "cut-no-detection",
                          RUNS "cut-no-dynamic"};
    ReportOptions o = report_default_options();
    o.title = "Layout fixture";
    o.layouts = "table4";
    char *out = report("t4", runs, 9, &o);
    char *got = read_in(out, "table4.md"), *want = read_in(FIXTURES, "table4.md");
    assert_same_text(got, want, "table4.md");
    char *tex = read_in(out, "table4.tex");
    assert_non_null(strstr(tex, "    $-$ L1 (Misalign term) & 39.01 & 37.46 & -- & 31.00 \\\\\n"));
    free(tex);
    free(got);
    free(want);
    free(out);
}

/* An align-online run directory is a row per finished iteration; iter-3 has no done.json. */
static void test_table6(void **state) {
    (void)state;
    const char *runs[] = {RUNS "base", RUNS "cut-s1", RUNS "cut-s2", RUNS "cut-s3", RUNS "online"};
    ReportOptions o = report_default_options();
    o.title = "Layout fixture";
    o.layouts = "table6";
    char *out = report("t6", runs, 5, &o);
    char *got = read_in(out, "table6.md"), *want = read_in(FIXTURES, "table6.md");
    assert_same_text(got, want, "table6.md");
    free(got);
    free(want);
    /* without table6 the online run is one run directory of its own */
    o.layouts = "table2";
    free(out);
    out = report("t6b", runs, 5, &o);
    got = read_in(out, "tables.md");
    assert_null(strstr(got, "online/iter-1"));
    assert_non_null(strstr(got, "| online |"));
    free(got);
    free(out);
    assert_int_equal(layout_online_iterations(RUNS "online"), 2);
    assert_int_equal(layout_online_iterations(RUNS "base"), 0);
}

/* The seed sweep of report-seeds (2 settings x 3 seeds) in the Table-2 layout: the cells are
 * those of that fixture's tables_baseline.md, which make_seeds_fixture.py computed on its own
 * (mean ± sd (n=3), † from its own bootstrap against lambda=2). */
static void test_seed_sweep_layout(void **state) {
    (void)state;
    const char *runs[] = {SEEDS "lambda=1.1,seed=1", SEEDS "lambda=1.1,seed=2",
                          SEEDS "lambda=1.1,seed=3", SEEDS "lambda=2,seed=1",
                          SEEDS "lambda=2,seed=2",   SEEDS "lambda=2,seed=3"};
    ReportOptions o = report_default_options();
    o.title = "Seed fixture";
    o.layouts = "table2,table4";
    o.baseline = "lambda=2";
    char *out = report("seeds", runs, 6, &o);
    char *md = read_in(out, "table2.md");
    assert_non_null(md);
    const char *row1 = "| CUT (lambda=1.1) | MLE+UT | **72.50**\xE2\x80\xA0 \xC2\xB1 6.61 (n=3) | "
                       "\xE2\x80\x94 | \xE2\x80\x94 | 51.70 \xC2\xB1 3.25 (n=3) | \xE2\x80\x94 | "
                       "**62.00**\xE2\x80\xA0 \xC2\xB1 8.72 (n=3) |\n";
    const char *row2 = "| CUT (lambda=2) | MLE+UT | 41.39 \xC2\xB1 4.28 (n=3) | \xE2\x80\x94 | "
                       "\xE2\x80\x94 | **51.92** \xC2\xB1 4.33 (n=3) | \xE2\x80\x94 | "
                       "39.94 \xC2\xB1 5.20 (n=3) |\n";
    if (!strstr(md, row1) || !strstr(md, row2)) fprintf(stderr, "table2.md:\n%s", md);
    assert_non_null(strstr(md, row1));
    assert_non_null(strstr(md, row2));
    assert_non_null(strstr(md, "differs from the row \"CUT (lambda=2)\""));
    char *md4 = read_in(out, "table4.md");
    assert_non_null(strstr(md4, "| CUT (lambda=1.1) | 51.70 \xC2\xB1 3.25 (n=3) | \xE2\x80\x94 | "
                                "**62.00**\xE2\x80\xA0 \xC2\xB1 8.72 (n=3) |"));
    free(md4);
    free(md);
    /* a layout's row name works as the baseline too */
    o.baseline = "CUT (lambda=2)";
    o.layouts = "table2";
    free(out);
    out = report("seeds2", runs, 6, &o);
    md = read_in(out, "table2.md");
    assert_non_null(strstr(md, row1));
    free(md);
    free(out);
}

/* A run directory in tmp/plots-NAME with config.json and eval/winrate.json (and TruthfulQA
 * MC2 when tqa >= 0). */
static void plot_run(const char *set, const char *name, const char *config, double win,
                     double tqa) {
    char dir[512], text[256];
    snprintf(dir, sizeof dir, "%s/%s/%s", tmp, set, name);
    write_in(dir, "config.json", config);
    snprintf(text, sizeof text, "{\"win_rate\": %g, \"standard_error\": 2}\n", win);
    write_in(dir, "eval/winrate.json", text);
    if (tqa >= 0) {
        snprintf(text, sizeof text, "{\"results\": {\"truthfulqa_mc2\": {\"acc,none\": %g}}}\n",
                 tqa);
        write_in(dir, "eval/mc/results.json", text);
    }
}

/* The series <g> of the plot whose legend title is title, up to its end; NULL when absent. */
static char *series_of(const char *svg, const char *title) {
    char want[256];
    snprintf(want, sizeof want, "<g class=\"series\"><title>%s</title>", title);
    const char *s = strstr(svg, want);
    if (!s) return NULL;
    const char *e = strstr(s, "</g>");
    return strndup(s, (size_t)(e - s));
}

/* The " L" segments of the first <path> of a series (its line; error bars come after it). */
static int line_segments(const char *series) {
    const char *p = strstr(series, "<path");
    const char *e = p ? strstr(p, "/>") : NULL;
    if (!e) return -1;
    char *line = strndup(p, (size_t)(e - p));
    int n = count(line, " L");
    free(line);
    return n;
}

/* The demo's runs: the mixed-world CUT run at λ 1.1, α 1 and the offline grid. Against λ the
 * mixed run is a line of its own (one point, no segment), never the α = 1 line's left end. */
static void test_lambda_plot_lines(void **state) {
    (void)state;
    const char *c = "{\"label\": \"%s\", \"setting\": \"%s\", \"objective\": \"cut\", "
                    "\"lambda\": %g, \"alpha\": %g, \"lr\": 0.0005, \"seed\": %d, "
                    "\"command\": \"cutkit demo\"}";
    const struct {
        const char *name, *setting;
        double lambda, alpha, win;
        int seed;
    } R[] = {
        {"mixed-cut", "mixed", 1.1, 1, 70, 1},
        {"offline-cut-l1.1-a1", "offline", 1.1, 1, 40, 1},
        {"offline-cut-l1.1-a0.5", "offline", 1.1, 0.5, 42, 1},
        {"offline-cut-l2-a1", "offline", 2, 1, 45, 1},
        {"offline-cut-l2-a0.5", "offline", 2, 0.5, 47, 1},
        {"offline-cut-l2-a0.5-s2", "offline", 2, 0.5, 49, 2}, /* a second seed: one point */
    };
    const char *dirs[6];
    char paths[6][512];
    for (int i = 0; i < 6; i++) {
        char config[512];
        snprintf(config, sizeof config, c, R[i].name, R[i].setting, R[i].lambda, R[i].alpha,
                 R[i].seed);
        plot_run("lam", R[i].name, config, R[i].win, -1);
        snprintf(paths[i], sizeof paths[i], "%s/lam/%s", tmp, R[i].name);
        dirs[i] = paths[i];
    }
    ReportOptions o = report_default_options();
    char *out = report("lam-report", dirs, 6, &o);
    char *plots = path_in(out, "plots");
    char *svg = read_in(plots, "win_rate_vs_lambda.svg");
    assert_non_null(svg);
    assert_int_equal(count(svg, "<g class=\"series\"><title>"), 3);
    char *mixed = series_of(svg, "setting = mixed, \xCE\xB1 = 1");
    char *off1 = series_of(svg, "setting = offline, \xCE\xB1 = 1");
    char *off05 = series_of(svg, "setting = offline, \xCE\xB1 = 0.5");
    assert_non_null(mixed);
    assert_non_null(off1);
    assert_non_null(off05);
    assert_int_equal(line_segments(mixed), 0); /* one point: no segment to any other run */
    assert_int_equal(count(mixed, "<circle"), 1);
    assert_int_equal(line_segments(off1), 1); /* λ 1.1 -> 2 within the offline world */
    assert_int_equal(line_segments(off05), 1);
    assert_non_null(strstr(off05, "stroke-width=\"1.2\"")); /* the seed group's error bar */
    /* the α plot likewise: the mixed run is not on the offline λ = 1.1 line */
    char *alpha = read_in(plots, "win_rate_vs_alpha.svg");
    assert_non_null(alpha);
    char *mixed_a = series_of(alpha, "setting = mixed, \xCE\xBB = 1.1");
    assert_non_null(mixed_a);
    assert_int_equal(line_segments(mixed_a), 0);
    free(mixed_a);
    free(alpha);
    free(mixed);
    free(off1);
    free(off05);
    free(svg);
    free(plots);
    free(out);
}

/* Figure 4: win rate against the judgments / pairs used, a line per objective; Figure 7:
 * TruthfulQA against the Align-P ratio, "off" at the data's own ratio. */
static void test_figures(void **state) {
    (void)state;
    const char *cut = "{\"objective\": \"cut\", \"lambda\": 1.1, \"judgments\": \"data/j%d.json\", "
                      "\"cut_data\": {\"records\": %d}, \"seed\": 1}";
    const char *dpo = "{\"objective\": \"dpo\", \"beta\": 0.1, \"pairs\": \"data/p%d.jsonl\", "
                      "\"n_pairs\": %d, \"seed\": 1}";
    const int sizes[3] = {1000, 2000, 3000};
    char paths[8][512];
    const char *dirs[8];
    int n = 0;
    for (int i = 0; i < 3; i++) {
        char config[512], name[32];
        snprintf(config, sizeof config, cut, sizes[i], sizes[i]);
        snprintf(name, sizeof name, "cut-%d", sizes[i]);
        plot_run("fig", name, config, 60 + i, -1);
        snprintf(paths[n], sizeof paths[n], "%s/fig/%s", tmp, name);
        dirs[n] = paths[n], n++;
        snprintf(config, sizeof config, dpo, sizes[i], sizes[i]);
        snprintf(name, sizeof name, "dpo-%d", sizes[i]);
        plot_run("fig", name, config, 20 + i, -1);
        snprintf(paths[n], sizeof paths[n], "%s/fig/%s", tmp, name);
        dirs[n] = paths[n], n++;
    }
    ReportOptions o = report_default_options();
    o.layouts = "fig4";
    char *out = report("fig4", dirs, n, &o);
    char *plots = path_in(out, "plots");
    char *svg = read_in(plots, "fig4_win_rate.svg");
    assert_non_null(svg);
    char *c = series_of(svg, "CUT, \xCE\xBB = 1.1"), *d = series_of(svg, "DPO, beta = 0.1");
    if (!c || !d) fprintf(stderr, "fig4_win_rate.svg:\n%s", svg);
    assert_non_null(c);
    assert_non_null(d);
    assert_int_equal(line_segments(c), 2);
    assert_int_equal(line_segments(d), 2);
    free(c);
    free(d);
    free(svg);
    free(plots);
    free(out);

    const char *ratio = "{\"objective\": \"cut\", \"align_p_ratio\": %s, \"cut_data\": "
                        "{\"positives_kept\": %d, \"negatives\": 100}, \"seed\": 1}";
    const char *r[3] = {"0", "0.25", "\"off\""};
    const int kept[3] = {0, 25, 150};
    for (int i = 0; i < 3; i++) {
        char config[512], name[32];
        snprintf(config, sizeof config, ratio, r[i], kept[i]);
        snprintf(name, sizeof name, "ratio-%d", i);
        plot_run("fig7", name, config, 50, 0.49 + 0.004 * i);
        snprintf(paths[i], sizeof paths[i], "%s/fig7/%s", tmp, name);
        dirs[i] = paths[i];
    }
    o.layouts = "fig7";
    out = report("fig7", dirs, 3, &o);
    plots = path_in(out, "plots");
    svg = read_in(plots, "fig7_tqa_mc2.svg");
    assert_non_null(svg);
    assert_int_equal(count(svg, "<g class=\"series\"><title>runs</title>"), 1);
    assert_int_equal(count(svg, "<circle"), 3); /* 0, 0.25 and "off" at 150/100 = 1.5 */
    assert_non_null(strstr(svg, ">1.4<"));      /* the axis reaches 1.5 */
    free(svg);
    free(plots);
    free(out);
}

/* The row names from config.json: objectives, ablation switches, #J. */
static void test_labels(void **state) {
    (void)state;
    RunDir rd;
    memset(&rd, 0, sizeof rd);
    assert_string_equal(label_objective(&rd).method, "Base");
    rd.json[RUN_CONFIG] = cJSON_Parse("{\"objective\": \"hindsight\"}");
    assert_string_equal(label_objective(&rd).method, "Hindsight");
    assert_string_equal(label_objective(&rd).loss, "MLE");
    cJSON_Delete(rd.json[RUN_CONFIG]);
    rd.json[RUN_CONFIG] = cJSON_Parse("{\"objective\": \"my-loss\"}");
    assert_string_equal(label_objective(&rd).method, "my-loss");
    assert_string_equal(label_objective(&rd).loss, "?");
    cJSON_Delete(rd.json[RUN_CONFIG]);
    rd.json[RUN_CONFIG] = cJSON_Parse("{\"objective\": \"cut\", \"no_l1\": true, "
                                      "\"ablations\": {\"no_dynamic_weight\": 1}, "
                                      "\"no_align_p\": false, \"cut_data\": {\"records\": 12}}");
    char buf[256];
    label_variant(&rd, buf, sizeof buf);
    assert_string_equal(buf, "\xE2\x88\x92 L1 (Misalign term), \xE2\x88\x92 dynamic weighting");
    label_method(&rd, buf, sizeof buf);
    assert_string_equal(buf, "CUT (\xE2\x88\x92 L1 (Misalign term), \xE2\x88\x92 dynamic "
                             "weighting)");
    assert_true(label_judgments(&rd) == 12);
    int full;
    assert_true(isnan(label_align_p_ratio(&rd, &full)));
    cJSON_Delete(rd.json[RUN_CONFIG]);
    rd.json[RUN_CONFIG] = cJSON_Parse("{\"objective\": \"cut\"}");
    label_variant(&rd, buf, sizeof buf);
    assert_string_equal(buf, "CUT");
    cJSON_Delete(rd.json[RUN_CONFIG]);
    rd.json[RUN_CONFIG] = cJSON_Parse("{\"align_p_ratio\": \"off\", \"cut_data\": "
                                      "{\"positives_kept\": 150, \"negatives\": 100}}");
    assert_true(label_align_p_ratio(&rd, &full) == 1.5);
    assert_int_equal(full, 1);
    cJSON_Delete(rd.json[RUN_CONFIG]);
    rd.json[RUN_CONFIG] = cJSON_Parse("{\"align_p_ratio\": 0.25}");
    assert_true(label_align_p_ratio(&rd, &full) == 0.25);
    assert_int_equal(full, 0);
    cJSON_Delete(rd.json[RUN_CONFIG]);
}

static void test_bad_layout(void **state) {
    (void)state;
    const char *runs[] = {RUNS "base"};
    ReportOptions o = report_default_options();
    o.layouts = "table2,table9";
    char *out = path_in(tmp, "bad");
    CkError err = {{0}};
    assert_int_equal(report_write(runs, 1, out, &o, &err), -1);
    assert_non_null(strstr(err.msg, "unknown layout \"table9\""));
    assert_int_equal(access(out, F_OK), -1); /* nothing written */
    char cmd[4200], *e = NULL;
    snprintf(cmd, sizeof cmd, "'%s' report '%sbase' --layout fig5 --out '%s'", CUTKIT_BINARY, RUNS,
             out);
    assert_int_equal(test_run(cmd, NULL, &e), 2);
    assert_non_null(strstr(e, "unknown layout \"fig5\""));
    free(e);
    snprintf(cmd, sizeof cmd, "'%s' report '%sbase' '%scut-s1' --layout table2,fig7 --out '%s'",
             CUTKIT_BINARY, RUNS, RUNS, out);
    assert_int_equal(test_run(cmd, NULL, NULL), 0);
    char *md = read_in(out, "table2.md");
    assert_non_null(md);
    free(md);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table2),
        cmocka_unit_test(test_table4),
        cmocka_unit_test(test_table6),
        cmocka_unit_test(test_seed_sweep_layout),
        cmocka_unit_test(test_lambda_plot_lines),
        cmocka_unit_test(test_figures),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_bad_layout),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
