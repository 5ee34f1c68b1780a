/* hugebuf.c — see hugebuf.h. */
#include "util/hugebuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)

void *hugebuf_malloc(size_t bytes) {
    if (bytes < HUGE_PAGE) return malloc(bytes ? bytes : 1);
    void *p = NULL;
    if (posix_memalign(&p, HUGE_PAGE, bytes) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    /* advice only: without THP (or with it disabled) the pages are ordinary ones */
    (void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

void *hugebuf_calloc(size_t n, size_t size) {
    if (size != 0 && n > SIZE_MAX / size) return NULL;
    size_t bytes = n * size;
    if (bytes < HUGE_PAGE) return calloc(n ? n : 1, size ? size : 1);
    void *p = hugebuf_malloc(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}
