/* trainer/task_metrics: classification scores from a confusion matrix, and
 * conlleval's chunk counting on hand-worked BIO, BIOES and BMES examples
 * (I- without B-, a type change inside a chunk, S- and E- tags), checked
 * against exact span matching on random tag sequences. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "trainer/heads.h"
#include "trainer/task_metrics.h"
#include "util/rng.h"
#include "util/status.h"

#define EPS 1e-12

/* --------------------------------------------------------- classification */

static void test_class_scores_match_a_hand_worked_confusion_matrix(void) {
  /* Class 3 never occurs, so macro-F1 averages classes 0..2 (as sklearn
   * does); the HEAD_IGNORE item is skipped. */
  int32_t gold[8] = {0, 0, 1, 1, 2, 2, 2, HEAD_IGNORE}, pred[8] = {0, 1, 1, 1, 2, 0, 1, 3};
  uint64_t conf[16] = {0};
  task_confusion_add(conf, gold, pred, 8, 4);
  uint64_t want[16] = {1, 1, 0, 0, 0, 2, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0};
  CU_ASSERT_EQUAL(memcmp(conf, want, sizeof want), 0);
  task_class_scores s;
  task_prf per[4];
  task_class_scores_compute(&s, per, conf, 4);
  CU_ASSERT_EQUAL(s.total, 7);
  CU_ASSERT_EQUAL(s.correct, 4);
  CU_ASSERT_DOUBLE_EQUAL(s.accuracy, 4.0 / 7.0, EPS);
  /* class 0: P 1/2 R 1/2; class 1: P 2/4 R 2/2; class 2: P 1/1 R 1/3. */
  CU_ASSERT_DOUBLE_EQUAL(per[0].f1, 0.5, EPS);
  CU_ASSERT_DOUBLE_EQUAL(per[1].precision, 0.5, EPS);
  CU_ASSERT_DOUBLE_EQUAL(per[1].recall, 1.0, EPS);
  CU_ASSERT_DOUBLE_EQUAL(per[1].f1, 2.0 / 3.0, EPS);
  CU_ASSERT_DOUBLE_EQUAL(per[2].precision, 1.0, EPS);
  CU_ASSERT_DOUBLE_EQUAL(per[2].recall, 1.0 / 3.0, EPS);
  CU_ASSERT_DOUBLE_EQUAL(per[2].f1, 0.5, EPS);
  CU_ASSERT_EQUAL(per[2].gold, 3);
  CU_ASSERT_EQUAL(per[1].pred, 4);
  CU_ASSERT_EQUAL(per[3].f1, 0.0);
  CU_ASSERT_DOUBLE_EQUAL(s.macro_f1, (0.5 + 2.0 / 3.0 + 0.5) / 3.0, EPS);
  /* Adding is summing: a second pass doubles every count, no score moves. */
  task_confusion_add(conf, gold, pred, 8, 4);
  task_class_scores s2;
  task_class_scores_compute(&s2, per, conf, 4);
  CU_ASSERT_EQUAL(s2.total, 14);
  CU_ASSERT_DOUBLE_EQUAL(s2.macro_f1, s.macro_f1, EPS);
}

static void test_class_json_carries_scores_names_and_matrix(void) {
  int32_t gold[3] = {0, 1, 1}, pred[3] = {0, 1, 0};
  uint64_t conf[4] = {0};
  task_confusion_add(conf, gold, pred, 3, 2);
  const char *names[2] = {"neg", "pos"};
  char *text = NULL, *err = NULL;
  CU_ASSERT_EQUAL_FATAL(task_class_json(&text, conf, names, 2, &err), ST_OK);
  cJSON *o = cJSON_Parse(text);
  CU_ASSERT_PTR_NOT_NULL_FATAL(o);
  CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(o, "accuracy")->valuedouble, 2.0 / 3.0, 1e-12);
  const cJSON *pos = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "per_class"), "pos");
  CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(pos, "recall")->valuedouble, 0.5, 1e-12);
  CU_ASSERT_EQUAL(cJSON_GetObjectItem(pos, "support")->valuedouble, 2);
  const cJSON *row1 = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "confusion"), 1);
  CU_ASSERT_EQUAL(cJSON_GetArrayItem(row1, 0)->valuedouble, 1);
  CU_ASSERT_EQUAL(cJSON_GetArrayItem(row1, 1)->valuedouble, 1);
  CU_ASSERT_STRING_EQUAL(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "labels"), 1)->valuestring, "pos");
  cJSON_Delete(o);
  free(text);
}

/* ---------------------------------------------------------------- tagging */

/* The ids of space-separated label names in names[0..K-1]. */
static size_t ids_of(int32_t *out, const char *const *names, size_t K, const char *tags) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", tags);
  size_t n = 0;
  for (char *save, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
    int32_t id = -1;
    for (size_t k = 0; k < K; k++)
      if (!strcmp(names[k], t)) id = (int32_t)k;
    CU_ASSERT_FATAL(id >= 0);
    out[n++] = id;
  }
  return n;
}

/* Counts a batch of sentences given as gold/pred pairs of tag strings. */
static void count_pairs(uint64_t *counts, const task_tagset *ts, const char *const *names,
                        const char *const (*pairs)[2], size_t B) {
  int32_t gold[64], pred[64];
  size_t first[16] = {0};
  for (size_t b = 0; b < B; b++) {
    size_t n = ids_of(gold + first[b], names, ts->K, pairs[b][0]);
    CU_ASSERT_EQUAL(ids_of(pred + first[b], names, ts->K, pairs[b][1]), n);
    first[b + 1] = first[b] + n;
  }
  task_tag_count(counts, ts, gold, pred, first, B);
}

static void expect_prf(const task_prf *p, uint64_t gold, uint64_t pred, uint64_t correct) {
  CU_ASSERT_EQUAL(p->gold, gold);
  CU_ASSERT_EQUAL(p->pred, pred);
  CU_ASSERT_EQUAL(p->correct, correct);
  double prec = pred ? (double)correct / pred : 0, rec = gold ? (double)correct / gold : 0;
  CU_ASSERT_DOUBLE_EQUAL(p->precision, prec, EPS);
  CU_ASSERT_DOUBLE_EQUAL(p->recall, rec, EPS);
  CU_ASSERT_DOUBLE_EQUAL(p->f1, prec + rec > 0 ? 2 * prec * rec / (prec + rec) : 0, EPS);
}

static void test_bio_chunks_count_as_conlleval_does(void) {
  const char *names[5] = {"O", "B-PER", "I-PER", "B-LOC", "I-LOC"};
  const char *const pairs[][2] = {
      /* all right: PER [0,2), LOC [3,4) */
      {"B-PER I-PER O B-LOC", "B-PER I-PER O B-LOC"},
      /* I- after O starts a chunk: both are PER [1,3), a match */
      {"O I-PER I-PER O", "O B-PER I-PER O"},
      /* a type change ends a chunk: gold PER [0,3), pred PER [0,2) LOC [2,3) */
      {"B-PER I-PER I-PER", "B-PER I-PER I-LOC"},
      /* B after B: gold LOC [0,1) LOC [1,2), pred LOC [0,2) */
      {"B-LOC B-LOC", "B-LOC I-LOC"},
      /* a sentence may start with I-: LOC [0,1) both */
      {"I-LOC", "I-LOC"},
  };
  task_tagset ts;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(task_tagset_init(&ts, names, 5, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(ts.n_types, 2);
  CU_ASSERT_STRING_EQUAL(ts.types[0], "LOC");
  CU_ASSERT_STRING_EQUAL(ts.types[1], "PER");
  uint64_t counts[8] = {0};
  CU_ASSERT_EQUAL_FATAL(task_tag_counts_len(&ts), 8);
  count_pairs(counts, &ts, names, pairs, 5);
  task_tag_scores s;
  task_prf per[2];
  task_tag_scores_compute(&s, per, counts, &ts);
  CU_ASSERT_EQUAL(s.tokens, 14);
  CU_ASSERT_EQUAL(s.tokens_correct, 11);
  CU_ASSERT_DOUBLE_EQUAL(s.token_accuracy, 11.0 / 14.0, EPS);
  expect_prf(&per[0], 4, 4, 2); /* LOC */
  expect_prf(&per[1], 3, 3, 2); /* PER */
  expect_prf(&s.overall, 7, 7, 4);
  task_tagset_free(&ts);
}

static void test_bioes_s_and_e_tags_close_chunks(void) {
  const char *names[6] = {"O", "B-X", "I-X", "E-X", "S-X", "S-Y"};
  const char *const pairs[][2] = {
      /* gold X [0,1) X [1,2) X [2,4) Y [5,6): S-X S-X is two chunks (the
       * original conlleval, which knows no S, would make it one).
       * pred X [0,1) X [1,3) X [3,4) Y [5,6): E after E starts a chunk. */
      {"S-X S-X B-X E-X O S-Y", "S-X B-X E-X E-X O S-Y"},
  };
  task_tagset ts;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(task_tagset_init(&ts, names, 6, &err), ST_OK);
  uint64_t counts[8] = {0};
  count_pairs(counts, &ts, names, pairs, 1);
  task_tag_scores s;
  task_prf per[2];
  task_tag_scores_compute(&s, per, counts, &ts);
  CU_ASSERT_EQUAL(s.tokens_correct, 4);
  expect_prf(&per[0], 3, 3, 1); /* X */
  expect_prf(&per[1], 1, 1, 1); /* Y */
  expect_prf(&s.overall, 4, 4, 2);
  task_tagset_free(&ts);
}

static void test_bmes_word_segmentation_has_one_untyped_chunk_type(void) {
  const char *names[4] = {"B", "M", "E", "S"};
  /* gold words [0,3) [3,4) [4,6); pred [0,2) [2,3) [3,4) [4,6): M is I. */
  const char *const pairs[][2] = {{"B M E S B E", "B E S S B M"}};
  task_tagset ts;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(task_tagset_init(&ts, names, 4, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(ts.n_types, 1);
  CU_ASSERT_STRING_EQUAL(ts.types[0], "");
  uint64_t counts[5] = {0};
  count_pairs(counts, &ts, names, pairs, 1);
  task_tag_scores s;
  task_prf per[1];
  task_tag_scores_compute(&s, per, counts, &ts);
  expect_prf(&s.overall, 3, 4, 2);
  CU_ASSERT_DOUBLE_EQUAL(s.overall.f1, 2 * 0.5 * (2.0 / 3) / (0.5 + 2.0 / 3), EPS);
  int32_t tags[6];
  ids_of(tags, names, 4, "B E S S B M");
  task_chunk chunks[6];
  CU_ASSERT_EQUAL_FATAL(task_tag_chunks(chunks, &ts, tags, 6), 4);
  size_t want[4][2] = {{0, 2}, {2, 3}, {3, 4}, {4, 6}};
  for (size_t c = 0; c < 4; c++) {
    CU_ASSERT_EQUAL(chunks[c].begin, want[c][0]);
    CU_ASSERT_EQUAL(chunks[c].end, want[c][1]);
    CU_ASSERT_EQUAL(chunks[c].type, 0);
  }
  task_tagset_free(&ts);
}

/* conlleval's running count equals matching the chunk lists exactly (same
 * begin, end and type), on random and so often ill-formed tag sequences. */
static void test_conlleval_counts_equal_exact_span_matching(void) {
  const char *sets[2][8] = {{"O", "B-A", "I-A", "B-B", "I-B", "B-C-D", "I-C-D"},
                            {"O", "B-A", "I-A", "E-A", "S-A", "B-B", "E-B", "S-B"}};
  size_t sizes[2] = {7, 8};
  rng_stream r;
  rng_stream_init(&r, 77, 1, 2, 3);
  for (size_t set = 0; set < 2; set++) {
    task_tagset ts;
    char *err = NULL;
    CU_ASSERT_EQUAL_FATAL(task_tagset_init(&ts, sets[set], sizes[set], &err), ST_OK);
    size_t mismatches = 0;
    for (int trial = 0; trial < 2000; trial++) {
      int32_t gold[12], pred[12];
      size_t n = 1 + rng_next_below(&r, 12), first[2] = {0, n};
      for (size_t i = 0; i < n; i++) {
        gold[i] = (int32_t)rng_next_below(&r, (uint32_t)sizes[set]);
        /* Mostly right predictions, so that chunks do match. */
        pred[i] = rng_next_below(&r, 3) ? gold[i] : (int32_t)rng_next_below(&r, (uint32_t)sizes[set]);
      }
      uint64_t counts[2 + 3 * 8] = {0};
      task_tag_count(counts, &ts, gold, pred, first, 1);
      task_chunk cg[12], cp[12];
      size_t ng = task_tag_chunks(cg, &ts, gold, n), np = task_tag_chunks(cp, &ts, pred, n);
      uint64_t want[2 + 3 * 8] = {0};
      want[TASK_TAG_TOKENS] = n;
      for (size_t i = 0; i < n; i++) want[TASK_TAG_TOKENS_CORRECT] += gold[i] == pred[i];
      for (size_t a = 0; a < ng; a++) {
        want[TASK_TAG_TYPE(cg[a].type) + TASK_TAG_GOLD]++;
        for (size_t b = 0; b < np; b++)
          want[TASK_TAG_TYPE(cg[a].type) + TASK_TAG_CORRECT] +=
              cg[a].begin == cp[b].begin && cg[a].end == cp[b].end && cg[a].type == cp[b].type;
      }
      for (size_t b = 0; b < np; b++) want[TASK_TAG_TYPE(cp[b].type) + TASK_TAG_PRED]++;
      mismatches += memcmp(counts, want, task_tag_counts_len(&ts) * sizeof *counts) != 0;
    }
    CU_ASSERT_EQUAL(mismatches, 0);
    task_tagset_free(&ts);
  }
}

static void test_tag_json_and_tagset_errors(void) {
  const char *names[3] = {"O", "B-PER", "I-PER"};
  task_tagset ts;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(task_tagset_init(&ts, names, 3, &err), ST_OK);
  int32_t gold[3] = {1, 2, 0}, pred[3] = {1, 0, 0};
  size_t first[2] = {0, 3};
  uint64_t counts[5] = {0};
  task_tag_count(counts, &ts, gold, pred, first, 1);
  char *text = NULL;
  CU_ASSERT_EQUAL_FATAL(task_tag_json(&text, counts, &ts, &err), ST_OK);
  cJSON *o = cJSON_Parse(text);
  CU_ASSERT_PTR_NOT_NULL_FATAL(o);
  CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(o, "token_accuracy")->valuedouble, 2.0 / 3.0, 1e-12);
  CU_ASSERT_EQUAL(cJSON_GetObjectItem(o, "f1")->valuedouble, 0.0);
  const cJSON *per = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "per_type"), "PER");
  CU_ASSERT_EQUAL(cJSON_GetObjectItem(per, "predicted")->valuedouble, 1);
  cJSON_Delete(o);
  free(text);
  task_tagset_free(&ts);

  const char *dup[3] = {"O", "B-PER", "B-PER"};
  CU_ASSERT_EQUAL(task_tagset_init(&ts, dup, 3, &err), ST_INVALID);
  CU_ASSERT_PTR_NOT_NULL_FATAL(err);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "'B-PER' appears twice"));
  free(err);
}

static const harness_test tests[] = {
    {"test_class_scores_match_a_hand_worked_confusion_matrix", test_class_scores_match_a_hand_worked_confusion_matrix},
    {"test_class_json_carries_scores_names_and_matrix", test_class_json_carries_scores_names_and_matrix},
    {"test_bio_chunks_count_as_conlleval_does", test_bio_chunks_count_as_conlleval_does},
    {"test_bioes_s_and_e_tags_close_chunks", test_bioes_s_and_e_tags_close_chunks},
    {"test_bmes_word_segmentation_has_one_untyped_chunk_type", test_bmes_word_segmentation_has_one_untyped_chunk_type},
    {"test_conlleval_counts_equal_exact_span_matching", test_conlleval_counts_equal_exact_span_matching},
    {"test_tag_json_and_tagset_errors", test_tag_json_and_tagset_errors},
    {NULL, NULL},
};
const harness_suite trainer_task_metrics_suite = {"task_metrics", tests};
