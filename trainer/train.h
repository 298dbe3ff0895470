/* `ddpt train` and `ddpt finetune`: the training loop. Every rank runs it;
 * comm/ averages the gradients, rank 0 writes metrics and checkpoints.
 *
 * One step: read A micro-batches; agree on the global number of predicted
 * tokens (the loss is their mean, so N ranks x A micro-batches give the
 * update of one batch N*A times larger); forward and backward each
 * micro-batch, reducing gradient buckets during the last backward; clip by
 * the global norm; skip the update on a non-finite loss or norm; AdamW (or
 * SGD) at the schedule's learning rate. Evaluation, parameter-hash checks
 * and checkpoints happen between steps.
 *
 * Fine-tuning is the same loop with the task the corpus's manifest names
 * (classify or tag): its head's loss takes the place of MLM/NSP, normalised
 * the same way (over the labelled sequences or tokens of the global batch);
 * [finetune] freezes entries and scales their learning rates; every
 * evaluation scores the whole validation split (task_metrics.h), is
 * checkpointed, and RUN_DIR/BEST names the best checkpoint by best_metric;
 * the last step writes RUN_DIR/report.json.
 */
#ifndef DDPT_TRAINER_TRAIN_H
#define DDPT_TRAINER_TRAIN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "trainer/metrics.h"

/* [train] zero = 1: a checkpoint streams each other rank's shard of the
 * Adam moments to rank 0 in pieces of this many floats (4 MiB), the most
 * of them rank 0 holds at once beyond its own shard (ddpt model info). */
enum { TRAIN_CKPT_PIECE_FLOATS = 1 << 20 };

/* What a run's gradient exchange allocates per rank beyond the model's
 * memory (bert_memory), at most: the reducer's partial sums (accumulation
 * A > 1) and receive buffers over the arena (param_floats; fine-tuning
 * with zero = 0 leaves the word embeddings out of it), and, when
 * pretraining or fine-tuning with zero = 0, the word-embedding lookup's
 * compact rows (one per distinct id of the step over every rank:
 * min(vocab, world * A * B * L)) with their reducer's and their id
 * tables. task: a bert_task; bucket_mb: [train] bucket_mb.
 * `ddpt model info` prints them. */
typedef struct train_exchange_memory {
  size_t arena;  /* the arena's reducer */
  size_t lookup; /* the lookup rows; 0 when fine-tuning with zero = 1 */
} train_exchange_memory;
train_exchange_memory train_exchange_estimate(size_t param_floats, int task, int zero, size_t vocab, size_t hidden,
                                              size_t B, size_t L, size_t A, size_t world, double bucket_mb);

/* What a run is about to do: rank 0 hands it to the observer once set-up
 * is done, before the first step. */
typedef struct train_plan {
  const char *run_dir;
  const char *config_text; /* the resolved config (INI), as in RUN_DIR/config.ini */
  char model[256];         /* bert_config_describe of the model */
  size_t param_count;
  int world, threads;      /* ranks; threads per rank */
  size_t accumulation, batch_size, seq_len; /* per rank */
} train_plan;

/* Rank 0's view of a run as it goes, for the CLI to show; the library
 * prints nothing itself. Either callback may be NULL. */
typedef struct train_observer {
  void *ctx;
  void (*planned)(void *ctx, const train_plan *plan);
  /* After every step. logged: the step went to metrics.jsonl (every
   * [log] every steps, the first, the last, evaluations, a stop). final: no
   * step follows (the last one, or a stop). */
  void (*stepped)(void *ctx, const metrics_step *m, int logged, int final);
} train_observer;

typedef struct train_request {
  const char *config_path;   /* INI file; NULL on resume uses the checkpoint's config */
  char *const *overrides;    /* "section.key=value" */
  size_t n_overrides;
  const char *run_dir;
  int resume;                /* continue from run_dir's newest valid checkpoint */
  /* 1: `ddpt finetune`: the corpus must be labelled, and a fresh run needs
   * init. 0: `ddpt train`: the corpus must be a pretraining one. */
  int finetune;
  /* A fresh run starting from these weights (a ddpt checkpoint, a
   * HuggingFace directory or a TF checkpoint: trainer/interchange.h) with a
   * fresh optimizer and data position; the model config is the init's.
   * NULL: initialised from the seed. */
  const char *init;
  int threads;               /* > 0 overrides [train] threads */
  /* Set (by a signal handler) to ask for a checkpoint and a clean stop at
   * the end of the current step. */
  volatile sig_atomic_t *stop_requested;
  train_observer observer;   /* rank 0 only */
} train_request;

/* How far a run got; filled on every return of train_run. */
typedef struct train_summary {
  uint64_t steps, tokens; /* tokens over all ranks */
  uint64_t skipped;       /* steps whose update was skipped (non-finite) */
  double seconds;         /* from the first step of this process */
  double comm_wait_s;     /* the last step: rank 0 blocked on gradient buckets */
  size_t buckets;         /* gradient buckets per step */
  /* On failure: every rank returned it at the same point (rank 0 failed to
   * evaluate or to prepare the run directory or sample logs, ranks
   * disagree, a run of non-finite steps), so none waits in a collective and
   * the job can end without being aborted; rank 0's message says why. */
  int failed_together;
  /* Fine-tuning with evaluation: the checkpoint RUN_DIR/BEST names. */
  int has_best;
  uint64_t best_step;
  double best_value;
  const char *best_metric; /* run_config_best_metric_name; static */
} train_summary;

/* ST_OK when the run reached its last step; ST_INTERRUPTED when
 * stop_requested ended it after a checkpoint; otherwise the failure. */
int train_run(const train_request *req, train_summary *summary, char **err);

#endif
