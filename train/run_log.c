/* run_log.c — see run_log.h. */
#include "train/run_log.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/fileio.h"
#include "util/jsonl.h"

/* Logs are read whole; far above any run's (a line per update, a row per Misalign token). */
#define RUN_LOG_MAX_BYTES ((size_t)1 << 40)

/* The update a steps.jsonl line belongs to: 1 with *step, 0 when it names none. */
static int jsonl_step(const cJSON *obj, long long *step) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(obj, "step");
    if (!cJSON_IsNumber(s)) return 0;
    *step = (long long)s->valuedouble;
    return 1;
}

/* The update a tokens.csv row belongs to: its leading number; 0 for the header. */
static int csv_step(const char *line, size_t n, long long *step) {
    char buf[32];
    const size_t k = n < sizeof buf - 1 ? n : sizeof buf - 1;
    memcpy(buf, line, k);
    buf[k] = '\0';
    char *end = NULL;
    *step = strtoll(buf, &end, 10);
    return end != buf;
}

/* Writes the lines of text to keep (see run_log.h) to out. */
static int keep_lines(const char *path, RunLogKind kind, const char *text, size_t len, int64_t step,
                      FILE *out, CkError *err) {
    JsonlCursor c;
    jsonl_init(&c, text, len);
    for (;;) {
        /* a line's bytes run from where the cursor stood to where it stands after it: blank
         * lines before it and its own newline included, as they were */
        const size_t begin = c.pos;
        long long s = 0;
        int has_step;
        if (kind == RUN_LOG_JSONL) {
            cJSON *obj = NULL;
            const int got = jsonl_next_object(&c, path, 1, &obj, err);
            if (got < 0) return -1;
            if (got == 0) break;
            has_step = jsonl_step(obj, &s);
            cJSON_Delete(obj);
        } else {
            const char *line;
            size_t n;
            if (!jsonl_next_line(&c, &line, &n) || !c.terminated) break;
            has_step = csv_step(line, n, &s);
        }
        if (has_step && s > step) continue;
        if (fwrite(text + begin, 1, c.pos - begin, out) != c.pos - begin)
            return ck_fail(err, "%s: cannot write: %s", path, strerror(errno));
    }
    return 0;
}

/* Rewrites path atomically with what a run at step keeps of it. */
static int rewrite(const char *path, RunLogKind kind, int64_t step, const char *header,
                   CkError *err) {
    char *old = NULL;
    size_t len = 0;
    struct stat st;
    if (step > 0 && stat(path, &st) == 0) {
        old = fileio_read_text(path, RUN_LOG_MAX_BYTES, &len, err);
        if (!old) return -1;
    }
    AtomicFile a;
    if (atomic_file_open(&a, path, err) != 0) {
        free(old);
        return -1;
    }
    int rc = 0;
    /* a fresh log starts with its header; so does a resumed one whose file lost it (or was
     * lost), rather than continue headerless */
    const int with_header =
        header && (step == 0 || !old || strncmp(old, header, strlen(header)) != 0);
    if (with_header && fputs(header, a.f) == EOF)
        rc = ck_fail(err, "%s: cannot write: %s", path, strerror(errno));
    if (rc == 0 && old) rc = keep_lines(path, kind, old, len, step, a.f, err);
    free(old);
    if (rc != 0) {
        atomic_file_abort(&a);
        return -1;
    }
    return atomic_file_commit(&a, err);
}

FILE *run_log_open(const char *path, RunLogKind kind, int64_t step, const char *header,
                   CkError *err) {
    if (rewrite(path, kind, step, header, err) != 0) return NULL;
    FILE *f = fopen(path, "a");
    if (!f) ck_fail(err, "%s: cannot write: %s", path, strerror(errno));
    return f;
}
