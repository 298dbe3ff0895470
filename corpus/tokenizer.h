/* BERT's WordPiece tokenizer, exactly as google-research/bert tokenization.py
 * FullTokenizer (and HuggingFace BertTokenizer with default options): clean,
 * space out CJK ideographs, split on whitespace, optionally lowercase + strip
 * accents, split off punctuation, greedy longest-match WordPiece.
 *
 * Conventions:
 *  1. A tokenizer holds scratch buffers: use one per thread. The vocab is
 *     shared read-only and must outlive every tokenizer made from it.
 *  2. Any byte string is valid input: NUL bytes and invalid UTF-8 included.
 *  3. Errors follow util/status.h; tok_encode fails only when out of memory.
 *  See docs/tokenizer.md for the rules one by one.
 */
#ifndef DDPT_CORPUS_TOKENIZER_H
#define DDPT_CORPUS_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "corpus/vocab.h"

typedef struct tokenizer tokenizer;

/* Words longer than this many code points become [UNK] (BERT's
 * max_input_chars_per_word). */
#define TOK_MAX_WORD_CHARS 200

/* Makes a tokenizer over v (lowercase != 0: BERT's do_lower_case). The vocab
 * must contain [UNK] (tok_vocab_load guarantees it). v may be NULL for a
 * tokenizer that only splits words (tok_split). On success *out owns the
 * tokenizer; free it with tok_free. */
int tok_create(const tok_vocab *v, int lowercase, tokenizer **out, char **err);
void tok_free(tokenizer *t); /* NULL is a no-op */

/* A growable array of ids. Zero-initialised is empty; tok_ids_free releases
 * the memory and leaves it empty again. */
typedef struct tok_ids {
  int32_t *ids;
  size_t len, cap;
} tok_ids;
void tok_ids_free(tok_ids *ids);

typedef struct tok_stats {
  uint64_t bytes_in;           /* input bytes seen */
  uint64_t invalid_utf8_bytes; /* bytes replaced by U+FFFD (then dropped) */
  uint64_t tokens;             /* ids produced */
  uint64_t unk;                /* of which [UNK] */
} tok_stats;                   /* accumulated (+=) by tok_encode */

/* Tokenizes len bytes of arbitrary input (NULs and invalid UTF-8 allowed) and
 * APPENDS the ids to out. stats may be NULL. Fails only with ST_NOMEM (out
 * then holds what it held before the call). */
int tok_encode(tokenizer *t, const char *text, size_t len, tok_ids *out, tok_stats *stats,
               char **err);

/* Rule 2's CJK ideograph ranges and rule 5's punctuation (ASCII 33-47,
 * 58-64, 91-96, 123-126 and Unicode P*), for code point c. */
int tok_char_is_cjk(uint32_t c);
int tok_char_is_punct(uint32_t c);

/* Receives one word of BERT's basic tokenizer (rules 1-5: cleaned, split at
 * whitespace and punctuation, lowercased and accent-stripped when the
 * tokenizer lowercases): len bytes of UTF-8, chars code points, not
 * NUL-terminated and valid only during the call. Returns ST_OK to go on;
 * anything else stops tok_split, which returns it. */
typedef int (*tok_word_fn)(void *ctx, const char *word, size_t len, size_t chars);

/* Runs rules 1-5 over len bytes of arbitrary input and hands each word to fn
 * in order (the vocab trainer counts them). stats may be NULL; its tokens and
 * unk stay untouched. Fails with ST_NOMEM or with fn's status. */
int tok_split(tokenizer *t, const char *text, size_t len, tok_word_fn fn, void *ctx,
              tok_stats *stats, char **err);

#endif
