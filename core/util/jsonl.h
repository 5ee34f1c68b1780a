/* jsonl.h — the one JSON Lines reader: walks a text held in memory line by line with true
 * line numbers (blank lines counted, then skipped), and tells a complete last line from a
 * torn one (no final newline, as a killed writer leaves it). */
#ifndef CK_JSONL_H
#define CK_JSONL_H

#include <stddef.h>

#include "util/ck_error.h"

typedef struct cJSON cJSON;

typedef struct {
    const char *text; /* borrowed: must outlive the cursor */
    size_t len, pos;
    long line;      /* 1-based number of the line last returned */
    int terminated; /* whether that line ended with '\n' */
} JsonlCursor;

/* Starts a cursor over text[0..len). */
void jsonl_init(JsonlCursor *c, const char *text, size_t len);

/* Moves to the next line holding anything but white space: returns 1 with *s, *n its bytes
 * (no newline, a trailing '\r' removed) and c->line, c->terminated set; 0 at the end. */
int jsonl_next_line(JsonlCursor *c, const char **s, size_t *n);

/* Parses the next non-blank line as one JSON object: returns 1 with *obj (the caller deletes
 * it), 0 at the end, -1 with err "path: line N: ..." when the line is not exactly one JSON
 * object (trailing content after the value included). A torn last line is an error too
 * unless drop_torn is set, in which case it ends the walk (returns 0, c->terminated = 0). */
int jsonl_next_object(JsonlCursor *c, const char *path, int drop_torn, cJSON **obj, CkError *err);

#endif
