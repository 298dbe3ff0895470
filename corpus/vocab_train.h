/* Training a WordPiece vocabulary from raw text (ddpt vocab): words come
 * from BERT's basic tokenizer (tok_split), characters seen often enough
 * enter with their "##" forms, then the most frequent adjacent symbol pairs
 * are merged (BPE pair counts, as HuggingFace tokenizers' WordPieceTrainer
 * does) until the vocabulary has the size asked for.
 *
 * Conventions: create, add text any number of times, train once, free.
 * Errors follow util/status.h. See docs/tokenizer.md for the algorithm. */
#ifndef DDPT_CORPUS_VOCAB_TRAIN_H
#define DDPT_CORPUS_VOCAB_TRAIN_H

#include <stddef.h>
#include <stdint.h>

typedef struct tok_vocab_trainer tok_vocab_trainer;

/* lowercase as for tok_create: it must match how the vocab will be used. */
int tok_vocab_trainer_create(int lowercase, tok_vocab_trainer **out, char **err);
void tok_vocab_trainer_free(tok_vocab_trainer *tr); /* NULL is a no-op */

/* Counts the words of len bytes of arbitrary text (one line, or more). */
int tok_vocab_trainer_add(tok_vocab_trainer *tr, const char *text, size_t len, char **err);

typedef struct tok_vocab_summary {
  uint64_t words;          /* words counted */
  size_t distinct_words;   /* different words */
  size_t specials;         /* [PAD] [UNK] [CLS] [SEP] [MASK] */
  size_t chars;            /* characters seen at least min_frequency times */
  size_t cont_chars;       /* their "##" forms (characters that occur inside words) */
  size_t merges;           /* multi-character pieces learned */
} tok_vocab_summary;

/* Builds a vocabulary of at most size tokens: the five specials (ids 0-4),
 * the characters seen at least min_frequency times (most frequent first),
 * their "##" forms, then merged pieces in the order they were learned; a
 * pair is merged only if it occurs at least max(min_frequency, 2) times. *tokens
 * receives *n NUL-terminated strings owned by the trainer (valid until
 * tok_vocab_trainer_free). ST_INVALID when no text was added or when the
 * characters alone need more than size entries. Call once. */
int tok_vocab_trainer_train(tok_vocab_trainer *tr, size_t size, uint64_t min_frequency,
                            const char *const **tokens, size_t *n, tok_vocab_summary *summary,
                            char **err);

#endif
