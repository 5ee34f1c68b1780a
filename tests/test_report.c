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
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/test_util.h"

#include "reports/contrast_csv.h"
#include "reports/escape.h"
#include "reports/metrics.h"
#include "reports/report.h"
#include "reports/rundir.h"
#include "reports/svgplot.h"

#define FIXTURES CUTKIT_SOURCE_DIR "/tests/fixtures/report"
#define RUNS     FIXTURES "/runs"

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
    ReportOptions o = {"Fixture report", 3};
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
    ReportOptions o = {"A <title> & more", 5};
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
    SvgSeries s = {"a <run>", x, y, 5};
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
    SvgSeries empty = {"e", none, none, 1};
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
    ReportOptions o = {"Fixture report", 5};
    assert_int_equal(report_write(FIXTURE_RUNS, 3, out, &o, &err), 0);
    /* the screenshot is kept beside the tests in the build directory */
    char build[1024], cmd[4096];
    snprintf(build, sizeof build, "%s", CUTKIT_BINARY);
    char *slash = strrchr(build, '/');
    if (slash) *slash = '\0';
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 '%s/tests/browser/check_report.py' '%s/index.html' "
             "'%s/tests/artifacts/report.png'",
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
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
