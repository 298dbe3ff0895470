/* AdamW (BERT's AdamWeightDecayOptimizer, optionally bias-corrected) and
 * SGD with momentum over the parameter arena; clipping; non-finite guard.
 * Compiled with -ffp-contract=off (CMakeLists.txt): the update uses only
 * correctly rounded IEEE operations, so every rank computes the same bits
 * for its replica whichever vector clone its CPU runs. */
#include "trainer/optimizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/status.h"

#include "trainer/gemm.h"
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

/* Elements updated, then rounded to bf16 while they are still in L1 (8 KiB
 * of weights): the weights' bf16 copy comes out of the update's pass, not a
 * pass of its own over the whole arena once per update. */
#define BF16_BLOCK 2048

/* w, g, m, v: (n); h: (n) bf16 copy of w, or NULL. */
static void update_range(optim_kind kind, update_coef k, float *w, const float *g, float *m,
                         float *v, uint16_t *h, size_t n) {
  size_t block = h ? BF16_BLOCK : n;
  for (size_t j = 0; j < n; j += block) {
    size_t len = n - j < block ? n - j : block;
    if (kind == OPTIM_ADAMW)
      adamw_range(w + j, g + j, m + j, v + j, len, k);
    else
      sgd_range(w + j, g + j, m + j, len, k);
    if (h) gemm_to_bf16_serial(h + j, w + j, len);
  }
}

/* One entry, in chunks split among the threads. With zero, each chunk's
 * gradients are cleared right after their update, while they are still in
 * cache: no separate pass before the next step. */
static void update_entry(optim_kind kind, update_coef k, float *w, float *g, float *m, float *v,
                         uint16_t *h, size_t n, int zero) {
  size_t nchunks = (n + OPT_CHUNK - 1) / OPT_CHUNK;
#pragma omp parallel for if (n >= 2 * OPT_CHUNK)
  for (size_t ch = 0; ch < nchunks; ch++) {
    size_t i0 = ch * OPT_CHUNK, len = n - i0 < OPT_CHUNK ? n - i0 : OPT_CHUNK;
    update_range(kind, k, w + i0, g + i0, m + i0, v + i0, h ? h + i0 : NULL, len);
    if (zero) memset(g + i0, 0, len * sizeof *g);
  }
}

static update_coef step_coef(const optim_config *c, double grad_norm, uint64_t step) {
  update_coef k = {.b1 = c->beta1, .b2 = c->beta2, .eps = c->eps, .c1 = 1.0f, .c2 = 1.0f,
                   .mu = c->momentum, .gscale = 1.0f};
  if (c->clip_norm > 0 && grad_norm > c->clip_norm) k.gscale = (float)(c->clip_norm / grad_norm);
  if (c->bias_correction) {
    k.c1 = (float)(1.0 / (1.0 - pow(c->beta1, (double)step)));
    k.c2 = (float)(1.0 / (1.0 - pow(c->beta2, (double)step)));
  }
  return k;
}

void optim_step(const optim_config *c, params *p, float lr, uint64_t step, double grad_norm,
                unsigned flags) {
  int zero = (flags & OPTIM_ZERO_GRAD) != 0;
  update_coef k = step_coef(c, grad_norm, step);
  for (size_t e = 0; e < p->count; e++) {
    const params_entry *en = &p->entries[e];
    size_t o = en->offset;
    if (!(en->flags & PARAMS_TRAINABLE)) {
      if (zero) memset(p->grad + o, 0, en->count * sizeof *p->grad);
      continue;
    }
    k.wd = (en->flags & PARAMS_DECAY) ? c->weight_decay : 0.0f;
    k.lr = lr * en->lr_scale;
    update_entry(c->kind, k, p->data + o, p->grad + o, p->m + o, p->v + o,
                 p->bf16 ? p->bf16 + o : NULL, en->count, zero);
  }
}

/* ------------------------------------------------- ZeRO-1 shards */

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return (x > y) - (x < y);
}

size_t optim_chunk_cuts(const params *p, size_t **cuts, char **err) {
  size_t n = 0;
  for (size_t e = 0; e < p->count; e++) n += (p->entries[e].count + OPT_CHUNK - 1) / OPT_CHUNK;
  *cuts = malloc((n ? n : 1) * sizeof **cuts);
  if (!*cuts) {
    status_set(err, ST_NOMEM, "out of memory for %zu optimizer chunk offsets", n);
    return 0;
  }
  size_t at = 0;
  for (size_t e = 0; e < p->count; e++)
    for (size_t i = 0; i < p->entries[e].count; i += OPT_CHUNK) (*cuts)[at++] = p->entries[e].offset + i;
  qsort(*cuts, at, sizeof **cuts, cmp_size);
  size_t kept = 0; /* entries do not overlap; drop repeats anyway */
  for (size_t i = 0; i < at; i++)
    if (kept == 0 || (*cuts)[kept - 1] != (*cuts)[i]) (*cuts)[kept++] = (*cuts)[i];
  return kept;
}

size_t optim_norm_chunks(const params *p) {
  size_t n = 0;
  for (size_t e = 0; e < p->count; e++)
    if (p->entries[e].flags & PARAMS_TRAINABLE) n += (p->entries[e].count + OPT_CHUNK - 1) / OPT_CHUNK;
  return n;
}

static int in_shard(const optim_shard *s, size_t x) {
  for (size_t i = 0; i < s->n; i++)
    if (x >= s->lo[i] && x < s->hi[i]) return 1;
  return 0;
}

/* Chunks in optim_grad_norm's order: entries in table order, each's
 * chunks in order. */
void optim_shard_chunk_sums(const params *p, const optim_shard *s, double *sums) {
  size_t at = 0;
  for (size_t e = 0; e < p->count; e++) {
    const params_entry *en = &p->entries[e];
    if (!(en->flags & PARAMS_TRAINABLE)) continue;
    size_t n = (en->count + OPT_CHUNK - 1) / OPT_CHUNK;
#pragma omp parallel for if (en->count >= 2 * OPT_CHUNK)
    for (size_t c = 0; c < n; c++) {
      size_t i0 = c * OPT_CHUNK, len = en->count - i0 < OPT_CHUNK ? en->count - i0 : OPT_CHUNK;
      sums[at + c] = in_shard(s, en->offset + i0) ? sum_squares(p->grad + en->offset + i0, len) : 0.0;
    }
    at += n;
  }
}

double optim_norm_of_chunks(const double *sums, size_t n) {
  double sum = 0;
  for (size_t c = 0; c < n; c++) sum += sums[c];
  return sqrt(sum);
}

void optim_step_shard(const optim_config *c, params *p, const optim_shard *s, float lr, uint64_t step,
                      double grad_norm, unsigned flags) {
  update_coef k = step_coef(c, grad_norm, step);
  size_t base = 0;
  for (size_t i = 0; i < s->n; base += s->hi[i] - s->lo[i], i++)
    for (size_t e = 0; e < p->count; e++) {
      const params_entry *en = &p->entries[e];
      size_t a = en->offset > s->lo[i] ? en->offset : s->lo[i];
      size_t b = en->offset + en->count < s->hi[i] ? en->offset + en->count : s->hi[i];
      if (a >= b || !(en->flags & PARAMS_TRAINABLE)) continue;
      k.wd = (en->flags & PARAMS_DECAY) ? c->weight_decay : 0.0f;
      k.lr = lr * en->lr_scale;
      size_t at = base + (a - s->lo[i]);
      update_entry(c->kind, k, p->data + a, p->grad + a, s->m + at, s->v + at,
                   p->bf16 ? p->bf16 + a : NULL, b - a, 0);
    }
  if (flags & OPTIM_ZERO_GRAD) memset(p->grad, 0, p->total * sizeof *p->grad);
}

/* The chunks of optim_chunk_cuts, entry by entry: a chunk lies wholly in
 * or out of the shard. */
void optim_shard_bf16_rest(const params *p, const optim_shard *s) {
  if (!p->bf16) return;
  for (size_t e = 0; e < p->count; e++) {
    const params_entry *en = &p->entries[e];
    size_t n = (en->count + OPT_CHUNK - 1) / OPT_CHUNK;
#pragma omp parallel for if (en->count >= 2 * OPT_CHUNK)
    for (size_t c = 0; c < n; c++) {
      size_t i0 = en->offset + c * OPT_CHUNK;
      size_t len = en->count - c * OPT_CHUNK < OPT_CHUNK ? en->count - c * OPT_CHUNK : OPT_CHUNK;
      if (!in_shard(s, i0)) gemm_to_bf16_serial(p->bf16 + i0, p->data + i0, len);
    }
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
