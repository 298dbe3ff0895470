/* `ddpt train`: the training loop. Every rank runs it; comm/ averages the
 * gradients, rank 0 writes metrics and checkpoints.
 *
 * One step: read A micro-batches; agree on the global number of predicted
 * tokens (the loss is their mean, so N ranks x A micro-batches give the
 * update of one batch N*A times larger); forward and backward each
 * micro-batch, reducing gradient buckets during the last backward; clip by
 * the global norm; skip the update on a non-finite loss or norm; AdamW (or
 * SGD) at the schedule's learning rate. Evaluation, parameter-hash checks
 * and checkpoints happen between steps.
 */
#ifndef DDPT_TRAINER_TRAIN_H
#define DDPT_TRAINER_TRAIN_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

typedef struct train_request {
  const char *config_path;   /* INI file; NULL on resume uses the checkpoint's config */
  char *const *overrides;    /* "section.key=value" */
  size_t n_overrides;
  const char *run_dir;
  int resume;                /* continue from run_dir's newest valid checkpoint */
  int threads;               /* > 0 overrides [train] threads */
  /* Set (by a signal handler) to ask for a checkpoint and a clean stop at
   * the end of the current step. */
  volatile sig_atomic_t *stop_requested;
  FILE *out;                 /* rank 0's progress and summary; NULL: stdout */
} train_request;

/* ST_OK when the run reached its last step; ST_INTERRUPTED when
 * stop_requested ended it after a checkpoint; otherwise the failure. */
int train_run(const train_request *req, char **err);

#endif
