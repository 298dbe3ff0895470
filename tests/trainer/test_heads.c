/* trainer/heads: the classifier with cross-entropy and the CRF agree with
 * finite differences (gradcheck.h), the CRF's log-partition and Viterbi path
 * agree with brute force over every tag path, and ignored labels take no
 * part. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "harness.h"
#include "trainer/heads.h"
#include "trainer/layers.h"

#define SAMPLES 60

/* ------------------------------------------------ classifier + cross-entropy */
typedef struct {
  size_t N, H, K;
  const int32_t *labels;
  float *x, *w, *b, *logits, *probs;
} cls_ctx;

static double cls_loss(void *p) {
  cls_ctx *c = p;
  size_t count;
  layer_linear_forward(c->logits, c->x, c->w, c->b, c->N, c->H, c->K);
  return head_softmax_ce_forward(c->probs, &count, NULL, c->logits, c->labels, c->N, c->K);
}

static void test_classifier_and_crossentropy_backward_match_finite_differences(void) {
  /* Rows 1 and 4 are ignored (-100): no loss, no gradient. */
  int32_t labels[6] = {2, HEAD_IGNORE, 0, 1, HEAD_IGNORE, 2};
  cls_ctx c = {.N = 6, .H = 9, .K = 3, .labels = labels};
  c.x = gradcheck_vec(c.N * c.H, 1, 101), c.w = gradcheck_vec(c.K * c.H, 1, 102),
  c.b = gradcheck_vec(c.K, 1, 103);
  c.logits = gradcheck_zeros(c.N * c.K), c.probs = gradcheck_zeros(c.N * c.K);
  cls_loss(&c);
  float *dlogits = gradcheck_stale(c.N * c.K), *dx = gradcheck_stale(c.N * c.H),
        *dw = gradcheck_zeros(c.K * c.H);
  float *db = gradcheck_zeros(c.K);
  head_softmax_ce_backward(dlogits, c.probs, labels, c.N, c.K, 1.0f);
  layer_linear_backward(dx, dw, db, dlogits, c.x, c.w, c.N, c.H, c.K);
  gradcheck_expect_close("dx", gradcheck_rel_error(cls_loss, &c, c.x, dx, c.N * c.H, c.N * c.H, 1e-3f, 1e-6));
  gradcheck_expect_close("classifier.weight",
                         gradcheck_rel_error(cls_loss, &c, c.w, dw, c.K * c.H, SAMPLES, 1e-3f, 1e-6));
  gradcheck_expect_close("classifier.bias",
                         gradcheck_rel_error(cls_loss, &c, c.b, db, c.K, c.K, 1e-3f, 1e-6));
  for (size_t h = 0; h < c.H; h++) {
    CU_ASSERT_EQUAL(dx[1 * c.H + h], 0.0f);
    CU_ASSERT_EQUAL(dx[4 * c.H + h], 0.0f);
  }
  /* Ignored rows still get probabilities (prediction reads them). */
  for (size_t n = 0; n < c.N; n++) {
    double s = 0;
    for (size_t k = 0; k < c.K; k++) s += c.probs[n * c.K + k];
    CU_ASSERT_DOUBLE_EQUAL(s, 1.0, 1e-6);
  }
  free(c.x), free(c.w), free(c.b), free(c.logits), free(c.probs), free(dlogits), free(dx);
  free(dw), free(db);
}

static void test_crossentropy_counts_labelled_rows_and_correct_ones(void) {
  /* Row 0: log(e^1 + e^2 + e^3) - 3; row 2: the same - 1; row 1 ignored. */
  float logits[9] = {1, 2, 3, 5, 0, 0, 3, 2, 1}, probs[9];
  int32_t labels[3] = {2, HEAD_IGNORE, 2};
  size_t count = 99, correct = 99;
  double lse = log(exp(1.0) + exp(2.0) + exp(3.0));
  double loss = head_softmax_ce_forward(probs, &count, &correct, logits, labels, 3, 3);
  CU_ASSERT_EQUAL(count, 2);
  CU_ASSERT_EQUAL(correct, 1);
  CU_ASSERT_DOUBLE_EQUAL(loss, ((lse - 3) + (lse - 1)) / 2, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(probs[3], exp(5.0) / (exp(5.0) + 2), 1e-6);
  /* dloss scales; in place works. */
  head_softmax_ce_backward(probs, probs, labels, 3, 3, 4.0f);
  CU_ASSERT_DOUBLE_EQUAL(probs[2], 2.0 * (exp(3.0 - lse) - 1), 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(probs[6], 2.0 * exp(3.0 - lse), 1e-6);
  CU_ASSERT_EQUAL(probs[3], 0.0f);
  /* Nothing labelled: loss 0, gradient 0, not NaN. */
  int32_t none[3] = {HEAD_IGNORE, HEAD_IGNORE, HEAD_IGNORE};
  CU_ASSERT_EQUAL(head_softmax_ce_forward(probs, &count, &correct, logits, none, 3, 3), 0.0);
  CU_ASSERT_EQUAL(count, 0);
  head_softmax_ce_backward(probs, probs, none, 3, 3, 1.0f);
  for (size_t i = 0; i < 9; i++) CU_ASSERT_EQUAL(probs[i], 0.0f);
}

/* -------------------------------------------------------------------- CRF */
#define T_MAX 6
#define B_MAX 4

static void test_chain_rows_keep_the_labelled_positions_in_order(void) {
  int32_t labels[3 * 4] = {HEAD_IGNORE, 2, HEAD_IGNORE, 0,  /* sequence 0: t = 1, 3 */
                           HEAD_IGNORE, HEAD_IGNORE, HEAD_IGNORE, HEAD_IGNORE,
                           1, 1, 0, HEAD_IGNORE};
  size_t rows[12], first[4];
  int32_t tags[12];
  CU_ASSERT_EQUAL(head_chain_rows(rows, first, tags, labels, 3, 4), 5);
  size_t want_rows[5] = {1, 3, 8, 9, 10}, want_first[4] = {0, 2, 2, 5};
  int32_t want_tags[5] = {2, 0, 1, 1, 0};
  CU_ASSERT_EQUAL(memcmp(rows, want_rows, sizeof want_rows), 0);
  CU_ASSERT_EQUAL(memcmp(first, want_first, sizeof want_first), 0);
  CU_ASSERT_EQUAL(memcmp(tags, want_tags, sizeof want_tags), 0);
}

/* A batch of B sequences of T positions with some ignored, its chains and
 * the CRF's parameters. */
typedef struct {
  size_t B, T, K, P;
  int32_t labels[B_MAX * T_MAX], tags[B_MAX * T_MAX];
  size_t rows[B_MAX * T_MAX], first[B_MAX + 1];
  float *logits; /* (B, T, K): emissions before gathering the chains */
  float *emis, *trans, *start, *end;
  double *work;
} crf_ctx;

static void crf_setup(crf_ctx *c, size_t B, size_t T, size_t K, const int32_t *labels,
                      uint32_t stream) {
  c->B = B, c->T = T, c->K = K;
  memcpy(c->labels, labels, B * T * sizeof *labels);
  c->P = head_chain_rows(c->rows, c->first, c->tags, c->labels, B, T);
  c->logits = gradcheck_vec(B * T * K, 2, stream), c->emis = gradcheck_zeros(B * T * K);
  c->trans = gradcheck_vec(K * K, 1, stream + 1), c->start = gradcheck_vec(K, 1, stream + 2);
  c->end = gradcheck_vec(K, 1, stream + 3);
  c->work = malloc(head_crf_work_len(T, K) * sizeof(double));
  layer_gather_forward(c->emis, c->logits, c->rows, c->P, K);
}

static void crf_free(crf_ctx *c) {
  free(c->logits), free(c->emis), free(c->trans), free(c->start), free(c->end), free(c->work);
}

static double crf_loss(void *p) {
  crf_ctx *c = p;
  size_t count;
  layer_gather_forward(c->emis, c->logits, c->rows, c->P, c->K);
  return head_crf_forward(&count, c->work, c->emis, c->tags, c->first, c->trans, c->start, c->end,
                          c->B, c->K);
}

/* Sequences of 5 positions, first-piece style: chains of 4, 2, 0 and 5. */
static const int32_t crf_labels[4 * 5] = {
    0, HEAD_IGNORE, 2, 1, 3,
    HEAD_IGNORE, 3, HEAD_IGNORE, HEAD_IGNORE, 0,
    HEAD_IGNORE, HEAD_IGNORE, HEAD_IGNORE, HEAD_IGNORE, HEAD_IGNORE,
    1, 1, 2, 0, 2,
};

static void test_crf_backward_matches_finite_differences(void) {
  crf_ctx c;
  crf_setup(&c, 4, 5, 4, crf_labels, 201);
  crf_loss(&c);
  size_t K = c.K, n = c.B * c.T * K;
  float *demis = gradcheck_stale(c.P * K), *dlogits = gradcheck_zeros(n), *dtrans = gradcheck_zeros(K * K);
  float *dstart = gradcheck_zeros(K), *dend = gradcheck_zeros(K);
  head_crf_backward(demis, dtrans, dstart, dend, c.work, c.emis, c.tags, c.first, c.trans,
                    c.start, c.end, c.B, K, 1.0f);
  layer_gather_backward(dlogits, demis, c.rows, c.P, K);
  gradcheck_expect_close("d emissions",
                         gradcheck_rel_error(crf_loss, &c, c.logits, dlogits, n, n, GRADCHECK_EPS, 1e-6));
  gradcheck_expect_close(
      "d transitions", gradcheck_rel_error(crf_loss, &c, c.trans, dtrans, K * K, K * K, GRADCHECK_EPS, 1e-6));
  gradcheck_expect_close("d start",
                         gradcheck_rel_error(crf_loss, &c, c.start, dstart, K, K, GRADCHECK_EPS, 1e-6));
  gradcheck_expect_close("d end", gradcheck_rel_error(crf_loss, &c, c.end, dend, K, K, GRADCHECK_EPS, 1e-6));
  /* Ignored positions get no gradient. */
  for (size_t k = 0; k < K; k++) {
    CU_ASSERT_EQUAL(dlogits[1 * K + k], 0.0f);
    CU_ASSERT_EQUAL(dlogits[(2 * c.T + 3) * K + k], 0.0f);
  }
  /* Parameter gradients accumulate: a second call with dloss 2 triples them;
   * the emission gradient is written, so it doubles. */
  float t0 = dtrans[5], s0 = dstart[1], e0 = dend[2], m0 = demis[3];
  head_crf_backward(demis, dtrans, dstart, dend, c.work, c.emis, c.tags, c.first, c.trans,
                    c.start, c.end, c.B, K, 2.0f);
  CU_ASSERT_DOUBLE_EQUAL(dtrans[5], 3.0 * t0, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(dstart[1], 3.0 * s0, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(dend[2], 3.0 * e0, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(demis[3], 2.0 * m0, 1e-6);
  free(demis), free(dlogits), free(dtrans), free(dstart), free(dend);
  crf_free(&c);
}

/* Brute force over all K^n tag paths of one chain: log Z, and the best path
 * and its score (the first of equals in enumeration order; ties do not occur
 * with these random scores). */
static double path_score(const crf_ctx *c, const float *e, const int32_t *y, size_t n) {
  double s = (double)c->start[y[0]] + c->end[y[n - 1]];
  for (size_t t = 0; t < n; t++) {
    s += e[t * c->K + (size_t)y[t]];
    if (t) s += c->trans[(size_t)y[t - 1] * c->K + (size_t)y[t]];
  }
  return s;
}

static double brute_force(const crf_ctx *c, size_t b, int32_t *best_path, double *best_score) {
  size_t n = c->first[b + 1] - c->first[b], K = c->K, paths = 1;
  const float *e = c->emis + c->first[b] * K;
  for (size_t t = 0; t < n; t++) paths *= K;
  double z = 0.0;
  *best_score = -INFINITY;
  for (size_t code = 0; code < paths; code++) {
    int32_t y[T_MAX];
    for (size_t t = 0, r = code; t < n; t++, r /= K) y[t] = (int32_t)(r % K);
    double s = path_score(c, e, y, n);
    z += exp(s);
    if (s > *best_score) *best_score = s, memcpy(best_path, y, n * sizeof *y);
  }
  return log(z);
}

static const int32_t mask_cases[][5] = {
    /* every position; prefix (pytorch-crf's mask); holes; a single one */
    {0, 1, 2, 1, 0},
    {2, 2, 0, HEAD_IGNORE, HEAD_IGNORE},
    {HEAD_IGNORE, 1, HEAD_IGNORE, 0, 2},
    {HEAD_IGNORE, HEAD_IGNORE, 1, HEAD_IGNORE, HEAD_IGNORE},
};

static void test_crf_log_partition_matches_brute_force_enumeration(void) {
  /* The four masks as one batch, and each alone, with K = 3 and chains of
   * 1 to 5. */
  crf_ctx c;
  crf_setup(&c, 4, 5, 3, &mask_cases[0][0], 301);
  size_t count;
  double nll = head_crf_forward(&count, c.work, c.emis, c.tags, c.first, c.trans, c.start, c.end,
                                c.B, c.K);
  CU_ASSERT_EQUAL(count, 4);
  double want = 0.0, worst = 0.0;
  for (size_t b = 0; b < c.B; b++) {
    int32_t path[T_MAX];
    double best, logz = brute_force(&c, b, path, &best);
    size_t n = c.first[b + 1] - c.first[b];
    double one = logz - path_score(&c, c.emis + c.first[b] * c.K, c.tags + c.first[b], n);
    size_t first1[2] = {0, n}, count1;
    double got = head_crf_forward(&count1, c.work, c.emis + c.first[b] * c.K, c.tags + c.first[b],
                                  first1, c.trans, c.start, c.end, 1, c.K);
    worst = fmax(worst, fabs(got - one));
    CU_ASSERT(one > 0.0);
    want += one / (double)c.B;
  }
  printf(" (log Z within %.2g) ", worst);
  CU_ASSERT(worst < 1e-9);
  CU_ASSERT_DOUBLE_EQUAL(nll, want, 1e-9);
  crf_free(&c);
}

static void test_crf_viterbi_matches_brute_force_argmax(void) {
  for (uint32_t seed = 0; seed < 5; seed++) {
    crf_ctx c;
    crf_setup(&c, 4, 5, 3, &mask_cases[0][0], 400 + 10 * seed);
    int32_t tags[B_MAX * T_MAX], back[T_MAX * 3];
    double score[B_MAX];
    head_crf_viterbi(tags, score, c.work, back, c.emis, c.first, c.trans, c.start, c.end, c.B,
                     c.K);
    for (size_t b = 0; b < c.B; b++) {
      int32_t path[T_MAX];
      double best;
      brute_force(&c, b, path, &best);
      size_t n = c.first[b + 1] - c.first[b];
      CU_ASSERT_EQUAL(memcmp(tags + c.first[b], path, n * sizeof *path), 0);
      CU_ASSERT_DOUBLE_EQUAL(score[b], best, 1e-9);
    }
    crf_free(&c);
  }
}

static void test_crf_of_an_empty_chain_is_zero_and_decodes_nothing(void) {
  int32_t labels[3] = {HEAD_IGNORE, HEAD_IGNORE, HEAD_IGNORE};
  crf_ctx c;
  crf_setup(&c, 1, 3, 2, labels, 501);
  size_t count = 99;
  CU_ASSERT_EQUAL(head_crf_forward(&count, c.work, c.emis, c.tags, c.first, c.trans, c.start,
                                   c.end, 1, 2), 0.0);
  CU_ASSERT_EQUAL(count, 0);
  float dtrans[4] = {0}, dstart[2] = {0}, dend[2] = {0};
  head_crf_backward(NULL, dtrans, dstart, dend, c.work, c.emis, c.tags, c.first, c.trans, c.start,
                    c.end, 1, 2, 1.0f);
  for (size_t i = 0; i < 4; i++) CU_ASSERT_EQUAL(dtrans[i], 0.0f);
  double score = 1.0;
  head_crf_viterbi(NULL, &score, c.work, NULL, c.emis, c.first, c.trans, c.start, c.end, 1, 2);
  CU_ASSERT_EQUAL(score, 0.0);
  crf_free(&c);
}

static const harness_test tests[] = {
    {"test_classifier_and_crossentropy_backward_match_finite_differences",
     test_classifier_and_crossentropy_backward_match_finite_differences},
    {"test_crossentropy_counts_labelled_rows_and_correct_ones",
     test_crossentropy_counts_labelled_rows_and_correct_ones},
    {"test_chain_rows_keep_the_labelled_positions_in_order",
     test_chain_rows_keep_the_labelled_positions_in_order},
    {"test_crf_backward_matches_finite_differences", test_crf_backward_matches_finite_differences},
    {"test_crf_log_partition_matches_brute_force_enumeration",
     test_crf_log_partition_matches_brute_force_enumeration},
    {"test_crf_viterbi_matches_brute_force_argmax", test_crf_viterbi_matches_brute_force_argmax},
    {"test_crf_of_an_empty_chain_is_zero_and_decodes_nothing",
     test_crf_of_an_empty_chain_is_zero_and_decodes_nothing},
    {NULL, NULL},
};
const harness_suite trainer_heads_suite = {"heads", tests};
