/* contrast_writer.c — contrast.csv through libcsv, to a temporary file renamed at the end. */
#include "analysis/contrast_writer.h"

#include <csv.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/cut.h"
#include "util/fileio.h"

void contrast_writer_abort(ContrastWriter *w) {
    if (w->f) fclose(w->f);
    if (w->tmp_path) unlink(w->tmp_path);
    free(w->path);
    free(w->tmp_path);
    free(w->lambdas);
    free(w->flags);
    memset(w, 0, sizeof *w);
}

int contrast_writer_open(ContrastWriter *w, const char *path, const char *comment,
                         const double *lambdas, int n, CkError *err) {
    memset(w, 0, sizeof *w);
    const size_t len = strlen(path);
    w->path = strdup(path);
    w->tmp_path = malloc(len + 5);
    w->lambdas = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!w->path || !w->tmp_path || !w->lambdas) {
        free(w->tmp_path);
        w->tmp_path = NULL; /* nothing created yet: nothing to unlink */
        contrast_writer_abort(w);
        return ck_fail(err, "out of memory");
    }
    memcpy(w->tmp_path, path, len);
    memcpy(w->tmp_path + len, ".tmp", 5);
    memcpy(w->lambdas, lambdas, sizeof(double) * (size_t)n);
    w->n_lambdas = n;
    w->f = fopen(w->tmp_path, "wb");
    if (!w->f) {
        ck_fail(err, "%s: cannot create: %s", w->tmp_path, strerror(errno));
        free(w->tmp_path);
        w->tmp_path = NULL;
        contrast_writer_abort(w);
        return -1;
    }
    /* the comment must stay one line: the reader skips leading lines that start with '#' */
    fputs("# ", w->f);
    for (const char *p = comment; *p; p++) fputc(*p == '\n' || *p == '\r' ? ' ' : *p, w->f);
    fputs("\nexample,position,token_id,token_text,log_pa,log_pm,log_ratio", w->f);
    for (int i = 0; i < n; i++) fprintf(w->f, ",flagged@%.10g", lambdas[i]);
    fputc('\n', w->f);
    if (ferror(w->f)) {
        ck_fail(err, "%s: cannot write", w->tmp_path);
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
    for (int t = 0; t < n; t++) {
        const TokenContrastRow *r = &c->tokens[t];
        const int a = r->start < len ? r->start : len, b = r->end < len ? r->end : len;
        fprintf(w->f, "%ld,%d,%d,", example, t, r->token);
        csv_fwrite(w->f, response + a, (size_t)(b > a ? b - a : 0));
        fprintf(w->f, ",%.10g,%.10g,%.10g", r->log_pa, r->log_pm, r->log_pa - r->log_pm);
        for (int l = 0; l < w->n_lambdas; l++) fprintf(w->f, ",%d", w->flags[l * n + t]);
        fputc('\n', w->f);
    }
    w->rows += n;
    if (ferror(w->f)) return ck_fail(err, "%s: cannot write", w->tmp_path);
    return 0;
}

int contrast_writer_commit(ContrastWriter *w, CkError *err) {
    int ok = fflush(w->f) == 0 && !ferror(w->f) && fsync(fileno(w->f)) == 0;
    ok = (fclose(w->f) == 0) && ok;
    w->f = NULL;
    if (!ok || rename(w->tmp_path, w->path) != 0) {
        ck_fail(err, "%s: cannot write: %s", w->path, strerror(errno));
        contrast_writer_abort(w);
        return -1;
    }
    fileio_sync_parent(w->path);
    free(w->tmp_path);
    w->tmp_path = NULL; /* renamed: nothing to remove */
    contrast_writer_abort(w);
    return 0;
}
