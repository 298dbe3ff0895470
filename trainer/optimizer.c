/* AdamW (BERT's AdamWeightDecayOptimizer, optionally bias-corrected) and
 * SGD with momentum over the parameter arena; clipping; non-finite guard. */
#include "trainer/optimizer.h"

#include <math.h>

optim_config optim_config_default(void) {
  optim_config c = {
      .kind = OPTIM_ADAMW, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-6f,
      .weight_decay = 0.01f, .bias_correction = 0, .momentum = 0.9f, .clip_norm = 1.0f,
  };
  return c;
}

double optim_grad_norm(const params *p) {
  double sum = 0;
  for (size_t e = 0; e < p->count; e++) {
    const params_entry *en = &p->entries[e];
    if (!(en->flags & PARAMS_TRAINABLE)) continue;
    const float *g = p->grad + en->offset;
    double s = 0;
    for (size_t i = 0; i < en->count; i++) s += (double)g[i] * g[i];
    sum += s;
  }
  return sqrt(sum);
}

/* w, g, m, v: (n). BERT's update: m, v moments; u = m / (sqrt(v) + eps)
 * (with bias correction: m/(1-b1^t), v/(1-b2^t)); w -= lr * (u + wd * w). */
static void adamw_update(float *w, const float *g, float *m, float *v, size_t n, float gscale,
                         float lr, float wd, const optim_config *c, uint64_t step) {
  const float b1 = c->beta1, b2 = c->beta2, eps = c->eps;
  float c1 = 1.0f, c2 = 1.0f;
  if (c->bias_correction) {
    c1 = (float)(1.0 / (1.0 - pow(b1, (double)step)));
    c2 = (float)(1.0 / (1.0 - pow(b2, (double)step)));
  }
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; i++) {
    float gi = g[i] * gscale;
    float mi = b1 * m[i] + (1.0f - b1) * gi;
    float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float u = (mi * c1) / (sqrtf(vi * c2) + eps);
    w[i] -= lr * (u + wd * w[i]);
  }
}

/* PyTorch SGD semantics with decoupled decay: buf = mu * buf + g;
 * w -= lr * (buf + wd * w). The momentum buffer is the m arena. */
static void sgd_update(float *w, const float *g, float *buf, size_t n, float gscale, float lr, float wd,
                       float mu) {
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; i++) {
    float b = mu * buf[i] + g[i] * gscale;
    buf[i] = b;
    w[i] -= lr * (b + wd * w[i]);
  }
}

void optim_step(const optim_config *c, params *p, float lr, uint64_t step, double grad_norm) {
  float gscale = 1.0f;
  if (c->clip_norm > 0 && grad_norm > c->clip_norm) gscale = (float)(c->clip_norm / grad_norm);
  for (size_t e = 0; e < p->count; e++) {
    const params_entry *en = &p->entries[e];
    if (!(en->flags & PARAMS_TRAINABLE)) continue;
    float wd = (en->flags & PARAMS_DECAY) ? c->weight_decay : 0.0f;
    size_t o = en->offset;
    if (c->kind == OPTIM_ADAMW)
      adamw_update(p->data + o, p->grad + o, p->m + o, p->v + o, en->count, gscale, lr, wd, c, step);
    else
      sgd_update(p->data + o, p->grad + o, p->m + o, en->count, gscale, lr, wd, c->momentum);
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
