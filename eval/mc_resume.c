/* mc_resume.c — see mc_resume.h. */
#include "eval/mc_resume.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/results.h"
#include "util/fileio.h"
#include "util/hash.h"
#include "util/jsonl.h"

/* FNV-1a of a string and its NUL, continuing from h. */
static uint64_t hash_str(uint64_t h, const char *s) {
    return hash_fnv1a64(h, s, strlen(s) + 1);
}

uint64_t mc_run_fingerprint(const char *model_source, const char *tokenizer_source,
                            const char *adapter, int bos) {
    uint64_t h = hash_str(HASH_FNV1A64_OFFSET, model_source);
    h = hash_str(h, tokenizer_source);
    h = hash_str(h, adapter ? adapter : "");
    return hash_str(h, bos ? "bos" : "no-bos");
}

uint64_t mc_item_fingerprint(uint64_t run_hash, const McItem *item) {
    uint64_t h = hash_str(run_hash, item->context);
    for (int i = 0; i < item->doc->n_choices; i++) h = hash_str(h, item->doc->choices[i]);
    return h;
}

void mc_previous_free(McPreviousList *p) {
    for (int i = 0; i < p->n; i++)
        if (!p->v[i].used) mc_item_result_free(&p->v[i].r);
    free(p->v);
    memset(p, 0, sizeof *p);
}

/* Appends the record rec (line `line` of path) to p. */
static int previous_add(McPreviousList *p, const cJSON *rec, const char *path, long line,
                        CkError *err) {
    if (p->n == p->cap) {
        int ncap = p->cap ? p->cap * 2 : 256;
        McPrevious *nv = realloc(p->v, sizeof(McPrevious) * (size_t)ncap);
        if (!nv) return ck_fail(err, "out of memory");
        p->v = nv;
        p->cap = ncap;
    }
    McPrevious *e = &p->v[p->n];
    memset(e, 0, sizeof *e);
    char where[4200];
    snprintf(where, sizeof where, "%s:%ld", path, line);
    const char *task = NULL;
    if (results_mc_item_parse(rec, &task, &e->fingerprint, &e->r, where, err) != 0) return -1;
    snprintf(e->task, sizeof e->task, "%s", task);
    p->n++;
    return 0;
}

/* Cuts a torn last line off the file (rewritten atomically), reporting it to log; *complete
 * gets the length of the whole lines. */
static int drop_torn_line(const char *path, const char *text, size_t size, size_t *complete,
                          FILE *log, CkError *err) {
    size_t n = size;
    while (n > 0 && text[n - 1] != '\n') n--;
    *complete = n;
    if (n == size) return 0;
    if (log)
        fprintf(log, "cutkit eval mc: %s: dropping an incomplete last line (%zu bytes)\n", path,
                size - n);
    return fileio_write_atomic(path, text, n, err);
}

int mc_previous_read(McPreviousList *p, const char *path, FILE *log, CkError *err) {
    memset(p, 0, sizeof *p);
    if (access(path, F_OK) != 0) return 0;
    size_t size = 0, complete = 0;
    char *text = fileio_read_text(path, (size_t)1 << 32, &size, err);
    if (!text) return -1;
    int rc = drop_torn_line(path, text, size, &complete, log, err);
    JsonlCursor c;
    jsonl_init(&c, text, complete);
    cJSON *rec = NULL;
    while (rc == 0) {
        int got = jsonl_next_object(&c, path, 0, &rec, err);
        if (got <= 0) {
            rc = got;
            break;
        }
        rc = previous_add(p, rec, path, c.line, err);
        cJSON_Delete(rec);
    }
    free(text);
    if (rc) mc_previous_free(p);
    return rc;
}
