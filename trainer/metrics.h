/* What a run tells its user: RUN_DIR/metrics.jsonl (one JSON object per
 * logged step) and the progress line on the terminal (rank 0 only).
 *
 * Conventions:
 *  1. metrics.jsonl is appended and flushed line by line, so a run that is
 *     killed leaves every line it logged; a resumed run appends.
 *  2. The fields that measure time, and so differ between identical runs,
 *     are exactly those whose names end in "_s" ("tokens_per_s", "elapsed_s",
 *     "comm_wait_s", "comm_s", "post_backward_wait_s") or in "_frac" (the
 *     ratios of such times: "comm_hidden_frac"); every other field is
 *     deterministic.
 *  3. On a terminal the progress line is redrawn in place every step; when
 *     stdout is not a terminal, one plain line is printed per logged step.
 */
#ifndef DDPT_TRAINER_METRICS_H
#define DDPT_TRAINER_METRICS_H

#include <stdint.h>
#include <stdio.h>

typedef struct metrics_step {
  uint64_t step, total_steps;
  uint64_t tokens;      /* tokens seen by all ranks so far */
  double loss;          /* global mean over the step's predicted tokens */
  double mlm_loss, nsp_loss;
  double lr, grad_norm;
  double tokens_per_s;  /* over the last logging interval */
  double elapsed_s;     /* since this process started training */
  /* This step's gradient exchange on rank 0 (docs/distributed.md, "How
   * much communication is hidden"): */
  double comm_wait_s;   /* blocked in the reducers' final wait */
  double comm_s;        /* first gradient bucket started to last one seen done; 0: none */
  double post_backward_wait_s; /* the last backward's end to every gradient summed */
  double comm_hidden_frac;     /* metrics_hidden_fraction(comm_s, post_backward_wait_s) */
  double eta_s;         /* estimated time to the last step (progress only) */
  uint64_t skipped;     /* non-finite steps skipped so far */
  int has_eval;
  double eval_loss, eval_accuracy, eval_perplexity;
  double eval_majority_accuracy; /* PRETRAIN: always answering the most frequent target id */
  int has_eval_nsp;
  double eval_nsp_accuracy;
  /* Fine-tuning: task is a bert_task; for CLASSIFY and TAG the step's loss
   * is the head's (no mlm_loss/nsp_loss), and an evaluation gives eval_loss,
   * eval_accuracy (classify: of the sequences; tag: of the labelled tokens)
   * and these, over the whole validation split: */
  int task;
  double eval_macro_f1;                       /* classify */
  double eval_precision, eval_recall, eval_f1; /* tag: entities, as conlleval */
  int eval_best; /* the best evaluation so far: RUN_DIR/BEST names this step's checkpoint */
} metrics_step;

typedef struct metrics_log metrics_log;

/* Opens RUN_DIR/metrics.jsonl for appending; with truncate, starts it anew
 * (a fresh run) or cuts it back to the lines with step <= keep_through (a
 * resumed run that continues after that step). */
int metrics_log_open(const char *run_dir, int truncate, uint64_t keep_through, metrics_log **out, char **err);
void metrics_log_close(metrics_log *m);
int metrics_log_write(metrics_log *m, const metrics_step *s, char **err);

/* The share of the exchange's span that backward hid: 1 - exposed / comm,
 * clamped to [0, 1]; NaN (null in metrics.jsonl) when nothing was
 * exchanged (comm_s 0: world 1). */
double metrics_hidden_fraction(double comm_s, double exposed_s);

/* The progress line for s; live redraws on a terminal. */
void metrics_progress(FILE *out, int live, const metrics_step *s);
/* Ends a live line so that later output starts on a fresh line. */
void metrics_progress_end(FILE *out, int live);

#endif
