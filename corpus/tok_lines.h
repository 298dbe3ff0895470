/* Reading text input line by line for ddpt tokenize and ddpt vocab: any
 * bytes (NULs, invalid UTF-8), lines end at LF, a line longer than a stated
 * limit is an error naming the file and line instead of a huge allocation. */
#ifndef DDPT_CORPUS_TOK_LINES_H
#define DDPT_CORPUS_TOK_LINES_H

#include <stddef.h>

/* The limit ddpt's commands use: a "line" this long is a binary or a file
 * without newlines, not text to tokenize line by line. */
#define TOK_LINES_MAX_BYTES ((size_t)16 << 20)

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
