/* AdamW (BERT's AdamWeightDecayOptimizer, optionally bias-corrected) and
 * SGD with momentum over the parameter arena; clipping; non-finite guard.
 * Compiled with -ffp-contract=off (CMakeLists.txt): the update uses only
 * correctly rounded IEEE operations, so every rank computes the same bits
 * for its replica whichever vector clone its CPU runs. */
#include "trainer/optimizer.h"

#include <math.h>
#include <string.h>

#include "trainer/simd.h"

const char *optim_kind_name(int kind) {
  static const char *const names[] = {"adamw", "sgd"};
  return kind >= 0 && kind < (int)(sizeof names / sizeof names[0]) ? names[kind] : NULL;
}

optim_config optim_config_default(void) {
  optim_config c = {
      .kind = OPTIM_ADAMW, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
      .weight_decay = 0.01f, .bias_correction = 1, .momentum = 0.9f, .clip_norm = 1.0f,
  };
  return c;
}

/* Elements per unit of parallel work. Sums are formed per chunk and the
 * chunk sums added in arena order, so the norm does not depend on the
 * thread count. */
#define OPT_CHUNK 65536
/* Independent accumulators of a chunk's sum: a fixed number, so the order of
 * additions is the same whatever vector width the clone runs with. */
#define NORM_LANES 16
/* Chunk sums held at once: added in arena order a block at a time, they
 * need no allocation, so the norm cannot fail (nor abort) for lack of
 * memory whatever the model's size. */
#define NORM_BLOCK 256

/* A float squared is exact in double, so a fused multiply-add gives the
 * same bits as a multiply and an add: the sum is the same on every CPU. */
VECTOR_CLONES static double sum_squares(const float *g, size_t n) {
  double acc[NORM_LANES] = {0};
  size_t i = 0;
  for (; i + NORM_LANES <= n; i += NORM_LANES) {
#pragma omp simd
    for (int j = 0; j < NORM_LANES; j++) acc[j] += (double)g[i + j] * (double)g[i + j];
  }
  for (int j = 0; i < n; i++, j++) acc[j] += (double)g[i] * (double)g[i];
  double s = 0;
  for (int j = 0; j < NORM_LANES; j++) s += acc[j];
  return s;
}

double optim_grad_norm(const params *p) {
  double sum = 0;
  for (size_t e = 0; e < p->count; e++) {
    const params_entry *en = &p->entries[e];
    if (!(en->flags & PARAMS_TRAINABLE)) continue;
    const float *g = p->grad + en->offset;
    size_t n = (en->count + OPT_CHUNK - 1) / OPT_CHUNK;
    for (size_t c0 = 0; c0 < n; c0 += NORM_BLOCK) {
      double part[NORM_BLOCK];
      size_t nb = n - c0 < NORM_BLOCK ? n - c0 : NORM_BLOCK;
#pragma omp parallel for if (en->count >= 2 * OPT_CHUNK)
      for (size_t c = 0; c < nb; c++) {
        size_t i0 = (c0 + c) * OPT_CHUNK, len = en->count - i0 < OPT_CHUNK ? en->count - i0 : OPT_CHUNK;
        part[c] = sum_squares(g + i0, len);
      }
      for (size_t c = 0; c < nb; c++) sum += part[c];
    }
  }
  return sqrt(sum);
}

/* The update's scalars: AdamW's betas, eps and bias corrections c1, c2; SGD's
 * momentum mu; both: the clipping scale, lr and the entry's decay. */
typedef struct update_coef {
  float b1, b2, eps, c1, c2, mu, gscale, lr, wd;
} update_coef;

/* w, g, m, v: (n). BERT's update: m, v moments; u = m / (sqrt(v) + eps)
 * (with bias correction: m/(1-b1^t), v/(1-b2^t)); w -= lr * (u + wd * w). */
VECTOR_CLONES static void adamw_range(float *w, const float *g, float *m, float *v, size_t n,
                                      update_coef k) {
#pragma omp simd
  for (size_t i = 0; i < n; i++) {
    float gi = g[i] * k.gscale;
    float mi = k.b1 * m[i] + (1.0f - k.b1) * gi;
    float vi = k.b2 * v[i] + (1.0f - k.b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float u = (mi * k.c1) / (sqrtf(vi * k.c2) + k.eps);
    w[i] -= k.lr * (u + k.wd * w[i]);
  }
}

/* PyTorch SGD semantics with decoupled decay: buf = mu * buf + g;
 * w -= lr * (buf + wd * w). The momentum buffer is the m arena. */
VECTOR_CLONES static void sgd_range(float *w, const float *g, float *buf, size_t n,
                                    update_coef k) {
#pragma omp simd
  for (size_t i = 0; i < n; i++) {
    float b = k.mu * buf[i] + g[i] * k.gscale;
    buf[i] = b;
    w[i] -= k.lr * (b + k.wd * w[i]);
  }
}

/* One entry, in chunks split among the threads. With zero, each chunk's
 * gradients are cleared right after their update, while they are still in
 * cache: no separate pass before the next step. */
static void update_entry(optim_kind kind, update_coef k, float *w, float *g, float *m, float *v,
                         size_t n, int zero) {
  size_t nchunks = (n + OPT_CHUNK - 1) / OPT_CHUNK;
#pragma omp parallel for if (n >= 2 * OPT_CHUNK)
  for (size_t ch = 0; ch < nchunks; ch++) {
    size_t i0 = ch * OPT_CHUNK, len = n - i0 < OPT_CHUNK ? n - i0 : OPT_CHUNK;
    if (kind == OPTIM_ADAMW)
      adamw_range(w + i0, g + i0, m + i0, v + i0, len, k);
    else
      sgd_range(w + i0, g + i0, m + i0, len, k);
    if (zero) memset(g + i0, 0, len * sizeof *g);
  }
}

void optim_step(const optim_config *c, params *p, float lr, uint64_t step, double grad_norm,
                unsigned flags) {
  int zero = (flags & OPTIM_ZERO_GRAD) != 0;
  update_coef k = {.b1 = c->beta1, .b2 = c->beta2, .eps = c->eps, .c1 = 1.0f, .c2 = 1.0f,
                   .mu = c->momentum, .gscale = 1.0f};
  if (c->clip_norm > 0 && grad_norm > c->clip_norm) k.gscale = (float)(c->clip_norm / grad_norm);
  if (c->bias_correction) {
    k.c1 = (float)(1.0 / (1.0 - pow(c->beta1, (double)step)));
    k.c2 = (float)(1.0 / (1.0 - pow(c->beta2, (double)step)));
  }
  for (size_t e = 0; e < p->count; e++) {
    const params_entry *en = &p->entries[e];
    size_t o = en->offset;
    if (!(en->flags & PARAMS_TRAINABLE)) {
      if (zero) memset(p->grad + o, 0, en->count * sizeof *p->grad);
      continue;
    }
    k.wd = (en->flags & PARAMS_DECAY) ? c->weight_decay : 0.0f;
    k.lr = lr * en->lr_scale;
    update_entry(c->kind, k, p->data + o, p->grad + o, p->m + o, p->v + o, en->count, zero);
  }
}

optim_guard_verdict optim_guard_check(optim_guard *g, double loss, double grad_norm) {
  if (isfinite(loss) && isfinite(grad_norm)) {
    g->consecutive = 0;
    return GUARD_APPLY;
  }
  g->consecutive++;
  g->skipped++;
  return g->consecutive >= g->max_consecutive ? GUARD_STOP : GUARD_SKIP;
}
