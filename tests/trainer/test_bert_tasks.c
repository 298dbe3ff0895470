/* trainer/bert's fine-tuning tasks: the whole model's gradient against
 * finite differences for sequence classification, token classification and
 * tagging with a CRF; dropout, prediction without labels, micro-batch
 * scaling, the pruned last layer, decoding, the gradient-ready order, bad
 * labels and the FLOP count. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "harness.h"
#include "trainer/bert.h"
#include "trainer/heads.h"
#include "util/status.h"

enum { TB = 3, TL = 6, TN = TB * TL, TK = 3 };

/* Three sequences of 6 with padding; classification labels with one
 * ignored; first-piece tags (-100 at [CLS], continuation pieces, padding)
 * with the third sequence unlabelled, an empty CRF chain. */
typedef struct task_toy {
  bert_model *m;
  bert_batch batch;
  bert_dropout drop;
  int32_t ids[TN], segs[TN], mask[TN], classes[TB], tags[TN];
} task_toy;

static bert_config task_config(int task, int crf) {
  return (bert_config){.vocab_size = 23, .hidden = 16, .layers = 2, .heads = 2,
                       .intermediate = 24, .max_positions = 8, .type_vocab = 2,
                       .hidden_dropout = 0.1f, .attention_dropout = 0.1f, .ln_eps = 1e-12f,
                       .task = task, .num_labels = TK, .crf = crf};
}

static void task_toy_init(task_toy *t, int task, int crf) {
  bert_config c = task_config(task, crf);
  CU_ASSERT_EQUAL_FATAL(bert_model_create(&t->m, &c, TB, TL, 0, NULL), ST_OK);
  params *p = bert_model_params(t->m);
  /* Larger than BERT's 0.02 so every path carries a visible gradient; the
   * CRF's scores too (they start at zero). */
  gradcheck_fill(p->data, p->total, 0.4f, 901);
  static const int32_t ids[TN] = {1, 5, 7, 2, 9, 3, 1, 11, 4, 3, 0, 0, 1, 6, 8, 12, 3, 0};
  static const int32_t segs[TN] = {0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0};
  static const int32_t mask[TN] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0};
  static const int32_t classes[TB] = {2, 0, HEAD_IGNORE};
  static const int32_t tags[TN] = {-100, 1, -100, 2,    0,    -100, -100, 2,    1,
                                   -100, -100, -100, -100, -100, -100, -100, -100, -100};
  memcpy(t->ids, ids, sizeof ids), memcpy(t->segs, segs, sizeof segs);
  memcpy(t->mask, mask, sizeof mask), memcpy(t->classes, classes, sizeof classes);
  memcpy(t->tags, tags, sizeof tags);
  t->batch = (bert_batch){.B = TB, .L = TL, .input_ids = t->ids, .segment_ids = t->segs,
                          .attention_mask = t->mask};
  if (task == BERT_TASK_CLASSIFY) t->batch.class_labels = t->classes;
  if (task == BERT_TASK_TAG) t->batch.tag_labels = t->tags;
  t->drop = (bert_dropout){.seed = 5, .step = 3, .micro = 0};
}

static double task_toy_loss(void *ctx) {
  task_toy *t = ctx;
  bert_loss loss;
  CU_ASSERT_EQUAL(bert_forward(t->m, &t->batch, &t->drop, &loss, NULL), ST_OK);
  return loss.total;
}

/* Zeroed gradients, then forward and backward (with dropout): a malloc'd
 * copy of the gradient arena. */
static float *task_toy_grads(task_toy *t, const bert_grad_scale *scale) {
  params *p = bert_model_params(t->m);
  params_zero_grad(p);
  task_toy_loss(t);
  bert_backward(t->m, &t->batch, scale);
  float *g = malloc(p->total * sizeof(float));
  CU_ASSERT_FATAL(g != NULL);
  memcpy(g, p->grad, p->total * sizeof(float));
  return g;
}

/* As test_bert.c's whole-model check (same step and tolerance), for every
 * entry of the task's table, dropout on. */
#define MODEL_EPS 5e-2f

static void check_task_gradient(int task, int crf, size_t want_count) {
  task_toy t;
  task_toy_init(&t, task, crf);
  params *p = bert_model_params(t.m);
  bert_loss loss;
  CU_ASSERT_EQUAL(bert_forward(t.m, &t.batch, &t.drop, &loss, NULL), ST_OK);
  CU_ASSERT_EQUAL(loss.task_count, want_count);
  CU_ASSERT(loss.task > 0.1 && loss.total == loss.task && loss.mlm == 0 && loss.nsp == 0);
  float *analytic = task_toy_grads(&t, NULL);
  double worst = 0;
  for (size_t i = 0; i < p->count; i++) {
    const params_entry *e = &p->entries[i];
    double rel = gradcheck_rel_error(task_toy_loss, &t, p->data + e->offset, analytic + e->offset,
                                     e->count, 16, MODEL_EPS, 1e-3);
    if (rel >= GRADCHECK_MODEL_TOL) printf("\n  %s: relative error %.3g\n", e->name, rel);
    CU_ASSERT(rel < GRADCHECK_MODEL_TOL);
    worst = fmax(worst, rel);
  }
  printf(" (loss %.4f over %zu, worst %.2g) ", loss.task, loss.task_count, worst);
  free(analytic);
  bert_model_free(t.m);
}

static void test_classify_gradient_matches_finite_differences(void) {
  check_task_gradient(BERT_TASK_CLASSIFY, 0, 2); /* the third sequence is ignored */
}

static void test_tag_gradient_matches_finite_differences(void) {
  check_task_gradient(BERT_TASK_TAG, 0, 5); /* labelled first pieces */
}

static void test_tag_crf_gradient_matches_finite_differences(void) {
  check_task_gradient(BERT_TASK_TAG, 1, 2); /* non-empty chains */
}

static void test_task_dropout_is_reproducible_and_keyed_by_step(void) {
  for (int v = 0; v < 3; v++) {
    task_toy t;
    task_toy_init(&t, v == 0 ? BERT_TASK_CLASSIFY : BERT_TASK_TAG, v == 2);
    double a = task_toy_loss(&t), b = task_toy_loss(&t);
    CU_ASSERT_EQUAL(a, b);
    t.drop.step = 4;
    CU_ASSERT_NOT_EQUAL(task_toy_loss(&t), a);
    bert_loss eval;
    CU_ASSERT_EQUAL(bert_forward(t.m, &t.batch, NULL, &eval, NULL), ST_OK);
    CU_ASSERT_NOT_EQUAL(eval.total, a);
    bert_model_free(t.m);
  }
}

/* Prediction (no labels) gives the logits of a labelled forward, and no
 * loss; the logits have one row per sequence (CLASSIFY) or position (TAG). */
static void test_prediction_without_labels_gives_the_same_logits(void) {
  for (int v = 0; v < 3; v++) {
    int task = v == 0 ? BERT_TASK_CLASSIFY : BERT_TASK_TAG;
    task_toy t;
    task_toy_init(&t, task, v == 2);
    bert_loss with, without;
    size_t rows, K;
    CU_ASSERT_EQUAL_FATAL(bert_forward(t.m, &t.batch, NULL, &with, NULL), ST_OK);
    const float *logits = bert_task_logits(t.m, &rows, &K);
    CU_ASSERT_EQUAL(rows, task == BERT_TASK_CLASSIFY ? (size_t)TB : (size_t)TN);
    CU_ASSERT_EQUAL(K, TK);
    float *saved = malloc(rows * K * sizeof *saved);
    memcpy(saved, logits, rows * K * sizeof *saved);
    bert_batch unlabelled = t.batch;
    unlabelled.class_labels = unlabelled.tag_labels = NULL;
    CU_ASSERT_EQUAL_FATAL(bert_forward(t.m, &unlabelled, NULL, &without, NULL), ST_OK);
    CU_ASSERT(with.task > 0 && without.total == 0 && without.task_count == 0);
    CU_ASSERT_EQUAL(memcmp(bert_task_logits(t.m, &rows, &K), saved, rows * K * sizeof *saved), 0);
    /* The classifier's rows are the [CLS] rows' (CLASSIFY) or every row's. */
    float first = saved[0];
    t.ids[TL + 2] = 17; /* a token of sequence 1 */
    CU_ASSERT_EQUAL_FATAL(bert_forward(t.m, &unlabelled, NULL, &without, NULL), ST_OK);
    logits = bert_task_logits(t.m, &rows, &K);
    CU_ASSERT_DOUBLE_EQUAL(logits[0], first, 1e-6); /* sequence 0 does not see it */
    CU_ASSERT_NOT_EQUAL(logits[(task == BERT_TASK_CLASSIFY ? 1 : TL + 1) * K],
                        saved[(task == BERT_TASK_CLASSIFY ? 1 : TL + 1) * K]);
    free(saved);
    bert_model_free(t.m);
  }
}

/* A batch split into single sequences, each backward scaled by 1 / (the
 * whole batch's task_count), adds up to the whole batch's gradient: what
 * accumulation and data parallelism rely on. */
static void test_task_micro_batches_with_global_scale_equal_one_batch(void) {
  for (int v = 0; v < 3; v++) {
    task_toy t;
    task_toy_init(&t, v == 0 ? BERT_TASK_CLASSIFY : BERT_TASK_TAG, v == 2);
    params *p = bert_model_params(t.m);
    bert_loss whole;
    params_zero_grad(p);
    CU_ASSERT_EQUAL(bert_forward(t.m, &t.batch, NULL, &whole, NULL), ST_OK);
    bert_backward(t.m, &t.batch, NULL);
    float *ref = malloc(p->total * sizeof(float));
    memcpy(ref, p->grad, p->total * sizeof(float));
    params_zero_grad(p);
    bert_grad_scale scale = {.task = 1.0f / (float)whole.task_count};
    double sum = 0;
    size_t count = 0;
    for (size_t b = 0; b < TB; b++) {
      bert_batch one = t.batch;
      one.B = 1;
      one.input_ids += TL * b, one.segment_ids += TL * b, one.attention_mask += TL * b;
      if (one.class_labels) one.class_labels += b;
      if (one.tag_labels) one.tag_labels += TL * b;
      bert_loss l;
      CU_ASSERT_EQUAL(bert_forward(t.m, &one, NULL, &l, NULL), ST_OK);
      bert_backward(t.m, &one, &scale);
      sum += l.task * (double)l.task_count;
      count += l.task_count;
    }
    CU_ASSERT_EQUAL(count, whole.task_count);
    CU_ASSERT_DOUBLE_EQUAL(sum / (double)count, whole.task, 1e-5);
    double d = 0, n = 0;
    for (size_t i = 0; i < p->total; i++) {
      d += pow((double)p->grad[i] - ref[i], 2);
      n += pow((double)ref[i], 2);
    }
    CU_ASSERT(n > 0 && sqrt(d / n) < 1e-5);
    free(ref);
    bert_model_free(t.m);
  }
}

/* CLASSIFY computes the last layer at the [CLS] rows only; with dropout,
 * the loss and every gradient are those of the whole layer. */
static void test_classify_last_layer_on_cls_rows_equals_full_layer(void) {
  float *grads[2];
  double loss[2];
  size_t total = 0;
  for (int full = 0; full <= 1; full++) {
    task_toy t;
    task_toy_init(&t, BERT_TASK_CLASSIFY, 0);
    bert_set_last_layer_full(t.m, full);
    grads[full] = task_toy_grads(&t, NULL);
    loss[full] = task_toy_loss(&t);
    total = bert_model_params(t.m)->total;
    bert_model_free(t.m);
  }
  double worst = 0, scale = 0;
  for (size_t i = 0; i < total; i++) {
    worst = fmax(worst, fabs((double)grads[0][i] - grads[1][i]));
    scale = fmax(scale, fabs((double)grads[1][i]));
  }
  CU_ASSERT_DOUBLE_EQUAL(loss[0], loss[1], 1e-6 * fabs(loss[1]));
  CU_ASSERT(scale > 0 && worst <= 1e-6 * scale);
  free(grads[0]), free(grads[1]);
}

/* Decoding: the argmax of each chain position's logits; with the CRF the
 * Viterbi path, which with zero transition scores is that argmax too and
 * with a strongly negative self-transition never repeats a tag. -100 off
 * the chain; another task is refused. */
static void test_tag_decode_is_argmax_or_viterbi_on_the_chain(void) {
  for (int crf = 0; crf <= 1; crf++) {
    task_toy t;
    task_toy_init(&t, BERT_TASK_TAG, crf);
    params *p = bert_model_params(t.m);
    const params_entry *tr = crf ? params_find(p, "crf.transitions") : NULL;
    if (crf) memset(p->data + tr->offset, 0, (tr->count + 2 * TK) * sizeof(float));
    bert_batch unlabelled = t.batch;
    unlabelled.tag_labels = NULL;
    bert_loss l;
    CU_ASSERT_EQUAL_FATAL(bert_forward(t.m, &unlabelled, NULL, &l, NULL), ST_OK);
    int32_t chain[TN], pred[TN];
    for (size_t i = 0; i < TN; i++) chain[i] = t.mask[i] && i % TL ? 0 : HEAD_IGNORE;
    CU_ASSERT_EQUAL_FATAL(bert_tag_decode(t.m, chain, pred, NULL), ST_OK);
    size_t rows, K;
    const float *logits = bert_task_logits(t.m, &rows, &K);
    for (size_t i = 0; i < TN; i++) {
      if (chain[i] == HEAD_IGNORE) {
        CU_ASSERT_EQUAL(pred[i], HEAD_IGNORE);
        continue;
      }
      size_t best = 0;
      for (size_t k = 1; k < K; k++)
        if (logits[i * K + k] > logits[i * K + best]) best = k;
      CU_ASSERT_EQUAL(pred[i], (int32_t)best);
    }
    if (crf) {
      for (size_t k = 0; k < TK; k++) p->data[tr->offset + k * TK + k] = -1e4f;
      CU_ASSERT_EQUAL_FATAL(bert_tag_decode(t.m, chain, pred, NULL), ST_OK);
      for (size_t i = 1; i < TN; i++)
        if (chain[i] != HEAD_IGNORE && chain[i - 1] != HEAD_IGNORE)
          CU_ASSERT_NOT_EQUAL(pred[i], pred[i - 1]);
    }
    bert_model_free(t.m);
  }
  task_toy t;
  task_toy_init(&t, BERT_TASK_CLASSIFY, 0);
  bert_loss l;
  CU_ASSERT_EQUAL(bert_forward(t.m, &t.batch, NULL, &l, NULL), ST_OK);
  int32_t pred[TN];
  char *err = NULL;
  CU_ASSERT_EQUAL(bert_tag_decode(t.m, t.tags, pred, &err), ST_INVALID);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "classify") : NULL);
  free(err);
  bert_model_free(t.m);
}

typedef struct ready_log {
  size_t lo[8];
  size_t n;
} ready_log;

static void record_ready(void *ctx, size_t lo) {
  ready_log *r = ctx;
  if (r->n < 8) r->lo[r->n] = lo;
  r->n++;
}

/* The heads come last in the arena and are final first: the data-parallel
 * loop reduces from the end while backward goes on. */
static void test_gradients_are_ready_from_the_heads_backwards(void) {
  static const char *const first_head[] = {"bert.pooler.dense.weight", "classifier.weight",
                                           "classifier.weight"};
  for (int v = 0; v < 3; v++) {
    task_toy t;
    task_toy_init(&t, v == 0 ? BERT_TASK_CLASSIFY : BERT_TASK_TAG, v == 2);
    params *p = bert_model_params(t.m);
    ready_log r = {{0}, 0};
    bert_set_grad_ready(t.m, record_ready, &r);
    free(task_toy_grads(&t, NULL));
    CU_ASSERT_EQUAL_FATAL(r.n, 4); /* heads, layer 1, layer 0, embeddings */
    CU_ASSERT_EQUAL(r.lo[0], params_find(p, first_head[v])->offset);
    const char *layer1 = "bert.encoder.layer.1.attention.self.query.weight";
    CU_ASSERT_EQUAL(r.lo[1], params_find(p, layer1)->offset);
    CU_ASSERT_EQUAL(r.lo[3], 0);
    bert_model_free(t.m);
  }
}

static void test_labels_out_of_range_and_missing_mlm_labels_are_refused(void) {
  task_toy t;
  task_toy_init(&t, BERT_TASK_TAG, 1);
  bert_loss l;
  char *err = NULL;
  t.tags[3] = TK;
  CU_ASSERT_EQUAL(bert_forward(t.m, &t.batch, NULL, &l, &err), ST_INVALID);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "label 3 at 3") : NULL);
  free(err);
  t.tags[3] = -1;
  CU_ASSERT_EQUAL(bert_forward(t.m, &t.batch, NULL, &l, NULL), ST_INVALID);
  bert_model_free(t.m);

  bert_config c = task_config(BERT_TASK_PRETRAIN, 0);
  c.num_labels = 0;
  bert_model *m;
  CU_ASSERT_EQUAL_FATAL(bert_model_create(&m, &c, TB, TL, 2, NULL), ST_OK);
  task_toy_init(&t, BERT_TASK_CLASSIFY, 0); /* for its batch */
  err = NULL;
  CU_ASSERT_EQUAL(bert_forward(m, &t.batch, NULL, &l, &err), ST_INVALID);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "MLM labels") : NULL);
  free(err);
  size_t rows = 1, K = 1;
  CU_ASSERT_PTR_NULL(bert_task_logits(m, &rows, &K));
  CU_ASSERT_EQUAL(rows, 0);
  bert_model_free(m);
  bert_model_free(t.m);
}

/* The config of test_bert.c's hand count (V = 10, C = 4, I = 8, 2 layers
 * of 2 heads, B = 2, L = 4: 8 tokens) with K = 3 labels.
 * CLASSIFY: the last layer computes the 2 [CLS] rows: keys and values
 *   8x4x8 = 256, queries 2x4x4 = 32, output 32, FFN in 2x4x8 = 64, FFN out
 *   64: 448, attention 2 rows * 2 heads * 16 = 64; layer 0 as there, 1024 +
 *   256; pooler 2x4x4 = 32, classifier 2x4x3 = 24. 1848 MACs, 6 * 1848 =
 *   11088 (the predicted count passed is ignored: no MLM head). Parameters
 *   88 + 344 + pooler 20 + classifier 15 = 467: model = 6 * 467 * 8 + 3072.
 * TAG: every row of both layers 2 * (1024 + 256) and the classifier at 8
 *   tokens 8x4x3 = 96: 6 * 2656 = 15936. 447 parameters (no pooler), 462
 *   with the CRF, whose work counts nothing. */
static void test_task_flops_match_a_hand_count(void) {
  bert_config c = {.vocab_size = 10, .hidden = 4, .layers = 2, .heads = 2, .intermediate = 8,
                   .max_positions = 8, .type_vocab = 2, .hidden_dropout = 0.1f,
                   .attention_dropout = 0.1f, .ln_eps = 1e-12f, .task = BERT_TASK_CLASSIFY,
                   .num_labels = 3};
  bert_flops f;
  CU_ASSERT_EQUAL_FATAL(bert_flops_per_step(&c, 2, 4, 5, &f, NULL), ST_OK);
  CU_ASSERT_EQUAL(f.work, 11088.0);
  CU_ASSERT_EQUAL(f.model, 6.0 * 467 * 8 + 3072);
  c.task = BERT_TASK_TAG;
  CU_ASSERT_EQUAL_FATAL(bert_flops_per_step(&c, 2, 4, 0, &f, NULL), ST_OK);
  CU_ASSERT_EQUAL(f.work, 15936.0);
  CU_ASSERT_EQUAL(f.model, 6.0 * 447 * 8 + 3072);
  c.crf = 1;
  CU_ASSERT_EQUAL_FATAL(bert_flops_per_step(&c, 2, 4, 0, &f, NULL), ST_OK);
  CU_ASSERT_EQUAL(f.work, 15936.0);
  CU_ASSERT_EQUAL(f.model, 6.0 * 462 * 8 + 3072);
}

static const harness_test tests[] = {
    {"test_classify_gradient_matches_finite_differences", test_classify_gradient_matches_finite_differences},
    {"test_tag_gradient_matches_finite_differences", test_tag_gradient_matches_finite_differences},
    {"test_tag_crf_gradient_matches_finite_differences", test_tag_crf_gradient_matches_finite_differences},
    {"test_task_dropout_is_reproducible_and_keyed_by_step", test_task_dropout_is_reproducible_and_keyed_by_step},
    {"test_prediction_without_labels_gives_the_same_logits", test_prediction_without_labels_gives_the_same_logits},
    {"test_task_micro_batches_with_global_scale_equal_one_batch", test_task_micro_batches_with_global_scale_equal_one_batch},
    {"test_classify_last_layer_on_cls_rows_equals_full_layer", test_classify_last_layer_on_cls_rows_equals_full_layer},
    {"test_tag_decode_is_argmax_or_viterbi_on_the_chain", test_tag_decode_is_argmax_or_viterbi_on_the_chain},
    {"test_gradients_are_ready_from_the_heads_backwards", test_gradients_are_ready_from_the_heads_backwards},
    {"test_labels_out_of_range_and_missing_mlm_labels_are_refused", test_labels_out_of_range_and_missing_mlm_labels_are_refused},
    {"test_task_flops_match_a_hand_count", test_task_flops_match_a_hand_count},
    {NULL, NULL},
};
const harness_suite trainer_bert_tasks_suite = {"bert_tasks", tests};
