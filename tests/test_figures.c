/* test_figures.c — the gnuplot figure writer (analysis/figures.h): data files and scripts
 * for awkward token texts, PNG and SVG images when gnuplot is installed (PNG signature; the
 * SVG parsed as XML by Python's parser when there is one, so escaping in labels is checked
 * by a parser we did not write), the fallback without gnuplot, and refused inputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/test_util.h"

#include "analysis/figures.h"

static char *dir;

static int setup(void **state) {
    (void)state;
    dir = test_temp_dir();
    return dir ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    int rc = test_remove_dir(dir);
    free(dir);
    return rc;
}

/* Tokens of two examples (records 7 and 3, in that order) with texts that could break a
 * data line, a script or an SVG: quotes, a backslash, a newline, markup characters,
 * enhanced-text markup, a '#', a lone UTF-8 lead byte and a whole 2-byte character. */
static const char *TEXTS[] = {" \"q\"",       "a\\b", "\n",       "<&>", "x^2_{i}@",
                              "# no comment", "\xc3", "\xc3\xa9", "",    " end"};
#define N_TOKENS 10

static void make_tokens(FigureToken *t) {
    for (int i = 0; i < N_TOKENS; i++) {
        const int ex = i < 6 ? 7 : 3;
        t[i] = (FigureToken){ex, ex == 7 ? i : i - 6, TEXTS[i], (i % 3 - 1) * 2.5 + 0.1 * i,
                             i % 3 == 2};
    }
}

static char *figure_dir(const char *name) {
    char *d = malloc(1200);
    snprintf(d, 1200, "%s/%s", dir, name);
    assert_int_equal(mkdir(d, 0777), 0);
    return d;
}

static char *read_in(const char *d, const char *name) {
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", d, name);
    return test_read_file(path, NULL);
}

static int exists_in(const char *d, const char *name) {
    char path[1400];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", d, name);
    return stat(path, &st) == 0 && st.st_size > 0;
}

static FigureLambdaPoint POINTS[4] = {{1.1, 0.4, 0.3, 0.8, 1},
                                      {2.0, 0.2, 0.5, 0.5, 1},
                                      {10.0, 0.05, 0.9, 0.1, 0},
                                      {1000.0, 0.0, 0.0, 0.0, 0}};

/* The data files and scripts: one line per token, labels escaped to stay one field. */
static void test_data_and_scripts(void **state) {
    (void)state;
    char *d = figure_dir("data");
    FigureTarget t;
    memset(&t, 0, sizeof t);
    t.dir = d;
    t.format = "png";
    FigureToken tok[N_TOKENS];
    make_tokens(tok);
    CkError err = {{0}};
    assert_int_equal(figures_heatmap(&t, tok, N_TOKENS, 1.1, &err), 0);
    assert_int_equal(figures_strip(&t, tok, N_TOKENS, 7, 1.1, &err), 0);
    assert_int_equal(figures_lambda(&t, POINTS, 4, &err), 0);

    /* heatmap.dat: rows in order of first appearance (record 7 -> row 0, record 3 -> row 1) */
    char *heat = read_in(d, "heatmap.dat");
    assert_non_null(heat);
    assert_non_null(strstr(heat, "\n0 0 7 -2.5 0\n"));
    assert_non_null(strstr(heat, "\n1 0 3 "));
    free(heat);
    char *gp = read_in(d, "heatmap.gp");
    assert_non_null(strstr(gp, "set ytics ('7' 0, '3' 1)"));
    assert_non_null(strstr(gp, "noenhanced"));
    assert_non_null(strstr(gp, "set output 'heatmap.png'"));
    free(gp);

    /* strip.dat: example 7's six tokens, one line each, every label one quoted field */
    char *strip = read_in(d, "strip.dat");
    assert_non_null(strip);
    const char *want[] = {"0 \" 'q'\" ", "1 \"a/b\" ",      "2 \"^J\" ",
                          "3 \"<&>\" ",  "4 \"x^2_{i}@\" ", "5 \"# no comment\" "};
    int lines = 0;
    for (char *p = strip; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, 1 + 6);
    for (int i = 0; i < 6; i++) assert_non_null(strstr(strip, want[i]));
    free(strip);
    gp = read_in(d, "strip.gp");
    assert_non_null(strstr(gp, "example 7"));
    free(gp);

    /* record 3's texts: the lone lead byte becomes '?', the whole character stays */
    assert_int_equal(figures_strip(&t, tok, N_TOKENS, 3, 2.0, &err), 0);
    strip = read_in(d, "strip.dat");
    assert_non_null(strstr(strip, "0 \"?\" "));
    assert_non_null(strstr(strip, "1 \"\xc3\xa9\" "));
    assert_non_null(strstr(strip, "2 \"\" "));
    free(strip);

    /* lambda.dat holds every point; pr.gp exists because every point has P and R */
    char *lam = read_in(d, "lambda.dat");
    assert_non_null(strstr(lam, "\n1.1 0.4 0.3 0.8 1\n"));
    assert_non_null(strstr(lam, "\n1000 0 0 0 0\n"));
    free(lam);
    assert_true(exists_in(d, "lambda.gp"));
    assert_true(exists_in(d, "pr.gp"));
    free(d);
}

/* Without gnuplot (PATH of an empty folder) the data and scripts are still written, no image,
 * and the note names the package to install. */
static void test_without_gnuplot(void **state) {
    (void)state;
    char *d = figure_dir("nognuplot");
    char *empty = figure_dir("empty-path");
    char *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    setenv("PATH", empty, 1);
    FigureTarget t;
    memset(&t, 0, sizeof t);
    t.dir = d;
    t.format = "png";
    FigureToken tok[N_TOKENS];
    make_tokens(tok);
    CkError err = {{0}};
    assert_int_equal(figures_have_gnuplot(&t), 0);
    assert_int_equal(figures_heatmap(&t, tok, N_TOKENS, 1.1, &err), 0);
    assert_int_equal(figures_strip(&t, tok, N_TOKENS, 7, 1.1, &err), 0);
    /* precision unknown (negative): no PR figure */
    FigureLambdaPoint unknown[2] = {{1.1, 0.4, -1, -1, 1}, {2.0, 0.2, -1, -1, 1}};
    assert_int_equal(figures_lambda(&t, unknown, 2, &err), 0);
    if (old) setenv("PATH", old, 1);
    free(old);
    assert_int_equal(t.gnuplot_ran, 0);
    assert_non_null(strstr(t.note, "apt-get install gnuplot-nox"));
    assert_non_null(strstr(t.note, d));
    assert_true(exists_in(d, "heatmap.gp") && exists_in(d, "heatmap.dat"));
    assert_true(exists_in(d, "strip.gp") && exists_in(d, "strip.dat"));
    assert_true(exists_in(d, "lambda.gp") && exists_in(d, "lambda.dat"));
    assert_false(exists_in(d, "pr.gp"));
    assert_false(exists_in(d, "heatmap.png"));
    free(d);
    free(empty);
}

static int have_gnuplot(void) {
    FigureTarget t;
    memset(&t, 0, sizeof t);
    t.dir = dir;
    return figures_have_gnuplot(&t);
}

/* PNG images: gnuplot ran, and every image starts with the PNG signature. */
static void test_png_images(void **state) {
    (void)state;
    if (!have_gnuplot()) {
        test_missing_reference("gnuplot is not installed (scripts/install-deps.sh installs it)");
        skip();
    }
    char *d = figure_dir("png");
    FigureTarget t;
    memset(&t, 0, sizeof t);
    t.dir = d;
    t.format = "png";
    FigureToken tok[N_TOKENS];
    make_tokens(tok);
    CkError err = {{0}};
    assert_int_equal(figures_heatmap(&t, tok, N_TOKENS, 1.1, &err), 0);
    assert_int_equal(figures_strip(&t, tok, N_TOKENS, 7, 1.1, &err), 0);
    assert_int_equal(figures_lambda(&t, POINTS, 4, &err), 0);
    assert_int_equal(t.gnuplot_ran, 1);
    assert_string_equal(t.note, "");
    const char *images[] = {"heatmap.png", "strip.png", "lambda.png", "pr.png"};
    for (int i = 0; i < 4; i++) {
        char path[1400];
        size_t size;
        snprintf(path, sizeof path, "%s/%s", d, images[i]);
        unsigned char *png = (unsigned char *)test_read_file(path, &size);
        assert_non_null(png);
        assert_true(size > 1000);
        assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
        free(png);
    }
    free(d);
}

/* SVG images: the root element is svg (parsed by Python's XML parser when available, which
 * also proves the labels "<&>" and the UTF-8 were escaped and kept valid). */
static void test_svg_images(void **state) {
    (void)state;
    if (!have_gnuplot()) {
        test_missing_reference("gnuplot is not installed (scripts/install-deps.sh installs it)");
        skip();
    }
    char *d = figure_dir("svg");
    FigureTarget t;
    memset(&t, 0, sizeof t);
    t.dir = d;
    t.format = "svg";
    FigureToken tok[N_TOKENS];
    make_tokens(tok);
    CkError err = {{0}};
    assert_int_equal(figures_heatmap(&t, tok, N_TOKENS, 1.1, &err), 0);
    assert_int_equal(figures_strip(&t, tok, N_TOKENS, 7, 1.1, &err), 0);
    assert_int_equal(figures_strip(&t, tok, N_TOKENS, 3, 1.1, &err), 0); /* overwrites */
    assert_int_equal(figures_lambda(&t, POINTS, 4, &err), 0);
    const char *images[] = {"heatmap.svg", "strip.svg", "lambda.svg", "pr.svg"};
    struct stat st;
    const int python = stat("/usr/bin/python3", &st) == 0;
    for (int i = 0; i < 4; i++) {
        char path[1400], cmd[3000];
        snprintf(path, sizeof path, "%s/%s", d, images[i]);
        char *svg = test_read_file(path, NULL);
        assert_non_null(svg);
        assert_non_null(strstr(svg, "<svg"));
        free(svg);
        if (!python) continue;
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c 'import sys, xml.etree.ElementTree as E; "
                 "print(E.parse(sys.argv[1]).getroot().tag)' '%s'",
                 path);
        char *out = NULL;
        assert_int_equal(test_run(cmd, &out, NULL), 0);
        assert_string_equal(out, "{http://www.w3.org/2000/svg}svg\n");
        free(out);
    }
    /* the strip of record 3 carries the 2-byte character as text */
    char *svg = read_in(d, "strip.svg");
    assert_non_null(strstr(svg, "\xc3\xa9"));
    free(svg);
    free(d);
}

static void test_refused(void **state) {
    (void)state;
    char *d = figure_dir("refused");
    FigureTarget t;
    memset(&t, 0, sizeof t);
    t.dir = d;
    t.format = "gif";
    FigureToken tok[N_TOKENS];
    make_tokens(tok);
    CkError err = {{0}};
    assert_int_equal(figures_heatmap(&t, tok, N_TOKENS, 1.1, &err), -1);
    assert_non_null(strstr(err.msg, "png or svg"));
    t.format = "png";
    assert_int_equal(figures_strip(&t, tok, N_TOKENS, 99, 1.1, &err), -1);
    assert_non_null(strstr(err.msg, "example 99"));
    assert_int_equal(figures_heatmap(&t, tok, 0, 1.1, &err), -1);
    t.dir = "/nonexistent-cutkit-dir";
    assert_int_equal(figures_lambda(&t, POINTS, 4, &err), -1);
    assert_non_null(strstr(err.msg, "cannot write /nonexistent-cutkit-dir/lambda.dat"));
    free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_and_scripts), cmocka_unit_test(test_without_gnuplot),
        cmocka_unit_test(test_png_images),       cmocka_unit_test(test_svg_images),
        cmocka_unit_test(test_refused),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
