/* Growing a malloc'd array by doubling, for the buffers that fill as input
 * is read (tokenizer scratch, vocab training tables). */
#ifndef DDPT_UTIL_ARRAY_H
#define DDPT_UTIL_ARRAY_H

#include <stddef.h>

#include "util/status.h"

int array_grow_slow(void *bufp, size_t *cap, size_t need, size_t elem);

/* Makes the array at *bufp (bufp: the address of any object pointer, e.g.
 * &t->ids), of *cap elements of elem bytes, hold at least need elements:
 * the capacity doubles from 64 until it does, the contents are kept. ST_OK,
 * or ST_NOMEM with the array and *cap unchanged. Inline when nothing has to
 * grow, since callers run it per word or per character. */
static inline int array_grow(void *bufp, size_t *cap, size_t need, size_t elem) {
  return need <= *cap ? ST_OK : array_grow_slow(bufp, cap, need, elem);
}

#endif
