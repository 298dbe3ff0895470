/* Masked-token prediction from a checkpoint alone (`ddpt fill-mask`): the
 * model config from the checkpoint's root attribute `config`, the parameters
 * by name from /params, a vocab.txt for the tokenizer, and the K most
 * probable tokens at each [MASK] of a text.
 *
 * Conventions:
 *  1. Statuses and messages as util/status.h: an int status, and a malloc'd
 *     one-line message through the last argument `char **err`.
 *  2. predict_model_open checks everything it can without the parameters'
 *     values: the header, the config, the vocab against vocab_size, which
 *     heads the file has. The first predict_fill_mask reads /params (strict,
 *     by name, every checksum), so a damaged tensor fails there.
 *  3. The input is [CLS] tokens [SEP], segment 0, no dropout. The literal
 *     "[MASK]" in a text is the [MASK] token and is never split (as
 *     HuggingFace treats special tokens); the text between is tokenized as
 *     corpus/tokenizer.h does.
 *  4. Token strings in results belong to the model's vocab: valid until
 *     predict_model_close. predict_result_clear frees a result.
 */
#ifndef DDPT_TRAINER_PREDICT_H
#define DDPT_TRAINER_PREDICT_H

#include <stddef.h>
#include <stdint.h>

#include "trainer/bert.h"

typedef struct predict_model predict_model;

/* Opens the checkpoint at ckpt_path with the vocab it records (root
 * attribute `vocab`) or, for checkpoints that record none, the vocab at
 * vocab_path. Given both, their SHA-256 must agree (ST_MISMATCH otherwise).
 * lowercase: 1 or 0 as the corpus was tokenized (not --cased), -1 to follow
 * the checkpoint's `vocab_lowercase` (lowercase if it has none). Fails with
 * ST_MISMATCH, naming both sizes, when the vocab's size is not the config's
 * vocab_size.
 * Whether the model has the NSP head (pooler and seq_relationship) follows
 * the names in /params. *out is freed with predict_model_close. */
int predict_model_open(const char *ckpt_path, const char *vocab_path, int lowercase,
                       predict_model **out, char **err);
void predict_model_close(predict_model *pm);

const bert_config *predict_model_config(const predict_model *pm);
/* The vocab's token for id, which must be in [0, vocab_size). */
const char *predict_model_token(const predict_model *pm, int32_t id);

typedef struct predict_token {
  int32_t id;
  const char *token; /* the vocab's */
  float prob;
} predict_token;

typedef struct predict_mask {
  size_t position;    /* in the input: 0 is [CLS], the first word piece is 1 */
  predict_token *top; /* (k) most probable first; equal probabilities: lower id first */
  size_t k;
} predict_mask;

typedef struct predict_result {
  int32_t *ids;        /* (n_ids) the input: [CLS] tokens [SEP] */
  size_t n_ids;
  predict_mask *masks; /* (n_masks) in the order of the text */
  size_t n_masks;
} predict_result;

/* The k (1..vocab_size; larger is cut to vocab_size) most probable tokens at
 * every [MASK] of text. Fails with ST_INVALID when the text has no [MASK] or
 * is longer than the model's max_position_embeddings with [CLS] and [SEP].
 * On failure *out is zeroed. */
int predict_fill_mask(predict_model *pm, const char *text, size_t k, predict_result *out,
                      char **err);
void predict_result_clear(predict_result *r);

#endif
