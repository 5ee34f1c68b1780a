/* html.c — see html.h. */
#include "reports/html.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reports/escape.h"

static const char *STYLE =
    "body{font-family:sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}"
    "h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}"
    "table{border-collapse:collapse;margin:8px 0}"
    "th,td{padding:4px 10px;border-bottom:1px solid #e4e4e4}th[scope=row]{text-align:left}"
    "thead th{border-bottom:2px solid #555}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "td.missing{color:#999}.note{color:#555;font-size:.9em}"
    "figure{display:inline-block;margin:8px 16px 16px 0;vertical-align:top}"
    "figcaption{font-size:.85em;color:#555;max-width:560px}"
    "details{margin:6px 0;border:1px solid #e4e4e4;border-radius:4px;padding:4px 8px}"
    "summary{cursor:pointer}"
    ".toks{white-space:pre-wrap;font-family:monospace;line-height:1.9;margin:6px 0}"
    ".t{border-right:1px dotted #bbb}"
    ".t.f{background:#ffd2c2;border-bottom:2px solid #D55E00}";

static void write_value_cell(FILE *o, const MetricColumn *col, const MetricCell *cell,
                             int row_size) {
    char v[64], se[64];
    if (!isfinite(cell->value)) {
        fputs("<td class=\"n missing\">\xE2\x80\x94</td>", o);
        return;
    }
    metric_format(col, cell->value, v, sizeof v);
    fprintf(o, cell->best ? "<td class=\"n\"><strong>%s</strong>" : "<td class=\"n\">%s", v);
    if (cell->marked) fputs("<sup class=\"sig\">\xE2\x80\xA0</sup>", o);
    if (cell->variant) fputs("<sup class=\"variant\">\xE2\x80\xA1</sup>", o);
    double pm = row_size > 1 ? cell->sd : cell->se;
    if (isfinite(pm)) {
        metric_format(col, pm, se, sizeof se);
        fprintf(o, " \xC2\xB1 %s", se);
    }
    if (row_size > 1) fprintf(o, " <small>(n=%d)</small>", cell->n);
    fputs("</td>", o);
}

/* A paragraph of class note holding text (escaped); nothing for NULL. */
static void write_note(FILE *o, const char *text, const char *prefix, const char *suffix) {
    if (!text) return;
    fputs("<p class=\"note\">", o);
    fputs(prefix, o);
    escape_html_str(o, text);
    fputs(suffix, o);
    fputs("</p>\n", o);
}

/* A results table under heading (an anchor id, its text), with its notes; files names the
 * Markdown and LaTeX files that hold the same table. */
static void write_table(FILE *o, const MetricTable *t, const char *id, const char *heading,
                        const char *files) {
    fprintf(o, "<h2 id=\"%s\">", id);
    escape_html_str(o, heading);
    fputs("</h2>\n<table class=\"results\">\n<thead><tr><th>", o);
    escape_html_str(o, t->row_title ? t->row_title : "Run");
    fputs("</th>", o);
    for (int k = 0; k < t->n_text; k++) {
        fputs("<th>", o);
        escape_html_str(o, t->text_titles[k]);
        fputs("</th>", o);
    }
    for (int c = 0; c < t->n_cols; c++) {
        fputs("<th>", o);
        escape_html_str(o, t->cols[c].title);
        fputs("</th>", o);
    }
    fputs("</tr></thead>\n<tbody>\n", o);
    for (int r = 0; r < t->n_runs; r++) {
        fputs("<tr><th scope=\"row\">", o);
        escape_html_str(o, t->labels[r]);
        fputs("</th>", o);
        for (int k = 0; k < t->n_text; k++) {
            const char *text = t->text ? t->text[(size_t)r * t->n_text + k] : NULL;
            fputs(text && text[0] ? "<td>" : "<td class=\"missing\">\xE2\x80\x94", o);
            escape_html_str(o, text);
            fputs("</td>", o);
        }
        for (int c = 0; c < t->n_cols; c++)
            write_value_cell(o, &t->cols[c], metric_cell(t, r, c), t->sizes ? t->sizes[r] : 1);
        fputs("</tr>\n", o);
    }
    fputs("</tbody>\n</table>\n", o);
    write_note(o, t->note ? t->note : metric_note(), "", files);
    if (t->grouped) write_note(o, metric_group_note(), "", "");
    write_note(o, t->marker_note, "\xE2\x80\xA0 ", "");
    char *variants = metric_variant_note(t);
    write_note(o, variants, "", "");
    free(variants);
}

static void write_results(FILE *o, const MetricTable *t) {
    write_table(o, t, "results", "Results", " The same table is in tables.md and tables.tex.");
}

static void write_config_value(FILE *o, const cJSON *config, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, key);
    fputs("<td>", o);
    if (cJSON_IsNumber(v))
        fprintf(o, "%g", v->valuedouble);
    else if (cJSON_IsString(v))
        escape_html_str(o, v->valuestring);
    else
        fputs("\xE2\x80\x94", o);
    fputs("</td>", o);
}

static void write_runs(FILE *o, const RunDir *runs, int n_runs) {
    static const char *KEYS[] = {"objective", "lambda", "alpha", "gamma", "lr", "seed"};
    fputs("<h2 id=\"runs\">Runs</h2>\n<table class=\"runs\">\n<thead><tr><th>Run</th>"
          "<th>directory</th><th>objective</th><th>\xCE\xBB</th><th>\xCE\xB1</th>"
          "<th>\xCE\xB3</th><th>lr</th><th>seed</th><th>steps</th><th>files</th></tr></thead>\n"
          "<tbody>\n",
          o);
    for (int r = 0; r < n_runs; r++) {
        const RunDir *rd = &runs[r];
        fputs("<tr><th scope=\"row\">", o);
        escape_html_str(o, rd->label);
        fputs("</th><td><code>", o);
        escape_html_str(o, rd->path);
        fputs("</code></td>", o);
        for (size_t k = 0; k < sizeof KEYS / sizeof KEYS[0]; k++)
            write_config_value(o, rd->json[RUN_CONFIG], KEYS[k]);
        fprintf(o, "<td>%d</td><td>", rd->steps.n);
        int any = 0;
        for (int f = 0; f < RUN_N_FILES; f++)
            if (rd->json[f]) fprintf(o, "%s%s", any++ ? ", " : "", rundir_file_name((RunFile)f));
        if (rd->steps.n) fprintf(o, "%ssteps.jsonl", any++ ? ", " : "");
        if (rd->contrast_path) fprintf(o, "%scontrast.csv", any++ ? ", " : "");
        if (!any) fputs("none", o);
        fputs("</td></tr>\n", o);
    }
    fputs("</tbody>\n</table>\n", o);
}

/* Which runs each seed group of the results table holds (only when a group has several). */
static void write_groups(FILE *o, const RunGroups *g, const RunDir *runs) {
    int grouped = 0;
    for (int k = 0; g && k < g->n; k++) grouped |= g->groups[k].n > 1;
    if (!grouped) return;
    fputs("<p class=\"note\">Seed groups (one row of the results each: run directories whose "
          "config.json differs only in seed):</p>\n<ul class=\"groups\">\n",
          o);
    for (int k = 0; k < g->n; k++) {
        const RunGroup *grp = &g->groups[k];
        if (grp->n < 2) continue;
        fputs("<li>", o);
        escape_html_str(o, grp->label);
        fputs(":", o);
        for (int m = 0; m < grp->n; m++) {
            const RunDir *rd = &runs[grp->members[m]];
            fputs(m ? ", " : " ", o);
            escape_html_str(o, rd->label);
            double seed = rundir_config_number(rd, "seed");
            if (isfinite(seed)) fprintf(o, " (seed %g)", seed);
        }
        fputs("</li>\n", o);
    }
    fputs("</ul>\n", o);
}

static void write_plots(FILE *o, const ReportPlots *plots) {
    fputs("<h2 id=\"plots\">Plots</h2>\n", o);
    if (!plots || plots->n == 0) {
        fputs("<p>No run has data to plot (steps.jsonl, detection.json, or runs that differ "
              "in \xCE\xBB or \xCE\xB1).</p>\n",
              o);
        return;
    }
    for (int i = 0; i < plots->n; i++) {
        const ReportPlot *p = &plots->plots[i];
        fputs("<figure>\n", o);
        fputs(p->svg, o);
        fputs("<figcaption>", o);
        escape_html_str(o, p->caption);
        fputs(" (<a href=\"plots/", o);
        escape_html_str(o, p->name);
        fputs("\">", o);
        escape_html_str(o, p->name);
        fputs("</a>)</figcaption>\n</figure>\n", o);
    }
}

static void write_token(FILE *o, const ContrastCsvToken *t) {
    fprintf(o,
            "<span class=\"t%s\" title=\"log pA \xE2\x88\x92 log pM = %.4f&#10;log pA = %.4f, "
            "log pM = %.4f",
            t->flagged ? " f" : "", t->log_ratio, t->log_pa, t->log_pm);
    if (t->position >= 0) fprintf(o, "&#10;position %d", t->position);
    if (t->token_id >= 0) fprintf(o, ", token %d", t->token_id);
    fputs(t->flagged ? "&#10;flagged\">" : "\">", o);
    escape_html_str(o, t->text);
    fputs("</span>", o);
}

static void write_examples(FILE *o, const HtmlPage *p) {
    fputs("<h2 id=\"examples\">Examples</h2>\n<p class=\"note\">The first examples of each run's "
          "contrast.csv: one box per token, flagged tokens highlighted; hover a token for its "
          "log ratio.</p>\n",
          o);
    for (int r = 0; r < p->n_runs; r++) {
        const ContrastCsv *cs = p->contrasts ? &p->contrasts[r] : NULL;
        fputs("<section class=\"run\">\n<h3>", o);
        escape_html_str(o, p->runs[r].label);
        fputs("</h3>\n", o);
        if (!cs || cs->n == 0) {
            fputs(p->runs[r].contrast_path ? "<p class=\"note\">contrast.csv has no examples.</p>\n"
                                           : "<p class=\"note\">No contrast.csv.</p>\n",
                  o);
            fputs("</section>\n", o);
            continue;
        }
        if (isfinite(cs->flag_lambda))
            fprintf(o, "<p class=\"note\">Highlighted: flagged at \xCE\xBB = %g.</p>\n",
                    cs->flag_lambda);
        else
            fputs("<p class=\"note\">contrast.csv has no flagged@\xCE\xBB column.</p>\n", o);
        for (int e = 0; e < cs->n; e++) {
            const ContrastCsvExample *ex = &cs->examples[e];
            int flagged = 0;
            for (int k = 0; k < ex->n; k++) flagged += ex->tokens[k].flagged;
            fprintf(o,
                    "<details class=\"example\"%s><summary>example %ld: %d tokens, %d "
                    "flagged</summary>\n<div class=\"toks\">",
                    e == 0 ? " open" : "", ex->example, ex->n, flagged);
            for (int k = 0; k < ex->n; k++) write_token(o, &ex->tokens[k]);
            fputs("</div>\n</details>\n", o);
        }
        fputs("</section>\n", o);
    }
}

void html_write_page(FILE *o, const HtmlPage *p) {
    const char *title = p->title ? p->title : "cutkit report";
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          o);
    escape_html_str(o, title);
    fprintf(o, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>", STYLE);
    escape_html_str(o, title);
    fprintf(o,
            "</h1>\n<p class=\"note\">cutkit %s report over %d run%s. "
            "<a href=\"#results\">Results</a> \xC2\xB7 <a href=\"#runs\">Runs</a> \xC2\xB7 "
            "<a href=\"#plots\">Plots</a> \xC2\xB7 <a href=\"#examples\">Examples</a></p>\n",
            CUTKIT_VERSION, p->n_runs, p->n_runs == 1 ? "" : "s");
    if (p->table) write_results(o, p->table);
    for (int k = 0; k < p->n_layouts; k++) {
        char files[96];
        snprintf(files, sizeof files, " The same table is in %s.md and %s.tex.", p->layout_names[k],
                 p->layout_names[k]);
        write_table(o, p->layouts[k], p->layout_names[k], p->layout_headings[k], files);
    }
    write_runs(o, p->runs, p->n_runs);
    write_groups(o, p->groups, p->runs);
    write_plots(o, p->plots);
    write_examples(o, p);
    fputs("</body>\n</html>\n", o);
}
