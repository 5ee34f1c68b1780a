/* test_report.c — `cutkit report`: the tables of the fixture run directories equal the
 * hand-written expected tables.md/tables.tex byte for byte; missing files give dashes and
 * malformed ones errors that name them; LaTeX, Markdown and HTML escaping; contrast.csv with
 * quoted token texts through libcsv; every SVG is well-formed XML (Python's parser); and the
 * page rendered in headless Chromium shows its plots and highlights (screenshot kept in
 * tests/artifacts/report.png of the build directory).
 *
 * The expected tables are written by hand, not generated. When the format changes on purpose,
 * regenerate them with
 *   cutkit report tests/fixtures/report/runs/{base,cut_online,cut_offline} \
 *       --title "Fixture report" --out /tmp/r && cp /tmp/r/tables.{md,tex} tests/fixtures/report/
 * and review the diff line by line before committing. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/test_util.h"

#include "reports/compare_report.h"
#include "reports/contrast_csv.h"
#include "reports/escape.h"
#include "reports/groups.h"
#include "reports/items.h"
#include "reports/metrics.h"
#include "reports/report.h"
#include "reports/rundir.h"
#include "reports/svgplot.h"

#define FIXTURES CUTKIT_SOURCE_DIR "/tests/fixtures/report"
#define RUNS     FIXTURES "/runs"
#define SEEDS    CUTKIT_SOURCE_DIR "/tests/fixtures/report-seeds"

/* The seed sweep: 2 settings x 3 seeds (tests/fixtures/report-seeds/make_seeds_fixture.py). */
static const char *SEED_RUNS[6] = {
    SEEDS "/runs/lambda=1.1,seed=1", SEEDS "/runs/lambda=1.1,seed=2",
    SEEDS "/runs/lambda=1.1,seed=3", SEEDS "/runs/lambda=2,seed=1",
    SEEDS "/runs/lambda=2,seed=2",   SEEDS "/runs/lambda=2,seed=3",
};

static const char *FIXTURE_RUNS[3] = {RUNS "/base", RUNS "/cut_online", RUNS "/cut_offline"};

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

static void write_text(const char *dir, const char *name, const char *text) {
    char *p = path_in(dir, name);
    assert_int_equal(test_write_file(p, text, strlen(text)), 0);
    free(p);
}

static char *read_in(const char *dir, const char *name) {
    char *p = path_in(dir, name);
    char *text = test_read_file(p, NULL);
    free(p);
    return text;
}

static char *make_dir(const char *name) {
    char *p = path_in(tmp, name);
    assert_int_equal(mkdir(p, 0777), 0);
    return p;
}

static void assert_same_text(const char *got, const char *want, const char *what) {
    if (strcmp(got, want) != 0) {
        fprintf(stderr,
                "%s differs from the expected file.\n--- got:\n%s--- want:\n%s---\n"
                "If the format changed on purpose, see the top of tests/test_report.c.\n",
                what, got, want);
        fail();
    }
}

static void open_fixtures(RunDir runs[3]) {
    CkError err = {{0}};
    for (int i = 0; i < 3; i++) {
        int rc = rundir_open(&runs[i], FIXTURE_RUNS[i], &err);
        if (rc != 0) fprintf(stderr, "%s\n", err.msg);
        assert_int_equal(rc, 0);
    }
}

/* ---------------------------------------------------------------------------------------- */

static void test_tables_match_expected(void **state) {
    (void)state;
    RunDir runs[3];
    open_fixtures(runs);
    char *md, *tex;
    CkError err = {{0}};
    assert_int_equal(report_tables(runs, 3, "Fixture report", &md, &tex, &err), 0);
    char *want_md = read_in(FIXTURES, "tables.md"), *want_tex = read_in(FIXTURES, "tables.tex");
    assert_non_null(want_md);
    assert_non_null(want_tex);
    assert_same_text(md, want_md, "tables.md");
    assert_same_text(tex, want_tex, "tables.tex");
    /* the whole report writes the same tables into its directory */
    char *out = path_in(tmp, "report/nested");
    ReportOptions o = report_default_options();
    o.title = "Fixture report";
    o.max_examples = 3;
    assert_int_equal(report_write(FIXTURE_RUNS, 3, out, &o, &err), 0);
    char *file_md = read_in(out, "tables.md"), *file_tex = read_in(out, "tables.tex");
    assert_non_null(file_md);
    assert_non_null(file_tex);
    assert_same_text(file_md, want_md, "report_write's tables.md");
    assert_same_text(file_tex, want_tex, "report_write's tables.tex");
    free(file_md);
    free(file_tex);
    free(out);
    free(md);
    free(tex);
    free(want_md);
    free(want_tex);
    for (int i = 0; i < 3; i++) rundir_close(&runs[i]);
}

/* Rows follow the order given; bold follows the values, not the position. */
static void test_row_order(void **state) {
    (void)state;
    RunDir fwd[3], rev[3];
    open_fixtures(fwd);
    for (int i = 0; i < 3; i++) rev[i] = fwd[2 - i];
    char *md, *tex;
    CkError err = {{0}};
    assert_int_equal(report_tables(rev, 3, NULL, &md, &tex, &err), 0);
    assert_true(!strncmp(md, "# cutkit report\n", 16));
    const char *a = strstr(md, "| cut\\_offline | **44.11** |");
    const char *b = strstr(md, "| CUT\\_online");
    const char *c = strstr(md, "| base | 41.30 |");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_true(a < b && b < c);
    assert_null(strstr(md, "Misconception")); /* no fixture run measured it: no column */
    free(md);
    free(tex);
    for (int i = 0; i < 3; i++) rundir_close(&fwd[i]);
}

static void test_missing_files_give_dashes(void **state) {
    (void)state;
    char *empty = make_dir("empty_run");
    RunDir rd;
    CkError err = {{0}};
    assert_int_equal(rundir_open(&rd, empty, &err), 0);
    assert_string_equal(rd.label, "empty_run");
    assert_int_equal(rd.steps.n, 0);
    assert_null(rd.contrast_path);
    char *md, *tex;
    assert_int_equal(report_tables(&rd, 1, "t", &md, &tex, &err), 0);
    /* nothing anywhere: every column stays, all dashes (a present column needs one value) */
    assert_non_null(strstr(md, "| empty\\_run | \xE2\x80\x94 | \xE2\x80\x94 | \xE2\x80\x94 | "
                               "\xE2\x80\x94 | \xE2\x80\x94 | \xE2\x80\x94 | \xE2\x80\x94 | "
                               "\xE2\x80\x94 |\n"));
    assert_non_null(strstr(tex, "    empty\\_run & -- & -- & -- & -- & -- & -- & -- & -- \\\\\n"));
    assert_null(strstr(md, "**")); /* nothing to be best at */
    free(md);
    free(tex);
    /* the whole report too: no plots, no examples, still a page */
    char *out = path_in(tmp, "empty_report");
    const char *dirs[1] = {empty};
    ReportOptions o = report_default_options();
    assert_int_equal(report_write(dirs, 1, out, &o, &err), 0);
    char *html = read_in(out, "index.html");
    assert_non_null(html);
    assert_non_null(strstr(html, "No contrast.csv."));
    assert_null(strstr(html, "<svg"));
    free(html);
    free(out);
    rundir_close(&rd);
    /* a value of the wrong type is a missing value, not an error */
    write_text(empty, "errors.json", "{\"error_rate\": \"n/a\", \"n\": 0}");
    assert_int_equal(rundir_open(&rd, empty, &err), 0);
    int n;
    const MetricColumn *cols = metric_columns(&n);
    for (int c = 0; c < n; c++) assert_true(isnan(metric_value(&cols[c], &rd)));
    rundir_close(&rd);
    free(empty);
}

static void test_malformed_files_are_errors(void **state) {
    (void)state;
    RunDir rd;
    CkError err = {{0}};
    char *missing = path_in(tmp, "no_such_run");
    assert_int_equal(rundir_open(&rd, missing, &err), -1);
    assert_non_null(strstr(err.msg, "no_such_run"));
    rundir_close(&rd);
    free(missing);

    char *bad = make_dir("bad_json");
    char *eval = path_in(bad, "eval");
    assert_int_equal(mkdir(eval, 0777), 0);
    write_text(bad, "eval/winrate.json", "{\n  \"win_rate\": 50,\n  \"standard_error\": oops\n}");
    assert_int_equal(rundir_open(&rd, bad, &err), -1);
    assert_non_null(strstr(err.msg, "eval/winrate.json: line 3"));
    rundir_close(&rd);
    free(eval);
    free(bad);

    /* steps.jsonl: an incomplete last line is a run still writing; a bad middle line is not */
    char *steps = make_dir("steps");
    write_text(steps, "steps.jsonl",
               "{\"step\": 1, \"loss_mle\": 2.0, \"flagged_fraction\": 0.5}\n\n"
               "{\"step\": 2, \"loss_mle\": 1.5, \"flagged_fraction\": 0.25}\n{\"step\": 3, \"lo");
    assert_int_equal(rundir_open(&rd, steps, &err), 0);
    assert_int_equal(rd.steps.n, 2);
    assert_true(rd.steps.step[1] == 2 && rd.steps.loss_mle[1] == 1.5);
    assert_true(isnan(rd.steps.loss_ul[0]));
    assert_true(rundir_tail_mean(rd.steps.flagged_fraction, rd.steps.n, 10) == 0.375);
    rundir_close(&rd);
    write_text(steps, "steps.jsonl", "{\"step\": 1}\n{\"step\": 2,\n{\"step\": 3}\n");
    assert_int_equal(rundir_open(&rd, steps, &err), -1);
    assert_non_null(strstr(err.msg, "steps.jsonl: line 2: not a JSON object"));
    rundir_close(&rd);
    free(steps);

    /* a report over a bad run writes nothing and says which file */
    char *bad_csv = make_dir("bad_csv");
    write_text(bad_csv, "contrast.csv",
               "# c\nexample,position,token_text,log_pa\n0,1,\"ok\",-1\n0,2,\"open,-1\n");
    char *out = path_in(tmp, "bad_report");
    const char *dirs[1] = {bad_csv};
    ReportOptions o = report_default_options();
    assert_int_equal(report_write(dirs, 1, out, &o, &err), -1);
    assert_non_null(strstr(err.msg, "contrast.csv: record 3"));
    assert_int_equal(access(out, F_OK), -1);
    free(out);
    free(bad_csv);
}

/* Hand-derived escapes of the characters that would break a LaTeX table or a Markdown cell. */
static void test_latex_and_markdown_escaping(void **state) {
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    escape_latex(f, "a_b 100% & c#1 $5 {x} ~^\\ <|> \xCE\xBB\xC2\xB1\xCE\xB1 \xE2\x80\x94\nend");
    fclose(f);
    assert_string_equal(buf, "a\\_b 100\\% \\& c\\#1 \\$5 \\{x\\} "
                             "\\textasciitilde{}\\textasciicircum{}\\textbackslash{} "
                             "\\textless{}\\textbar{}\\textgreater{} "
                             "$\\lambda$$\\pm$$\\alpha$ --- end");
    free(buf);
    f = open_memstream(&buf, &len);
    escape_markdown(f, "a|b *c* _d_ `e` <f> [g]\nh");
    fclose(f);
    assert_string_equal(buf, "a\\|b \\*c\\* \\_d\\_ \\`e\\` \\<f\\> \\[g\\] h");
    free(buf);
}

static void test_html_escaping(void **state) {
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    /* '<', entities, quotes; a stray continuation byte, a truncated sequence, an overlong
     * '/', a surrogate and a control character all become U+FFFD; valid UTF-8 stays */
    const char in[] = "<b>&\"'\n\x80|\xE2\x82|\xC0\xAF|\xED\xA0\x80|\x01|\xCE\xBB\xF0\x9F\x98\x80";
    escape_html(f, in, sizeof in - 1);
    fclose(f);
    assert_string_equal(buf, "&lt;b&gt;&amp;&quot;&#39;\n\xEF\xBF\xBD|\xEF\xBF\xBD\xEF\xBF\xBD|"
                             "\xEF\xBF\xBD\xEF\xBF\xBD|\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD|"
                             "\xEF\xBF\xBD|\xCE\xBB\xF0\x9F\x98\x80");
    free(buf);

    /* the page: token texts with '<', quotes, commas and a newline arrive escaped */
    char *out = path_in(tmp, "html_report");
    CkError err = {{0}};
    ReportOptions o = report_default_options();
    o.title = "A <title> & more";
    assert_int_equal(report_write(FIXTURE_RUNS, 3, out, &o, &err), 0);
    char *html = read_in(out, "index.html");
    assert_non_null(html);
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "<b>Paris"));
    assert_non_null(strstr(html, "<title>A &lt;title&gt; &amp; more</title>"));
    assert_non_null(strstr(html, "> &lt;script&gt;alert(1)&lt;/script&gt;</span>"));
    assert_non_null(strstr(html, "> &lt;b&gt;Paris&lt;/b&gt;</span>"));
    assert_non_null(strstr(html, ">&quot;quoted&quot;, with comma</span>"));
    assert_non_null(strstr(html, ">\n</span>"));
    assert_non_null(strstr(html, "> R&amp;D</span>"));
    assert_non_null(strstr(html, "CUT_online \xCE\xBB=1.1 &amp; \xCE\xB1=1 (100% data)"));
    /* the flagged@1.1 column (the run's λ) decides the highlight: ratio 0.125 > log 1.1 */
    assert_non_null(strstr(html, "flagged at \xCE\xBB = 1.1."));
    assert_non_null(strstr(html, "<span class=\"t f\" title=\"log pA \xE2\x88\x92 log pM = "
                                 "0.1250&#10;log pA = -1.0000, log pM = -1.1250&#10;position "
                                 "11, token 107&#10;flagged\">&quot;quoted"));
    /* all four examples (5 allowed), the first open */
    assert_non_null(strstr(html, "<details class=\"example\" open><summary>example 0: 5 tokens, "
                                 "2 flagged</summary>"));
    assert_non_null(strstr(html, "example 3: 1 tokens, 1 flagged"));
    free(html);
    free(out);
}

static void test_contrast_csv(void **state) {
    (void)state;
    ContrastCsv cs;
    CkError err = {{0}};
    assert_int_equal(contrast_csv_read(&cs, RUNS "/cut_online/contrast.csv", 3, 1.1, &err), 0);
    assert_int_equal(cs.n, 3);
    assert_true(cs.flag_lambda == 1.1);
    const ContrastCsvExample *e = &cs.examples[1];
    assert_int_equal(e->example, 1);
    assert_int_equal(e->n, 4);
    assert_string_equal(e->tokens[0].text, " a");
    assert_string_equal(e->tokens[1].text, "\"quoted\", with comma");
    assert_string_equal(e->tokens[2].text, "\n");
    assert_string_equal(e->tokens[3].text, " R&D");
    assert_int_equal(e->tokens[1].position, 11);
    assert_int_equal(e->tokens[1].token_id, 107);
    assert_true(e->tokens[1].log_pa == -1.0 && e->tokens[1].log_pm == -1.125);
    assert_true(e->tokens[1].log_ratio == 0.125);
    assert_int_equal(e->tokens[1].flagged, 1); /* 0.125 > log 1.1 */
    assert_int_equal(cs.examples[2].n, 1);
    contrast_csv_free(&cs);
    /* at λ 1.2 its own column: 0.125 < log 1.2 */
    assert_int_equal(contrast_csv_read(&cs, RUNS "/cut_online/contrast.csv", 2, 1.2, &err), 0);
    assert_true(cs.flag_lambda == 1.2);
    assert_int_equal(cs.examples[1].tokens[1].flagged, 0);
    assert_int_equal(cs.examples[1].tokens[3].flagged, 1);
    contrast_csv_free(&cs);
    /* a λ the file lacks: the first column */
    assert_int_equal(contrast_csv_read(&cs, RUNS "/cut_online/contrast.csv", 2, NAN, &err), 0);
    assert_true(cs.flag_lambda == 1.1);
    contrast_csv_free(&cs);

    /* unquoted spaces are kept, rows are sorted by position, missing log_ratio is derived,
     * examples beyond the first ones are skipped even when interleaved */
    char *d = make_dir("csv");
    write_text(d, "c.csv",
               "example,position,token_text,log_pa,log_pm,flagged@2\n"
               "7,2, world,-1,-3,1\n9,0,x,-1,-1,0\n7,1, hello ,-0.5,-0.25,0\n5,0,y,0,0,0\n");
    char *p = path_in(d, "c.csv");
    assert_int_equal(contrast_csv_read(&cs, p, 2, 1.1, &err), 0);
    assert_int_equal(cs.n, 2);
    assert_int_equal(cs.examples[0].example, 7);
    assert_int_equal(cs.examples[1].example, 9);
    assert_int_equal(cs.examples[0].n, 2);
    assert_string_equal(cs.examples[0].tokens[0].text, " hello ");
    assert_string_equal(cs.examples[0].tokens[1].text, " world");
    assert_true(cs.examples[0].tokens[1].log_ratio == 2.0);
    assert_int_equal(cs.examples[0].tokens[1].flagged, 1);
    assert_int_equal(cs.examples[0].tokens[0].token_id, -1);
    assert_true(cs.flag_lambda == 2.0);
    contrast_csv_free(&cs);
    /* errors name record and field */
    write_text(d, "c.csv", "example,token_text,log_pa\n1,a,-1\n1,b,minus one\n");
    assert_int_equal(contrast_csv_read(&cs, p, 5, 1.1, &err), -1);
    assert_non_null(strstr(err.msg, "c.csv: record 3, field 3: expected a number"));
    write_text(d, "c.csv", "example,token_text\n1,a,extra\n");
    assert_int_equal(contrast_csv_read(&cs, p, 5, 1.1, &err), -1);
    assert_non_null(strstr(err.msg, "record 2: 3 fields, the header has 2"));
    write_text(d, "c.csv", "example,text\n1,a\n");
    assert_int_equal(contrast_csv_read(&cs, p, 5, 1.1, &err), -1);
    assert_non_null(strstr(err.msg, "needs the columns example and token_text"));
    write_text(d, "c.csv", "# only a comment\n");
    assert_int_equal(contrast_csv_read(&cs, p, 5, 1.1, &err), -1);
    assert_non_null(strstr(err.msg, "no header line"));
    free(p);
    free(d);
}

/* Ticks are round numbers covering the data; a NAN splits the line into two subpaths. */
static void test_svgplot(void **state) {
    (void)state;
    const double x[5] = {0, 1, 2, 3, 4}, y[5] = {0.13, 0.5, NAN, 0.7, 0.87};
    SvgSeries s = {.label = "a <run>", .x = x, .y = y, .n = 5};
    SvgPlot p = {"T & t", "step", "loss", 0, 0, 0};
    char *svg;
    CkError err = {{0}};
    assert_int_equal(svgplot_render(&p, &s, 1, &svg, &err), 0);
    /* y: 0.74 / 5 = 0.148 rounds to a step of 0.1, the axis to [0.1, 0.9] */
    const char *ticks[] = {">0.1<", ">0.5<", ">0.9<", ">0<", ">4<"};
    for (size_t i = 0; i < sizeof ticks / sizeof ticks[0]; i++)
        assert_non_null(strstr(svg, ticks[i]));
    assert_null(strstr(svg, ">0.0<"));
    assert_null(strstr(svg, ">1.0<"));
    /* the plot area is x 62..468.6 (560 wide, less margins and the legend), y 30..294:
     * (0, 0.13) -> (62, 294 - 0.03 / 0.8 * 264) = (62, 284.1); (4, 0.87) -> (468.6, 39.9) */
    assert_non_null(strstr(svg, "M62.00 284.10 L"));
    assert_non_null(strstr(svg, " L468.60 39.90\""));
    assert_non_null(strstr(svg, "a &lt;run&gt;"));
    assert_non_null(strstr(svg, ">T &amp; t</text>"));
    const char *d = strstr(svg, " d=\"");
    assert_non_null(d);
    int moves = 0, lines = 0;
    for (const char *c = d + 4; *c != '"'; c++) {
        moves += *c == 'M';
        lines += *c == 'L';
    }
    assert_int_equal(moves, 2);
    assert_int_equal(lines, 2);
    assert_null(strstr(svg, "<circle"));
    free(svg);
    /* with markers: a dot per finite point, and the axes get 5% of air: y [0.093, 0.907] */
    p.markers = 1;
    assert_int_equal(svgplot_render(&p, &s, 1, &svg, &err), 0);
    int circles = 0;
    for (const char *c = svg; (c = strstr(c, "<circle")); c++) circles++;
    assert_int_equal(circles, 4);
    assert_non_null(strstr(svg, ">0.0<"));
    assert_non_null(strstr(svg, ">1.0<"));
    free(svg);
    const double none[1] = {NAN};
    SvgSeries empty = {.label = "e", .x = none, .y = none, .n = 1};
    assert_int_equal(svgplot_render(&p, &empty, 1, &svg, &err), -1);
    assert_null(svg);
}

static int has_file(const char *dir, const char *name) {
    char *p = path_in(dir, name);
    int ok = access(p, R_OK) == 0;
    free(p);
    return ok;
}

/* The plots the fixtures call for exist, and every SVG is XML Python's parser accepts. */
static void test_plots(void **state) {
    (void)state;
    char *out = path_in(tmp, "plot_report");
    CkError err = {{0}};
    ReportOptions o = report_default_options();
    assert_int_equal(report_write(FIXTURE_RUNS, 3, out, &o, &err), 0);
    char *plots = path_in(out, "plots");
    const char *want[] = {"loss_mle.svg",
                          "loss_ul.svg",
                          "flagged_fraction.svg",
                          "detection_grid_f1.svg",
                          "detection_f1_vs_lambda.svg",
                          "arc_c_acc_norm_vs_lambda.svg",
                          "error_rate_vs_lambda.svg",
                          "detection_f1_vs_alpha.svg",
                          "flagged_fraction_vs_alpha.svg"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (!has_file(plots, want[i])) fprintf(stderr, "missing plots/%s\n", want[i]);
        assert_true(has_file(plots, want[i]));
    }
    /* only one run with a λ has TQA MC1 or a win rate: no plot against λ */
    assert_false(has_file(plots, "tqa_mc1_vs_lambda.svg"));
    assert_false(has_file(plots, "win_rate_vs_lambda.svg"));
    /* each plot is inline in the page too */
    char *html = read_in(out, "index.html");
    int inline_svgs = 0;
    for (const char *c = html; (c = strstr(c, "<svg ")); c++) inline_svgs++;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "ls '%s' | wc -l", plots);
    char *n_files = NULL;
    assert_int_equal(test_run(cmd, &n_files, NULL), 0);
    assert_int_equal(inline_svgs, atoi(n_files));
    free(n_files);
    free(html);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import sys, xml.etree.ElementTree as E\n"
             "for f in sys.argv[1:]:\n"
             "    r = E.parse(f).getroot()\n"
             "    assert r.tag == \"{http://www.w3.org/2000/svg}svg\", f\n"
             "print(len(sys.argv) - 1)' '%s'/*.svg",
             plots);
    char *outp = NULL, *errp = NULL;
    int status = test_run(cmd, &outp, &errp);
    if (status != 0) fprintf(stderr, "python3 xml check: %s%s\n", outp, errp);
    assert_int_equal(status, 0);
    free(outp);
    free(errp);
    free(plots);
    free(out);
}

/* The page in a real browser (tests/browser/check_report.py); skipped without Chromium. */
static void test_browser(void **state) {
    (void)state;
    if (access("/usr/bin/chromium", X_OK) != 0 || access("/usr/bin/python3", X_OK) != 0) {
        test_missing_reference("/usr/bin/chromium or /usr/bin/python3 is absent "
                               "(scripts/install-deps.sh installs chromium)");
        skip();
    }
    char *out = path_in(tmp, "browser_report");
    CkError err = {{0}};
    ReportOptions o = report_default_options();
    o.title = "Fixture report";
    assert_int_equal(report_write(FIXTURE_RUNS, 3, out, &o, &err), 0);
    /* the screenshot is kept beside the tests in the build directory; 8000 px of window height
     * reach the examples below the twelve plots */
    char build[1024], cmd[4096];
    snprintf(build, sizeof build, "%s", CUTKIT_BINARY);
    char *slash = strrchr(build, '/');
    if (slash) *slash = '\0';
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 '%s/tests/browser/check_report.py' '%s/index.html' "
             "'%s/tests/artifacts/report.png' /usr/bin/chromium 8000",
             CUTKIT_SOURCE_DIR, out, build);
    char *o_text = NULL, *e_text = NULL;
    int status = test_run(cmd, &o_text, &e_text);
    fprintf(stderr, "%s%s", o_text ? o_text : "", e_text ? e_text : "");
    free(o_text);
    free(e_text);
    free(out);
    if (status == 77) {
        test_missing_reference("check_report.py could not start Chromium");
        skip();
    }
    assert_int_equal(status, 0);
}

/* The command itself. */
static void test_cli(void **state) {
    (void)state;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' help report", CUTKIT_BINARY);
    assert_int_equal(test_run(cmd, NULL, NULL), 0);
    char *out = path_in(tmp, "cli_report");
    snprintf(cmd, sizeof cmd, "'%s' report '%s' '%s' '%s' --title 'Fixture report' --out '%s'",
             CUTKIT_BINARY, FIXTURE_RUNS[0], FIXTURE_RUNS[1], FIXTURE_RUNS[2], out);
    char *e = NULL;
    int status = test_run(cmd, NULL, &e);
    if (status != 0) fprintf(stderr, "%s", e);
    assert_int_equal(status, 0);
    free(e);
    char *md = read_in(out, "tables.md"), *want = read_in(FIXTURES, "tables.md");
    assert_same_text(md, want, "cutkit report's tables.md");
    free(md);
    free(want);
    assert_true(has_file(out, "index.html"));
    /* usage errors exit 2, unusable runs 1 naming the directory */
    snprintf(cmd, sizeof cmd, "'%s' report --out '%s'", CUTKIT_BINARY, out);
    assert_int_equal(test_run(cmd, NULL, NULL), 2);
    snprintf(cmd, sizeof cmd, "'%s' report '%s/nope' --out '%s'", CUTKIT_BINARY, tmp, out);
    assert_int_equal(test_run(cmd, NULL, &e), 1);
    assert_non_null(strstr(e, "nope"));
    free(e);
    free(out);
}

/* ---- seeds: groups, aggregated tables, plots ------------------------------------------- */

static void open_seed_runs(RunDir runs[6]) {
    CkError err = {{0}};
    for (int i = 0; i < 6; i++) {
        int rc = rundir_open(&runs[i], SEED_RUNS[i], &err);
        if (rc != 0) fprintf(stderr, "%s\n", err.msg);
        assert_int_equal(rc, 0);
    }
}

/* The 2 x 3 sweep is two rows of mean ± sd (n=3), equal to the table make_seeds_fixture.py
 * computed on its own; with a baseline, the cells its bootstrap finds significant carry †. */
static void test_seed_groups_table(void **state) {
    (void)state;
    RunDir runs[6];
    open_seed_runs(runs);
    char *md, *tex;
    CkError err = {{0}};
    assert_int_equal(report_tables(runs, 6, "Seed fixture", &md, &tex, &err), 0);
    char *want = read_in(SEEDS, "tables.md");
    assert_non_null(want);
    assert_same_text(md, want, "the seed fixture's tables.md");
    assert_non_null(
        strstr(tex, "    lambda=1.1 (n=3) & \\textbf{72.50}{\\scriptsize$\\pm$6.61} & "));
    free(md);
    free(tex);
    free(want);
    /* the whole report, marked against lambda=2 (by label; a run directory works too) */
    char *out = path_in(tmp, "seed_report");
    ReportOptions o = report_default_options();
    o.title = "Seed fixture";
    o.baseline = "lambda=2";
    assert_int_equal(report_write(SEED_RUNS, 6, out, &o, &err), 0);
    char *got = read_in(out, "tables.md");
    want = read_in(SEEDS, "tables_baseline.md");
    assert_same_text(got, want, "the seed fixture's tables.md with --baseline lambda=2");
    free(got);
    free(want);
    tex = read_in(out, "tables.tex");
    assert_non_null(strstr(tex, "\\textbf{72.50}$^\\dagger${\\scriptsize$\\pm$6.61}"));
    assert_non_null(strstr(tex, "$^\\dagger$ differs from the row \"lambda=2\""));
    free(tex);
    char *html = read_in(out, "index.html");
    assert_non_null(strstr(html, "<td class=\"n\"><strong>72.50</strong><sup class=\"sig\">"
                                 "\xE2\x80\xA0</sup> \xC2\xB1 6.61 <small>(n=3)</small></td>"));
    assert_non_null(strstr(html, "<li>lambda=1.1: lambda=1.1,seed=1 (seed 1), lambda=1.1,seed=2 "
                                 "(seed 2), lambda=1.1,seed=3 (seed 3)</li>"));
    free(html);
    o.baseline = SEED_RUNS[4];
    assert_int_equal(report_write(SEED_RUNS, 6, out, &o, &err), 0);
    o.baseline = "lambda=3";
    assert_int_equal(report_write(SEED_RUNS, 6, out, &o, &err), -1);
    assert_non_null(strstr(err.msg, "--baseline lambda=3: no row"));
    /* --per-run: six rows as before, no n */
    o.baseline = NULL;
    o.per_run = 1;
    assert_int_equal(report_write(SEED_RUNS, 6, out, &o, &err), 0);
    got = read_in(out, "tables.md");
    assert_null(strstr(got, "(n="));
    assert_non_null(strstr(got, "| lambda=2,seed=3 | "));
    free(got);
    free(out);
    for (int i = 0; i < 6; i++) rundir_close(&runs[i]);
}

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *c = s; (c = strstr(c, what)); c++) n++;
    return n;
}

/* A group is drawn as its mean with a band (curves) or error bars (vs λ), its runs faint. */
static void test_seed_plots(void **state) {
    (void)state;
    char *out = path_in(tmp, "seed_plots");
    CkError err = {{0}};
    ReportOptions o = report_default_options();
    assert_int_equal(report_write(SEED_RUNS, 6, out, &o, &err), 0);
    char *plots = path_in(out, "plots");
    char *loss = read_in(plots, "loss_mle.svg");
    assert_non_null(loss);
    assert_int_equal(count(loss, "fill-opacity=\"0.15\""), 2);     /* a band per setting */
    assert_int_equal(count(loss, "<g class=\"runs\" opacity"), 6); /* each run, faint */
    assert_int_equal(count(loss, "stroke-width=\"2.5\""), 2);      /* the legend: the groups */
    assert_non_null(strstr(loss, "<title>lambda=1.1</title>"));
    char *arc = read_in(plots, "arc_c_acc_norm_vs_lambda.svg");
    assert_non_null(arc);
    assert_int_equal(count(arc, "stroke-width=\"1.2\""), 2); /* an error bar per setting */
    assert_int_equal(count(arc, "r=\"2.4\""), 6);            /* the six runs */
    assert_int_equal(count(arc, "r=\"3.2\""), 2);            /* the two means */
    char *grid = read_in(plots, "detection_grid_f1.svg");
    assert_non_null(grid);
    assert_int_equal(count(grid, "<g class=\"runs\" opacity"), 6);
    free(loss);
    free(arc);
    free(grid);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import sys, xml.etree.ElementTree as E\n"
             "[E.parse(f) for f in sys.argv[1:]]' '%s'/*.svg",
             plots);
    assert_int_equal(test_run(cmd, NULL, NULL), 0);
    free(plots);
    free(out);
}

/* A run directory in tmp with config.json text and optionally items.jsonl text. */
static char *make_run(const char *name, const char *config, const char *items) {
    char *d = make_dir(name);
    if (config) write_text(d, "config.json", config);
    if (items) {
        char *eval = path_in(d, "eval");
        char *mc = path_in(d, "eval/mc");
        assert_int_equal(mkdir(eval, 0777), 0);
        assert_int_equal(mkdir(mc, 0777), 0);
        write_text(d, "eval/mc/items.jsonl", items);
        free(eval);
        free(mc);
    }
    return d;
}

/* The grouping rule of groups.h: bookkeeping keys and the run's own directory do not split a
 * group; any setting does, and so does a repeated seed. */
static void test_grouping_rule(void **state) {
    (void)state;
    char cfg[6][512];
    const char *names[6] = {"g_s1", "g_s2", "g_s3", "g_lr", "g_s1_again", "g_none"};
    char *dirs[6];
    for (int i = 0; i < 6; i++) {
        char *d = path_in(tmp, names[i]);
        snprintf(cfg[i], sizeof cfg[i],
                 "{\"label\": \"%s\", \"lr\": %s, \"seed\": %d, \"command\": \"cutkit train "
                 "--seed %d\", \"final_loss\": %d.5, \"steps_done\": %d, \"resume\": \"%s/ckpt\", "
                 "\"data\": {\"path\": \"world/train.jsonl\", \"n\": 3}}",
                 names[i], i == 3 ? "0.001" : "0.0005", i == 4 ? 1 : i + 1, i + 1, i, 10 + i, d);
        free(d);
        dirs[i] = make_run(names[i], i == 5 ? NULL : cfg[i], NULL);
    }
    RunDir runs[6];
    CkError err = {{0}};
    for (int i = 0; i < 6; i++) assert_int_equal(rundir_open(&runs[i], dirs[i], &err), 0);
    assert_true(run_same_setting(&runs[0], &runs[1]));
    assert_false(run_same_setting(&runs[0], &runs[3])); /* lr differs */
    assert_false(run_same_setting(&runs[0], &runs[4])); /* the same seed */
    assert_false(run_same_setting(&runs[0], &runs[5])); /* no config.json */
    assert_true(run_config_is_bookkeeping("final_loss"));
    assert_false(run_config_is_bookkeeping("cutkit_version"));
    RunGroups g;
    assert_int_equal(run_groups_build(&g, runs, 6, 0, &err), 0);
    assert_int_equal(g.n, 4);
    assert_int_equal(g.groups[0].n, 3); /* g_s1, g_s2, g_s3 */
    assert_int_equal(g.groups[0].members[2], 2);
    assert_string_equal(g.groups[0].label, "g"); /* "s<seed>" removed with its separator */
    assert_int_equal(g.groups[1].members[0], 3);
    assert_int_equal(g.groups[2].members[0], 4);
    assert_string_equal(g.groups[2].label, "g_s1_again");
    assert_int_equal(g.groups[3].members[0], 5);
    assert_int_equal(run_groups_find(&g, runs, "g"), 0);
    assert_int_equal(run_groups_find(&g, runs, dirs[5]), 3);
    assert_int_equal(run_groups_find(&g, runs, "nope"), -1);
    run_groups_free(&g);
    assert_int_equal(run_groups_build(&g, runs, 6, 1, &err), 0);
    assert_int_equal(g.n, 6);
    run_groups_free(&g);
    for (int i = 0; i < 6; i++) {
        rundir_close(&runs[i]);
        free(dirs[i]);
    }
}

/* Labels: the shared one; the seed mention removed; the common prefix; the first. */
static void test_group_labels(void **state) {
    (void)state;
    static const struct {
        const char *a, *b, *want;
    } CASES[] = {
        {"cut", "cut", "cut"},
        {"lambda=1.1,seed=1", "lambda=1.1,seed=2", "lambda=1.1"},
        {"seed1-cut", "seed2-cut", "cut"},
        {"cut_S1", "cut_s2", "cut"},
        {"run1", "run2", "run"},
        {"a1.1", "b1.1", "a1.1"},
    };
    for (size_t k = 0; k < sizeof CASES / sizeof CASES[0]; k++) {
        RunDir runs[2];
        memset(runs, 0, sizeof runs);
        const char *labels[2] = {CASES[k].a, CASES[k].b};
        for (int i = 0; i < 2; i++) {
            runs[i].label = (char *)labels[i];
            runs[i].json[RUN_CONFIG] = cJSON_CreateObject();
            cJSON_AddNumberToObject(runs[i].json[RUN_CONFIG], "seed", i + 1);
        }
        int members[2] = {0, 1};
        char *label = run_group_label(runs, members, 2);
        assert_string_equal(label, CASES[k].want);
        free(label);
        for (int i = 0; i < 2; i++) cJSON_Delete(runs[i].json[RUN_CONFIG]);
    }
}

/* The column of the table with that slug. */
static const MetricColumn *column_by_slug(const char *slug) {
    int n;
    const MetricColumn *cols = metric_all_columns(&n);
    for (int c = 0; c < n; c++)
        if (!strcmp(cols[c].slug, slug)) return &cols[c];
    return NULL;
}

/* items.jsonl, annotations.json and fact_items.jsonl as items.h reads them. */
static void test_items(void **state) {
    (void)state;
    char *d = make_run("items", NULL,
                       "{\"task\": \"arc_challenge\", \"doc_index\": 3, \"acc_norm\": 1}\n"
                       "{\"task\": \"arc_easy\", \"doc_index\": 3, \"acc_norm\": 0}\n\n"
                       "{\"task\": \"arc_challenge\", \"doc_index\": 12, \"acc_norm\": 0}\n"
                       "{\"task\": \"arc_challenge\", \"doc_ind");
    write_text(d, "eval/annotations.json",
               "[{\"instruction\": \"b\", \"preference\": 2}, {\"instruction\": \"a\", "
               "\"preference\": 0}, {\"instruction\": \"b\", \"preference\": null}, "
               "{\"instruction\": \"b\", \"preference\": 1.25}, {\"instruction\": \"c\", "
               "\"preference\": 3}]");
    write_text(d, "eval/fact_items.jsonl",
               "{\"instruction\": \"a\", \"error\": 1, \"misconception\": null}\n"
               "{\"instruction\": \"b\", \"error\": 0, \"misconception\": 1}\n");
    RunDir rd;
    RunItems it;
    CkError err = {{0}};
    assert_int_equal(rundir_open(&rd, d, &err), 0);
    assert_int_equal(run_items_load(&it, &rd, &err), 0);
    int n_cols;
    const MetricColumn *cols = metric_columns(&n_cols);
    const ItemScores *arc = run_items_get(&it, &cols[0]), *mc1 = run_items_get(&it, &cols[1]);
    assert_int_equal(arc->n, 2); /* arc_easy and the torn last line left out */
    assert_string_equal(arc->keys[0], "arc_challenge/0000000003");
    assert_string_equal(arc->keys[1], "arc_challenge/0000000012");
    assert_int_equal(item_scores_find(arc, "arc_challenge/0000000012"), 1);
    assert_false(mc1->present);
    const ItemScores *win = run_items_get(&it, &cols[3]);
    assert_int_equal(win->n, 3); /* null and 3 are missing */
    assert_string_equal(win->keys[0], "a");
    assert_close(win->values[0], 0.5, 0); /* legacy 0: a draw */
    assert_string_equal(win->keys[1], "b");
    assert_string_equal(win->keys[2], "b\x1f"
                                      "3"); /* the third "b" */
    assert_close(win->values[2], 0.25, 0);
    const ItemScores *er = run_items_get(&it, column_by_slug("error_rate"));
    const ItemScores *mis = run_items_get(&it, column_by_slug("misconception_rate"));
    assert_int_equal(er->n, 2);
    assert_string_equal(er->keys[0], "a");
    assert_close(er->values[0], 1, 0);
    assert_close(er->values[1], 0, 0);
    assert_int_equal(mis->n, 1); /* null: the item cannot show the misconception */
    assert_string_equal(mis->keys[0], "b");
    run_items_free(&it);
    rundir_close(&rd);
    write_text(d, "eval/mc/items.jsonl",
               "{\"task\": \"arc_challenge\", \"doc_index\": 3, \"acc_norm\": 1}\n"
               "{\"task\": \"arc_challenge\", \"doc_index\": 3, \"acc_norm\": 0}\n");
    assert_int_equal(rundir_open(&rd, d, &err), 0);
    assert_int_equal(run_items_load(&it, &rd, &err), -1);
    assert_non_null(strstr(err.msg, "items.jsonl: lines 1 and 2 are the same item"));
    write_text(d, "eval/mc/items.jsonl", "{\"task\": \"arc_challenge\", \"doc_index\": 3}\n");
    assert_int_equal(run_items_load(&it, &rd, &err), -1);
    assert_non_null(strstr(err.msg, "items.jsonl: line 1: no number at \"acc_norm\""));
    write_text(d, "eval/mc/items.jsonl", "");
    write_text(d, "eval/annotations.json", "[{\"instruction\": \"a\", \"preference\": \"2\"}]");
    assert_int_equal(run_items_load(&it, &rd, &err), -1);
    assert_non_null(strstr(err.msg, "annotations.json: record 1: \"preference\" is neither"));
    write_text(d, "eval/annotations.json", "[]");
    write_text(d, "eval/fact_items.jsonl", "{\"instruction\": \"a\", \"error\": 2}\n");
    assert_int_equal(run_items_load(&it, &rd, &err), -1);
    assert_non_null(strstr(err.msg, "fact_items.jsonl: line 1: \"error\" is not 0, 1 or null"));
    rundir_close(&rd);
    free(d);
}

static void assert_compare_json(const char *dir, const cJSON *want) {
    char *text = read_in(dir, "compare.json");
    assert_non_null(text);
    cJSON *got = cJSON_Parse(text);
    assert_non_null(got);
    const cJSON *gm = cJSON_GetObjectItem(got, "metrics"),
                *wm = cJSON_GetObjectItem(want, "metrics");
    assert_int_equal(cJSON_GetArraySize(gm), cJSON_GetArraySize(wm));
    static const char *FIELDS[] = {"items_a", "items_b", "items_shared", "mean_a",     "mean_b",
                                   "diff",    "lo",      "hi",           "p_bootstrap"};
    for (int i = 0; i < cJSON_GetArraySize(wm); i++) {
        const cJSON *g = cJSON_GetArrayItem(gm, i), *w = cJSON_GetArrayItem(wm, i);
        assert_string_equal(cJSON_GetObjectItem(g, "metric")->valuestring,
                            cJSON_GetObjectItem(w, "metric")->valuestring);
        for (size_t f = 0; f < sizeof FIELDS / sizeof FIELDS[0]; f++)
            assert_close(cJSON_GetObjectItem(g, FIELDS[f])->valuedouble,
                         cJSON_GetObjectItem(w, FIELDS[f])->valuedouble, 1e-9);
        const cJSON *gc = cJSON_GetObjectItem(g, "mcnemar"),
                    *wc = cJSON_GetObjectItem(w, "mcnemar");
        assert_int_equal(cJSON_IsNull(gc), cJSON_IsNull(wc));
        if (cJSON_IsNull(wc)) continue;
        assert_int_equal(cJSON_GetObjectItem(gc, "a_only")->valueint,
                         cJSON_GetObjectItem(wc, "a_only")->valueint);
        assert_int_equal(cJSON_GetObjectItem(gc, "b_only")->valueint,
                         cJSON_GetObjectItem(wc, "b_only")->valueint);
        assert_close(cJSON_GetObjectItem(gc, "p_value")->valuedouble,
                     cJSON_GetObjectItem(wc, "p_value")->valuedouble, 1e-12);
    }
    cJSON_Delete(got);
    free(text);
}

/* --compare: single runs (McNemar too), runs with partly different items, and two seed groups,
 * against make_seeds_fixture.py's own bootstrap and McNemar (make_stats_fixture.py's code). */
static void test_compare_against_python(void **state) {
    (void)state;
    char *text = read_in(SEEDS, "compare_expected.json");
    assert_non_null(text);
    cJSON *expect = cJSON_Parse(text);
    assert_non_null(expect);
    const char *cases[3] = {"seed1", "seed3", "groups"};
    for (int k = 0; k < 3; k++) {
        const cJSON *c = cJSON_GetObjectItem(expect, cases[k]);
        const char *sides[2][3];
        int n[2];
        for (int s = 0; s < 2; s++) {
            const cJSON *names = cJSON_GetObjectItem(c, s ? "b" : "a");
            n[s] = cJSON_GetArraySize(names);
            for (int i = 0; i < n[s]; i++) {
                char *p = path_in(SEEDS "/runs", cJSON_GetArrayItem(names, i)->valuestring);
                sides[s][i] = p;
            }
        }
        CompareOptions o;
        compare_options_init(&o);
        o.resamples = 2000;
        o.seed = 7;
        char *out = path_in(tmp, cases[k]), *md = NULL;
        CkError err = {{0}};
        int rc = report_compare(sides[0], n[0], sides[1], n[1], out, &o, &md, &err);
        if (rc != 0) fprintf(stderr, "%s\n", err.msg);
        assert_int_equal(rc, 0);
        assert_compare_json(out, c);
        char *file_md = read_in(out, "compare.md");
        assert_same_text(md, file_md, "compare.md");
        assert_non_null(strstr(md, "Paired bootstrap: 2000 resamples, seed 7, 95% percentile"));
        /* the fixture runs have no eval/fact_items.jsonl (Markdown escapes its "_") */
        assert_non_null(strstr(md, "- Error rate: not compared: neither A nor B has a per-item "
                                   "file (eval/fact\\_items.jsonl)"));
        /* lambda=2,seed=1 has a failed judgment; lambda=2,seed=3 only 30 ARC questions */
        if (k != 1)
            assert_non_null(strstr(md, "- Win rate \xC2\xB1 SE: A has 25 items, B has 24; "
                                       "compared on the 24 both have."));
        if (k > 0)
            assert_non_null(strstr(md, "- ARC-C acc\\_norm: A has 40 items, B has 30; compared on "
                                       "the 30 both have."));
        free(file_md);
        free(md);
        free(out);
        for (int s = 0; s < 2; s++)
            for (int i = 0; i < n[s]; i++) free((char *)sides[s][i]);
    }
    cJSON_Delete(expect);
    free(text);
}

/* Runs on disjoint items are refused, naming the metric and the counts; so are runs with no
 * per-item file in common; nothing is written. The command exits 1. */
static void test_compare_refusals(void **state) {
    (void)state;
    char *a = make_run("cmp_a", NULL,
                       "{\"task\": \"arc_challenge\", \"doc_index\": 0, \"acc_norm\": 1}\n"
                       "{\"task\": \"arc_challenge\", \"doc_index\": 1, \"acc_norm\": 0}\n");
    char *b = make_run("cmp_b", NULL,
                       "{\"task\": \"arc_challenge\", \"doc_index\": 5, \"acc_norm\": 1}\n");
    char *none = make_run("cmp_none", "{\"seed\": 1}", NULL);
    char *out = path_in(tmp, "cmp_out"), *md = NULL;
    CompareOptions o;
    compare_options_init(&o);
    CkError err = {{0}};
    const char *sa[1] = {a}, *sb[1] = {b}, *sn[1] = {none};
    assert_int_equal(report_compare(sa, 1, sb, 1, out, &o, &md, &err), -1);
    assert_null(md);
    assert_non_null(strstr(err.msg, "ARC-C acc_norm: A and B share none of their items (A has 2, "
                                    "B has 1"));
    assert_int_equal(access(out, F_OK), -1);
    assert_int_equal(report_compare(sa, 1, sn, 1, out, &o, &md, &err), -1);
    assert_non_null(strstr(err.msg, "nothing to compare"));
    char cmd[4096], *e = NULL;
    snprintf(cmd, sizeof cmd, "'%s' report --compare '%s' '%s' --out '%s'", CUTKIT_BINARY, a, b,
             out);
    assert_int_equal(test_run(cmd, NULL, &e), 1);
    assert_non_null(strstr(e, "cutkit report: ARC-C acc_norm: A and B share none"));
    free(e);
    assert_int_equal(access(out, F_OK), -1);
    /* one shared item is enough: compared on it */
    write_text(b, "eval/mc/items.jsonl",
               "{\"task\": \"arc_challenge\", \"doc_index\": 1, \"acc_norm\": 1}\n");
    assert_int_equal(report_compare(sa, 1, sb, 1, out, &o, &md, &err), 0);
    assert_non_null(strstr(md, "| ARC-C acc\\_norm | 1 | 0.00 | 100.00 | -100.00 |"));
    assert_non_null(strstr(md, "A has 2 items, B has 1; compared on the 1 both have."));
    free(md);
    free(a);
    free(b);
    free(none);
    free(out);
}

/* The command: --compare with globs and lists, its usage errors. */
static void test_compare_cli(void **state) {
    (void)state;
    char cmd[4096], *o = NULL, *e = NULL;
    char *out = path_in(tmp, "cmp_cli");
    snprintf(cmd, sizeof cmd,
             "'%s' report --compare '%s/runs/lambda=1.1,seed=*' '%s/runs/lambda=2,seed=1' "
             "--resamples 2000 --seed 7 --out '%s'",
             CUTKIT_BINARY, SEEDS, SEEDS, out);
    int status = test_run(cmd, &o, &e);
    if (status != 0) fprintf(stderr, "%s", e);
    assert_int_equal(status, 0);
    assert_non_null(strstr(o, "- A: lambda=1.1 (3 runs: "));
    assert_non_null(strstr(o, "- B: lambda=2,seed=1 (1 run: "));
    char *md = read_in(out, "compare.md");
    assert_same_text(o, md, "the printed comparison");
    free(md);
    free(o);
    free(e);
    snprintf(cmd, sizeof cmd, "'%s' report --compare '%s/runs/lambda=1.1,seed=1' --out '%s'",
             CUTKIT_BINARY, SEEDS, out);
    assert_int_equal(test_run(cmd, NULL, &e), 2);
    assert_non_null(strstr(e, "--compare takes two sides A B (got 1 arguments)"));
    free(e);
    snprintf(cmd, sizeof cmd,
             "'%s' report --compare '%s/nope*' '%s/runs/lambda=2,seed=1' --out '%s'", CUTKIT_BINARY,
             SEEDS, SEEDS, out);
    assert_int_equal(test_run(cmd, NULL, &e), 1);
    assert_non_null(strstr(e, "nope*: no run directory matches"));
    free(e);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_match_expected),
        cmocka_unit_test(test_row_order),
        cmocka_unit_test(test_missing_files_give_dashes),
        cmocka_unit_test(test_malformed_files_are_errors),
        cmocka_unit_test(test_latex_and_markdown_escaping),
        cmocka_unit_test(test_html_escaping),
        cmocka_unit_test(test_contrast_csv),
        cmocka_unit_test(test_svgplot),
        cmocka_unit_test(test_plots),
        cmocka_unit_test(test_browser),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_seed_groups_table),
        cmocka_unit_test(test_seed_plots),
        cmocka_unit_test(test_grouping_rule),
        cmocka_unit_test(test_group_labels),
        cmocka_unit_test(test_items),
        cmocka_unit_test(test_compare_against_python),
        cmocka_unit_test(test_compare_refusals),
        cmocka_unit_test(test_compare_cli),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
