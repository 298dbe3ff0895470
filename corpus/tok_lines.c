/* A line reader over stdio with a bounded buffer (see tok_lines.h): bytes
 * are read in blocks and lines found with memchr, so NULs are ordinary. */
#include "corpus/tok_lines.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/status.h"

struct tok_lines {
  FILE *f;
  int is_stdin;
  char *path;
  size_t max_line;
  char *buf; /* (cap) bytes [pos, len) are read but not yet returned */
  size_t cap, pos, len;
  int eof;
  size_t line_no;
};

int tok_lines_open(const char *path, size_t max_line, tok_lines **out, char **err) {
  assert(path && out && max_line > 0);
  tok_lines *r = calloc(1, sizeof *r);
  if (!r) return status_set(err, ST_NOMEM, "out of memory opening '%s'", path);
  r->path = strdup(path);
  r->cap = 1 << 16;
  r->buf = malloc(r->cap);
  if (!r->path || !r->buf) {
    tok_lines_close(r);
    return status_set(err, ST_NOMEM, "out of memory opening '%s'", path);
  }
  r->max_line = max_line;
  if (strcmp(path, "-") == 0) {
    r->f = stdin;
    r->is_stdin = 1;
  } else {
    r->f = fopen(path, "rb");
    if (!r->f) {
      int e = errno;
      tok_lines_close(r);
      return status_set(err, ST_IO, "cannot open '%s': %s", path, strerror(e));
    }
  }
  *out = r;
  return ST_OK;
}

/* Reads more input after the unread bytes; sets eof when there is none. */
static int tok_lines_fill(tok_lines *r, char **err) {
  if (r->pos > 0) {
    memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->len -= r->pos;
    r->pos = 0;
  }
  if (r->len == r->cap) {
    size_t cap = r->cap * 2;
    if (cap > r->max_line + 1) cap = r->max_line + 1;
    char *b = realloc(r->buf, cap);
    if (!b) return status_set(err, ST_NOMEM, "out of memory reading '%s'", r->path);
    r->buf = b;
    r->cap = cap;
  }
  size_t got = fread(r->buf + r->len, 1, r->cap - r->len, r->f);
  r->len += got;
  if (got == 0) {
    if (ferror(r->f))
      return status_set(err, ST_IO, "cannot read '%s': %s", r->path, strerror(errno));
    r->eof = 1;
  }
  return ST_OK;
}

int tok_lines_next(tok_lines *r, const char **line, size_t *len, char **err) {
  assert(r && line && len);
  size_t scanned = 0;
  for (;;) {
    char *start = r->buf + r->pos;
    size_t avail = r->len - r->pos;
    char *nl = memchr(start + scanned, '\n', avail - scanned);
    if (nl || (r->eof && avail > 0)) {
      size_t n = nl ? (size_t)(nl - start) : avail;
      if (n > r->max_line) break;
      r->pos += nl ? n + 1 : n;
      r->line_no++;
      *line = start;
      *len = n;
      return ST_OK;
    }
    if (r->eof) {
      *line = NULL;
      *len = 0;
      return ST_OK;
    }
    if (avail > r->max_line) break;
    scanned = avail;
    int rc = tok_lines_fill(r, err);
    if (rc != ST_OK) return rc;
  }
  return tok_lines_too_long(err, r->path, r->line_no + 1, r->max_line);
}

int tok_lines_too_long(char **err, const char *path, size_t line_no, size_t max_line) {
  return status_set(err, ST_INVALID, "'%s' line %zu is longer than %zu bytes, the line limit; is "
                    "it a text file with newlines?", path, line_no, max_line);
}

int tok_lines_check(tok_line_check *c, const char *path, const char *data, size_t n, char **err) {
  for (const char *p = data, *end = data + n; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    c->len += (size_t)((nl ? nl : end) - p);
    if (c->len > TOK_LINES_MAX_BYTES)
      return tok_lines_too_long(err, path, c->line_no + 1, TOK_LINES_MAX_BYTES);
    if (!nl) break;
    c->line_no++;
    c->len = 0;
    p = nl + 1;
  }
  return ST_OK;
}

void tok_lines_close(tok_lines *r) {
  if (!r) return;
  if (r->f && !r->is_stdin) fclose(r->f);
  free(r->buf);
  free(r->path);
  free(r);
}
