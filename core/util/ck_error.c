/* ck_error.c — formatting of library error messages. */
#include "util/ck_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ck_fail(CkError *err, const char *fmt, ...) {
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int ck_wrap(CkError *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* shift the old message right and put "prefix: " in front, truncating at the end */
    const size_t cap = sizeof err->msg, plen = strlen(prefix) + 2;
    size_t old = strnlen(err->msg, cap - 1);
    if (plen + old >= cap) old = cap - 1 - plen;
    memmove(err->msg + plen, err->msg, old);
    memcpy(err->msg, prefix, plen - 2);
    err->msg[plen - 2] = ':';
    err->msg[plen - 1] = ' ';
    err->msg[plen + old] = '\0';
    return -1;
}
