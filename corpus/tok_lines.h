/* Reading text input line by line for ddpt tokenize and ddpt vocab: any
 * bytes (NULs, invalid UTF-8), lines end at LF, a line longer than a stated
 * limit is an error naming the file and line instead of a huge allocation. */
#ifndef DDPT_CORPUS_TOK_LINES_H
#define DDPT_CORPUS_TOK_LINES_H

#include <stddef.h>

/* The one line-length limit of ddpt's commands (tokenize, vocab, shard,
 * predict): a "line" longer is a binary or a file without newlines, not
 * text to tokenize line by line. ddpt shard, which reads input in chunks
 * rather than through tok_lines, checks it with tok_lines_check. */
#define TOK_LINES_MAX_BYTES ((size_t)16 << 20)

/* The one message for a line over the limit: path, its line number
 * (1-based) and the limit. Returns ST_INVALID. */
int tok_lines_too_long(char **err, const char *path, size_t line_no, size_t max_line);

/* Line lengths across consecutive pieces of one input: counts lines and
 * fails (tok_lines_too_long) as soon as one passes TOK_LINES_MAX_BYTES,
 * before its end is read. Zero-initialise for each input. */
typedef struct tok_line_check {
  size_t line_no; /* complete lines seen */
  size_t len;     /* bytes of the line not yet ended */
} tok_line_check;
int tok_lines_check(tok_line_check *c, const char *path, const char *data, size_t n, char **err);

typedef struct tok_lines tok_lines;

/* Opens path ("-" is standard input) for reading lines of at most max_line
 * bytes. ST_IO naming the file if it cannot be opened. */
int tok_lines_open(const char *path, size_t max_line, tok_lines **out, char **err);

/* The next line without its '\n': *line points into the reader's buffer and
 * stays valid until the next call. At the end of input returns ST_OK with
 * *line NULL. A final line without '\n' is a line; an empty input has none.
 * ST_IO on a read error, ST_INVALID on a line over the limit. */
int tok_lines_next(tok_lines *r, const char **line, size_t *len, char **err);

void tok_lines_close(tok_lines *r); /* NULL is a no-op */

#endif
