/* BERT for pretraining and fine-tuning: the model configuration and its
 * presets, the parameter table (HuggingFace BertForPreTraining /
 * BertForMaskedLM / BertForSequenceClassification /
 * BertForTokenClassification names), and forward/backward over one
 * micro-batch with activations in an arena sized once from (batch, seq_len).
 *
 * Conventions:
 *  1. A model is created for a fixed (B, L, predictions per sequence); a
 *     batch that does not fit is refused with a status, never reallocated.
 *  2. bert_forward then bert_backward make one micro-batch; backward
 *     accumulates into the gradient arena, so several micro-batches add up.
 *     Zeroing gradients (params_zero_grad) is a separate step.
 *  3. The MLM head (transform + tied decoder + softmax) runs only at the
 *     positions whose label is not -1; the [P, V] logits are the largest
 *     activation, and this keeps them at P = predicted tokens, not B * L.
 *  4. The task (bert_task) decides the heads; the encoder is the same for
 *     all, so an encoder trained for one task loads by name into another.
 */
#ifndef DDPT_TRAINER_BERT_H
#define DDPT_TRAINER_BERT_H

#include <stddef.h>
#include <stdint.h>

#include "trainer/params.h"

/* What the model is trained for, which decides its heads:
 *  - PRETRAIN: BertForPreTraining / BertForMaskedLM: the MLM head
 *    (cls.predictions.*, decoder tied to the word embeddings), and with nsp
 *    the pooler and cls.seq_relationship.*.
 *  - CLASSIFY: BertForSequenceClassification: the pooler
 *    (bert.pooler.dense, tanh) on [CLS], dropout, classifier.weight
 *    [num_labels, hidden] and classifier.bias [num_labels]; softmax
 *    cross-entropy, a mean over the labelled sequences.
 *  - TAG: BertForTokenClassification: dropout and classifier.* on every
 *    token; softmax cross-entropy, a mean over the labelled tokens (label
 *    -100 is ignored). With crf, a linear-chain CRF (crf.transitions [K, K],
 *    crf.start_transitions [K], crf.end_transitions [K]; trainer/heads.h)
 *    over each sequence's labelled positions instead: the negative
 *    log-likelihood, a mean over the sequences, decoded with Viterbi. */
typedef enum { BERT_TASK_PRETRAIN = 0, BERT_TASK_CLASSIFY, BERT_TASK_TAG } bert_task;

/* "pretrain", "classify", "tag"; NULL past the last. And back: -1 if unknown. */
const char *bert_task_name(int task);
int bert_task_parse(const char *name);

typedef struct bert_config {
  size_t vocab_size;        /* V */
  size_t hidden;            /* C */
  size_t layers;
  size_t heads;             /* NH; hidden % heads == 0 */
  size_t intermediate;      /* I */
  size_t max_positions;     /* >= seq_len */
  size_t type_vocab;        /* token types (segments) */
  float hidden_dropout;     /* embeddings, attention output, FFN output */
  float attention_dropout;  /* attention probabilities */
  float ln_eps;             /* LayerNorm epsilon */
  int nsp;                  /* PRETRAIN: 1: with pooler + next-sentence head */
  int task;                 /* a bert_task */
  size_t num_labels;        /* CLASSIFY, TAG: K >= 2 (0 for PRETRAIN) */
  int crf;                  /* TAG: the CRF head */
} bert_config;

/* Fills cfg from a preset: bert-tiny, bert-mini, bert-small, bert-medium,
 * bert-base. Fails with ST_INVALID naming the presets. */
int bert_config_preset(bert_config *cfg, const char *name, char **err);
/* Sets one field by its HuggingFace config.json key (hidden_size,
 * num_hidden_layers, ...; "nsp" for the NSP head; "task" (a bert_task_name),
 * "num_labels", "crf" (true/false) for the heads). Setting task to classify
 * or tag also clears nsp, which the presets set. */
int bert_config_set(bert_config *cfg, const char *key, const char *value, char **err);
/* Reads the architecture fields of a HuggingFace config.json over cfg (not
 * the task: its label set is the corpus's). */
int bert_config_read_json(bert_config *cfg, const char *path, char **err);
/* Sizes in range; num_labels >= 2 for classify and tag, 0 for pretrain;
 * crf only with tag; nsp only with pretrain. */
int bert_config_validate(const bert_config *cfg, char **err);
/* The usual way to build a config from options: preset (NULL: bert-base),
 * then a HuggingFace config.json (NULL: none), then "key=value" overrides in
 * order; validated. */
int bert_config_resolve(bert_config *cfg, const char *preset, const char *json,
                        char *const *sets, size_t nsets, char **err);
/* One line, "layers=12 hidden=768 ... task=pretrain" (and num_labels, crf
 * for the other tasks), for logs and reports; two configs describe alike
 * exactly when they build the same model. */
void bert_config_describe(const bert_config *cfg, char *buf, size_t size);

/* Adds the model's entries to p in layout order: embeddings, layer 0 ..
 * layer N-1, pooler, heads — so the last layers' gradients, produced first
 * by backward, form the end of the arena. The heads by task:
 *  - PRETRAIN: cls.predictions.* (the MLM decoder weight is the word
 *    embedding matrix, tied, with no entry of its own); with nsp,
 *    bert.pooler.dense.* before them and cls.seq_relationship.* after.
 *    The word embeddings come last, after the heads, not first: the
 *    decoder's share of their gradient is final with the heads'.
 *  - CLASSIFY: bert.pooler.dense.*, classifier.weight [K, C] (normal, std
 *    0.02, weight decay), classifier.bias [K] (zeros).
 *  - TAG: classifier.*, then with crf crf.transitions [K, K],
 *    crf.start_transitions [K], crf.end_transitions [K] (zeros, no weight
 *    decay). */
int bert_params_add(params *p, const bert_config *cfg, char **err);

/* One micro-batch; all arrays (B, L) row-major, int32. */
typedef struct bert_batch {
  size_t B, L;
  const int32_t *input_ids;      /* (B, L) < vocab_size */
  const int32_t *segment_ids;    /* (B, L) < type_vocab */
  const int32_t *attention_mask; /* (B, L) 1 token, 0 padding; position 0 is a token */
  const int32_t *mlm_labels;     /* (B, L) PRETRAIN: target id, or -1 where not predicted;
                                  * ignored (may be NULL) for the other tasks */
  const int32_t *nsp_labels;     /* (B) 0/1, needed when the config has the NSP head */
  const int32_t *class_labels;   /* (B) CLASSIFY: label id, or -100 (no loss) */
  const int32_t *tag_labels;     /* (B, L) TAG: label id at a word's (first) piece, -100
                                  * elsewhere */
} bert_batch;

/* Which dropout masks a forward pass uses. */
typedef struct bert_dropout {
  uint64_t seed;
  uint32_t step;  /* optimizer step */
  uint32_t micro; /* micro-batch within the step */
} bert_dropout;

typedef struct bert_loss {
  double total; /* mlm + nsp (PRETRAIN) or task (CLASSIFY, TAG): what backward differentiates */
  double mlm;   /* mean over predicted tokens */
  double nsp;   /* mean over sequences; 0 without the head */
  size_t predicted;
  size_t mlm_correct; /* predicted tokens whose most likely id is the label */
  size_t nsp_correct; /* sequences whose NSP prediction is right; 0 without the head */
  size_t nsp_count;   /* sequences with an NSP label; 0 without the head */
  double task;         /* CLASSIFY, TAG: the head's loss, a mean over task_count */
  size_t task_count;   /* labelled sequences (CLASSIFY; TAG with crf: sequences with a labelled
                        * position) or labelled tokens (TAG) */
  size_t task_correct; /* CLASSIFY, TAG without crf: of those, argmax right; 0 with crf
                        * (bert_tag_decode, then score) */
} bert_loss;

/* Memory a model needs, in bytes. */
typedef struct bert_memory {
  size_t params, grads, adam; /* adam: m and v together */
  size_t activations;         /* forward activations kept for backward */
  size_t activations_bf16;    /* the same under precision = bf16, which keeps the
                               * attention context, read only by products, in bf16 */
  size_t scratch;             /* backward work buffers */
  size_t param_count;
  /* What precision = bf16 adds: the bf16 copy of the weights, and the
   * buffers the other GEMM operands are rounded into (trainer/gemm.h). */
  size_t bf16_weights, bf16_operands;
} bert_memory;

/* Sizes without allocating. max_pred is as for bert_model_create. */
int bert_memory_estimate(const bert_config *cfg, size_t B, size_t L, size_t max_pred,
                         bert_memory *mem, char **err);

/* Floating-point operations of one training step, forward and backward, of
 * B sequences of L tokens with `predicted` predicted tokens among them. A
 * multiply-add counts two, and backward twice forward (input and weight
 * gradients); element-wise work and lookups count nothing. */
/* Bytes in all for a precision (a gemm_precision). */
size_t bert_memory_total(const bert_memory *mem, int precision);

typedef struct bert_flops {
  /* The common yardstick, comparable across implementations: 6 per
   * parameter per token plus attention's QK^T and PV, 12 * layers * L *
   * hidden per token. */
  double model;
  /* What ddpt computes: the encoder for every token except in the last
   * layer, which computes keys and values for every token and the rest for
   * the rows the heads read (predicted tokens and [CLS]; every token for
   * TAG); the MLM head at the predicted tokens only (its decoder is the word
   * embeddings), the pooler and the NSP or CLASSIFY classifier once per
   * sequence, TAG's classifier at every token. The CRF is element-wise work
   * (O(K^2) per labelled position) and counts nothing. */
  double work;
} bert_flops;

/* Counts without allocating a model. predicted is ignored (taken as 0) for
 * CLASSIFY and TAG, which have no MLM head. Fails with ST_INVALID on a
 * config or batch that bert_model_create would refuse. */
int bert_flops_per_step(const bert_config *cfg, size_t B, size_t L, size_t predicted,
                        bert_flops *out, char **err);

typedef struct bert_model bert_model;

/* Creates the parameter dictionary (uninitialised: call params_init or load
 * values) and the activation arena for batches of up to (B, L) with up to
 * B * max_pred predicted tokens. max_pred is PRETRAIN's (1..L); CLASSIFY
 * and TAG have no MLM head and ignore it (pass 0). Fails with ST_NOMEM
 * naming the bytes when the arenas cannot be allocated. *out is freed with
 * bert_model_free. */
int bert_model_create(bert_model **out, const bert_config *cfg, size_t B, size_t L,
                      size_t max_pred, char **err);
void bert_model_free(bert_model *m);

params *bert_model_params(bert_model *m);

/* Computes the model's products in a precision (a gemm_precision, fp32 by
 * default). bf16 keeps fp32 parameters, gradients and optimizer state and
 * a bf16 copy of the parameters (the params' bf16 arena), rounded once per
 * update: optim_step writes it as it updates (optimizer.h, 4); call
 * bert_weights_changed whenever the parameters change otherwise (a load,
 * ZeRO-1's all-gather without optim_shard_bf16_rest) and the next pass
 * refills the whole copy. bf16 also keeps the attention context, which
 * only products read, in bf16 (bert_memory.activations_bf16), re-laying
 * the activation arena out. Fails, with the line to show, where this CPU has
 * no native bf16 (gemm_set_precision), or out of memory. */
int bert_set_precision(bert_model *m, int precision, char **err);
int bert_precision(const bert_model *m);
void bert_weights_changed(bert_model *m);

/* Forward over a batch. drop NULL means no dropout (evaluation). For
 * CLASSIFY and TAG, class_labels or tag_labels NULL means prediction: the
 * logits (bert_task_logits) and no loss. The loss fields of the other tasks
 * are 0. Fails with ST_INVALID when the batch does not fit the model or
 * holds an id or label out of range. */
int bert_forward(bert_model *m, const bert_batch *batch, const bert_dropout *drop,
                 bert_loss *loss, char **err);
/* CLASSIFY: the (B, K) logits of the last bert_forward, one row per
 * sequence; TAG: (B * L, K), one row per position (padding rows included,
 * meaningless). A forward without labels (class_labels or tag_labels NULL)
 * computes them and no loss. *rows and *K receive the shape. Owned by the
 * model; valid until the next bert_forward or bert_backward. NULL for
 * PRETRAIN. */
const float *bert_task_logits(const bert_model *m, size_t *rows, size_t *K);

/* TAG: the label predicted at each position of the last bert_forward's
 * batch where chain (B, L) is not -100 (the labelled positions, or at
 * prediction time each word's first piece): the argmax of the logits, or
 * with the CRF the Viterbi path over each sequence's chain. pred (B, L)
 * receives -100 elsewhere. Fails (ST_INVALID) for another task. */
int bert_tag_decode(bert_model *m, const int32_t *chain, int32_t *pred, char **err);

/* The MLM probabilities of the last bert_forward: *P rows (the predicted
 * positions, in batch row-major order) of vocab_size floats, each row a
 * softmax. Owned by the model; valid until the next bert_forward or
 * bert_backward (backward turns them into gradients in place). */
const float *bert_mlm_probs(const bert_model *m, size_t *P);

/* By default the last encoder layer computes only the rows the heads read
 * (the predicted tokens and, with NSP or CLASSIFY, [CLS]; TAG reads every
 * row): no other row of its output is used, so the loss and every gradient
 * are those of the whole layer. full = 1 computes every row (tests). */
void bert_set_last_layer_full(bert_model *m, int full);

/* Weights of each term's per-token gradient. With gradient accumulation or
 * several ranks the loss is a mean over the predicted tokens of all of them:
 * mlm = 1 / (predicted tokens in the global batch), nsp = 1 / (sequences in
 * the global batch), task = 1 / (the sum of bert_loss.task_count over the
 * global batch). */
typedef struct bert_grad_scale {
  float mlm;  /* per predicted token */
  float nsp;  /* per sequence */
  float task; /* per unit of bert_loss.task_count */
} bert_grad_scale;

/* Adds to the gradient arena the gradient of sum(mlm token losses) *
 * scale->mlm + sum(nsp losses) * scale->nsp + sum(task losses) *
 * scale->task (a task loss per unit of task_count); scale NULL means this
 * batch's own means (the gradient of loss->total). Must follow bert_forward
 * on the same batch, with its labels (bert_tag_decode between them is
 * fine). */
void bert_backward(bert_model *m, const bert_batch *batch, const bert_grad_scale *scale);

/* Called by bert_backward each time every gradient at arena offset >= lo is
 * final: after the heads, after each encoder layer (the last one first), and
 * with lo = 0 after the embeddings. The data-parallel loop starts reducing
 * gradient buckets from it while backward goes on. */
typedef void (*bert_grad_ready_fn)(void *ctx, size_t lo);
/* Installs fn (NULL removes it) for the following bert_backward calls.
 * A pretraining model reports its word embeddings (the decoder's weight)
 * final with the heads, so it needs bert_set_word_grad_rows too. */
void bert_set_grad_ready(bert_model *m, bert_grad_ready_fn fn, void *ctx);

/* The word-embedding lookup's share of the gradient, out of the arena: the
 * following bert_backward calls add token i's (i < B * L) into row
 * rows[i] of dwte (rows of hidden floats, +=) instead of into the arena at
 * its id; the arena's word embeddings then get the tied decoder's share
 * only. The caller adds the rows back (data parallel: after summing them
 * over ranks as a compact buffer of the step's distinct ids). dwte NULL:
 * into the arena again. rows is read at each bert_backward. */
void bert_set_word_grad_rows(bert_model *m, float *dwte, const int32_t *rows);

#endif
