/* Growing arrays by doubling (see array.h). */
#include "util/array.h"

#include <stdlib.h>
#include <string.h>

/* The pointer at bufp is read and written as bytes: it may be a uint32_t *,
 * a char ** ..., and going through void ** would break strict aliasing. */
int array_grow_slow(void *bufp, size_t *cap, size_t need, size_t elem) {
  void *old;
  memcpy(&old, bufp, sizeof old);
  size_t n = *cap ? *cap : 64;
  while (n < need) n *= 2;
  void *p = realloc(old, n * elem);
  if (!p) return ST_NOMEM;
  memcpy(bufp, &p, sizeof p);
  *cap = n;
  return ST_OK;
}
