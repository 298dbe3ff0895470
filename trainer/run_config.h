/* The run configuration of `ddpt train` and `ddpt finetune`: an INI file
 * (sections model, data, optim, schedule, train, checkpoint, log, finetune) plus `--set section.key=value`
 * overrides, checked key by key and resolved to one canonical text.
 *
 * Conventions:
 *  1. Every key has a type and an allowed range; an unknown section or key,
 *     or a value out of range, fails naming the file, line, key and range.
 *  2. [model] starts from `preset` (default bert-tiny), then `hf_config` (a
 *     HuggingFace config.json), then the other [model] keys in the file, by
 *     their HuggingFace names (hidden_size, num_hidden_layers, ...), whatever
 *     their order in the file. Whether the model has the next-sentence head
 *     is not a setting: it follows the corpus (sharded with --nsp or not).
 *  3. run_config_format writes every setting, defaults included, as INI (the
 *     hf_config path as a comment, since its fields are written out): the
 *     text printed at start, written to RUN_DIR/config.ini, stored in
 *     checkpoints and hashed to check that all ranks run the same config.
 */
#ifndef DDPT_TRAINER_RUN_CONFIG_H
#define DDPT_TRAINER_RUN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "trainer/bert.h"
#include "trainer/optimizer.h"
#include "trainer/schedule.h"

enum { RUN_CONFIG_PATH_MAX = 1024 };

/* [finetune] best_metric: the evaluation figure that picks RUN_DIR/BEST.
 * AUTO resolves when the corpus is known (run_config_best_metric_auto). */
typedef enum {
  RUN_BEST_AUTO = 0,
  RUN_BEST_ACCURACY,       /* classification accuracy (higher is better) */
  RUN_BEST_MACRO_F1,       /* classification macro-F1 */
  RUN_BEST_TOKEN_ACCURACY, /* tagging: labelled tokens tagged right */
  RUN_BEST_ENTITY_F1,      /* tagging: conlleval's overall chunk F1 */
  RUN_BEST_LOSS,           /* validation loss (lower is better) */
} run_best_metric;

/* "auto", "accuracy", "macro_f1", "token_accuracy", "entity_f1", "loss";
 * NULL past the last. */
const char *run_config_best_metric_name(int metric);

/* [finetune]: what a fine-tuning run trains, and at which rates. */
typedef struct run_finetune {
  int freeze_embeddings; /* bert.embeddings.* are not updated */
  size_t freeze_layers;  /* the first k encoder layers are not updated */
  double head_lr;        /* pooler, classifier, crf; 0: [optim] lr */
  double layer_lr_decay; /* layer i of N at lr * d^(N - i), embeddings d^(N + 1); 1: off */
  int crf;               /* tag: a CRF over the classifier's emissions */
  int best_metric;       /* a run_best_metric */
} run_finetune;

typedef struct run_config {
  /* [model] */
  char preset[64];
  int model_given;   /* a [model] size was set (preset, hf_config, a size key; by the file or --set) */
  int dropout_given; /* a [model] dropout rate was set */
  char hf_config[RUN_CONFIG_PATH_MAX];
  bert_config model; /* vocab_size 0 means "take it from the corpus" */
  /* [data] */
  char corpus[RUN_CONFIG_PATH_MAX];
  size_t max_predictions; /* 0: corpus_default_max_predictions */
  double mask_prob;
  int whole_word_mask;
  size_t eval_batches;
  /* [optim] */
  optim_config optim;
  double lr;
  unsigned max_nonfinite; /* consecutive non-finite steps that stop the run */
  /* [schedule] */
  schedule sched;         /* total is filled from [train] steps */
  double warmup_ratio;    /* used when warmup_steps is 0 */
  /* [train] */
  size_t batch_size;      /* sequences per rank per micro-batch */
  size_t accumulation;    /* micro-batches per update */
  uint64_t steps;         /* updates; 0: derived from tokens */
  uint64_t tokens;        /* stop after this many tokens when steps is 0 */
  uint64_t seed;
  int threads;            /* 0: all cores of this rank */
  int precision;          /* a gemm_precision: fp32, or bf16 products (trainer/gemm.h) */
  double bucket_mb;       /* gradient reduction bucket size */
  int zero;               /* ZeRO stage: 0 (replicated) or 1 (optimizer state sharded over ranks) */
  double watchdog_s;      /* a wait in a collective longer than this ends the job; 0: off */
  uint64_t hash_every;    /* compare parameter hashes across ranks */
  /* [checkpoint] */
  uint64_t ckpt_every;    /* 0: only at the end */
  unsigned ckpt_keep;     /* 0: keep all */
  /* [log] */
  uint64_t log_every;
  uint64_t eval_every;    /* 0: no evaluation */
  int log_level;          /* a log_level (util/log.h) */
  int log_samples;        /* each rank writes RUN_DIR/samples/rank-R.txt */
  /* [finetune] */
  run_finetune finetune;
} run_config;

/* Defaults: bert-tiny, BERT's optimizer and linear schedule, batch 32. */
void run_config_defaults(run_config *c);

/* The default best metric of a fine-tuning task (a bert_task) over labels
 * names[0 .. K): accuracy for classify; for tag, entity_f1 when the labels
 * read as chunk tags (every one O, or B/I/E/S/M-prefixed: BIO, BIOES,
 * BMES), token_accuracy otherwise. */
run_best_metric run_config_best_metric_auto(int task, const char *const *names, size_t K);

/* Reads path (NULL: defaults only) and applies the overrides
 * ("section.key=value", n of them) after it. */
int run_config_load(run_config *c, const char *path, char *const *overrides, size_t n, char **err);

/* The same from INI text held in memory (a checkpoint's config); source
 * names it in messages. */
int run_config_load_text(run_config *c, const char *text, const char *source, char *const *overrides, size_t n,
                         char **err);

/* Applies one "section.key=value" to an already loaded config: the settings
 * a resumed run may change (learning rate, total steps, eval interval...). */
int run_config_set(run_config *c, const char *section, const char *key, const char *value, char **err);

/* The full resolved config as INI text; malloc'd, caller frees. */
char *run_config_format(const run_config *c);

#endif
