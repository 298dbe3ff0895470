/* Growing arrays by doubling (see array.h). */
#include "util/array.h"

#include <stdlib.h>

#include "util/status.h"

int array_grow(void **buf, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return ST_OK;
  size_t n = *cap ? *cap : 64;
  while (n < need) n *= 2;
  void *p = realloc(*buf, n * elem);
  if (!p) return ST_NOMEM;
  *buf = p;
  *cap = n;
  return ST_OK;
}
