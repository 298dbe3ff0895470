/* Prediction from a checkpoint alone: the model config from the
 * checkpoint's root attribute `config`, the parameters by name from /params,
 * the vocab it records (or a vocab.txt) for the tokenizer. Two kinds:
 *  - fill-mask (`ddpt fill-mask`), for pretraining checkpoints: the K most
 *    probable tokens at each [MASK] of a text;
 *  - task prediction (`ddpt predict`), for fine-tuned checkpoints (config
 *    [model] task = classify|tag, classifier.* in /params, the label names in
 *    the root attribute `labels`): a class and its probabilities for each
 *    text or pair, or a tag for each word of a line and the spans they make.
 *
 * Conventions:
 *  1. Statuses and messages as util/status.h: an int status, and a malloc'd
 *     one-line message through the last argument `char **err`.
 *  2. predict_model_open checks everything it can without the parameters'
 *     values: the header, the config, the vocab against vocab_size, which
 *     heads the file has, the label names against num_labels. The first
 *     prediction reads /params (strict, by name, every checksum), so a
 *     damaged tensor fails there.
 *  3. Inputs are built as `ddpt shard` builds training examples
 *     (corpus/labelled.h), so train-time and predict-time sequences are the
 *     same: fill-mask: [CLS] tokens [SEP], segment 0; classify: [CLS] a [SEP]
 *     or [CLS] a [SEP] b [SEP] (segment 1 from b on), too long: cut
 *     longest_first as `ddpt shard --truncate`; tag: [CLS] pieces [SEP],
 *     pieces past the limit cut. No dropout. The literal "[MASK]" in a
 *     fill-mask text is the [MASK] token and is never split (as HuggingFace
 *     treats special tokens); other text is tokenized as corpus/tokenizer.h
 *     does.
 *  4. Task prediction runs up to a batch of inputs in one forward pass,
 *     padded to the longest sequence of the batch (padding is masked out of
 *     attention and changes no result).
 *  5. Token and label strings in results belong to the model: valid until
 *     predict_model_close. predict_result_clear and predict_tagged_clear
 *     free results.
 */
#ifndef DDPT_TRAINER_PREDICT_H
#define DDPT_TRAINER_PREDICT_H

#include <stddef.h>
#include <stdint.h>

#include "trainer/bert.h"
#include "trainer/task_metrics.h"

typedef struct predict_model predict_model;

/* Opens the checkpoint at ckpt_path, pretraining or fine-tuned, with the
 * vocab it records (root
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

/* Computes the model's products in a precision (a gemm_precision, fp32 by
 * default; see bert_set_precision). Fails, with the line to show, where this
 * CPU has no native bf16. */
int predict_model_set_precision(predict_model *pm, int precision, char **err);

/* ST_OK when the model has a task head (classify or tag); else ST_INVALID
 * with the line that says to use fill-mask or fine-tune the checkpoint. */
int predict_model_check_task(const predict_model *pm, char **err);

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

/* ---------------------------------------------------- task prediction */

/* The name of label id (< num_labels): the checkpoint's `labels`, or the id
 * in decimal for a checkpoint that records none. */
const char *predict_model_label(const predict_model *pm, int32_t id);
/* The chunk types of the label set (task_tagset's: "PER" of B-PER, "" for
 * BMES without types), for task_chunk.type. TAG only. */
const task_tagset *predict_model_tagset(const predict_model *pm);

/* Cuts inputs to seq_len tokens with [CLS] and [SEP] (8..max_position_
 * embeddings; the default is max_position_embeddings): give the --seq-len
 * the training corpus was sharded with to cut long inputs as training did.
 * ST_INVALID outside the range. */
int predict_model_set_seq_len(predict_model *pm, size_t seq_len, char **err);

/* CLASSIFY: texts[i] is one example, "text" or "text_a<TAB>text_b" (a pair;
 * a final '\r' is dropped). Writes, for each of the n inputs, the most
 * probable label (equal probabilities: the lower id) and the softmax over
 * the num_labels labels, and whether pieces were cut to fit. A text that
 * is blank, holds more than one TAB, or gives no word piece fails with
 * ST_INVALID, *bad set to its index (other failures leave *bad = n). */
int predict_classify(int32_t *label,   /* (n) */
                     float *probs,     /* (n, num_labels) */
                     int *truncated,   /* (n) */
                     size_t *bad, predict_model *pm, const char *const *texts, size_t n,
                     char **err);

/* One line tagged. Words are the line's whitespace-separated tokens (ASCII
 * and Unicode space separators), with every CJK ideograph a word of its own
 * (BERT's tokenizer splits them; Chinese CoNLL data is one character per
 * line): what `ddpt shard --task tag` reads as one CoNLL token each. A
 * word's tag is the one predicted at its first piece; a word that gives no
 * piece is [UNK], as the shard makes it. */
typedef struct predict_tagged {
  size_t n_words;      /* the words tagged: all of them unless cut */
  size_t words_in_line;
  size_t *begin, *end; /* (n_words) the words' byte offsets in the line */
  int32_t *tags;       /* (n_words) label ids */
  task_chunk *spans;   /* (n_spans) word indices [begin, end) and type */
  size_t n_spans;
} predict_tagged;

/* TAG: tags each of the n lines (a final '\r' is dropped): argmax at each
 * word's first piece, or the CRF's Viterbi path over the words. Words
 * whose first piece falls past seq_len - 2 pieces are not tagged
 * (n_words < words_in_line). A blank line fails with ST_INVALID, *bad set
 * to its index (other failures leave *bad = n). On failure every out[i] is
 * zeroed. */
int predict_tag(predict_tagged *out, /* (n) */
                size_t *bad, predict_model *pm, const char *const *lines, size_t n, char **err);
void predict_tagged_clear(predict_tagged *t);

#endif
