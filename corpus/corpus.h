/* corpus: text to token ids, LevelDB shards, batches. Only corpus/ includes
 * LevelDB's and utf8proc's headers.
 *
 * The reader, for the training loop:
 *  1. corpus_open(dir, rank, world, ...) opens the shards s = rank (mod world).
 *  2. corpus_next_batch fills a corpus_batch (fixed (B, L) shapes) and never
 *     runs dry: a shard that reaches the end of an epoch starts the next.
 *  3. The data position is one corpus_cursor (shard, epoch, position) per
 *     shard of the corpus. A rank advances only the cursors of its shards;
 *     a checkpoint stores, for each shard, the cursor of the rank that owns
 *     it. Set on any world size, the same cursors continue the same streams.
 *  4. Handles are opaque; each _open has a _close, each _alloc a _free;
 *     x_close(NULL) and x_free(NULL) are no-ops. Errors follow util/status.h.
 *  5. One reader for every task (corpus_manifest(c)->task): a pretraining
 *     corpus gives masked batches (mlm_labels, nsp_labels); a labelled one
 *     (classify, tag) gives its ids unmasked with class_labels or
 *     tag_labels. Order, ownership, cursors and validation are the same.
 *  6. Readers never write into a corpus and take no lock: any number of
 *     processes read one corpus at once, also from a read-only filesystem.
 *     A shard file changed under a reader stops it with ST_CORRUPT naming
 *     the shard (shard_reader.h says how).
 */
#ifndef DDPT_CORPUS_CORPUS_H
#define DDPT_CORPUS_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include "corpus/manifest.h"

/* "LevelDB major.minor" and "utf8proc x.y.z" of the libraries ddpt runs with. */
void corpus_leveldb_version(char *buf, size_t size);
void corpus_utf8proc_version(char *buf, size_t size);

typedef struct corpus_options {
  size_t batch_size;
  uint64_t seed;          /* the order of every epoch and every mask */
  double mask_prob;       /* 0.15 */
  size_t max_predictions; /* per sample; 0: corpus_default_max_predictions */
  int whole_word;         /* mask whole words (needs the corpus's vocab.txt) */
  /* Optional: the vocab the caller will use. Its SHA-256 must equal the
   * corpus's, or opening fails with ST_MISMATCH naming both. */
  const char *vocab_path;
} corpus_options;

/* batch_size 32, seed 0, mask_prob 0.15, max_predictions 0 (the default
 * below, from the corpus's seq_len), no whole-word masking, no vocab check. */
void corpus_options_default(corpus_options *opt);

/* The one default masking budget: ceil(mask_prob * seq_len) predictions per
 * sequence (BERT's 20 at 128 with 0.15), at least 1 and at most seq_len.
 * ddpt train, model info and bench all size the model with it. */
size_t corpus_default_max_predictions(double mask_prob, size_t seq_len);

/* A label the loss ignores (HuggingFace's ignore_index). */
#define CORPUS_IGNORE_LABEL (-100)

typedef struct corpus_sample {
  uint32_t shard, epoch;
  uint64_t index; /* key within the shard */
} corpus_sample;

typedef struct corpus_batch {
  size_t batch_size, seq_len;
  size_t count;            /* rows holding samples; the rest are padding */
  int32_t *input_ids;      /* (B, L) masked ids, [PAD] after the sequence */
  int32_t *segment_ids;    /* (B, L) 0 for segment A and padding, 1 for B */
  int32_t *attention_mask; /* (B, L) 1 on tokens, 0 on padding */
  int32_t *mlm_labels;     /* (B, L) original id where predicted, -1 elsewhere */
  int32_t *nsp_labels;     /* (B) 1 = B is a random next, 0 = actual next, -1 = none */
  /* Labelled corpora; CORPUS_IGNORE_LABEL wherever there is no label (every
   * entry of a pretraining batch, padding rows). mlm_labels are then all -1. */
  int32_t *class_labels;   /* (B) classify: the example's label id */
  int32_t *tag_labels;     /* (B, L) tag: the label id of a word's first piece (of
                              every piece with label_all_pieces), else ignored */
  corpus_sample *samples;  /* (B) where each row came from */
  uint32_t *masked;        /* (B, L) per row: masked positions, ascending */
  size_t *num_masked;      /* (B) entries of masked used per row */
} corpus_batch;

/* *out owns a batch of the given shape; free it with corpus_batch_free. */
int corpus_batch_alloc(size_t batch_size, size_t seq_len, corpus_batch **out, char **err);
void corpus_batch_free(corpus_batch *b);

typedef struct corpus_cursor {
  uint32_t shard, epoch;
  uint64_t position; /* next position in the epoch's permutation */
} corpus_cursor;

typedef struct corpus corpus;

/* Opens the corpus in dir for this rank of world. Fails on an incomplete
 * corpus (no manifest), a damaged one, a vocab mismatch, or more ranks than
 * shards. *out owns the reader; close it with corpus_close. */
int corpus_open(const char *dir, int rank, int world, const corpus_options *opt, corpus **out,
                char **err);
void corpus_close(corpus *c);

const manifest *corpus_manifest(const corpus *c);
size_t corpus_num_shards(const corpus *c);
int corpus_owns_shard(const corpus *c, size_t shard);

/* Fills all batch_size rows of b (allocated with the corpus's batch size
 * and seq_len). Rows come from this rank's shards: each row from the shard
 * least far through its stream (epoch + position / sequences), ties to the
 * lower shard. Fails only on a damaged shard. */
int corpus_next_batch(corpus *c, corpus_batch *b, char **err);

/* Writes corpus_num_shards cursors, cursors[s].shard == s. */
void corpus_state_get(const corpus *c, corpus_cursor *cursors);
/* Sets every cursor; n must be corpus_num_shards and cursors[s].shard == s,
 * position below the shard's sequences (ST_INVALID otherwise). */
int corpus_state_set(corpus *c, const corpus_cursor *cursors, size_t n, char **err);

/* Validation data: every validation sequence in a fixed order with fixed
 * masks (seeded by the options' seed), for deterministic evaluation. */
typedef struct corpus_valid corpus_valid;

/* ST_INVALID when the corpus has no validation shards. */
int corpus_valid_open(const char *dir, const corpus_options *opt, corpus_valid **out, char **err);
void corpus_valid_close(corpus_valid *v);
uint64_t corpus_valid_size(const corpus_valid *v);
/* Fills b with validation samples start, start+1, ... (at most batch_size,
 * fewer at the end: b->count says how many). */
int corpus_valid_batch(corpus_valid *v, uint64_t start, corpus_batch *b, char **err);

#endif
