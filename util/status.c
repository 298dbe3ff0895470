/* Status codes and malloc'd error messages (see status.h for the contract). */
#include "util/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *status_name(int code) {
  switch (code) {
  case ST_OK: return "ok";
  case ST_INVALID: return "invalid";
  case ST_IO: return "io";
  case ST_NOMEM: return "nomem";
  case ST_CORRUPT: return "corrupt";
  case ST_MISMATCH: return "mismatch";
  case ST_COMM: return "comm";
  case ST_INTERRUPTED: return "interrupted";
  default: return "unknown";
  }
}

static char *vformat(const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) return NULL;
  char *s = malloc((size_t)n + 1);
  if (s) vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

int status_set(char **err, int code, const char *fmt, ...) {
  if (!err) return code;
  va_list ap;
  va_start(ap, fmt);
  char *msg = vformat(fmt, ap);
  va_end(ap);
  free(*err);
  *err = msg;
  return code;
}

int status_wrap(char **err, int code, const char *fmt, ...) {
  if (!err || !*err) return code;
  va_list ap;
  va_start(ap, fmt);
  char *prefix = vformat(fmt, ap);
  va_end(ap);
  if (!prefix) return code;
  size_t a = strlen(prefix), b = strlen(*err);
  char *msg = malloc(a + 2 + b + 1);
  if (msg) {
    memcpy(msg, prefix, a);
    memcpy(msg + a, ": ", 2);
    memcpy(msg + a + 2, *err, b + 1);
    free(*err);
    *err = msg;
  }
  free(prefix);
  return code;
}
