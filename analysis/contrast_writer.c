/* contrast_writer.c — contrast.csv through libcsv, written as an AtomicFile. */
#include "analysis/contrast_writer.h"

#include <csv.h>
#include <stdlib.h>
#include <string.h>

#include "train/cut.h"
#include "util/fileio.h"

void contrast_writer_abort(ContrastWriter *w) {
    atomic_file_abort(&w->file);
    free(w->lambdas);
    free(w->flags);
    memset(w, 0, sizeof *w);
}

int contrast_writer_open(ContrastWriter *w, const char *path, const char *comment,
                         const double *lambdas, int n, CkError *err) {
    memset(w, 0, sizeof *w);
    w->lambdas = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!w->lambdas) return ck_fail(err, "out of memory");
    memcpy(w->lambdas, lambdas, sizeof(double) * (size_t)n);
    w->n_lambdas = n;
    if (atomic_file_open(&w->file, path, err) != 0) {
        contrast_writer_abort(w);
        return -1;
    }
    FILE *f = w->file.f;
    /* the comment must stay one line: the reader skips leading lines that start with '#' */
    fputs("# ", f);
    for (const char *p = comment; *p; p++) fputc(*p == '\n' || *p == '\r' ? ' ' : *p, f);
    fputs("\nexample,position,token_id,token_text,log_pa,log_pm,log_ratio", f);
    for (int i = 0; i < n; i++) fprintf(f, ",flagged@%.10g", lambdas[i]);
    fputc('\n', f);
    if (ferror(f)) {
        ck_fail(err, "%s: cannot write", w->file.tmp);
        contrast_writer_abort(w);
        return -1;
    }
    return 0;
}

int contrast_writer_example(ContrastWriter *w, long example, const TokenContrast *c,
                            const char *response, CkError *err) {
    if (!c->negative) return ck_fail(err, "contrast.csv: example %ld has no log pM", example);
    const int n = c->n;
    const size_t need = (size_t)n * (size_t)(w->n_lambdas > 0 ? w->n_lambdas : 1);
    if ((size_t)w->cap_flags < need) {
        unsigned char *f = realloc(w->flags, need ? need : 1);
        if (!f) return ck_fail(err, "out of memory");
        w->flags = f;
        w->cap_flags = (int)need;
    }
    double *la = malloc(sizeof(double) * (size_t)(n ? n : 1));
    double *lm = malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (!la || !lm) {
        free(la);
        free(lm);
        return ck_fail(err, "out of memory");
    }
    for (int t = 0; t < n; t++) {
        la[t] = c->tokens[t].log_pa;
        lm[t] = c->tokens[t].log_pm;
    }
    /* flags exactly as training decides them */
    for (int l = 0; l < w->n_lambdas; l++) cut_detect(la, lm, n, w->lambdas[l], w->flags + l * n);
    free(la);
    free(lm);
    const int len = (int)strlen(response);
    FILE *f = w->file.f;
    for (int t = 0; t < n; t++) {
        const TokenContrastRow *r = &c->tokens[t];
        const int a = r->start < len ? r->start : len, b = r->end < len ? r->end : len;
        fprintf(f, "%ld,%d,%d,", example, t, r->token);
        csv_fwrite(f, response + a, (size_t)(b > a ? b - a : 0));
        fprintf(f, ",%.10g,%.10g,%.10g", r->log_pa, r->log_pm, r->log_pa - r->log_pm);
        for (int l = 0; l < w->n_lambdas; l++) fprintf(f, ",%d", w->flags[l * n + t]);
        fputc('\n', f);
    }
    w->rows += n;
    if (ferror(f)) return ck_fail(err, "%s: cannot write", w->file.tmp);
    return 0;
}

int contrast_writer_commit(ContrastWriter *w, CkError *err) {
    int rc = atomic_file_commit(&w->file, err);
    contrast_writer_abort(w); /* releases the rest; the file is already committed or gone */
    return rc;
}
