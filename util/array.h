/* Growing a malloc'd array by doubling, for the buffers that fill as input
 * is read (tokenizer scratch, vocab training tables). */
#ifndef DDPT_UTIL_ARRAY_H
#define DDPT_UTIL_ARRAY_H

#include <stddef.h>

/* Makes *buf, an array of *cap elements of elem bytes, hold at least need
 * elements: the capacity doubles from 64 until it does, the contents are
 * kept. ST_OK, or ST_NOMEM with *buf and *cap unchanged. */
int array_grow(void **buf, size_t *cap, size_t need, size_t elem);

#endif
