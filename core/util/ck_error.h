/* ck_error.h — the error value every library function fills instead of exiting.
 *
 * Library code returns 0 on success and -1 on failure; on failure it has written one
 * line into the caller's CkError saying where (file, offset, record, field) and what
 * was expected. Only main() prints it and chooses the exit code. */
#ifndef CK_ERROR_H
#define CK_ERROR_H

#include <stddef.h>

typedef struct {
    char msg[512];
} CkError;

/* Formats a message into err (which may be NULL) and returns -1, so that callers can
 * write `return ck_fail(err, "...", ...);`. */
int ck_fail(CkError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes the message already in err with "prefix: " (used to add a file name) and
 * returns -1. */
int ck_wrap(CkError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
