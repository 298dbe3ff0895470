/* The run config: INI keys with types and ranges, --set overrides, [model]
 * resolution order, and the canonical text that round-trips. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "trainer/run_config.h"
#include "util/log.h"
#include "util/status.h"

static char *write_config(const char *dir, const char *text) {
  char *path = malloc(strlen(dir) + 32);
  sprintf(path, "%s/run.ini", dir);
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
  return path;
}

/* Loads text (plus overrides); returns the status and leaves the message
 * in *err. */
static int load_text(run_config *c, const char *text, char *const *ov, size_t n, char **err) {
  char *dir = harness_tmpdir("cfg");
  char *path = write_config(dir, text);
  run_config_defaults(c);
  int rc = run_config_load(c, path, ov, n, err);
  harness_rmtree(dir);
  free(dir);
  free(path);
  return rc;
}

static void test_settings_and_overrides_apply_with_model_preset_first(void) {
  run_config c;
  char *err = NULL;
  char *ov[] = {"optim.lr=5e-4", "train.batch_size=8"};
  /* hidden_size comes before preset in the file but must win over it. */
  int rc = load_text(&c,
                     "[model]\nhidden_size = 256\nnum_attention_heads = 4\npreset = bert-small\n"
                     "[optim]\nlr = 1e-3\nname = sgd\n[train]\nsteps = 300\nseed = 7\n"
                     "[schedule]\nkind = piecewise\npoints = 100:1, 300:0.1\n",
                     ov, 2, &err);
  CU_ASSERT_EQUAL_FATAL(rc, ST_OK);
  CU_ASSERT_EQUAL(c.model.hidden, 256u);
  CU_ASSERT_EQUAL(c.model.heads, 4u);
  CU_ASSERT_EQUAL(c.model.layers, 4u);          /* bert-small */
  CU_ASSERT_EQUAL(c.model.intermediate, 2048u); /* bert-small */
  CU_ASSERT_DOUBLE_EQUAL(c.lr, 5e-4, 1e-15);    /* --set wins over the file */
  CU_ASSERT_EQUAL(c.optim.kind, OPTIM_SGD);
  CU_ASSERT_EQUAL(c.batch_size, 8u);
  CU_ASSERT_EQUAL(c.steps, 300u);
  CU_ASSERT_EQUAL(c.seed, 7u);
  CU_ASSERT_EQUAL(c.sched.kind, SCHED_PIECEWISE);
  CU_ASSERT_EQUAL(c.sched.npoints, 2u);
}

static void test_unknown_key_and_section_are_named(void) {
  run_config c;
  char *err = NULL;
  CU_ASSERT_EQUAL(load_text(&c, "[optim]\nlearning_rate = 1\n", NULL, 0, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "unknown key 'learning_rate' in [optim]"));
  CU_ASSERT(err && strstr(err, "run.ini"));
  CU_ASSERT_EQUAL(load_text(&c, "[trian]\nsteps = 1\n", NULL, 0, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "unknown section [trian]"));
  CU_ASSERT_EQUAL(load_text(&c, "[model]\nhiden_size = 1\n", NULL, 0, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "hiden_size"));
  free(err);
}

static void test_out_of_range_values_name_the_range(void) {
  run_config c;
  char *err = NULL;
  CU_ASSERT_EQUAL(load_text(&c, "[optim]\nlr = 0\n", NULL, 0, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "[optim] lr = '0': allowed: a number above 0 .. 10"));
  CU_ASSERT_EQUAL(load_text(&c, "[train]\nbatch_size = 2.5\n", NULL, 0, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "an integer from 1 .. 65536"));
  CU_ASSERT_EQUAL(load_text(&c, "[schedule]\nkind = exponential\n", NULL, 0, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "one of linear cosine constant piecewise"));
  CU_ASSERT_EQUAL(load_text(&c, "[optim]\nbias_correction = maybe\n", NULL, 0, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "true or false"));
  CU_ASSERT_EQUAL(load_text(&c, "[schedule]\nkind = piecewise\n", NULL, 0, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "needs points"));
  CU_ASSERT_EQUAL(load_text(&c, "[model]\npreset = bert-huge\n", NULL, 0, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "bert-huge"));
  free(err);
}

static void test_bad_override_and_unreadable_file_fail_clearly(void) {
  run_config c;
  char *err = NULL;
  char *ov[] = {"lr=1"};
  CU_ASSERT_EQUAL(load_text(&c, "", ov, 1, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "expected section.key=value"));
  char *ov2[] = {"optim.lr=-3"};
  CU_ASSERT_EQUAL(load_text(&c, "", ov2, 1, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "--set optim.lr"));
  run_config_defaults(&c);
  CU_ASSERT_EQUAL(run_config_load(&c, "/nonexistent/run.ini", NULL, 0, &err), ST_IO);
  CU_ASSERT(err && strstr(err, "/nonexistent/run.ini"));
  CU_ASSERT_EQUAL(run_config_load(&c, "/tmp", NULL, 0, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "config /tmp is a directory"));
  CU_ASSERT_EQUAL(load_text(&c, "this is not ini\n", NULL, 0, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, ":1: not a valid INI line"));
  free(err);
}

/* The canonical text, loaded again, gives the same canonical text. */
static void test_format_round_trips(void) {
  run_config c;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(load_text(&c,
                                  "[model]\npreset = bert-mini\nvocab_size = 30522\n"
                                  "[data]\ncorpus = /data/c\nwhole_word_mask = true\n"
                                  "[optim]\nlr = 0.000123\n[schedule]\nkind = piecewise\npoints = 10:1, 20:0.5\n"
                                  "[log]\nlevel = debug\n",
                                  NULL, 0, &err),
                        ST_OK);
  char *text = run_config_format(&c);
  CU_ASSERT_PTR_NOT_NULL_FATAL(text);
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "num_hidden_layers = 4\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "corpus = /data/c\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "level = debug\n"));
  run_config again;
  CU_ASSERT_EQUAL_FATAL(load_text(&again, text, NULL, 0, &err), ST_OK);
  char *text2 = run_config_format(&again);
  CU_ASSERT_STRING_EQUAL(text, text2);
  free(text);
  free(text2);
}

/* A text value that config.ini could not give back is refused when read
 * (found by tests/fuzz/fuzz_config.c: "corpus =; b corp" was taken as the
 * path "; b corp", which the formatted "corpus = ; b corp" reads back as
 * an empty path, so a resumed run lost its corpus). */
static void test_text_values_that_would_not_read_back_are_refused(void) {
  run_config c;
  char *err = NULL;
  CU_ASSERT_EQUAL(load_text(&c, "[data]\ncorpus =; b corp\n", NULL, 0, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "[data] corpus: '; b corp' would not read back"));
  CU_ASSERT_PTR_NULL(err ? strchr(err, '\n') : NULL);
  CU_ASSERT_EQUAL(load_text(&c, "[data]\ncorpus = /data/a;b\n", NULL, 0, &err), ST_OK);
  CU_ASSERT_STRING_EQUAL(c.corpus, "/data/a;b");
  /* Found by the fuzzer too: a value that fills inih's line buffer was cut
   * there, and read back cut elsewhere once formatted. */
  char long_path[300];
  memset(long_path, 'a', sizeof long_path - 1);
  long_path[sizeof long_path - 1] = '\0';
  char long_set[320];
  snprintf(long_set, sizeof long_set, "data.corpus=%s", long_path);
  char *long_over = long_set;
  CU_ASSERT_EQUAL(load_text(&c, "", &long_over, 1, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "longer than one config line holds"));
  char *over = "data.corpus=;x";
  CU_ASSERT_EQUAL(load_text(&c, "", &over, 1, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "would not read back"));
  free(err);
}

/* Integer keys are read as integers: a seed above 2^53 survives exactly
 * (through strtod it would round to a neighbour), and signs, fractions and
 * exponents are refused. Enumerations take their names from their modules. */
static void test_integers_are_exact_and_enums_round_trip(void) {
  run_config c;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(load_text(&c, "[train]\nseed = 18446744073709551557\n[log]\nlevel = debug\n"
                                      "[schedule]\nkind = cosine\n[optim]\nname = sgd\n", NULL, 0, &err), ST_OK);
  CU_ASSERT_EQUAL(c.seed, 18446744073709551557ull);
  CU_ASSERT_EQUAL(c.log_level, LOG_DEBUG);
  CU_ASSERT_EQUAL(c.sched.kind, SCHED_COSINE);
  CU_ASSERT_EQUAL(c.optim.kind, OPTIM_SGD);
  char *text = run_config_format(&c);
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "seed = 18446744073709551557\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "level = debug\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "kind = cosine\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "name = sgd\n"));
  free(text);
  CU_ASSERT_EQUAL(load_text(&c, "[train]\nseed = 9007199254740993\n", NULL, 0, &err), ST_OK);
  CU_ASSERT_EQUAL(c.seed, 9007199254740993ull);
  const char *bad[] = {"[train]\nseed = -1\n", "[train]\nsteps = 1e3\n", "[train]\nseed = 18446744073709551616\n",
                       "[train]\nbatch_size = +4\n", "[log]\nlevel = verbose\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CU_ASSERT_EQUAL(load_text(&c, bad[i], NULL, 0, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "one of error warn info debug"));
  free(err);
}

/* [finetune]: defaults (nothing frozen, plain rates, auto metric), every key
 * read, written and read back; ranges and names refused with the allowed
 * values; the auto metric follows the task and the look of the labels. */
static void test_finetune_section_reads_writes_and_resolves_its_metric(void) {
  run_config c;
  char *err = NULL;
  run_config_defaults(&c);
  CU_ASSERT_EQUAL(c.finetune.freeze_layers, 0);
  CU_ASSERT_EQUAL(c.finetune.layer_lr_decay, 1.0);
  CU_ASSERT_EQUAL(c.finetune.head_lr, 0.0);
  CU_ASSERT_EQUAL(c.finetune.best_metric, RUN_BEST_AUTO);
  CU_ASSERT_EQUAL_FATAL(load_text(&c, "[finetune]\nfreeze_embeddings = true\nfreeze_layers = 2\nhead_lr = 1e-3\n"
                                      "layer_lr_decay = 0.8\ncrf = true\nbest_metric = macro_f1\n", NULL, 0, &err),
                        ST_OK);
  CU_ASSERT_EQUAL(c.finetune.freeze_embeddings, 1);
  CU_ASSERT_EQUAL(c.finetune.freeze_layers, 2);
  CU_ASSERT_EQUAL(c.finetune.head_lr, 1e-3);
  CU_ASSERT_EQUAL(c.finetune.layer_lr_decay, 0.8);
  CU_ASSERT_EQUAL(c.finetune.crf, 1);
  CU_ASSERT_EQUAL(c.finetune.best_metric, RUN_BEST_MACRO_F1);
  char *text = run_config_format(&c);
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "[finetune]\nfreeze_embeddings = true\nfreeze_layers = 2\nhead_lr = 0.001\n"
                                      "layer_lr_decay = 0.8\ncrf = true\nbest_metric = macro_f1\n"));
  run_config again;
  CU_ASSERT_EQUAL_FATAL(load_text(&again, text, NULL, 0, &err), ST_OK);
  CU_ASSERT_EQUAL(memcmp(&again.finetune, &c.finetune, sizeof c.finetune), 0);
  free(text);
  const char *bad[] = {"[finetune]\nlayer_lr_decay = 0\n", "[finetune]\nlayer_lr_decay = 1.5\n",
                       "[finetune]\nhead_lr = -1\n", "[finetune]\nbest_metric = f2\n", "[finetune]\nfreeze = 1\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CU_ASSERT_EQUAL(load_text(&c, bad[i], NULL, 0, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "`ddpt help finetune`"));
  CU_ASSERT_EQUAL(load_text(&c, "[finetune]\nbest_metric = f2\n", NULL, 0, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "auto accuracy macro_f1 token_accuracy entity_f1 loss"));
  free(err);
  const char *bio[] = {"B-PER", "I-PER", "O"}, *bmes[] = {"B", "M", "E", "S"}, *pos[] = {"NN", "VB", "O"};
  CU_ASSERT_EQUAL(run_config_best_metric_auto(BERT_TASK_CLASSIFY, bio, 3), RUN_BEST_ACCURACY);
  CU_ASSERT_EQUAL(run_config_best_metric_auto(BERT_TASK_TAG, bio, 3), RUN_BEST_ENTITY_F1);
  CU_ASSERT_EQUAL(run_config_best_metric_auto(BERT_TASK_TAG, bmes, 4), RUN_BEST_ENTITY_F1);
  CU_ASSERT_EQUAL(run_config_best_metric_auto(BERT_TASK_TAG, pos, 3), RUN_BEST_TOKEN_ACCURACY);
}

static const harness_test tests[] = {
    {"test_settings_and_overrides_apply_with_model_preset_first", test_settings_and_overrides_apply_with_model_preset_first},
    {"test_unknown_key_and_section_are_named", test_unknown_key_and_section_are_named},
    {"test_out_of_range_values_name_the_range", test_out_of_range_values_name_the_range},
    {"test_bad_override_and_unreadable_file_fail_clearly", test_bad_override_and_unreadable_file_fail_clearly},
    {"test_format_round_trips", test_format_round_trips},
    {"test_text_values_that_would_not_read_back_are_refused", test_text_values_that_would_not_read_back_are_refused},
    {"test_integers_are_exact_and_enums_round_trip", test_integers_are_exact_and_enums_round_trip},
    {"test_finetune_section_reads_writes_and_resolves_its_metric", test_finetune_section_reads_writes_and_resolves_its_metric},
    {NULL, NULL},
};
const harness_suite trainer_run_config_suite = {"run_config", tests};
