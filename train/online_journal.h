/* online_journal.h — the stage files of the online loop that are written item by item: JSON
 * lines appended to a journal and fsync'd one by one (so that an item once reported is kept
 * when the run is killed), read back when the run resumes (a torn last line dropped), and
 * turned into the finished file through an atomic file when the stage completes. */
#ifndef CK_ONLINE_JOURNAL_H
#define CK_ONLINE_JOURNAL_H

#include <stdio.h>

#include "util/ck_error.h"

typedef struct cJSON cJSON;

typedef struct {
    cJSON **items; /* one JSON object per complete line, in file order (owned) */
    int n;
} JournalItems;

/* Reads the complete lines of the journal at path into j (an absent file: none). A torn last
 * line (no final newline, as a killed writer leaves it) is dropped and cut off the file, so
 * that appending continues after the last complete item. Returns 0, or -1 with err naming
 * the path and line of a line that is not one JSON object; j is empty then. */
int online_journal_read(JournalItems *j, const char *path, CkError *err);

/* Releases j's objects. */
void online_journal_free(JournalItems *j);

/* Appends obj to the journal f (at path, for messages) as one line, flushed and fsync'd. */
int online_journal_append(FILE *f, const char *path, const cJSON *obj, CkError *err);

/* Completes a stage file: copies the journal `partial` to `path` through an atomic file, then
 * removes the journal. Returns 0, or -1 with err (path is then as it was). */
int online_journal_finish(const char *partial, const char *path, CkError *err);

#endif
