/* online_journal.c — append-and-fsync journals, their resume and their completion. */
#include "train/online_journal.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/jsonl.h"

#define MAX_JOURNAL ((size_t)1 << 30)

static int journal_push(JournalItems *j, cJSON *obj) {
    cJSON **grown = realloc(j->items, sizeof(cJSON *) * (size_t)(j->n + 1));
    if (!grown) return -1;
    j->items = grown;
    j->items[j->n++] = obj;
    return 0;
}

int online_journal_read(JournalItems *j, const char *path, CkError *err) {
    memset(j, 0, sizeof *j);
    if (access(path, F_OK) != 0) return 0;
    size_t size = 0;
    char *text = fileio_read_text(path, MAX_JOURNAL, &size, err);
    if (!text) return -1;
    /* the items end at the last newline; anything after it is a torn line */
    const char *last_nl = size ? memrchr(text, '\n', size) : NULL;
    size_t complete = last_nl ? (size_t)(last_nl - text) + 1 : 0;
    JsonlCursor c;
    jsonl_init(&c, text, complete);
    cJSON *obj;
    int r, rc = 0;
    while ((r = jsonl_next_object(&c, path, 1, &obj, err)) == 1) {
        if (journal_push(j, obj) != 0) {
            cJSON_Delete(obj);
            rc = ck_fail(err, "out of memory");
            break;
        }
    }
    if (r < 0) rc = -1;
    free(text);
    if (rc == 0 && complete < size && truncate(path, (off_t)complete) != 0)
        rc = ck_fail(err, "%s: cannot cut its incomplete last line: %s", path, strerror(errno));
    if (rc != 0) online_journal_free(j);
    return rc;
}

void online_journal_free(JournalItems *j) {
    for (int i = 0; i < j->n; i++) cJSON_Delete(j->items[i]);
    free(j->items);
    memset(j, 0, sizeof *j);
}

int online_journal_append(FILE *f, const char *path, const cJSON *obj, CkError *err) {
    char *line = cJSON_PrintUnformatted(obj);
    int ok = line && fprintf(f, "%s\n", line) >= 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    free(line);
    return ok ? 0 : ck_fail(err, "cannot write %s: %s", path, strerror(errno));
}

int online_journal_finish(const char *partial, const char *path, CkError *err) {
    FILE *in = fopen(partial, "rb");
    if (!in) return ck_fail(err, "cannot open %s: %s", partial, strerror(errno));
    fileio_remove_stale_temps(path);
    AtomicFile a;
    if (atomic_file_open(&a, path, err) != 0) {
        fclose(in);
        return -1;
    }
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, in)) > 0) fwrite(chunk, 1, n, a.f);
    int read_failed = ferror(in);
    fclose(in);
    if (read_failed) {
        atomic_file_abort(&a);
        return ck_fail(err, "cannot read %s", partial);
    }
    if (atomic_file_commit(&a, err) != 0) return -1;
    /* a journal left behind by a crash here is removed by the next run (the stage is done) */
    if (remove(partial) != 0 && errno != ENOENT)
        return ck_fail(err, "cannot remove %s: %s", partial, strerror(errno));
    return 0;
}
