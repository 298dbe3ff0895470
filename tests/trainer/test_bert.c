/* trainer/bert: configuration and presets, HuggingFace names and counts, the
 * whole model's gradient against finite differences, and reproducibility. */
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "harness.h"
#include "trainer/bert.h"
#include "trainer/blas.h"
#include "util/status.h"

static void test_presets_have_the_published_shapes(void) {
  static const struct {
    const char *name;
    size_t layers, hidden, heads, inter;
  } want[] = {{"bert-tiny", 2, 128, 2, 512},   {"bert-mini", 4, 256, 4, 1024},
              {"bert-small", 4, 512, 8, 2048}, {"bert-medium", 8, 512, 8, 2048},
              {"bert-base", 12, 768, 12, 3072}};
  for (size_t i = 0; i < 5; i++) {
    bert_config c;
    CU_ASSERT_EQUAL(bert_config_preset(&c, want[i].name, NULL), ST_OK);
    CU_ASSERT_EQUAL(c.layers, want[i].layers);
    CU_ASSERT_EQUAL(c.hidden, want[i].hidden);
    CU_ASSERT_EQUAL(c.heads, want[i].heads);
    CU_ASSERT_EQUAL(c.intermediate, want[i].inter);
    CU_ASSERT_EQUAL(c.vocab_size, 30522);
    CU_ASSERT_EQUAL(c.ln_eps, 1e-12f);
  }
  bert_config c;
  char *err = NULL;
  CU_ASSERT_EQUAL(bert_config_preset(&c, "bert-huge", &err), ST_INVALID);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "bert-huge") : NULL);
  free(err);
}

static void test_bert_base_has_huggingface_parameter_counts(void) {
  /* Published counts: BertForPreTraining (bert-base-uncased) 110,106,428;
   * BertForMaskedLM 109,514,298 (no pooler, no NSP head). */
  bert_config c;
  bert_memory mem;
  bert_config_preset(&c, "bert-base", NULL);
  CU_ASSERT_EQUAL(bert_memory_estimate(&c, 1, 128, 26, &mem, NULL), ST_OK);
  CU_ASSERT_EQUAL(mem.param_count, 110106428);
  c.nsp = 0;
  CU_ASSERT_EQUAL(bert_memory_estimate(&c, 1, 128, 26, &mem, NULL), ST_OK);
  CU_ASSERT_EQUAL(mem.param_count, 109514298);
}

/* A config small enough to count by hand: V = 10, C = 4, I = 8, 2 layers of
 * 2 heads (head size 2), 8 positions, NSP; a batch of B = 2 sequences of
 * L = 4 tokens (8 tokens) with 2 predicted tokens.
 *
 * Parameters: embeddings 10*4 + 8*4 + 2*4 + LayerNorm 2*4 = 88; each layer
 * QKV 3*4*4 + 12, output 16 + 4, LayerNorm 8, FFN in 32 + 8, out 32 + 4,
 * LayerNorm 8 = 172, two 344; pooler 16 + 4 = 20; MLM transform 16 + 4 +
 * LayerNorm 8 + decoder bias 10 = 38; NSP 8 + 2 = 10. Total 500.
 * model = 6 * 500 * 8 tokens + 12 * 2 layers * L 4 * C 4 * 8 tokens
 *       = 24000 + 3072 = 27072.
 *
 * work, in multiply-adds (MACs) of each matmul, rows x in x out:
 *  layer 0, all 8 tokens: QKV 8x4x12 = 384, output 8x4x4 = 128, FFN in
 *    8x4x8 = 256, FFN out 8x8x4 = 256: 1024. Attention per sequence and
 *    head QK^T 4x2x4 = 32 and PV 4x4x2 = 32: 2 sequences * 2 heads * 64 =
 *    256.
 *  layer 1 computes only the 4 rows the heads read (2 predicted + 2 [CLS]):
 *    keys and values for all 8 tokens 8x4x8 = 256, queries 4x4x4 = 64,
 *    output 64, FFN in 4x4x8 = 128, FFN out 4x8x4 = 128: 640. Attention
 *    of each of the 4 rows over its sequence's 4 keys, per head QK^T 4x2 = 8
 *    and PV 8: 4 rows * 2 heads * 16 = 128.
 *  MLM at 2 tokens: transform 2x4x4 = 32, decoder 2x4x10 = 80: 112.
 *  NSP per sequence: pooler 2x4x4 = 32, classifier 2x4x2 = 16: 48.
 * Sum 1024 + 256 + 640 + 128 + 112 + 48 = 2208 MACs, forward 2 FLOPs
 * each and backward twice forward: 6 * 2208 = 13248.
 * Without NSP and with no predicted token, the last layer computes every
 * row: 2 * (1024 + 256) MACs, 6 * 2560 = 15360. */
static void test_flops_per_step_match_a_hand_count(void) {
  bert_config c = {.vocab_size = 10, .hidden = 4, .layers = 2, .heads = 2, .intermediate = 8,
                   .max_positions = 8, .type_vocab = 2, .hidden_dropout = 0.1f,
                   .attention_dropout = 0.1f, .ln_eps = 1e-12f, .nsp = 1};
  bert_flops f;
  CU_ASSERT_EQUAL_FATAL(bert_flops_per_step(&c, 2, 4, 2, &f, NULL), ST_OK);
  CU_ASSERT_EQUAL(f.model, 27072.0);
  CU_ASSERT_EQUAL(f.work, 13248.0);
  c.nsp = 0;
  CU_ASSERT_EQUAL_FATAL(bert_flops_per_step(&c, 2, 4, 0, &f, NULL), ST_OK);
  CU_ASSERT_EQUAL(f.work, 15360.0);
  char *err = NULL;
  CU_ASSERT_EQUAL(bert_flops_per_step(&c, 2, 4, 9, &f, &err), ST_INVALID);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "9 predicted") : NULL);
  free(err);
}

static void test_table_uses_huggingface_names_with_late_layers_last(void) {
  bert_config c;
  bert_config_preset(&c, "bert-tiny", NULL);
  params *p = params_create();
  CU_ASSERT_EQUAL(bert_params_add(p, &c, NULL), ST_OK);
  const params_entry *q = params_find(p, "bert.encoder.layer.1.attention.self.query.weight");
  const params_entry *k = params_find(p, "bert.encoder.layer.1.attention.self.key.weight");
  const params_entry *fc = params_find(p, "bert.encoder.layer.0.intermediate.dense.weight");
  CU_ASSERT_PTR_NOT_NULL_FATAL(q);
  CU_ASSERT_PTR_NOT_NULL_FATAL(fc);
  CU_ASSERT_EQUAL(k->offset, q->offset + 128 * 128);
  CU_ASSERT_EQUAL(fc->shape[0], 512); /* Linear weights are [out, in] */
  CU_ASSERT_EQUAL(fc->shape[1], 128);
  CU_ASSERT(params_find(p, "bert.encoder.layer.0.output.LayerNorm.weight")->offset < q->offset);
  CU_ASSERT_PTR_NOT_NULL(params_find(p, "cls.predictions.bias"));
  CU_ASSERT_PTR_NOT_NULL(params_find(p, "cls.seq_relationship.weight"));
  CU_ASSERT_PTR_NOT_NULL(params_find(p, "bert.pooler.dense.bias"));
  CU_ASSERT_PTR_NULL(params_find(p, "cls.predictions.decoder.weight")); /* tied */
  /* ... and its weight, the word embeddings, ends the arena: final with the heads. */
  const params_entry *wte = params_find(p, "bert.embeddings.word_embeddings.weight");
  CU_ASSERT_EQUAL(wte->offset + wte->count, p->total);
  CU_ASSERT(!(params_find(p, "bert.embeddings.LayerNorm.weight")->flags & PARAMS_DECAY));
  CU_ASSERT(!(params_find(p, "cls.predictions.bias")->flags & PARAMS_DECAY));
  CU_ASSERT(params_find(p, "cls.predictions.transform.dense.weight")->flags & PARAMS_DECAY);
  params_free(p);
}

static void test_config_overrides_and_reads_huggingface_json(void) {
  bert_config c;
  bert_config_preset(&c, "bert-tiny", NULL);
  CU_ASSERT_EQUAL(bert_config_set(&c, "num_hidden_layers", "3", NULL), ST_OK);
  CU_ASSERT_EQUAL(c.layers, 3);
  CU_ASSERT_EQUAL(bert_config_set(&c, "hidden_dropout_prob", "0", NULL), ST_OK);
  CU_ASSERT_EQUAL(c.hidden_dropout, 0.0f);
  CU_ASSERT_EQUAL(bert_config_set(&c, "hidden_size", "-4", NULL), ST_INVALID);
  CU_ASSERT_EQUAL(bert_config_set(&c, "hidden_act", "relu", NULL), ST_INVALID);
  CU_ASSERT_EQUAL(bert_config_set(&c, "frobs", "1", NULL), ST_INVALID);
  CU_ASSERT_EQUAL(bert_config_set(&c, "num_attention_heads", "3", NULL), ST_OK);
  CU_ASSERT_EQUAL(bert_config_validate(&c, NULL), ST_INVALID); /* 128 % 3 */

  char *dir = harness_tmpdir("bertcfg");
  char path[512];
  snprintf(path, sizeof path, "%s/config.json", dir);
  FILE *f = fopen(path, "w");
  fputs("{\"architectures\": [\"BertForMaskedLM\"], \"hidden_act\": \"gelu\", "
        "\"hidden_size\": 256, \"num_hidden_layers\": 4, \"num_attention_heads\": 4, "
        "\"intermediate_size\": 1024, \"vocab_size\": 21128, \"layer_norm_eps\": 1e-12, "
        "\"attention_probs_dropout_prob\": 0.1, \"type_vocab_size\": 2}\n",
        f);
  fclose(f);
  bert_config_preset(&c, "bert-base", NULL);
  CU_ASSERT_EQUAL(bert_config_read_json(&c, path, NULL), ST_OK);
  CU_ASSERT_EQUAL(c.hidden, 256);
  CU_ASSERT_EQUAL(c.vocab_size, 21128);
  CU_ASSERT_EQUAL(c.heads, 4);
  CU_ASSERT_EQUAL(c.max_positions, 512);
  harness_rmtree(dir);
  free(dir);
}

static void test_task_settings_validate_and_describe(void) {
  CU_ASSERT_STRING_EQUAL(bert_task_name(BERT_TASK_TAG), "tag");
  CU_ASSERT_PTR_NULL(bert_task_name(3));
  CU_ASSERT_EQUAL(bert_task_parse("classify"), BERT_TASK_CLASSIFY);
  CU_ASSERT_EQUAL(bert_task_parse("ner"), -1);
  bert_config c;
  bert_config_preset(&c, "bert-tiny", NULL);
  CU_ASSERT_EQUAL(c.task, BERT_TASK_PRETRAIN);
  CU_ASSERT_EQUAL(c.num_labels, 0);
  char *err = NULL;
  CU_ASSERT_EQUAL(bert_config_set(&c, "task", "ner", &err), ST_INVALID);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "classify") : NULL);
  free(err);
  CU_ASSERT_EQUAL(bert_config_set(&c, "task", "classify", NULL), ST_OK);
  CU_ASSERT_EQUAL(c.nsp, 0); /* the preset's NSP head is pretraining's */
  err = NULL;
  CU_ASSERT_EQUAL(bert_config_validate(&c, &err), ST_INVALID); /* no labels yet */
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "num_labels") : NULL);
  free(err);
  CU_ASSERT_EQUAL(bert_config_set(&c, "num_labels", "3", NULL), ST_OK);
  CU_ASSERT_EQUAL(bert_config_validate(&c, NULL), ST_OK);
  char desc[512];
  bert_config_describe(&c, desc, sizeof desc);
  CU_ASSERT_PTR_NOT_NULL(strstr(desc, "task=classify num_labels=3 crf=0"));
  CU_ASSERT_EQUAL(bert_config_set(&c, "crf", "true", NULL), ST_OK);
  CU_ASSERT_EQUAL(bert_config_validate(&c, NULL), ST_INVALID); /* CRF is for tagging */
  CU_ASSERT_EQUAL(bert_config_set(&c, "task", "tag", NULL), ST_OK);
  CU_ASSERT_EQUAL(bert_config_validate(&c, NULL), ST_OK);
  c.nsp = 1;
  CU_ASSERT_EQUAL(bert_config_validate(&c, NULL), ST_INVALID);
  c.nsp = 0;
  CU_ASSERT_EQUAL(bert_config_set(&c, "num_labels", "1", NULL), ST_OK);
  CU_ASSERT_EQUAL(bert_config_validate(&c, NULL), ST_INVALID);
  CU_ASSERT_EQUAL(bert_config_set(&c, "num_labels", "-2", NULL), ST_INVALID);
  /* Pretraining has no labels; 0 is what a pretraining config writes. */
  bert_config_preset(&c, "bert-tiny", NULL);
  CU_ASSERT_EQUAL(bert_config_set(&c, "num_labels", "0", NULL), ST_OK);
  CU_ASSERT_EQUAL(bert_config_validate(&c, NULL), ST_OK);
  bert_config_describe(&c, desc, sizeof desc);
  CU_ASSERT_PTR_NOT_NULL(strstr(desc, "nsp=1 task=pretrain"));
  c.num_labels = 2;
  CU_ASSERT_EQUAL(bert_config_validate(&c, NULL), ST_INVALID);
}

/* BertForSequenceClassification and BertForTokenClassification (+ CRF):
 * the encoder's names, then the task's head, with HuggingFace's shapes; no
 * MLM head. Counts for bert-base with 3 labels: 109,482,240 for the encoder
 * with its pooler (BertModel) + 768 * 3 + 3 = 109,484,547; without the
 * pooler (768 * 768 + 768 = 590,592 fewer) 108,893,955, and the CRF adds
 * 9 + 3 + 3. */
static void test_task_heads_have_huggingface_names_and_counts(void) {
  bert_config c;
  bert_memory mem;
  bert_config_preset(&c, "bert-base", NULL);
  bert_config_set(&c, "task", "classify", NULL);
  bert_config_set(&c, "num_labels", "3", NULL);
  CU_ASSERT_EQUAL(bert_memory_estimate(&c, 1, 128, 0, &mem, NULL), ST_OK);
  CU_ASSERT_EQUAL(mem.param_count, 109484547);
  c.task = BERT_TASK_TAG;
  CU_ASSERT_EQUAL(bert_memory_estimate(&c, 1, 128, 0, &mem, NULL), ST_OK);
  CU_ASSERT_EQUAL(mem.param_count, 108893955);
  c.crf = 1;
  CU_ASSERT_EQUAL(bert_memory_estimate(&c, 1, 128, 0, &mem, NULL), ST_OK);
  CU_ASSERT_EQUAL(mem.param_count, 108893955 + 15);

  bert_config_preset(&c, "bert-tiny", NULL);
  bert_config_set(&c, "task", "classify", NULL);
  bert_config_set(&c, "num_labels", "5", NULL);
  params *p = params_create();
  CU_ASSERT_EQUAL_FATAL(bert_params_add(p, &c, NULL), ST_OK);
  const params_entry *pool = params_find(p, "bert.pooler.dense.weight");
  const params_entry *w = params_find(p, "classifier.weight");
  const params_entry *b = params_find(p, "classifier.bias");
  CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
  CU_ASSERT_PTR_NOT_NULL_FATAL(w);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  CU_ASSERT(params_find(p, "bert.encoder.layer.1.output.LayerNorm.bias")->offset < pool->offset);
  CU_ASSERT(pool->offset < w->offset);
  CU_ASSERT_EQUAL(w->shape[0], 5);
  CU_ASSERT_EQUAL(w->shape[1], 128);
  CU_ASSERT_EQUAL(b->ndim, 1);
  CU_ASSERT_EQUAL(w->init, PARAMS_INIT_NORMAL);
  CU_ASSERT(w->flags & PARAMS_DECAY);
  CU_ASSERT_EQUAL(b->init, PARAMS_INIT_ZEROS);
  CU_ASSERT(!(b->flags & PARAMS_DECAY));
  CU_ASSERT_EQUAL(b->offset + b->count, p->total); /* the head ends the arena */
  CU_ASSERT_PTR_NULL(params_find(p, "cls.predictions.bias"));
  CU_ASSERT_PTR_NULL(params_find(p, "cls.seq_relationship.weight"));
  CU_ASSERT_PTR_NULL(params_find(p, "crf.transitions"));
  params_free(p);

  bert_config_set(&c, "task", "tag", NULL);
  bert_config_set(&c, "crf", "true", NULL);
  p = params_create();
  CU_ASSERT_EQUAL_FATAL(bert_params_add(p, &c, NULL), ST_OK);
  CU_ASSERT_PTR_NULL(params_find(p, "bert.pooler.dense.weight"));
  const params_entry *t = params_find(p, "crf.transitions");
  const params_entry *e = params_find(p, "crf.end_transitions");
  CU_ASSERT_PTR_NOT_NULL_FATAL(t);
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  CU_ASSERT_PTR_NOT_NULL(params_find(p, "crf.start_transitions"));
  CU_ASSERT(params_find(p, "classifier.bias")->offset < t->offset);
  CU_ASSERT_EQUAL(t->ndim, 2);
  CU_ASSERT_EQUAL(t->shape[0], 5);
  CU_ASSERT_EQUAL(t->shape[1], 5);
  CU_ASSERT_EQUAL(t->init, PARAMS_INIT_ZEROS);
  CU_ASSERT_EQUAL(t->flags, PARAMS_TRAINABLE); /* no weight decay */
  CU_ASSERT_EQUAL(e->offset + e->count, p->total);
  params_free(p);
}

/* ------------------------------------------------ a small model end to end */

static bert_batch pretrain_batch(size_t B, size_t L, const int32_t *ids, const int32_t *segs,
                                 const int32_t *mask, const int32_t *labels, const int32_t *nsp) {
  return (bert_batch){.B = B, .L = L, .input_ids = ids, .segment_ids = segs,
                      .attention_mask = mask, .mlm_labels = labels, .nsp_labels = nsp};
}

typedef struct toy {
  bert_model *m;
  bert_batch batch;
  bert_dropout drop;
  int32_t ids[12], segs[12], mask[12], labels[12], nsp[2];
} toy;

static bert_config toy_config(void) {
  return (bert_config){.vocab_size = 23, .hidden = 16, .layers = 2, .heads = 2,
                       .intermediate = 24, .max_positions = 8, .type_vocab = 2,
                       .hidden_dropout = 0.1f, .attention_dropout = 0.1f, .ln_eps = 1e-12f,
                       .nsp = 1};
}

static void toy_init(toy *t, const bert_config *c) {
  CU_ASSERT_EQUAL_FATAL(bert_model_create(&t->m, c, 2, 6, 3, NULL), ST_OK);
  params *p = bert_model_params(t->m);
  /* Larger than BERT's 0.02 so every path carries a visible gradient. */
  gradcheck_fill(p->data, p->total, 0.4f, 900);
  static const int32_t ids[12] = {1, 5, 7, 2, 9, 3, 1, 11, 4, 3, 0, 0};
  static const int32_t segs[12] = {0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0};
  static const int32_t mask[12] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
  static const int32_t labels[12] = {-1, 6, -1, -1, 20, -1, -1, -1, 13, -1, -1, -1};
  memcpy(t->ids, ids, sizeof ids), memcpy(t->segs, segs, sizeof segs);
  memcpy(t->mask, mask, sizeof mask), memcpy(t->labels, labels, sizeof labels);
  t->nsp[0] = 1, t->nsp[1] = 0;
  t->batch = pretrain_batch(2, 6, t->ids, t->segs, t->mask, t->labels, t->nsp);
  t->drop = (bert_dropout){.seed = 5, .step = 3, .micro = 0};
}

static double toy_loss(void *ctx) {
  toy *t = ctx;
  bert_loss loss;
  CU_ASSERT_EQUAL(bert_forward(t->m, &t->batch, &t->drop, &loss, NULL), ST_OK);
  return loss.total;
}

/* Zeroed gradients, then one forward and backward: a malloc'd copy. */
static float *toy_grads(toy *t) {
  params *p = bert_model_params(t->m);
  params_zero_grad(p);
  toy_loss(t);
  bert_backward(t->m, &t->batch, NULL);
  float *g = malloc(p->total * sizeof(float));
  CU_ASSERT_FATAL(g != NULL);
  memcpy(g, p->grad, p->total * sizeof(float));
  return g;
}

/* The query and key gradients are small (about 1e-3) next to the float
 * rounding of a loss near 3, so the step is larger than for single layers:
 * at 1e-2 the rounding noise alone is about 1%, at 5e-2 the total error
 * (truncation included) is under 0.5%. A wrong gradient is off by far more. */
#define MODEL_EPS 5e-2f

static void test_whole_model_gradient_matches_finite_differences(void) {
  bert_config c = toy_config();
  toy t;
  toy_init(&t, &c);
  params *p = bert_model_params(t.m);
  float *analytic = toy_grads(&t);
  double worst = 0;
  for (size_t i = 0; i < p->count; i++) {
    const params_entry *e = &p->entries[i];
    double rel = gradcheck_rel_error(toy_loss, &t, p->data + e->offset, analytic + e->offset,
                                     e->count, 16, MODEL_EPS, 1e-3);
    if (rel >= GRADCHECK_MODEL_TOL) printf("\n  %s: relative error %.3g\n", e->name, rel);
    CU_ASSERT(rel < GRADCHECK_MODEL_TOL);
    worst = fmax(worst, rel);
  }
  printf(" (worst %.2g) ", worst);
  free(analytic);
  bert_model_free(t.m);
}

static void test_backward_accumulates_over_micro_batches(void) {
  bert_config c = toy_config();
  toy t;
  toy_init(&t, &c);
  params *p = bert_model_params(t.m);
  float *once = toy_grads(&t);
  toy_loss(&t);
  bert_backward(t.m, &t.batch, NULL);
  double d = 0, n = 0;
  for (size_t i = 0; i < p->total; i++) {
    d += pow((double)p->grad[i] - 2.0 * once[i], 2);
    n += pow(2.0 * once[i], 2);
  }
  CU_ASSERT(sqrt(d / n) < 1e-6);
  free(once);
  bert_model_free(t.m);
}

static void test_two_micro_batches_with_global_scale_equal_one_batch(void) {
  bert_config c = toy_config();
  toy t;
  toy_init(&t, &c);
  params *p = bert_model_params(t.m);
  bert_loss whole;
  params_zero_grad(p);
  CU_ASSERT_EQUAL(bert_forward(t.m, &t.batch, NULL, &whole, NULL), ST_OK);
  bert_backward(t.m, &t.batch, NULL);
  float *ref = malloc(p->total * sizeof(float));
  memcpy(ref, p->grad, p->total * sizeof(float));
  /* Sequence 0 has 2 predicted tokens, sequence 1 has 1: a mean over 3. */
  params_zero_grad(p);
  bert_grad_scale scale = {.mlm = 1.0f / 3.0f, .nsp = 1.0f / 2.0f};
  double mlm_sum = 0, nsp_sum = 0;
  for (size_t b = 0; b < 2; b++) {
    bert_batch one = pretrain_batch(1, 6, t.ids + 6 * b, t.segs + 6 * b, t.mask + 6 * b,
                                    t.labels + 6 * b, t.nsp + b);
    bert_loss l;
    CU_ASSERT_EQUAL(bert_forward(t.m, &one, NULL, &l, NULL), ST_OK);
    bert_backward(t.m, &one, &scale);
    mlm_sum += l.mlm * (double)l.predicted;
    nsp_sum += l.nsp;
  }
  CU_ASSERT_DOUBLE_EQUAL(mlm_sum / 3 + nsp_sum / 2, whole.total, 1e-5);
  double d = 0, n = 0;
  for (size_t i = 0; i < p->total; i++) {
    d += pow((double)p->grad[i] - ref[i], 2);
    n += pow((double)ref[i], 2);
  }
  CU_ASSERT(sqrt(d / n) < 1e-5);
  free(ref);
  bert_model_free(t.m);
}

/* bert_set_word_grad_rows: the word-embedding lookup's share goes to
 * compact rows (one per distinct id, numbered here independently), the
 * arena keeps the tied decoder's share. Every other entry is the same bits
 * as without it; rows of ids not in the batch too; the rows added back give
 * the whole gradient to rounding (the association differs); and the rows
 * carry a real share (the split changes every batch row with one). */
static void test_word_grad_rows_take_the_lookup_share(void) {
  bert_config c = toy_config();
  toy t;
  toy_init(&t, &c);
  params *p = bert_model_params(t.m);
  const params_entry *e = params_find(p, "bert.embeddings.word_embeddings.weight");
  size_t C = c.hidden, V = c.vocab_size, R = 0;
  int32_t row_of[23], ids[23], rows[12];
  CU_ASSERT_FATAL(V == 23);
  for (size_t v = 0; v < V; v++) {
    int used = 0;
    for (size_t i = 0; i < 12; i++) used |= t.ids[i] == (int32_t)v;
    if (used) ids[R] = (int32_t)v, row_of[v] = (int32_t)R++;
  }
  for (size_t i = 0; i < 12; i++) rows[i] = row_of[t.ids[i]];
  float *whole = toy_grads(&t), *dwte = calloc(R * C, sizeof *dwte);
  bert_set_word_grad_rows(t.m, dwte, rows);
  float *split = toy_grads(&t);
  bert_set_word_grad_rows(t.m, NULL, NULL);
  size_t other_differ = 0, shared_rows = 0, shared_rows_same = 0;
  for (size_t i = 0; i < p->total; i++) {
    int in_wte = i >= e->offset && i < e->offset + e->count;
    if (!in_wte) other_differ += memcmp(&split[i], &whole[i], sizeof(float)) != 0;
  }
  /* Padding (id 0 here) gets no gradient: only rows with a share move. */
  for (size_t r = 0; r < R; r++) {
    int shared = 0;
    for (size_t k = 0; k < C; k++) shared |= dwte[r * C + k] != 0.0f;
    shared_rows += shared;
    shared_rows_same += shared && memcmp(split + e->offset + (size_t)ids[r] * C,
                                         whole + e->offset + (size_t)ids[r] * C, C * sizeof(float)) == 0;
  }
  CU_ASSERT_EQUAL(other_differ, 0);
  CU_ASSERT(shared_rows + 1 >= R);
  CU_ASSERT_EQUAL(shared_rows_same, 0);
  for (size_t r = 0; r < R; r++)
    for (size_t k = 0; k < C; k++) split[e->offset + (size_t)ids[r] * C + k] += dwte[r * C + k];
  double d = 0, n = 0;
  size_t unused_differ = 0;
  for (size_t v = 0; v < V; v++)
    for (size_t k = 0; k < C; k++) {
      size_t i = e->offset + v * C + k;
      d += pow((double)split[i] - whole[i], 2);
      n += pow((double)whole[i], 2);
      int used = 0;
      for (size_t r = 0; r < R; r++) used |= ids[r] == (int32_t)v;
      if (!used) unused_differ += memcmp(&split[i], &whole[i], sizeof(float)) != 0;
    }
  CU_ASSERT(sqrt(d / n) < 1e-6);
  CU_ASSERT_EQUAL(unused_differ, 0);
  free(whole);
  free(split);
  free(dwte);
  bert_model_free(t.m);
}

static void test_dropout_is_reproducible_and_keyed_by_step(void) {
  bert_config c = toy_config();
  toy t;
  toy_init(&t, &c);
  double a = toy_loss(&t), b = toy_loss(&t);
  CU_ASSERT_EQUAL(a, b);
  t.drop.step = 4;
  double other = toy_loss(&t);
  CU_ASSERT_NOT_EQUAL(a, other);
  bert_loss eval;
  CU_ASSERT_EQUAL(bert_forward(t.m, &t.batch, NULL, &eval, NULL), ST_OK);
  CU_ASSERT_NOT_EQUAL(eval.total, a);
  CU_ASSERT_EQUAL(eval.predicted, 3);
  bert_model_free(t.m);
}

/* Forward and backward of a fresh model (parameters from seed 11) on
 * batch; returns the gradient arena (malloc'd) and the loss of the second
 * of two runs, which finds the scratch buffers filled by the first. */
static float *step_grads(const bert_config *c, const bert_batch *batch, const bert_dropout *drop,
                         size_t max_pred, int full_last, double *loss, size_t *total) {
  bert_model *m;
  CU_ASSERT_EQUAL_FATAL(bert_model_create(&m, c, batch->B, batch->L, max_pred, NULL), ST_OK);
  bert_set_last_layer_full(m, full_last);
  params *p = bert_model_params(m);
  params_init(p, 11);
  bert_loss l;
  for (int run = 0; run < 2; run++) {
    params_zero_grad(p);
    CU_ASSERT_EQUAL(bert_forward(m, batch, drop, &l, NULL), ST_OK);
    bert_backward(m, batch, NULL);
  }
  *loss = l.total;
  *total = p->total;
  float *g = malloc(p->total * sizeof(float));
  CU_ASSERT_FATAL(g != NULL);
  memcpy(g, p->grad, p->total * sizeof(float));
  bert_model_free(m);
  return g;
}

static void test_step_is_bit_identical_for_one_and_two_threads(void) {
  /* Big enough that the element-wise loops run in parallel and that GEMMs
   * are split both ways: by rows among the threads (layer 0's 512 rows, the
   * decoder's gradient), by columns into blocks (the FF output weights'
   * gradient, 64 x 512; the decoder, 300 wide). How OpenBLAS sums depends
   * on its kernel: tests/trainer_kernels.cmake runs this test under each
   * one this CPU can run. */
  bert_config c = {.vocab_size = 300, .hidden = 64, .layers = 2, .heads = 4, .intermediate = 512,
                   .max_positions = 128, .type_vocab = 2, .hidden_dropout = 0.1f,
                   .attention_dropout = 0.1f, .ln_eps = 1e-12f, .nsp = 1};
  size_t B = 4, L = 128, N = B * L;
  int32_t *ids = malloc(N * 4), *segs = malloc(N * 4), *mask = malloc(N * 4), *lab = malloc(N * 4);
  int32_t nsp[4] = {0, 1, 1, 0};
  for (size_t i = 0; i < N; i++) {
    ids[i] = (int32_t)((i * 37) % 300);
    segs[i] = (i % L) > L / 2;
    mask[i] = (i % L) < L - (i / L) * 10;
    lab[i] = i % 7 == 3 ? (int32_t)(i % 300) : -1;
  }
  bert_batch batch = pretrain_batch(B, L, ids, segs, mask, lab, nsp);
  bert_dropout drop = {1, 2, 3};
  float *grads[2];
  double loss[2];
  size_t total = 0;
  for (int run = 0; run < 2; run++) {
    blas_set_threads(run + 1);
    grads[run] = step_grads(&c, &batch, &drop, 26, 0, &loss[run], &total);
  }
  printf(" (OpenBLAS kernel %s) ", blas_corename());
  CU_ASSERT_EQUAL(memcmp(grads[0], grads[1], total * sizeof(float)), 0);
  CU_ASSERT_EQUAL(loss[0], loss[1]);
  blas_set_threads(2);
  free(grads[0]), free(grads[1]), free(ids), free(segs), free(mask), free(lab);
}

/* The last layer computed at the head rows only gives the loss and every
 * gradient of the whole layer: with dropout (the masks of the rows it keeps
 * are those of the full layer), padding, a prediction at [CLS], with and
 * without NSP. Widths that are not multiples of 64 put the dropout rows at
 * unaligned words of the mask streams. */
static void test_last_layer_on_head_rows_only_equals_full_layer(void) {
  /* Variant 2: no NSP and a sequence without predictions, so no query of
   * it is computed and its keys and values must get no gradient. */
  for (int variant = 0; variant < 3; variant++) {
    int nsp = variant == 1;
    bert_config c = {.vocab_size = 50, .hidden = 48, .layers = 2, .heads = 4, .intermediate = 40,
                     .max_positions = 128, .type_vocab = 2, .hidden_dropout = 0.1f,
                     .attention_dropout = 0.1f, .ln_eps = 1e-12f, .nsp = nsp};
    size_t B = 3, L = 100, N = B * L;
    int32_t *ids = malloc(N * 4), *segs = malloc(N * 4), *mask = malloc(N * 4), *lab = malloc(N * 4);
    int32_t nsps[3] = {0, 1, 1};
    for (size_t i = 0; i < N; i++) {
      ids[i] = (int32_t)((i * 37) % 50);
      segs[i] = (i % L) > L / 2;
      mask[i] = (i % L) < L - (i / L) * 17;
      lab[i] = mask[i] && i % 9 == 4 ? (int32_t)(i % 50) : -1;
    }
    lab[L] = 7; /* a prediction at the second sequence's [CLS] */
    if (variant == 2)
      for (size_t i = 2 * L; i < N; i++) lab[i] = -1;
    bert_batch batch = pretrain_batch(B, L, ids, segs, mask, lab, nsps);
    bert_dropout drop = {9, 4, 1};
    float *grads[2];
    double loss[2];
    size_t total = 0;
    for (int full = 0; full <= 1; full++)
      grads[full] = step_grads(&c, &batch, &drop, 20, full, &loss[full], &total);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < total; i++) {
      worst = fmax(worst, fabs((double)grads[0][i] - grads[1][i]));
      scale = fmax(scale, fabs((double)grads[1][i]));
    }
    printf(" (variant %d: loss %.9g vs %.9g, worst grad diff %.3g of %.3g) ", variant, loss[0],
           loss[1], worst, scale);
    CU_ASSERT_DOUBLE_EQUAL(loss[0], loss[1], 1e-6 * fabs(loss[1]));
    CU_ASSERT(scale > 0 && worst <= 1e-6 * scale);
    free(grads[0]), free(grads[1]), free(ids), free(segs), free(mask), free(lab);
  }
}

static void test_batch_that_does_not_fit_is_refused(void) {
  bert_config c = toy_config();
  toy t;
  toy_init(&t, &c);
  for (int i = 0; i < 12; i++) t.labels[i] = t.mask[i] ? 3 : -1; /* 10 > 2 x 3 */
  bert_loss l;
  char *err = NULL;
  CU_ASSERT_EQUAL(bert_forward(t.m, &t.batch, NULL, &l, &err), ST_INVALID);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "predicted tokens") : NULL);
  free(err);
  t.labels[0] = -1;
  t.ids[2] = 23;
  err = NULL;
  CU_ASSERT_EQUAL(bert_forward(t.m, &t.batch, NULL, &l, &err), ST_INVALID);
  free(err);
  bert_model_free(t.m);
}

static void test_impossible_size_fails_at_creation_with_the_figure(void) {
  bert_config c;
  bert_config_preset(&c, "bert-base", NULL);
  bert_model *m = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL(bert_model_create(&m, &c, 100000, 512, 103, &err), ST_NOMEM);
  CU_ASSERT_PTR_NULL(m);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "GiB") : NULL);
  free(err);
  err = NULL;
  CU_ASSERT_EQUAL(bert_model_create(&m, &c, 2, 1024, 103, &err), ST_INVALID); /* > 512 positions */
  free(err);
}

/* Sizes that would overflow size_t arithmetic are refused before any
 * product is formed: limits on the config, and batch x seq_len x the model
 * checked with size_mul_ok. */
static void test_sizes_beyond_the_limits_are_refused_not_wrapped(void) {
  bert_config c;
  bert_config_preset(&c, "bert-base", NULL);
  char *err = NULL;
  c.layers = 5000;
  CU_ASSERT_EQUAL(bert_config_validate(&c, &err), ST_INVALID);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "num_hidden_layers 4096") : NULL);
  bert_config_preset(&c, "bert-base", NULL);
  c.max_positions = 1u << 20;
  CU_ASSERT_EQUAL(bert_config_validate(&c, &err), ST_INVALID);
  bert_config_preset(&c, "bert-base", NULL);
  bert_memory mem;
  CU_ASSERT_EQUAL(bert_memory_estimate(&c, SIZE_MAX / 256, 512, 80, &mem, &err), ST_NOMEM);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "too large to address") : NULL);
  CU_ASSERT_EQUAL(bert_memory_estimate(&c, 8, 512, 80, &mem, &err), ST_OK);
  free(err);
}

static const harness_test tests[] = {
    {"test_presets_have_the_published_shapes", test_presets_have_the_published_shapes},
    {"test_bert_base_has_huggingface_parameter_counts", test_bert_base_has_huggingface_parameter_counts},
    {"test_flops_per_step_match_a_hand_count", test_flops_per_step_match_a_hand_count},
    {"test_table_uses_huggingface_names_with_late_layers_last", test_table_uses_huggingface_names_with_late_layers_last},
    {"test_config_overrides_and_reads_huggingface_json", test_config_overrides_and_reads_huggingface_json},
    {"test_task_settings_validate_and_describe", test_task_settings_validate_and_describe},
    {"test_task_heads_have_huggingface_names_and_counts", test_task_heads_have_huggingface_names_and_counts},
    {"test_whole_model_gradient_matches_finite_differences", test_whole_model_gradient_matches_finite_differences},
    {"test_backward_accumulates_over_micro_batches", test_backward_accumulates_over_micro_batches},
    {"test_word_grad_rows_take_the_lookup_share", test_word_grad_rows_take_the_lookup_share},
    {"test_two_micro_batches_with_global_scale_equal_one_batch", test_two_micro_batches_with_global_scale_equal_one_batch},
    {"test_dropout_is_reproducible_and_keyed_by_step", test_dropout_is_reproducible_and_keyed_by_step},
    {"test_step_is_bit_identical_for_one_and_two_threads", test_step_is_bit_identical_for_one_and_two_threads},
    {"test_last_layer_on_head_rows_only_equals_full_layer", test_last_layer_on_head_rows_only_equals_full_layer},
    {"test_batch_that_does_not_fit_is_refused", test_batch_that_does_not_fit_is_refused},
    {"test_impossible_size_fails_at_creation_with_the_figure", test_impossible_size_fails_at_creation_with_the_figure},
    {"test_sizes_beyond_the_limits_are_refused_not_wrapped", test_sizes_beyond_the_limits_are_refused_not_wrapped},
    {NULL, NULL},
};
const harness_suite trainer_bert_suite = {"bert", tests};
