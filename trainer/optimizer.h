/* The optimizer step over the parameter arena: AdamW as PyTorch's (or as Google BERT's), or
 * SGD with momentum; global-norm gradient clipping; the non-finite guard.
 *
 * Conventions:
 *  1. One step is: optim_grad_norm (over trainable entries, in arena order,
 *     accumulated in double so the figure is the same on every rank) ->
 *     optim_guard_check (skip the update when the loss or the norm is not
 *     finite) -> optim_step (clips with the norm it is given, then updates).
 *  2. Weight decay is decoupled (param -= lr * wd * param) and applies only
 *     to entries flagged PARAMS_DECAY; non-trainable entries are untouched
 *     (values and moments; their gradients count in no norm). Each entry
 *     updates at lr * its lr_scale, the decay term included, as a PyTorch
 *     parameter group with its own lr.
 *  3. step counts updates from 1; it is what the bias correction uses.
 *  4. When p->bf16 is set (precision = bf16), each update also writes the
 *     bf16 copy of the weights it updates, rounded as gemm_to_bf16 rounds,
 *     in the same pass: the copy stays equal to bf16(p->data) with no pass
 *     of its own. Entries not updated keep their copy as it was.
 */
#ifndef DDPT_TRAINER_OPTIMIZER_H
#define DDPT_TRAINER_OPTIMIZER_H

#include <stdint.h>

#include "trainer/params.h"

typedef enum { OPTIM_ADAMW = 0, OPTIM_SGD } optim_kind;

typedef struct optim_config {
  optim_kind kind;
  float beta1, beta2, eps; /* AdamW: torch.optim.AdamW's 0.9, 0.999, 1e-8 */
  float weight_decay;      /* 0.01, torch.optim.AdamW's and BERT's */
  int bias_correction;     /* 1 as torch.optim.AdamW; 0 as Google BERT's
                            * AdamWeightDecayOptimizer (with eps 1e-6) */
  float momentum;          /* SGD */
  float clip_norm;         /* global-norm clipping threshold; <= 0 turns it off */
} optim_config;

/* "adamw", "sgd" for the optim_kind values; NULL past the last. */
const char *optim_kind_name(int kind);

/* torch.optim.AdamW's defaults (as HuggingFace's Trainer uses it): betas
 * 0.9/0.999, eps 1e-8, decay 0.01 (here only on PARAMS_DECAY entries: not
 * biases nor LayerNorm, as BERT and HF's run_mlm), bias correction on;
 * global-norm clipping at 1.0 (HF's max_grad_norm). docs/model.md says why
 * each is what it is. */
optim_config optim_config_default(void);

/* L2 norm of the gradients of all trainable entries. */
double optim_grad_norm(const params *p);

/* optim_step flags. OPTIM_ZERO_GRAD: clear every gradient (frozen entries'
 * too) as the update goes, each chunk right after its update while it is
 * still in cache, so the next step needs no params_zero_grad (a pass over
 * the whole gradient arena less per step). */
enum { OPTIM_ZERO_GRAD = 1u };

/* Applies one update with learning rate lr. grad_norm is the (global) norm
 * from optim_grad_norm; when it exceeds clip_norm every gradient is scaled
 * by clip_norm / grad_norm first (in the update: without OPTIM_ZERO_GRAD the
 * gradient arena is left as it is). */
void optim_step(const optim_config *c, params *p, float lr, uint64_t step, double grad_norm,
                unsigned flags);

/* ZeRO-1: this rank updates only its shard of the arena, n ranges
 * [lo[i], hi[i]) whose edges fall on optim_chunk_cuts, and keeps the
 * moments only for them: m and v are compact, range after range. */
typedef struct optim_shard {
  size_t n;
  const size_t *lo, *hi;
  float *m, *v;
} optim_shard;
/* The offsets where the norm's and the update's units of work start (each
 * entry's chunks), sorted, malloc'd (*cuts; caller frees); their count, 0
 * with *err set when out of memory. */
size_t optim_chunk_cuts(const params *p, size_t **cuts, char **err);
/* The norm's chunks over trainable entries: their count, and each chunk's
 * sum of squares, for the chunks in s (0 elsewhere). Summed over ranks
 * (one non-zero term per chunk: exact), optim_norm_of_chunks gives the
 * same bits as optim_grad_norm over the whole arena. */
size_t optim_norm_chunks(const params *p);
void optim_shard_chunk_sums(const params *p, const optim_shard *s, double *sums);
double optim_norm_of_chunks(const double *sums, size_t n);
/* optim_step over s only (the same bits there as optim_step); with
 * OPTIM_ZERO_GRAD the whole gradient arena is cleared. */
void optim_step_shard(const optim_config *c, params *p, const optim_shard *s, float lr, uint64_t step,
                      double grad_norm, unsigned flags);
/* ZeRO-1, after the all-gather of the updated parameters: p->bf16 =
 * bf16(p->data) over every chunk outside s (the other ranks' updates, which
 * optim_step_shard did not round here). Nothing without p->bf16. */
void optim_shard_bf16_rest(const params *p, const optim_shard *s);
/* Counts non-finite steps. max_consecutive > 0. */
typedef struct optim_guard {
  unsigned max_consecutive;
  unsigned consecutive;
  uint64_t skipped; /* over the whole run */
} optim_guard;

typedef enum { GUARD_APPLY = 0, GUARD_SKIP, GUARD_STOP } optim_guard_verdict;

/* GUARD_APPLY when loss and grad_norm are finite (and resets the run of
 * bad steps); otherwise counts the step and returns GUARD_SKIP, or
 * GUARD_STOP once max_consecutive bad steps came in a row. */
optim_guard_verdict optim_guard_check(optim_guard *g, double loss, double grad_norm);

#endif
