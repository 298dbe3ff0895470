/* trainer/layers: every backward pass agrees with finite differences of its
 * forward pass (see gradcheck.h for the step and tolerance), and dropout
 * masks are reproducible. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "harness.h"
#include "trainer/layers.h"
#include "util/rng.h"

#define SAMPLES 40

/* ------------------------------------------------------------------ linear */
typedef struct {
  size_t N, C, OC;
  float *inp, *w, *b, *out, *r;
} linear_ctx;

static double linear_loss(void *p) {
  linear_ctx *c = p;
  layer_linear_forward(c->out, c->inp, c->w, c->b, c->N, c->C, c->OC);
  return gradcheck_dot(c->out, c->r, c->N * c->OC);
}

static void test_linear_backward_matches_finite_differences(void) {
  linear_ctx c = {.N = 6, .C = 5, .OC = 7};
  c.inp = gradcheck_vec(c.N * c.C, 1, 1), c.w = gradcheck_vec(c.OC * c.C, 1, 2),
  c.b = gradcheck_vec(c.OC, 1, 3);
  c.out = gradcheck_zeros(c.N * c.OC), c.r = gradcheck_vec(c.N * c.OC, 1, 4);
  float *dinp = gradcheck_stale(c.N * c.C), *dw = gradcheck_zeros(c.OC * c.C), *db = gradcheck_zeros(c.OC);
  layer_linear_backward(dinp, dw, db, c.r, c.inp, c.w, c.N, c.C, c.OC);
  gradcheck_expect_close(
      "dinp", gradcheck_rel_error(linear_loss, &c, c.inp, dinp, c.N * c.C, SAMPLES, GRADCHECK_EPS, 1e-6));
  gradcheck_expect_close(
      "dw", gradcheck_rel_error(linear_loss, &c, c.w, dw, c.OC * c.C, SAMPLES, GRADCHECK_EPS, 1e-6));
  gradcheck_expect_close("db",
                         gradcheck_rel_error(linear_loss, &c, c.b, db, c.OC, SAMPLES, GRADCHECK_EPS, 1e-6));
  /* Parameter gradients accumulate: a second call doubles them. The _ld
   * form with add adds into the input gradient (a residual branch). */
  float before = dw[3], *dsum = malloc(c.N * c.C * sizeof *dsum);
  for (size_t i = 0; i < c.N * c.C; i++) dsum[i] = 1.0f;
  layer_linear_backward_ld(dsum, 1, dw, db, c.r, c.OC, c.inp, c.w, c.N, c.C, c.OC);
  CU_ASSERT_DOUBLE_EQUAL(dw[3], 2.0 * before, 1e-5 * fabs(before) + 1e-7);
  for (size_t i = 0; i < c.N * c.C; i++) CU_ASSERT_DOUBLE_EQUAL(dsum[i], 1.0 + dinp[i], 1e-5);
  free(dsum);
  free(c.inp), free(c.w), free(c.b), free(c.out), free(c.r), free(dinp), free(dw), free(db);
}

/* --------------------------------------------------------------- layernorm */
typedef struct {
  size_t N, C;
  float *inp, *w, *b, *out, *mean, *rstd, *r;
} ln_ctx;

static double ln_loss(void *p) {
  ln_ctx *c = p;
  layer_layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C, 1e-12f);
  return gradcheck_dot(c->out, c->r, c->N * c->C);
}

static void test_layernorm_backward_matches_finite_differences(void) {
  /* C > 64 so the column sums cross a block boundary. */
  ln_ctx c = {.N = 5, .C = 70};
  c.inp = gradcheck_vec(c.N * c.C, 2, 11), c.w = gradcheck_vec(c.C, 1, 12), c.b = gradcheck_vec(c.C, 1, 13);
  c.out = gradcheck_zeros(c.N * c.C), c.mean = gradcheck_zeros(c.N), c.rstd = gradcheck_zeros(c.N),
  c.r = gradcheck_vec(c.N * c.C, 1, 14);
  ln_loss(&c);
  float *dinp = gradcheck_stale(c.N * c.C), *dw = gradcheck_zeros(c.C), *db = gradcheck_zeros(c.C);
  layer_layernorm_backward(dinp, dw, db, c.r, c.inp, c.w, c.mean, c.rstd, c.N, c.C);
  gradcheck_expect_close("dinp",
                         gradcheck_rel_error(ln_loss, &c, c.inp, dinp, c.N * c.C, SAMPLES, 1e-3f, 1e-6));
  gradcheck_expect_close("dw", gradcheck_rel_error(ln_loss, &c, c.w, dw, c.C, SAMPLES, GRADCHECK_EPS, 1e-6));
  gradcheck_expect_close("db", gradcheck_rel_error(ln_loss, &c, c.b, db, c.C, SAMPLES, GRADCHECK_EPS, 1e-6));
  free(c.inp), free(c.w), free(c.b), free(c.out), free(c.mean), free(c.rstd), free(c.r);
  free(dinp), free(dw), free(db);
}

/* ----------------------------------------------------- element-wise: gelu, tanh */
typedef struct {
  size_t n;
  int tanh;
  float *inp, *out, *r;
} ew_ctx;

static double ew_loss(void *p) {
  ew_ctx *c = p;
  if (c->tanh)
    layer_tanh_forward(c->out, c->inp, c->n);
  else
    layer_gelu_forward(c->out, c->inp, c->n);
  return gradcheck_dot(c->out, c->r, c->n);
}

static void test_gelu_and_tanh_backward_match_finite_differences(void) {
  for (int t = 0; t < 2; t++) {
    ew_ctx c = {.n = 64, .tanh = t};
    c.inp = gradcheck_vec(c.n, 3, 21), c.out = gradcheck_zeros(c.n), c.r = gradcheck_vec(c.n, 1, 22);
    float *dinp = gradcheck_stale(c.n);
    ew_loss(&c);
    if (t)
      layer_tanh_backward(dinp, c.r, c.out, c.n);
    else
      layer_gelu_backward(dinp, c.r, c.inp, c.out, c.n);
    gradcheck_expect_close(t ? "tanh" : "gelu",
                           gradcheck_rel_error(ew_loss, &c, c.inp, dinp, c.n, SAMPLES, 1e-3f, 1e-6));
    free(c.inp), free(c.out), free(c.r), free(dinp);
  }
}

static void test_gelu_is_the_erf_form(void) {
  /* Values of x * Phi(x) from the normal CDF: Phi(1) = 0.841344746,
   * Phi(-0.5) = 0.308537539, Phi(2.5) = 0.993790335. */
  float x[3] = {1.0f, -0.5f, 2.5f}, y[3];
  layer_gelu_forward(y, x, 3);
  CU_ASSERT_DOUBLE_EQUAL(y[0], 0.841344746, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(y[1], -0.5 * 0.308537539, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(y[2], 2.5 * 0.993790335, 1e-6);
  /* Against libm's double erf over the range activations take. */
  enum { K = 4001 };
  float xs[K], ys[K];
  for (int i = 0; i < K; i++) xs[i] = -20.0f + 0.01f * (float)i;
  layer_gelu_forward(ys, xs, K);
  double worst = 0;
  for (int i = 0; i < K; i++) {
    double ref = 0.5 * xs[i] * (1.0 + erf(xs[i] / sqrt(2.0)));
    worst = fmax(worst, fabs(ys[i] - ref) / fmax(1.0, fabs(xs[i])));
  }
  CU_ASSERT(worst < 5e-7);
  /* The derivative Phi(x) + x phi(x) against libm's double erf and exp. */
  float ones[K], d[K];
  for (int i = 0; i < K; i++) ones[i] = 1.0f;
  layer_gelu_backward(d, ones, xs, ys, K);
  worst = 0;
  for (int i = 0; i < K; i++) {
    double x = xs[i];
    double ref = 0.5 * (1.0 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
    worst = fmax(worst, fabs(d[i] - ref));
  }
  printf(" (derivative within %.2g) ", worst);
  CU_ASSERT(worst < 5e-7);
}

/* ----------------------------------------------------------------- dropout */
typedef struct {
  size_t n;
  float p;
  layer_rng key;
  float *inp, *out, *r;
} drop_ctx;

static double drop_loss(void *p) {
  drop_ctx *c = p;
  layer_dropout_forward(c->out, c->inp, c->n, c->p, c->key);
  return gradcheck_dot(c->out, c->r, c->n);
}

static void test_dropout_backward_regenerates_the_forward_mask(void) {
  drop_ctx c = {.n = 10000, .p = 0.25f, .key = {7, 1, 2, 3}};
  c.inp = gradcheck_vec(c.n, 1, 31), c.out = gradcheck_zeros(c.n), c.r = gradcheck_vec(c.n, 1, 32);
  float *dinp = gradcheck_stale(c.n);
  drop_loss(&c);
  layer_dropout_backward(dinp, c.r, c.n, c.p, c.key);
  gradcheck_expect_close("dropout",
                         gradcheck_rel_error(drop_loss, &c, c.inp, dinp, c.n, SAMPLES, GRADCHECK_EPS, 1e-6));
  drop_loss(&c);
  size_t dropped = 0;
  for (size_t i = 0; i < c.n; i++) {
    dropped += c.out[i] == 0.0f;
    if (c.out[i] != 0.0f) CU_ASSERT_DOUBLE_EQUAL(c.out[i], c.inp[i] / 0.75f, 1e-6);
    CU_ASSERT((c.out[i] == 0.0f) == (dinp[i] == 0.0f));
  }
  /* 2500 expected; 5 standard deviations is about 217. */
  CU_ASSERT(dropped > 2280 && dropped < 2720);
  free(c.inp), free(c.out), free(c.r), free(dinp);
}

static void test_dropout_mask_depends_only_on_key_and_position(void) {
  size_t n = 50000;
  float *ones = malloc(n * sizeof *ones), *a = gradcheck_zeros(n), *b = gradcheck_zeros(n),
        *c = gradcheck_zeros(n);
  for (size_t i = 0; i < n; i++) ones[i] = 1.0f;
  layer_rng key = {99, 5, 0, 17}, other = {99, 6, 0, 17};
  layer_dropout_forward(a, ones, n, 0.1f, key);
  layer_dropout_forward(b, ones, n, 0.1f, key);
  layer_dropout_forward(c, ones, n, 0.1f, other);
  CU_ASSERT_EQUAL(memcmp(a, b, n * sizeof *a), 0);
  CU_ASSERT_NOT_EQUAL(memcmp(a, c, n * sizeof *a), 0);
  /* A prefix draws the same mask as the whole: position, not length, decides. */
  layer_dropout_forward(b, ones, 5000, 0.1f, key);
  CU_ASSERT_EQUAL(memcmp(a, b, 5000 * sizeof *a), 0);
  free(ones), free(a), free(b), free(c);
}

/* Words that disagree between the first n of the mask and rng_next_u32
 * over the same stream. */
static size_t dropout_mismatches(size_t n) {
  float *ones = malloc(n * sizeof *ones), *out = gradcheck_zeros(n);
  for (size_t i = 0; i < n; i++) ones[i] = 1.0f;
  layer_rng key = {0x123456789abcull, 7, 8, 9};
  layer_dropout_forward(out, ones, n, 0.3f, key);
  rng_stream s;
  rng_stream_init(&s, key.seed, key.a, key.b, key.c);
  uint32_t threshold = (uint32_t)(0.3 * 4294967296.0);
  size_t mismatches = 0;
  for (size_t i = 0; i < n; i++) mismatches += (rng_next_u32(&s) >= threshold) != (out[i] != 0.0f);
  free(ones), free(out);
  return mismatches;
}

/* Both mask generators (AVX2, where the CPU has it, and the portable loop)
 * give every word of the Philox stream, whole blocks and a partial last one. */
static void test_dropout_keeps_element_i_by_word_i_of_its_rng_stream(void) {
  for (int simd = 1; simd >= 0; simd--) {
    layer_dropout_simd(simd);
    CU_ASSERT_EQUAL(dropout_mismatches(9000), 0);
    CU_ASSERT_EQUAL(dropout_mismatches(64), 0);
    CU_ASSERT_EQUAL(dropout_mismatches(37), 0);
  }
  layer_dropout_simd(1);
  /* The two paths draw the same bytes for the same words. */
  size_t n = 4133;
  float *ones = malloc(n * sizeof *ones), *a = gradcheck_zeros(n), *b = gradcheck_zeros(n);
  for (size_t i = 0; i < n; i++) ones[i] = 1.0f;
  layer_rng key = {42, 1, 2, 3};
  layer_dropout_forward(a, ones, n, 0.1f, key);
  layer_dropout_simd(0);
  layer_dropout_forward(b, ones, n, 0.1f, key);
  layer_dropout_simd(1);
  CU_ASSERT_EQUAL(memcmp(a, b, n * sizeof *a), 0);
  free(ones), free(a), free(b);
}

/* --------------------------------------------------------------- attention */
typedef struct {
  size_t B, T, C, NH;
  float p;
  layer_rng key;
  int32_t *mask;
  float *qkv, *out, *att, *attd, *r;
} att_ctx;

static double att_loss(void *p) {
  att_ctx *c = p;
  layer_attention_forward(c->out, c->att, c->attd, c->qkv, c->mask, c->p, c->key, c->B, c->T,
                          c->C, c->NH);
  return gradcheck_dot(c->out, c->r, c->B * c->T * c->C);
}

static void check_attention(float p) {
  att_ctx c = {.B = 2, .T = 5, .C = 8, .NH = 2, .p = p, .key = {3, 4, 5, 6}};
  int32_t mask[10] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
  c.mask = mask;
  size_t n_att = c.B * c.NH * c.T * c.T;
  c.qkv = gradcheck_vec(c.B * c.T * 3 * c.C, 1.5f, 41), c.out = gradcheck_zeros(c.B * c.T * c.C);
  c.att = gradcheck_zeros(n_att), c.attd = p > 0 ? gradcheck_zeros(n_att) : NULL,
  c.r = gradcheck_vec(c.B * c.T * c.C, 1, 42);
  att_loss(&c);
  float *dqkv = gradcheck_stale(c.B * c.T * 3 * c.C), *scratch = gradcheck_stale(n_att);
  layer_attention_backward(dqkv, scratch, c.r, c.qkv, c.att, c.attd, c.p, c.B, c.T, c.C,
                           c.NH);
  gradcheck_expect_close("attention dqkv", gradcheck_rel_error(att_loss, &c, c.qkv, dqkv, c.B * c.T * 3 * c.C,
                                                               240, 1e-3f, 1e-6));
  /* Padding keys get probability exactly zero. */
  for (size_t h = 0; h < c.NH; h++)
    for (size_t i = 0; i < c.T; i++) {
      const float *row = c.att + ((1 * c.NH + h) * c.T + i) * c.T;
      CU_ASSERT_EQUAL(row[3], 0.0f);
      CU_ASSERT_EQUAL(row[4], 0.0f);
    }
  free(c.qkv), free(c.out), free(c.att), free(c.attd), free(c.r), free(dqkv), free(scratch);
}

static void test_attention_backward_matches_finite_differences_with_padding(void) {
  check_attention(0.0f);
}

static void test_attention_backward_matches_finite_differences_with_dropout(void) {
  check_attention(0.3f);
}

/* -------------------------------------------------------------- embeddings */
typedef struct {
  size_t B, T, C;
  int32_t *ids, *types;
  float *wte, *wpe, *wtt, *out, *r;
} emb_ctx;

static double emb_loss(void *p) {
  emb_ctx *c = p;
  layer_embeddings_forward(c->out, c->ids, c->types, c->wte, c->wpe, c->wtt, c->B, c->T, c->C);
  return gradcheck_dot(c->out, c->r, c->B * c->T * c->C);
}

static void test_embeddings_backward_matches_finite_differences(void) {
  int32_t ids[6] = {3, 1, 3, 0, 2, 3}, types[6] = {0, 0, 1, 0, 1, 1};
  emb_ctx c = {.B = 2, .T = 3, .C = 70, .ids = ids, .types = types};
  c.wte = gradcheck_vec(4 * c.C, 1, 51), c.wpe = gradcheck_vec(5 * c.C, 1, 52),
  c.wtt = gradcheck_vec(2 * c.C, 1, 53);
  c.out = gradcheck_zeros(6 * c.C), c.r = gradcheck_vec(6 * c.C, 1, 54);
  float *dwte = gradcheck_zeros(4 * c.C), *dwpe = gradcheck_zeros(5 * c.C), *dwtt = gradcheck_zeros(2 * c.C);
  layer_embeddings_backward(dwte, dwpe, dwtt, c.r, ids, types, c.B, c.T, c.C);
  gradcheck_expect_close(
      "dwte", gradcheck_rel_error(emb_loss, &c, c.wte, dwte, 4 * c.C, 4 * c.C, GRADCHECK_EPS, 1e-6));
  gradcheck_expect_close(
      "dwpe", gradcheck_rel_error(emb_loss, &c, c.wpe, dwpe, 5 * c.C, 5 * c.C, GRADCHECK_EPS, 1e-6));
  gradcheck_expect_close(
      "dwtt", gradcheck_rel_error(emb_loss, &c, c.wtt, dwtt, 2 * c.C, 2 * c.C, GRADCHECK_EPS, 1e-6));
  free(c.wte), free(c.wpe), free(c.wtt), free(c.out), free(c.r), free(dwte), free(dwpe), free(dwtt);
}

/* --------------------------------------------------- gather + cross-entropy */
typedef struct {
  size_t N, P, C;
  size_t *rows;
  int32_t *targets;
  float *inp, *out, *probs;
} ce_ctx;

static double ce_loss(void *p) {
  ce_ctx *c = p;
  layer_gather_forward(c->out, c->inp, c->rows, c->P, c->C);
  memcpy(c->probs, c->out, c->P * c->C * sizeof(float));
  return layer_crossentropy_forward(c->probs, c->targets, c->P, c->C);
}

static void test_gather_and_crossentropy_backward_match_finite_differences(void) {
  size_t rows[3] = {4, 0, 2};
  int32_t targets[3] = {1, 6, 0};
  ce_ctx c = {.N = 5, .P = 3, .C = 7, .rows = rows, .targets = targets};
  c.inp = gradcheck_vec(c.N * c.C, 3, 61), c.out = gradcheck_zeros(c.P * c.C),
  c.probs = gradcheck_zeros(c.P * c.C);
  ce_loss(&c);
  float *dout = malloc(c.P * c.C * sizeof(float)), *dinp = gradcheck_zeros(c.N * c.C);
  memcpy(dout, c.probs, c.P * c.C * sizeof(float));
  layer_crossentropy_backward_inplace(dout, targets, c.P, c.C, 1.0f);
  layer_gather_backward(dinp, dout, rows, c.P, c.C);
  gradcheck_expect_close("cross-entropy",
                         gradcheck_rel_error(ce_loss, &c, c.inp, dinp, c.N * c.C, c.N * c.C, 1e-3f, 1e-6));
  /* Rows not gathered get no gradient. */
  for (size_t k = 0; k < c.C; k++) CU_ASSERT_EQUAL(dinp[1 * c.C + k], 0.0f);
  free(c.inp), free(c.out), free(c.probs), free(dout), free(dinp);
}

static void test_crossentropy_of_uniform_logits_is_log_classes(void) {
  float logits[2 * 10] = {0};
  int32_t targets[2] = {3, 9};
  CU_ASSERT_DOUBLE_EQUAL(layer_crossentropy_forward(logits, targets, 2, 10), log(10.0), 1e-6);
}

/* The dropout before a residual join, on all rows and on chosen rows,
 * against layer_dropout_forward plus the residual, and its recorded mask
 * against the mask drawn again: all bit for bit. C = 48 puts rows at
 * unaligned words of the stream. */
static void test_dropout_add_and_recorded_mask_match_the_plain_dropout(void) {
  size_t N = 40, C = 48, n = N * C;
  layer_rng key = {11, 2, 3, 4};
  float *inp = gradcheck_vec(n, 1, 51), *res = gradcheck_vec(n, 1, 52), *plain = malloc(n * sizeof(float));
  float *fused = malloc(n * sizeof(float)), *dout = gradcheck_vec(n, 1, 53);
  float *d1 = gradcheck_stale(n), *d2 = gradcheck_stale(n);
  uint8_t *mask = malloc(n);
  layer_dropout_forward(plain, inp, n, 0.2f, key);
  for (size_t i = 0; i < n; i++) plain[i] += res[i];
  layer_dropout_add_forward(fused, inp, res, mask, NULL, N, C, 0.2f, key);
  CU_ASSERT_EQUAL(memcmp(plain, fused, n * sizeof(float)), 0);
  layer_dropout_backward(d1, dout, n, 0.2f, key);
  layer_dropout_mask_backward(d2, dout, mask, n, 0.2f);
  CU_ASSERT_EQUAL(memcmp(d1, d2, n * sizeof(float)), 0);
  /* Rows 3, 17 and 39 alone, compact. */
  size_t rows[3] = {3, 17, 39};
  float *sub_in = malloc(3 * C * sizeof(float)), *sub_res = malloc(3 * C * sizeof(float));
  float *sub_out = malloc(3 * C * sizeof(float));
  for (size_t r = 0; r < 3; r++) {
    memcpy(sub_in + r * C, inp + rows[r] * C, C * sizeof(float));
    memcpy(sub_res + r * C, res + rows[r] * C, C * sizeof(float));
  }
  layer_dropout_add_forward(sub_out, sub_in, sub_res, mask, rows, 3, C, 0.2f, key);
  for (size_t r = 0; r < 3; r++)
    CU_ASSERT_EQUAL(memcmp(sub_out + r * C, plain + rows[r] * C, C * sizeof(float)), 0);
  free(inp), free(res), free(plain), free(fused), free(dout), free(d1), free(d2), free(mask);
  free(sub_in), free(sub_res), free(sub_out);
}

static const harness_test tests[] = {
    {"test_linear_backward_matches_finite_differences", test_linear_backward_matches_finite_differences},
    {"test_layernorm_backward_matches_finite_differences",
     test_layernorm_backward_matches_finite_differences},
    {"test_gelu_and_tanh_backward_match_finite_differences",
     test_gelu_and_tanh_backward_match_finite_differences},
    {"test_gelu_is_the_erf_form", test_gelu_is_the_erf_form},
    {"test_dropout_backward_regenerates_the_forward_mask",
     test_dropout_backward_regenerates_the_forward_mask},
    {"test_dropout_add_and_recorded_mask_match_the_plain_dropout",
     test_dropout_add_and_recorded_mask_match_the_plain_dropout},
    {"test_dropout_mask_depends_only_on_key_and_position",
     test_dropout_mask_depends_only_on_key_and_position},
    {"test_dropout_keeps_element_i_by_word_i_of_its_rng_stream",
     test_dropout_keeps_element_i_by_word_i_of_its_rng_stream},
    {"test_attention_backward_matches_finite_differences_with_padding",
     test_attention_backward_matches_finite_differences_with_padding},
    {"test_attention_backward_matches_finite_differences_with_dropout",
     test_attention_backward_matches_finite_differences_with_dropout},
    {"test_embeddings_backward_matches_finite_differences",
     test_embeddings_backward_matches_finite_differences},
    {"test_gather_and_crossentropy_backward_match_finite_differences",
     test_gather_and_crossentropy_backward_match_finite_differences},
    {"test_crossentropy_of_uniform_logits_is_log_classes",
     test_crossentropy_of_uniform_logits_is_log_classes},
    {NULL, NULL},
};
const harness_suite trainer_layers_suite = {"layers", tests};
