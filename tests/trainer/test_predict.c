/* trainer/predict: a checkpoint written here from a small random model is
 * predicted from exactly as that model computes; [MASK] handling, top K,
 * the NSP layout read from the file, and the refusals. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "storage/ckpt.h"
#include "trainer/predict.h"
#include "trainer/run_config.h"
#include "util/status.h"

static const char *const k_vocab[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the",
                                      "cat",   "sat",   "on",    "mat",   ".",      "dog"};
enum { V = sizeof k_vocab / sizeof *k_vocab, MAX_POS = 10, CLS = 2, SEP = 3, MASK = 4 };

typedef struct fixture {
  char *dir;
  char ckpt[512], vocab[512];
  bert_model *model; /* the model the checkpoint holds, for B = 1, L = MAX_POS */
} fixture;

static bert_config small_config(int nsp) {
  bert_config c;
  bert_config_preset(&c, "bert-tiny", NULL);
  c.vocab_size = V;
  c.hidden = 16;
  c.heads = 2;
  c.intermediate = 32;
  c.layers = 2;
  c.max_positions = MAX_POS;
  c.hidden_dropout = 0.0f;
  c.attention_dropout = 0.0f;
  c.nsp = nsp;
  return c;
}

static void write_vocab(const char *path, size_t n) {
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  for (size_t i = 0; i < n; i++) fprintf(f, "%s\n", k_vocab[i]);
  fclose(f);
}

/* A checkpoint of a random model, as ddpt train writes one: the resolved
 * config as the `config` attribute, every parameter (less skip, when not
 * NULL) under params/. The model is then expected from the file alone. */
static void fixture_make(fixture *fx, int nsp, const char *skip) {
  fx->dir = harness_tmpdir("predict");
  snprintf(fx->ckpt, sizeof fx->ckpt, "%s/ckpt.h5", fx->dir);
  snprintf(fx->vocab, sizeof fx->vocab, "%s/vocab.txt", fx->dir);
  write_vocab(fx->vocab, V);
  bert_config cfg = small_config(nsp);
  CU_ASSERT_EQUAL_FATAL(bert_model_create(&fx->model, &cfg, 1, MAX_POS, MAX_POS, NULL), ST_OK);
  params *p = bert_model_params(fx->model);
  params_init(p, 7);
  /* Non-zero biases and gains, so that a parameter loaded into the wrong
   * place shows. */
  for (size_t i = 0; i < p->count; i++)
    if (p->entries[i].ndim == 1)
      for (size_t j = 0; j < p->entries[i].count; j++)
        p->data[p->entries[i].offset + j] += 0.1f * sinf((float)(i * 31 + j));
  run_config rc;
  run_config_defaults(&rc);
  rc.model = cfg;
  /* A run configured from a config.json that is gone where the checkpoint
   * is used: the resolved [model] keys are enough. */
  snprintf(rc.hf_config, sizeof rc.hf_config, "%s/gone/config.json", fx->dir);
  char *text = run_config_format(&rc);
  ckpt_tensor *ts = calloc(p->count, sizeof *ts);
  size_t n = 0;
  for (size_t i = 0; i < p->count; i++) {
    const params_entry *e = &p->entries[i];
    if (skip && strcmp(e->name, skip) == 0) continue;
    ts[n] = (ckpt_tensor){.name = e->name, .ndim = e->ndim, .data = p->data + e->offset};
    for (int d = 0; d < e->ndim; d++) ts[n].shape[d] = e->shape[d];
    n++;
  }
  ckpt_content c = {.meta = {.step = 1, .world_size = 1, .model_type = "bert", .config = text},
                    .params = ts,
                    .n_params = n};
  char *err = NULL;
  CU_ASSERT_EQUAL(ckpt_file_write(fx->ckpt, &c, &err), ST_OK);
  if (err) fprintf(stderr, "%s\n", err);
  free(err);
  free(ts);
  free(text);
}

static void fixture_free(fixture *fx) {
  bert_model_free(fx->model);
  harness_rmtree(fx->dir);
  free(fx->dir);
}

static predict_model *open_ok(const fixture *fx) {
  predict_model *pm = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL(predict_model_open(fx->ckpt, fx->vocab, 1, &pm, &err), ST_OK);
  if (err) fprintf(stderr, "%s\n", err);
  free(err);
  return pm;
}

static void test_prediction_equals_the_model_that_wrote_the_checkpoint(void) {
  for (int nsp = 0; nsp <= 1; nsp++) {
    fixture fx;
    fixture_make(&fx, nsp, NULL);
    predict_model *pm = open_ok(&fx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pm);
    CU_ASSERT_EQUAL(predict_model_config(pm)->nsp, nsp); /* read from the names in the file */
    predict_result r;
    CU_ASSERT_EQUAL_FATAL(predict_fill_mask(pm, "the cat [MASK] on the [MASK] .", V, &r, NULL), ST_OK);
    /* The writer's model on the same input, padded to its length L =
     * MAX_POS: padding is masked out of attention, so the rows agree. */
    int32_t ids[MAX_POS] = {CLS, 5, 6, MASK, 8, 5, MASK, 10, SEP, 0};
    int32_t seg[MAX_POS] = {0}, att[MAX_POS] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 0}, nsp_label = 0;
    int32_t labels[MAX_POS] = {-1, -1, -1, MASK, -1, -1, MASK, -1, -1, -1};
    bert_batch b = {.B = 1, .L = MAX_POS, .input_ids = ids, .segment_ids = seg, .attention_mask = att,
                    .mlm_labels = labels, .nsp_labels = &nsp_label};
    bert_loss loss;
    CU_ASSERT_EQUAL_FATAL(bert_forward(fx.model, &b, NULL, &loss, NULL), ST_OK);
    size_t P;
    const float *want = bert_mlm_probs(fx.model, &P);
    CU_ASSERT_EQUAL_FATAL(P, 2);
    CU_ASSERT_EQUAL_FATAL(r.n_masks, 2);
    CU_ASSERT_EQUAL(r.n_ids, 9);
    CU_ASSERT_EQUAL(memcmp(r.ids, ids, 9 * sizeof *ids), 0);
    CU_ASSERT_EQUAL(r.masks[0].position, 3);
    CU_ASSERT_EQUAL(r.masks[1].position, 6);
    double worst = 0;
    for (size_t m = 0; m < 2; m++) {
      CU_ASSERT_EQUAL(r.masks[m].k, V);
      for (size_t i = 0; i < V; i++) {
        const predict_token *t = &r.masks[m].top[i];
        worst = fmax(worst, fabs((double)t->prob - want[m * V + (size_t)t->id]));
        CU_ASSERT_STRING_EQUAL(t->token, k_vocab[t->id]);
      }
    }
    CU_ASSERT(worst < 1e-6);
    predict_result_clear(&r);
    predict_model_close(pm);
    fixture_free(&fx);
  }
}

static void test_top_k_is_the_sorted_head_of_the_whole_softmax(void) {
  fixture fx;
  fixture_make(&fx, 0, NULL);
  predict_model *pm = open_ok(&fx);
  predict_result all, three, many;
  CU_ASSERT_EQUAL_FATAL(predict_fill_mask(pm, "the [MASK] sat", V, &all, NULL), ST_OK);
  CU_ASSERT_EQUAL_FATAL(predict_fill_mask(pm, "the [MASK] sat", 3, &three, NULL), ST_OK);
  CU_ASSERT_EQUAL_FATAL(predict_fill_mask(pm, "the [MASK] sat", 1000, &many, NULL), ST_OK);
  const predict_mask *a = &all.masks[0];
  double sum = 0;
  int ids_seen[V] = {0};
  for (size_t i = 0; i < V; i++) {
    sum += a->top[i].prob;
    ids_seen[a->top[i].id]++;
    if (i) CU_ASSERT(a->top[i - 1].prob >= a->top[i].prob);
  }
  for (size_t i = 0; i < V; i++) CU_ASSERT_EQUAL(ids_seen[i], 1);
  CU_ASSERT(fabs(sum - 1.0) < 1e-5);
  CU_ASSERT_EQUAL(three.masks[0].k, 3);
  CU_ASSERT_EQUAL(memcmp(three.masks[0].top, a->top, 3 * sizeof *a->top), 0);
  CU_ASSERT_EQUAL(many.masks[0].k, V); /* cut to the vocabulary */
  predict_result_clear(&all);
  predict_result_clear(&three);
  predict_result_clear(&many);
  predict_model_close(pm);
  fixture_free(&fx);
}

static void test_only_the_literal_mask_is_a_mask_and_it_is_never_split(void) {
  fixture fx;
  fixture_make(&fx, 0, NULL);
  predict_model *pm = open_ok(&fx);
  predict_result r;
  /* Glued to words and punctuation: still one [MASK] token. */
  CU_ASSERT_EQUAL_FATAL(predict_fill_mask(pm, "the cat[MASK]on the mat.", 1, &r, NULL), ST_OK);
  int32_t want[] = {CLS, 5, 6, MASK, 8, 5, 9, 10, SEP};
  CU_ASSERT_EQUAL_FATAL(r.n_ids, 9);
  CU_ASSERT_EQUAL(memcmp(r.ids, want, sizeof want), 0);
  CU_ASSERT_EQUAL(r.masks[0].position, 3);
  predict_result_clear(&r);
  /* Lower case is text: the tokenizer splits it at the brackets. */
  char *err = NULL;
  CU_ASSERT_EQUAL(predict_fill_mask(pm, "the cat [mask] on the mat", 1, &r, &err), ST_INVALID);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "no [MASK]") : NULL);
  CU_ASSERT_PTR_NULL(r.masks);
  free(err);
  predict_model_close(pm);
  fixture_free(&fx);
}

static void test_a_new_length_keeps_the_loaded_parameters(void) {
  fixture fx;
  fixture_make(&fx, 1, NULL);
  predict_model *pm = open_ok(&fx);
  predict_result a, b, again;
  CU_ASSERT_EQUAL_FATAL(predict_fill_mask(pm, "the [MASK]", V, &a, NULL), ST_OK);
  CU_ASSERT_EQUAL_FATAL(predict_fill_mask(pm, "the cat sat on the [MASK] .", V, &b, NULL), ST_OK);
  CU_ASSERT_EQUAL_FATAL(predict_fill_mask(pm, "the [MASK]", V, &again, NULL), ST_OK);
  CU_ASSERT_EQUAL(memcmp(a.masks[0].top, again.masks[0].top, V * sizeof *a.masks[0].top), 0);
  predict_result_clear(&a);
  predict_result_clear(&b);
  predict_result_clear(&again);
  predict_model_close(pm);
  fixture_free(&fx);
}

static void test_text_without_mask_or_beyond_the_positions_is_refused(void) {
  fixture fx;
  fixture_make(&fx, 0, NULL);
  predict_model *pm = open_ok(&fx);
  predict_result r;
  char *err = NULL;
  CU_ASSERT_EQUAL(predict_fill_mask(pm, "the cat sat", 5, &r, &err), ST_INVALID);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "no [MASK]") : NULL);
  free(err);
  err = NULL;
  /* 8 + [CLS] + [SEP] = MAX_POS fits; one more does not. */
  CU_ASSERT_EQUAL(predict_fill_mask(pm, "the cat sat on the mat . [MASK]", 5, &r, NULL), ST_OK);
  predict_result_clear(&r);
  CU_ASSERT_EQUAL(predict_fill_mask(pm, "the cat sat on the mat . the [MASK]", 5, &r, &err), ST_INVALID);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "is 11 tokens") : NULL);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "at most 10") : NULL);
  free(err);
  predict_model_close(pm);
  fixture_free(&fx);
}

static void test_vocab_of_another_size_is_refused_naming_both_sizes(void) {
  fixture fx;
  fixture_make(&fx, 0, NULL);
  write_vocab(fx.vocab, V - 1);
  predict_model *pm = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL(predict_model_open(fx.ckpt, fx.vocab, 1, &pm, &err), ST_MISMATCH);
  CU_ASSERT_PTR_NULL(pm);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "has 11 tokens") : NULL);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "vocab_size 12") : NULL);
  free(err);
  fixture_free(&fx);
}

static void test_a_missing_parameter_fails_the_strict_load(void) {
  fixture fx;
  fixture_make(&fx, 0, "cls.predictions.transform.dense.bias");
  predict_model *pm = open_ok(&fx);
  predict_result r;
  char *err = NULL;
  CU_ASSERT_EQUAL(predict_fill_mask(pm, "the [MASK]", 5, &r, &err), ST_MISMATCH);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "cls.predictions.transform.dense.bias is missing") : NULL);
  free(err);
  predict_model_close(pm);
  err = NULL;
  CU_ASSERT_EQUAL(predict_model_open("/nonexistent/ckpt.h5", fx.vocab, 1, &pm, &err), ST_IO);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "/nonexistent/ckpt.h5") : NULL);
  free(err);
  fixture_free(&fx);
}

static const harness_test tests[] = {
    {"test_prediction_equals_the_model_that_wrote_the_checkpoint", test_prediction_equals_the_model_that_wrote_the_checkpoint},
    {"test_top_k_is_the_sorted_head_of_the_whole_softmax", test_top_k_is_the_sorted_head_of_the_whole_softmax},
    {"test_only_the_literal_mask_is_a_mask_and_it_is_never_split", test_only_the_literal_mask_is_a_mask_and_it_is_never_split},
    {"test_a_new_length_keeps_the_loaded_parameters", test_a_new_length_keeps_the_loaded_parameters},
    {"test_text_without_mask_or_beyond_the_positions_is_refused", test_text_without_mask_or_beyond_the_positions_is_refused},
    {"test_vocab_of_another_size_is_refused_naming_both_sizes", test_vocab_of_another_size_is_refused_naming_both_sizes},
    {"test_a_missing_parameter_fails_the_strict_load", test_a_missing_parameter_fails_the_strict_load},
    {NULL, NULL},
};
const harness_suite trainer_predict_suite = {"predict", tests};
