/* trainer/params: the name table, arena layout, growth and BERT's
 * initialisation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "trainer/params.h"
#include "util/status.h"

static params *two_entries(void) {
  params *p = params_create();
  size_t w[2] = {3, 4}, b[1] = {3};
  CU_ASSERT_EQUAL(params_add(p, "dense.weight", 2, w, PARAMS_TRAINABLE | PARAMS_DECAY, PARAMS_INIT_NORMAL, NULL), ST_OK);
  CU_ASSERT_EQUAL(params_add(p, "dense.bias", 1, b, PARAMS_TRAINABLE, PARAMS_INIT_ZEROS, NULL), ST_OK);
  return p;
}

static void test_entries_are_laid_out_back_to_back_in_order(void) {
  params *p = two_entries();
  CU_ASSERT_EQUAL(p->count, 2);
  CU_ASSERT_EQUAL(p->total, 15);
  const params_entry *w = params_find(p, "dense.weight"), *b = params_find(p, "dense.bias");
  CU_ASSERT_EQUAL(w->offset, 0);
  CU_ASSERT_EQUAL(b->offset, 12);
  CU_ASSERT_EQUAL(w->shape[0], 3);
  CU_ASSERT_EQUAL(w->shape[1], 4);
  CU_ASSERT(w->flags & PARAMS_DECAY);
  CU_ASSERT(!(b->flags & PARAMS_DECAY));
  CU_ASSERT_EQUAL(w->lr_scale, 1.0f); /* the plain learning rate unless a run says otherwise */
  CU_ASSERT_PTR_NULL(params_find(p, "dense"));
  CU_ASSERT_PTR_NULL(params_data(p, "dense.bias")); /* not allocated yet */
  CU_ASSERT_EQUAL(params_alloc(p, NULL), ST_OK);
  CU_ASSERT_PTR_EQUAL(params_data(p, "dense.bias"), p->data + 12);
  CU_ASSERT_PTR_EQUAL(params_grad(p, "dense.bias"), p->grad + 12);
  params_free(p);
}

static void test_duplicate_name_is_refused_with_its_name(void) {
  params *p = two_entries();
  size_t s[1] = {3};
  char *err = NULL;
  CU_ASSERT_EQUAL(params_add(p, "dense.bias", 1, s, 0, PARAMS_INIT_ZEROS, &err), ST_INVALID);
  CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, "dense.bias") : NULL);
  free(err);
  params_free(p);
}

static void test_adding_a_head_keeps_existing_values_and_their_init(void) {
  params *p = two_entries();
  CU_ASSERT_EQUAL(params_alloc(p, NULL), ST_OK);
  params_init(p, 42);
  float before[12];
  memcpy(before, params_data(p, "dense.weight"), sizeof before);
  size_t hw[2] = {2, 3};
  CU_ASSERT_EQUAL(params_add(p, "classifier.weight", 2, hw, PARAMS_TRAINABLE | PARAMS_DECAY, PARAMS_INIT_KAIMING, NULL), ST_OK);
  CU_ASSERT_EQUAL(params_alloc(p, NULL), ST_OK);
  CU_ASSERT_EQUAL(memcmp(before, params_data(p, "dense.weight"), sizeof before), 0);
  const float *head = params_data(p, "classifier.weight");
  for (int i = 0; i < 6; i++) CU_ASSERT_EQUAL(head[i], 0.0f);
  params_init_entry(p, params_find(p, "classifier.weight"), 42);
  /* Init is keyed by name: re-initialising everything gives the old values. */
  params_init(p, 42);
  CU_ASSERT_EQUAL(memcmp(before, params_data(p, "dense.weight"), sizeof before), 0);
  params_free(p);
}

static void test_init_follows_bert(void) {
  params *p = params_create();
  size_t w[2] = {200, 500}, g[1] = {500}, k[2] = {300, 200};
  params_add(p, "w", 2, w, PARAMS_TRAINABLE | PARAMS_DECAY, PARAMS_INIT_NORMAL, NULL);
  params_add(p, "ln.weight", 1, g, PARAMS_TRAINABLE, PARAMS_INIT_ONES, NULL);
  params_add(p, "ln.bias", 1, g, PARAMS_TRAINABLE, PARAMS_INIT_ZEROS, NULL);
  params_add(p, "head", 2, k, PARAMS_TRAINABLE | PARAMS_DECAY, PARAMS_INIT_KAIMING, NULL);
  params_alloc(p, NULL);
  params_init(p, 7);
  const float *x = params_data(p, "w");
  double s = 0, s2 = 0, mx = 0;
  for (size_t i = 0; i < 100000; i++) {
    s += x[i], s2 += (double)x[i] * x[i];
    mx = fmax(mx, fabs(x[i]));
  }
  /* HuggingFace's normal(0, 0.02), untruncated: of 100000 draws about 270
   * lie beyond 3 std (a truncated normal cut at 2 std would have none
   * beyond 0.04, and std 0.02 * 0.8796). */
  CU_ASSERT_DOUBLE_EQUAL(s / 100000, 0.0, 3e-4);
  CU_ASSERT_DOUBLE_EQUAL(sqrt(s2 / 100000), 0.02, 3e-4);
  CU_ASSERT(mx > 0.06 && mx < 0.02 * 6);
  for (size_t i = 0; i < 500; i++) {
    CU_ASSERT_EQUAL(params_data(p, "ln.weight")[i], 1.0f);
    CU_ASSERT_EQUAL(params_data(p, "ln.bias")[i], 0.0f);
  }
  const float *h = params_data(p, "head");
  s2 = 0;
  for (size_t i = 0; i < 60000; i++) s2 += (double)h[i] * h[i];
  CU_ASSERT_DOUBLE_EQUAL(sqrt(s2 / 60000), sqrt(2.0 / 200), 2e-3);
  params_free(p);
}

static const harness_test tests[] = {
    {"test_entries_are_laid_out_back_to_back_in_order", test_entries_are_laid_out_back_to_back_in_order},
    {"test_duplicate_name_is_refused_with_its_name", test_duplicate_name_is_refused_with_its_name},
    {"test_adding_a_head_keeps_existing_values_and_their_init", test_adding_a_head_keeps_existing_values_and_their_init},
    {"test_init_follows_bert", test_init_follows_bert},
    {NULL, NULL},
};
const harness_suite trainer_params_suite = {"params", tests};
