/* A BERT vocab.txt in memory: one token per line, id = 0-based line number,
 * with a hash table for token -> id lookups.
 *
 * Conventions:
 *  1. A tok_vocab is immutable once loaded; any number of threads may read it.
 *  2. Strings returned by tok_vocab_token and tok_vocab_sha256_hex are owned
 *     by the vocab and live until tok_vocab_free.
 *  3. Errors follow util/status.h: a status, and a malloc'd one-line message
 *     through the last argument.
 */
#ifndef DDPT_CORPUS_VOCAB_H
#define DDPT_CORPUS_VOCAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct tok_vocab tok_vocab;

/* Loads a BERT vocab.txt: one token per line (LF or CRLF), id = 0-based line
 * number. Errors (one line naming the file and line numbers): missing or
 * unreadable (ST_IO), empty, no [UNK], duplicate lines, a line over
 * TOK_VOCAB_MAX_TOKEN bytes (ST_INVALID). On success *out owns the vocab;
 * free it with tok_vocab_free. */
int tok_vocab_load(const char *path, tok_vocab **out, char **err);

/* The same from size bytes of vocab.txt held in memory, with the same checks
 * and messages (path names the file they will be written to): how ddpt
 * vocab checks a vocab before writing it. */
int tok_vocab_parse(const char *path, const char *data, size_t size, tok_vocab **out, char **err);

/* Longest token line accepted, in bytes. */
#define TOK_VOCAB_MAX_TOKEN 1024

void tok_vocab_free(tok_vocab *v); /* NULL is a no-op */

size_t tok_vocab_size(const tok_vocab *v);

/* The id of the len bytes at token, or -1 if the vocab lacks them. */
int32_t tok_vocab_find(const tok_vocab *v, const char *token, size_t len);

/* The id of a special token BERT needs ("[CLS]", "[MASK]", ...) in *id;
 * ST_INVALID naming the vocab file (path) when the vocab lacks it. */
int tok_vocab_special(const tok_vocab *v, const char *path, const char *token, int32_t *id, char **err);

/* The id of "##" followed by the len bytes at piece, or -1: the lookup of
 * WordPiece continuation pieces, without building the prefixed string. */
int32_t tok_vocab_find_cont(const tok_vocab *v, const char *piece, size_t len);

/* The token with this id, NUL-terminated; id must be in [0, size). */
const char *tok_vocab_token(const tok_vocab *v, int32_t id);

/* SHA-256 of the file's bytes as 64 lower-case hex digits (util/sha256.h). */
const char *tok_vocab_sha256_hex(const tok_vocab *v);

#endif
