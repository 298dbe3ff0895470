/* The optimizer and the schedules against figures worked out by hand (and,
 * for the bias-corrected AdamW, against torch.optim.AdamW on the same
 * numbers), clipping, decay flags, and the non-finite guard. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "trainer/blas.h"
#include "trainer/gemm.h"
#include "trainer/optimizer.h"
#include "trainer/schedule.h"
#include "util/status.h"

/* A dictionary with one decayed 2-vector "w", one non-decayed "b" and one
 * frozen "f". */
static params *tiny_params(void) {
  params *p = params_create();
  char *err = NULL;
  size_t two[1] = {2}, one[1] = {1};
  CU_ASSERT_EQUAL_FATAL(params_add(p, "w", 1, two, PARAMS_TRAINABLE | PARAMS_DECAY, PARAMS_INIT_ZEROS, &err), 0);
  CU_ASSERT_EQUAL_FATAL(params_add(p, "b", 1, one, PARAMS_TRAINABLE, PARAMS_INIT_ZEROS, &err), 0);
  CU_ASSERT_EQUAL_FATAL(params_add(p, "f", 1, one, PARAMS_DECAY, PARAMS_INIT_ZEROS, &err), 0);
  CU_ASSERT_EQUAL_FATAL(params_alloc(p, &err), 0);
  return p;
}

/* lr 0.1, Google BERT's betas/eps, decay 0.01, no bias correction, w0 = 1:
 *  g1 = 0.5:  m = 0.05, v = 0.00025, u = 0.05 / (0.0158114 + 1e-6) = 3.162078
 *             w = 1 - 0.1 (3.162078 + 0.01)              = 0.6827922
 *  g2 = -0.25: m = 0.02, v = 0.00031225, u = 0.02 / (0.0176706 + 1e-6) = 1.131773
 *             w = 0.6827922 - 0.1 (1.131773 + 0.006827922) = 0.5689335
 * The non-decayed entry gets the same moments without the decay term.
 * Tolerances are float32 ones: 1 - 0.999f is 0.00099998713 in float, a
 * relative error of 1.3e-5 that reaches v and, halved, the update. */
static void test_google_adamw_matches_hand_computed_two_steps(void) {
  params *p = tiny_params();
  optim_config c = optim_config_default();
  c.clip_norm = 0;
  c.bias_correction = 0; /* Google BERT's AdamWeightDecayOptimizer */
  c.eps = 1e-6f;
  const float g[2] = {0.5f, -0.25f};
  for (int i = 0; i < 3; i++) p->data[i] = 1.0f;
  p->data[3] = 7.0f;
  for (int step = 1; step <= 2; step++) {
    for (int i = 0; i < 4; i++) p->grad[i] = g[step - 1];
    optim_step(&c, p, 0.1f, (uint64_t)step, optim_grad_norm(p), 0);
  }
  CU_ASSERT_DOUBLE_EQUAL(p->data[0], 0.5689335, 1e-5);
  CU_ASSERT_DOUBLE_EQUAL(p->data[1], 0.5689335, 1e-5);
  /* b: 1 - 0.1 * 3.162078 = 0.6837922, then - 0.1 * 1.131773 = 0.5706149 */
  CU_ASSERT_DOUBLE_EQUAL(p->data[2], 0.5706149, 1e-5);
  CU_ASSERT_EQUAL(p->data[3], 7.0f); /* frozen */
  CU_ASSERT_DOUBLE_EQUAL(p->m[0], 0.02, 1e-7);
  CU_ASSERT_DOUBLE_EQUAL(p->v[0], 0.00031225, 1e-8);
  params_free(p);
}

/* torch.optim.AdamW(lr=0.1, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01)
 * on w = [1, -2] with grads [0.5, 3] then [-0.25, -1] ends at
 * [0.8714675903, -2.1359238625] (float32). */
static void test_bias_corrected_adamw_matches_torch(void) {
  params *p = tiny_params();
  optim_config c = optim_config_default();
  c.clip_norm = 0;
  c.eps = 1e-6f;
  p->data[0] = 1.0f;
  p->data[1] = -2.0f;
  const float g[2][2] = {{0.5f, 3.0f}, {-0.25f, -1.0f}};
  for (int step = 1; step <= 2; step++) {
    p->grad[0] = g[step - 1][0];
    p->grad[1] = g[step - 1][1];
    optim_step(&c, p, 0.1f, (uint64_t)step, 0, 0);
  }
  CU_ASSERT_DOUBLE_EQUAL(p->data[0], 0.8714675903, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(p->data[1], -2.1359238625, 1e-6);
  params_free(p);
}

/* The defaults are torch.optim.AdamW's (lr aside): betas (0.9, 0.999), eps
 * 1e-8, weight_decay 0.01, with bias correction; clipping at HF Trainer's
 * max_grad_norm 1.0. With them, the first update of every coordinate is
 * lr * sign(g) (bias-corrected m/sqrt(v) = g/|g|) plus the decay term. */
static void test_defaults_are_torch_adamw(void) {
  optim_config c = optim_config_default();
  CU_ASSERT_EQUAL(c.kind, OPTIM_ADAMW);
  CU_ASSERT_EQUAL(c.beta1, 0.9f);
  CU_ASSERT_EQUAL(c.beta2, 0.999f);
  CU_ASSERT_EQUAL(c.eps, 1e-8f);
  CU_ASSERT_EQUAL(c.weight_decay, 0.01f);
  CU_ASSERT_EQUAL(c.bias_correction, 1);
  CU_ASSERT_EQUAL(c.clip_norm, 1.0f);
  params *p = tiny_params();
  c.clip_norm = 0;
  for (int i = 0; i < 3; i++) p->data[i] = 1.0f;
  p->grad[0] = 0.5f, p->grad[1] = -3.0f, p->grad[2] = 1e-3f;
  optim_step(&c, p, 0.1f, 1, 0, 0);
  CU_ASSERT_DOUBLE_EQUAL(p->data[0], 1.0 - 0.1 * 0.01 - 0.1, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(p->data[1], 1.0 - 0.1 * 0.01 + 0.1, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(p->data[2], 1.0 - 0.1 * 1e-3 / (1e-3 + 1e-8), 1e-6); /* no decay on "b" */
  params_free(p);
}

/* grads (3, 4, 0) have norm 5 (the frozen entry's gradient is not counted);
 * clipping to 1 makes SGD without momentum or decay move by lr * g / 5. */
static void test_clipping_scales_by_global_norm(void) {
  params *p = tiny_params();
  optim_config c = optim_config_default();
  c.kind = OPTIM_SGD;
  c.momentum = 0;
  c.weight_decay = 0;
  c.clip_norm = 1.0f;
  p->grad[0] = 3;
  p->grad[1] = 4;
  p->grad[2] = 0;
  p->grad[3] = 100;
  double norm = optim_grad_norm(p);
  CU_ASSERT_DOUBLE_EQUAL(norm, 5.0, 1e-12);
  optim_step(&c, p, 1.0f, 1, norm, 0);
  CU_ASSERT_DOUBLE_EQUAL(p->data[0], -0.6, 1e-7);
  CU_ASSERT_DOUBLE_EQUAL(p->data[1], -0.8, 1e-7);
  CU_ASSERT_EQUAL(p->grad[0], 3.0f); /* the gradient arena is not modified */
  /* Under the threshold nothing is scaled. */
  c.clip_norm = 10.0f;
  optim_step(&c, p, 1.0f, 2, norm, 0);
  CU_ASSERT_DOUBLE_EQUAL(p->data[0], -3.6, 1e-6);
  params_free(p);
}

/* OPTIM_ZERO_GRAD leaves the whole gradient arena at zero, the frozen
 * entry's too, and updates as without it. */
static void test_zero_grad_flag_clears_every_gradient(void) {
  for (int kind = 0; kind < 2; kind++) {
    params *a = tiny_params(), *b = tiny_params();
    optim_config c = optim_config_default();
    c.kind = kind ? OPTIM_SGD : OPTIM_ADAMW;
    for (int i = 0; i < 4; i++) a->grad[i] = b->grad[i] = 0.5f + (float)i;
    optim_step(&c, a, 0.1f, 1, optim_grad_norm(a), 0);
    optim_step(&c, b, 0.1f, 1, optim_grad_norm(b), OPTIM_ZERO_GRAD);
    CU_ASSERT_EQUAL(memcmp(a->data, b->data, 4 * sizeof(float)), 0);
    for (int i = 0; i < 4; i++) CU_ASSERT_EQUAL(b->grad[i], 0.0f);
    CU_ASSERT_EQUAL(a->grad[3], 3.5f);
    params_free(a);
    params_free(b);
  }
}

/* An entry with lr_scale s moves as if lr were lr * s, weight decay
 * included (AdamW's first step is lr * (sign(g) + wd * w)); lr_scale 1 is
 * bit-identical to the plain update; a frozen entry keeps its value and
 * its moments whatever its gradient and scale. */
static void test_lr_scale_scales_each_entry_and_frozen_stay_put(void) {
  params *p = tiny_params(), *ref = tiny_params();
  optim_config c = optim_config_default();
  c.clip_norm = 0;
  p->entries[0].lr_scale = 0.25f;
  p->entries[2].lr_scale = 4.0f; /* frozen: the scale changes nothing */
  for (int i = 0; i < 4; i++) {
    p->data[i] = ref->data[i] = 1.0f;
    p->grad[i] = ref->grad[i] = i == 1 ? -2.0f : 0.5f;
  }
  optim_step(&c, p, 0.1f, 1, 0, 0);
  optim_step(&c, ref, 0.1f, 1, 0, 0);
  CU_ASSERT_DOUBLE_EQUAL(p->data[0], 1.0 - 0.025 * (1 + 0.01), 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(p->data[1], 1.0 - 0.025 * (-1 + 0.01), 1e-6);
  CU_ASSERT_EQUAL(memcmp(&p->data[2], &ref->data[2], sizeof(float)), 0); /* scale 1: the same bits */
  CU_ASSERT_DOUBLE_EQUAL(ref->data[0], 1.0 - 0.1 * (1 + 0.01), 1e-6);
  CU_ASSERT_EQUAL(p->data[3], 1.0f);
  CU_ASSERT_EQUAL(p->m[3], 0.0f);
  CU_ASSERT_EQUAL(p->v[3], 0.0f);
  params_free(p);
  params_free(ref);
}

/* SGD momentum 0.5, lr 1: buf = 1, w = -1; buf = 1.5, w = -2.5. */
static void test_sgd_momentum_accumulates(void) {
  params *p = tiny_params();
  optim_config c = optim_config_default();
  c.kind = OPTIM_SGD;
  c.momentum = 0.5f;
  c.weight_decay = 0;
  c.clip_norm = 0;
  for (int step = 1; step <= 2; step++) {
    p->grad[0] = 1;
    optim_step(&c, p, 1.0f, (uint64_t)step, 1, 0);
  }
  CU_ASSERT_DOUBLE_EQUAL(p->data[0], -2.5, 1e-7);
  params_free(p);
}

static void test_guard_skips_then_stops_after_consecutive_bad_steps(void) {
  optim_guard g = {.max_consecutive = 3};
  CU_ASSERT_EQUAL(optim_guard_check(&g, 1.0, NAN), GUARD_SKIP);
  CU_ASSERT_EQUAL(optim_guard_check(&g, INFINITY, 1.0), GUARD_SKIP);
  CU_ASSERT_EQUAL(optim_guard_check(&g, 2.0, 1.0), GUARD_APPLY); /* run broken */
  CU_ASSERT_EQUAL(optim_guard_check(&g, NAN, NAN), GUARD_SKIP);
  CU_ASSERT_EQUAL(optim_guard_check(&g, NAN, 1.0), GUARD_SKIP);
  CU_ASSERT_EQUAL(optim_guard_check(&g, -INFINITY, 1.0), GUARD_STOP);
  CU_ASSERT_EQUAL(g.skipped, 5u);
}

static void test_linear_warmup_then_decay_to_zero(void) {
  schedule s = {.kind = SCHED_LINEAR, .warmup = 100, .total = 1100};
  CU_ASSERT_DOUBLE_EQUAL(schedule_multiplier(&s, 1), 0.01, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(schedule_multiplier(&s, 50), 0.5, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(schedule_multiplier(&s, 100), 1.0, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(schedule_multiplier(&s, 600), 0.5, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(schedule_multiplier(&s, 1100), 0.0, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(schedule_multiplier(&s, 5000), 0.0, 1e-12);
}

static void test_cosine_and_constant_values(void) {
  schedule s = {.kind = SCHED_COSINE, .warmup = 10, .total = 110};
  CU_ASSERT_DOUBLE_EQUAL(schedule_multiplier(&s, 5), 0.5, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(schedule_multiplier(&s, 10), 1.0, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(schedule_multiplier(&s, 60), 0.5, 1e-12); /* cos(pi/2) = 0 */
  CU_ASSERT_DOUBLE_EQUAL(schedule_multiplier(&s, 35), 0.5 * (1 + sqrt(0.5)), 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(schedule_multiplier(&s, 110), 0.0, 1e-12);
  schedule k = {.kind = SCHED_CONSTANT, .warmup = 4, .total = 10};
  CU_ASSERT_DOUBLE_EQUAL(schedule_multiplier(&k, 2), 0.5, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(schedule_multiplier(&k, 1000), 1.0, 1e-12);
}

/* bert4keras: {1000: 1, 2000: 0.1} rises from 0 at step 0 to 1 at 1000,
 * falls to 0.1 at 2000 and stays there. */
static void test_piecewise_linear_as_bert4keras(void) {
  schedule s = {.kind = SCHED_PIECEWISE};
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(schedule_points_parse(&s, "{1000: 1, 2000: 0.1}", &err), 0);
  CU_ASSERT_EQUAL(s.npoints, 2u);
  CU_ASSERT_DOUBLE_EQUAL(schedule_multiplier(&s, 0), 0.0, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(schedule_multiplier(&s, 500), 0.5, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(schedule_multiplier(&s, 1500), 0.55, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(schedule_multiplier(&s, 2000), 0.1, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(schedule_multiplier(&s, 99999), 0.1, 1e-12);
  /* A first point at step 0 sets the starting multiplier. */
  CU_ASSERT_EQUAL_FATAL(schedule_points_parse(&s, "0:2,10:1", &err), 0);
  CU_ASSERT_DOUBLE_EQUAL(schedule_multiplier(&s, 5), 1.5, 1e-12);
  char text[64];
  schedule_points_format(&s, text, sizeof text);
  CU_ASSERT_STRING_EQUAL(text, "0:2, 10:1");
}

static void test_piecewise_rejects_bad_points_naming_them(void) {
  schedule s = {.kind = SCHED_PIECEWISE};
  char *err = NULL;
  CU_ASSERT_EQUAL(schedule_points_parse(&s, "100:1, 50:0.5", &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "step 50"));
  CU_ASSERT_EQUAL(schedule_points_parse(&s, "100:-1", &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, ">= 0"));
  CU_ASSERT_EQUAL(schedule_points_parse(&s, "abc", &err), ST_INVALID);
  CU_ASSERT_EQUAL(schedule_points_parse(&s, "", &err), ST_INVALID);
  free(err);
}

/* An entry of several chunks and a ragged tail, so the norm's per-chunk
 * sums, the lanes inside a chunk and the tail all take part. */
#define BIG_N 300007

static params *big_params(void) {
  params *p = params_create();
  char *err = NULL;
  size_t n[1] = {BIG_N}, one[1] = {5};
  CU_ASSERT_EQUAL_FATAL(params_add(p, "big", 1, n, PARAMS_TRAINABLE | PARAMS_DECAY, PARAMS_INIT_ZEROS, &err), 0);
  CU_ASSERT_EQUAL_FATAL(params_add(p, "small", 1, one, PARAMS_TRAINABLE, PARAMS_INIT_ZEROS, &err), 0);
  CU_ASSERT_EQUAL_FATAL(params_alloc(p, &err), 0);
  uint32_t x = 12345;
  for (size_t i = 0; i < BIG_N + 5; i++) {
    x = x * 1664525u + 1013904223u;
    p->grad[i] = ((float)(x >> 8) / 16777216.0f - 0.5f) * (i % 7 == 0 ? 1e3f : 1e-2f);
    p->data[i] = (float)(x >> 16) / 65536.0f - 0.5f;
    p->m[i] = p->grad[i] * 0.1f;
    p->v[i] = p->grad[i] * p->grad[i] * 0.01f;
  }
  return p;
}

/* The norm agrees with a long-double sum, and is the same bits on 1, 2 and
 * 3 threads (every rank must clip by the same factor). */
static void test_grad_norm_exact_and_independent_of_threads(void) {
  params *p = big_params();
  long double ref = 0;
  for (size_t i = 0; i < BIG_N + 5; i++) ref += (long double)p->grad[i] * p->grad[i];
  double norms[3];
  for (int t = 1; t <= 3; t++) {
    blas_set_threads(t);
    norms[t - 1] = optim_grad_norm(p);
  }
  blas_set_threads(1);
  CU_ASSERT_DOUBLE_EQUAL(norms[0], (double)sqrtl(ref), 1e-12 * (double)sqrtl(ref));
  CU_ASSERT_EQUAL(memcmp(&norms[0], &norms[1], sizeof(double)), 0);
  CU_ASSERT_EQUAL(memcmp(&norms[0], &norms[2], sizeof(double)), 0);
  params_free(p);
}

/* The vectorised update is the same bits as the formula evaluated one
 * element at a time with plain float operations (no fused multiply-add),
 * on any thread count: what makes replicas on different CPUs agree. */
static void test_adamw_vector_update_equals_scalar_formula_bitwise(void) {
  for (int t = 1; t <= 2; t++) {
    params *p = big_params();
    size_t n = BIG_N + 5;
    float *w = malloc(n * sizeof *w), *m = malloc(n * sizeof *m), *v = malloc(n * sizeof *v);
    CU_ASSERT_FATAL(w && m && v);
    memcpy(w, p->data, n * sizeof *w);
    memcpy(m, p->m, n * sizeof *m);
    memcpy(v, p->v, n * sizeof *v);
    optim_config c = optim_config_default();
    c.bias_correction = 1;
    double norm = optim_grad_norm(p);
    float gscale = (float)(c.clip_norm / norm), lr = 1e-3f;
    float c1 = (float)(1.0 / (1.0 - pow(c.beta1, 3.0))), c2 = (float)(1.0 / (1.0 - pow(c.beta2, 3.0)));
    volatile float b1 = c.beta1, b2 = c.beta2; /* volatile: no contraction across statements */
    for (size_t i = 0; i < n; i++) {
      float wd = i < BIG_N ? c.weight_decay : 0.0f;
      volatile float gi = p->grad[i] * gscale;
      volatile float t1 = b1 * m[i], t2 = (1.0f - b1) * gi;
      volatile float mi = t1 + t2;
      volatile float t3 = b2 * v[i], t4 = (1.0f - b2) * gi;
      volatile float t5 = t4 * gi;
      volatile float vi = t3 + t5;
      m[i] = mi;
      v[i] = vi;
      volatile float num = mi * c1, vc = vi * c2;
      volatile float den = sqrtf(vc) + c.eps;
      volatile float u = num / den, dec = wd * w[i];
      volatile float step = u + dec;
      volatile float delta = lr * step;
      w[i] = w[i] - delta;
    }
    /* The second run also clears the gradients as it goes: same update. */
    size_t nonzero_before = 0;
    for (size_t i = 0; i < n; i++) nonzero_before += p->grad[i] != 0.0f;
    CU_ASSERT(nonzero_before > n / 2);
    blas_set_threads(t);
    optim_step(&c, p, lr, 3, norm, t == 2 ? OPTIM_ZERO_GRAD : 0);
    blas_set_threads(1);
    CU_ASSERT_EQUAL(memcmp(w, p->data, n * sizeof *w), 0);
    CU_ASSERT_EQUAL(memcmp(m, p->m, n * sizeof *m), 0);
    CU_ASSERT_EQUAL(memcmp(v, p->v, n * sizeof *v), 0);
    size_t nonzero = 0;
    for (size_t i = 0; i < n; i++) nonzero += p->grad[i] != 0.0f;
    CU_ASSERT_EQUAL(nonzero, t == 2 ? 0 : nonzero_before);
    free(w);
    free(m);
    free(v);
    params_free(p);
  }
}

/* big_params' entries with a frozen one between them, and a bf16 copy of
 * the weights filled with a value no rounding gives (a NaN's pattern with
 * its quiet bit clear), so an element the update leaves alone shows. */
#define FROZEN_N 70001
#define UNTOUCHED 0x7f81u

static params *params_with_bf16_copy(void) {
  params *p = params_create();
  char *err = NULL;
  size_t n[1] = {BIG_N}, f[1] = {FROZEN_N}, one[1] = {5};
  CU_ASSERT_EQUAL_FATAL(params_add(p, "big", 1, n, PARAMS_TRAINABLE | PARAMS_DECAY, PARAMS_INIT_ZEROS, &err), 0);
  CU_ASSERT_EQUAL_FATAL(params_add(p, "frozen", 1, f, 0, PARAMS_INIT_ZEROS, &err), 0);
  CU_ASSERT_EQUAL_FATAL(params_add(p, "small", 1, one, PARAMS_TRAINABLE, PARAMS_INIT_ZEROS, &err), 0);
  CU_ASSERT_EQUAL_FATAL(params_alloc(p, &err), 0);
  uint32_t x = 777;
  for (size_t i = 0; i < p->total; i++) {
    x = x * 1664525u + 1013904223u;
    p->grad[i] = ((float)(x >> 8) / 16777216.0f - 0.5f) * 1e-2f;
    p->data[i] = (float)(x >> 16) / 65536.0f - 0.5f;
  }
  p->bf16 = malloc(p->total * sizeof *p->bf16);
  CU_ASSERT_FATAL(p->bf16 != NULL);
  for (size_t i = 0; i < p->total; i++) p->bf16[i] = UNTOUCHED;
  return p;
}

/* Elements where the copy is not bf16(data), and where it was left
 * untouched, in [lo, hi). */
static void count_copy(const params *p, size_t lo, size_t hi, size_t *wrong, size_t *untouched) {
  uint16_t *want = malloc((hi - lo + 1) * sizeof *want);
  CU_ASSERT_FATAL(want != NULL);
  gemm_to_bf16(want, p->data + lo, hi - lo);
  *wrong = *untouched = 0;
  for (size_t i = lo; i < hi; i++) {
    *wrong += p->bf16[i] != want[i - lo];
    *untouched += p->bf16[i] == UNTOUCHED;
  }
  free(want);
}

/* precision = bf16: AdamW and SGD write the bf16 copy of every weight they
 * update, the same bits as rounding the new weights afterwards (the pass it
 * replaces), on 1 and 2 threads; a frozen entry's copy is left alone. */
static void test_update_writes_the_bf16_copy_of_the_new_weights(void) {
  for (int kind = OPTIM_ADAMW; kind <= OPTIM_SGD; kind++)
    for (int t = 1; t <= 2; t++) {
      params *p = params_with_bf16_copy();
      const params_entry *fz = params_find(p, "frozen");
      optim_config c = optim_config_default();
      c.kind = (optim_kind)kind;
      blas_set_threads(t);
      optim_step(&c, p, 1e-3f, 1, optim_grad_norm(p), OPTIM_ZERO_GRAD);
      blas_set_threads(1);
      size_t wrong, untouched;
      count_copy(p, 0, fz->offset, &wrong, &untouched);
      CU_ASSERT_EQUAL(wrong, 0);
      count_copy(p, fz->offset + fz->count, p->total, &wrong, &untouched);
      CU_ASSERT_EQUAL(wrong, 0);
      count_copy(p, fz->offset, fz->offset + fz->count, &wrong, &untouched);
      CU_ASSERT_EQUAL(untouched, fz->count);
      free(p->bf16);
      params_free(p);
    }
}

/* ZeRO-1: the shard's update writes its copy, and optim_shard_bf16_rest the
 * rest after the all-gather (here: new values written outside the shard, as
 * the other ranks' updates arrive), so the whole copy is bf16(data). */
static void test_shard_update_and_rest_give_the_whole_bf16_copy(void) {
  params *p = params_with_bf16_copy();
  char *err = NULL;
  size_t *cuts = NULL, ncuts = optim_chunk_cuts(p, &cuts, &err);
  CU_ASSERT_FATAL(ncuts > 4);
  /* Every other chunk is this rank's. */
  size_t n = (ncuts + 1) / 2, lo[64], hi[64], floats = 0;
  CU_ASSERT_FATAL(n <= 64);
  for (size_t k = 0; k < n; k++) {
    lo[k] = cuts[2 * k];
    hi[k] = 2 * k + 1 < ncuts ? cuts[2 * k + 1] : p->total;
    floats += hi[k] - lo[k];
  }
  float *m = calloc(floats, sizeof *m), *v = calloc(floats, sizeof *v);
  CU_ASSERT_FATAL(m && v);
  optim_shard s = {.n = n, .lo = lo, .hi = hi, .m = m, .v = v};
  optim_config c = optim_config_default();
  optim_step_shard(&c, p, &s, 1e-3f, 1, optim_grad_norm(p), OPTIM_ZERO_GRAD);
  const params_entry *fz = params_find(p, "frozen");
  size_t wrong, untouched, in_shard_frozen = 0;
  for (size_t k = 0; k < n; k++) {
    if (lo[k] >= fz->offset && hi[k] <= fz->offset + fz->count) {
      in_shard_frozen += hi[k] - lo[k];
      continue;
    }
    count_copy(p, lo[k], hi[k], &wrong, &untouched);
    CU_ASSERT_EQUAL(wrong, 0);
  }
  CU_ASSERT(in_shard_frozen > 0);
  for (size_t k = 0; k + 1 < n; k++)
    for (size_t i = hi[k]; i < lo[k + 1]; i++) p->data[i] = p->data[i] * 0.5f + 0.25f;
  /* The frozen entry's copy as the model's first pass filled it. */
  gemm_to_bf16(p->bf16 + fz->offset, p->data + fz->offset, fz->count);
  optim_shard_bf16_rest(p, &s);
  count_copy(p, 0, p->total, &wrong, &untouched);
  CU_ASSERT_EQUAL(wrong, 0);
  free(m);
  free(v);
  free(cuts);
  free(p->bf16);
  params_free(p);
}

static const harness_test tests[] = {
    {"test_google_adamw_matches_hand_computed_two_steps", test_google_adamw_matches_hand_computed_two_steps},
    {"test_defaults_are_torch_adamw", test_defaults_are_torch_adamw},
    {"test_bias_corrected_adamw_matches_torch", test_bias_corrected_adamw_matches_torch},
    {"test_clipping_scales_by_global_norm", test_clipping_scales_by_global_norm},
    {"test_sgd_momentum_accumulates", test_sgd_momentum_accumulates},
    {"test_lr_scale_scales_each_entry_and_frozen_stay_put", test_lr_scale_scales_each_entry_and_frozen_stay_put},
    {"test_zero_grad_flag_clears_every_gradient", test_zero_grad_flag_clears_every_gradient},
    {"test_grad_norm_exact_and_independent_of_threads", test_grad_norm_exact_and_independent_of_threads},
    {"test_adamw_vector_update_equals_scalar_formula_bitwise", test_adamw_vector_update_equals_scalar_formula_bitwise},
    {"test_update_writes_the_bf16_copy_of_the_new_weights", test_update_writes_the_bf16_copy_of_the_new_weights},
    {"test_shard_update_and_rest_give_the_whole_bf16_copy", test_shard_update_and_rest_give_the_whole_bf16_copy},
    {"test_guard_skips_then_stops_after_consecutive_bad_steps", test_guard_skips_then_stops_after_consecutive_bad_steps},
    {"test_linear_warmup_then_decay_to_zero", test_linear_warmup_then_decay_to_zero},
    {"test_cosine_and_constant_values", test_cosine_and_constant_values},
    {"test_piecewise_linear_as_bert4keras", test_piecewise_linear_as_bert4keras},
    {"test_piecewise_rejects_bad_points_naming_them", test_piecewise_rejects_bad_points_naming_them},
    {NULL, NULL},
};
const harness_suite trainer_optimizer_suite = {"optimizer", tests};
