/* hugebuf.h — large numeric buffers backed by transparent huge pages.
 *
 * Decoding streams every weight once per token, so its speed is memory bandwidth; with 4 KiB
 * pages the CPU's stream prefetchers stop at every page boundary and each page costs a TLB
 * walk. Linux's default policy ("madvise") gives 2 MiB pages only to memory that asks for
 * them: this module asks. Small requests fall through to malloc/calloc. */
#ifndef CK_HUGEBUF_H
#define CK_HUGEBUF_H

#include <stddef.h>

/* Returns n * size bytes, all zero, 2 MiB-aligned and advised for huge pages when at least
 * 2 MiB, or NULL when out of memory or n * size overflows; release it with free(). */
void *hugebuf_calloc(size_t n, size_t size);

/* As hugebuf_calloc, without the zeroing (the pages are still faulted in lazily). */
void *hugebuf_malloc(size_t bytes);

#endif
