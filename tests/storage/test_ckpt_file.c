/* storage/ckpt, one file: round trips (tensors bit for bit, attributes,
 * int64 arrays), listing, verify on damaged files, strict and non-strict
 * loading; every HDF5 object closed after every call. */
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "ddpt_version.h"
#include "fixtures.h"
#include "harness.h"
#include "storage/ckpt.h"
#include "storage/storage.h"
#include "util/file.h"
#include "util/status.h"

static char *dir;

static char *fresh_path(const char *name) {
  free(dir);
  dir = harness_tmpdir("ckpt-file");
  return file_path_join(dir, name);
}

static void cleanup(char *path) {
  free(path);
  harness_rmtree(dir);
  free(dir);
  dir = NULL;
  CU_ASSERT_EQUAL(storage_open_object_count(), 0);
}

static int written_fixture(fixture *fx, const char *path) {
  fixture_init(fx, 1234);
  char *err = NULL;
  int rc = ckpt_file_write(path, &fx->content, &err);
  if (rc) fprintf(stderr, "write failed: %s\n", err);
  free(err);
  return rc;
}

static void test_dotted_names_round_trip_bit_exact(void) {
  char *path = fresh_path("a.h5");
  fixture fx;
  fixture_init(&fx, 7);
  /* Values a conversion or a careless copy would change. */
  const uint32_t specials[] = {0x80000000u, 0x00000001u, 0x7fc00123u, 0x7f800000u, 0xff800000u, 0x7f7fffffu};
  memcpy(fx.params[1].data, specials, sizeof specials);
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_write(path, &fx.content, &err), ST_OK);
  ckpt_file *f = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_open(path, &f, &err), ST_OK);
  const char *groups[3] = {"params", "optim/m", "optim/v"};
  const ckpt_tensor *src[3] = {fx.params, fx.m, fx.v};
  for (int g = 0; g < 3; g++) {
    ckpt_tensor back[FIXTURE_NT];
    for (int k = 0; k < FIXTURE_NT; k++) {
      back[k] = src[g][k];
      back[k].data = calloc(fixture_count(&src[g][k]), sizeof(float));
    }
    ckpt_load_report r = {0};
    CU_ASSERT_EQUAL(ckpt_file_load(f, groups[g], back, FIXTURE_NT, 1, &r, &err), ST_OK);
    CU_ASSERT_EQUAL(r.n_loaded, FIXTURE_NT);
    for (int k = 0; k < FIXTURE_NT; k++) {
      CU_ASSERT_EQUAL(memcmp(back[k].data, src[g][k].data, fixture_count(&src[g][k]) * sizeof(float)), 0);
      free(back[k].data);
    }
    ckpt_load_report_clear(&r);
  }
  /* And against the formula, not only against the buffer written. */
  float q[256];
  CU_ASSERT_EQUAL(ckpt_file_read_float(f, "params/" FIXTURE_QUERY, q, 256, &err), ST_OK);
  for (size_t i = 0; i < 256; i++) CU_ASSERT_EQUAL(q[i], fixture_value(2, i));
  ckpt_file_close(f);
  CU_ASSERT_PTR_NULL(err);
  fixture_free(&fx);
  cleanup(path);
}

static void test_root_attributes_round_trip(void) {
  char *path = fresh_path("a.h5");
  fixture fx;
  CU_ASSERT_EQUAL_FATAL(written_fixture(&fx, path), ST_OK);
  ckpt_file *f = NULL;
  ckpt_header h;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_open(path, &f, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(ckpt_file_read_header(f, &h, &err), ST_OK);
  CU_ASSERT_STRING_EQUAL(h.format, "ddpt-checkpoint");
  CU_ASSERT_EQUAL(h.format_version, 1);
  CU_ASSERT_EQUAL(h.step, 1234);
  CU_ASSERT_EQUAL(h.tokens_seen, 1234 * 4096);
  CU_ASSERT_EQUAL(h.world_size, 2);
  CU_ASSERT_EQUAL(h.seed, 0xFEEDFACECAFEBEEFull);
  CU_ASSERT_STRING_EQUAL(h.model_type, "bert");
  CU_ASSERT_STRING_EQUAL(h.config, "[model]\nhidden = 16\n# 中文 ok\n");
  CU_ASSERT_EQUAL(strncmp(h.ddpt_version, DDPT_VERSION " ", strlen(DDPT_VERSION) + 1), 0);
  regex_t re;
  regcomp(&re, "^20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]Z$", REG_EXTENDED | REG_NOSUB);
  CU_ASSERT_EQUAL(regexec(&re, h.created, 0, NULL, 0), 0);
  regfree(&re);
  ckpt_header_clear(&h);
  ckpt_file_close(f);
  fixture_free(&fx);
  cleanup(path);
}

/* String attributes are fixed-length: one past 64 KiB (a BERT vocab is
 * ~230 KB) goes to HDF5's dense attribute storage, an empty one is stored
 * as one NUL; both read back exactly, and the file still verifies. */
static void test_large_and_empty_string_attributes_round_trip(void) {
  char *path = fresh_path("s.h5");
  fixture fx;
  fixture_init(&fx, 7);
  size_t n = 300000;
  char *vocab = malloc(n + 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(vocab);
  for (size_t i = 0; i < n; i++) vocab[i] = i % 50 == 49 ? '\n' : (char)('a' + i % 26);
  memcpy(vocab + n - 7, "\xe4\xb8\xad\xe6\x96\x87\n", 7); /* ends in "中文\n" */
  vocab[n] = '\0';
  ckpt_attr attrs[2] = {{"vocab", vocab}, {"labels", ""}};
  fx.content.meta.attrs = attrs;
  fx.content.meta.n_attrs = 2;
  char *err = NULL, *got = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_write(path, &fx.content, &err), ST_OK);
  CU_ASSERT_EQUAL(ckpt_file_verify(path, &err), ST_OK);
  ckpt_file *f = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_open(path, &f, &err), ST_OK);
  CU_ASSERT_EQUAL(ckpt_file_read_attr(f, "vocab", &got, &err), ST_OK);
  CU_ASSERT_TRUE(got && strlen(got) == n && memcmp(got, vocab, n) == 0);
  free(got);
  got = NULL;
  CU_ASSERT_EQUAL(ckpt_file_read_attr(f, "labels", &got, &err), ST_OK);
  CU_ASSERT_TRUE(got && got[0] == '\0');
  free(got);
  ckpt_file_close(f);
  free(vocab);
  fixture_free(&fx);
  cleanup(path);
}

static void test_int64_arrays_round_trip_with_extreme_values(void) {
  char *path = fresh_path("a.h5");
  fixture fx;
  CU_ASSERT_EQUAL_FATAL(written_fixture(&fx, path), ST_OK);
  ckpt_file *f = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_open(path, &f, &err), ST_OK);
  int64_t cursor[12], dropout[2];
  CU_ASSERT_EQUAL(ckpt_file_read_int64(f, "data/cursor", cursor, 12, &err), ST_OK);
  CU_ASSERT_EQUAL(cursor[2], INT64_MAX);
  CU_ASSERT_EQUAL(cursor[5], INT64_MIN);
  CU_ASSERT_EQUAL(cursor[8], 9007199254740993LL);
  CU_ASSERT_EQUAL(cursor[9], 3);
  CU_ASSERT_EQUAL(cursor[11], 1234 * 1000 + 3);
  CU_ASSERT_EQUAL(ckpt_file_read_int64(f, "rng/dropout", dropout, 2, &err), ST_OK);
  CU_ASSERT_EQUAL(dropout[0], 1234);
  CU_ASSERT_EQUAL(dropout[1], -3);
  CU_ASSERT_EQUAL(ckpt_file_read_int64(f, "data/cursor", cursor, 11, &err), ST_MISMATCH);
  CU_ASSERT_TRUE(fixture_contains(err, "data/cursor holds 12 elements"));
  free(err);
  ckpt_file_close(f);
  fixture_free(&fx);
  cleanup(path);
}

static void test_list_gives_every_dataset_in_write_order_checksummed(void) {
  char *path = fresh_path("a.h5");
  fixture fx;
  CU_ASSERT_EQUAL_FATAL(written_fixture(&fx, path), ST_OK);
  ckpt_file *f = NULL;
  ckpt_entry *e = NULL;
  size_t n = 0;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_open(path, &f, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(ckpt_file_list(f, &e, &n, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(n, 3 * FIXTURE_NT + 2);
  char want[256];
  const char *groups[3] = {"params", "optim/m", "optim/v"};
  for (int g = 0; g < 3; g++)
    for (int k = 0; k < FIXTURE_NT; k++) {
      const ckpt_entry *p = &e[g * FIXTURE_NT + k];
      snprintf(want, sizeof want, "%s/%s", groups[g], fx.params[k].name);
      CU_ASSERT_STRING_EQUAL(p->path, want);
      CU_ASSERT_EQUAL(p->dtype, CKPT_FLOAT32);
      CU_ASSERT_EQUAL(p->ndim, fx.params[k].ndim);
      CU_ASSERT_EQUAL(p->shape[0], fx.params[k].shape[0]);
      CU_ASSERT_EQUAL(p->count, fixture_count(&fx.params[k]));
    }
  const ckpt_entry *cursor = &e[3 * FIXTURE_NT];
  CU_ASSERT_STRING_EQUAL(cursor->path, "data/cursor");
  CU_ASSERT_EQUAL(cursor->dtype, CKPT_INT64);
  CU_ASSERT_EQUAL(cursor->ndim, 2);
  CU_ASSERT_EQUAL(cursor->shape[0], 4);
  CU_ASSERT_EQUAL(cursor->shape[1], 3);
  CU_ASSERT_STRING_EQUAL(e[n - 1].path, "rng/dropout");
  for (size_t i = 0; i < n; i++) CU_ASSERT_TRUE(e[i].checksummed);
  ckpt_entries_free(e, n);
  ckpt_file_close(f);
  fixture_free(&fx);
  cleanup(path);
}

static void test_weights_only_file_has_no_optim_and_verifies(void) {
  char *path = fresh_path("a.h5");
  fixture fx;
  fixture_init(&fx, 1);
  fx.content.n_optim_m = fx.content.n_optim_v = 0;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_write(path, &fx.content, &err), ST_OK);
  CU_ASSERT_EQUAL(ckpt_file_verify(path, &err), ST_OK);
  ckpt_file *f = NULL;
  ckpt_entry *e = NULL;
  size_t n = 0;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_open(path, &f, &err), ST_OK);
  CU_ASSERT_EQUAL(ckpt_file_list(f, &e, &n, &err), ST_OK);
  for (size_t i = 0; i < n; i++) CU_ASSERT_NOT_EQUAL(strncmp(e[i].path, "optim/", 6), 0);
  CU_ASSERT_EQUAL(n, FIXTURE_NT + 2);
  ckpt_entries_free(e, n);
  ckpt_file_close(f);
  free(err);
  fixture_free(&fx);
  cleanup(path);
}

static void test_name_with_slash_is_refused_and_no_file_left(void) {
  char *path = fresh_path("a.h5");
  fixture fx;
  fixture_init(&fx, 1);
  fx.params[3].name = "bert/pooler";
  char *err = NULL;
  CU_ASSERT_EQUAL(ckpt_file_write(path, &fx.content, &err), ST_INVALID);
  CU_ASSERT_TRUE(fixture_contains(err, "params/bert/pooler"));
  CU_ASSERT_EQUAL(fixture_count_matching(dir, "*"), 0);
  free(err);
  fixture_free(&fx);
  cleanup(path);
}

static void test_write_refuses_to_overwrite_existing_file(void) {
  char *path = fresh_path("a.h5");
  fixture fx;
  CU_ASSERT_EQUAL_FATAL(written_fixture(&fx, path), ST_OK);
  char *err = NULL;
  CU_ASSERT_EQUAL(ckpt_file_write(path, &fx.content, &err), ST_IO);
  CU_ASSERT_TRUE(fixture_contains(err, path));
  free(err);
  err = NULL;
  CU_ASSERT_EQUAL(ckpt_file_verify(path, &err), ST_OK);
  fixture_free(&fx);
  cleanup(path);
}

static void test_edge_chunks_waste_little_space(void) {
  /* 768 rows of 3 KiB: chunks of up to 1 MiB split evenly (3 x 256 rows);
   * a 341-row split would store 1023 rows, a third more than written. */
  char *path = fresh_path("a.h5");
  float *w = calloc(768 * 768, sizeof(float));
  ckpt_tensor t = {"bert.pooler.dense.weight", 2, {768, 768}, w};
  ckpt_content c = {.meta = {.model_type = "bert", .config = ""}, .params = &t, .n_params = 1};
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_write(path, &c, &err), ST_OK);
  FILE *f = fopen(path, "rb");
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fclose(f);
  CU_ASSERT_TRUE(size > 768L * 768 * 4);
  CU_ASSERT_TRUE(size < 768L * 768 * 4 * 102 / 100);
  free(w);
  cleanup(path);
}

static void test_verify_accepts_fresh_file(void) {
  char *path = fresh_path("a.h5");
  fixture fx;
  CU_ASSERT_EQUAL_FATAL(written_fixture(&fx, path), ST_OK);
  char *err = NULL;
  CU_ASSERT_EQUAL(ckpt_file_verify(path, &err), ST_OK);
  CU_ASSERT_PTR_NULL(err);
  fixture_free(&fx);
  cleanup(path);
}

static void test_verify_names_dataset_with_flipped_bit(void) {
  char *path = fresh_path("a.h5");
  fixture fx;
  CU_ASSERT_EQUAL_FATAL(written_fixture(&fx, path), ST_OK);
  CU_ASSERT_EQUAL_FATAL(fixture_flip_bit_in_query(path), 0);
  char *err = NULL;
  CU_ASSERT_EQUAL(ckpt_file_verify(path, &err), ST_CORRUPT);
  CU_ASSERT_TRUE(fixture_contains(err, "params/" FIXTURE_QUERY));
  CU_ASSERT_TRUE(fixture_contains(err, "Fletcher32"));
  free(err);
  fixture_free(&fx);
  cleanup(path);
}

static void test_verify_names_truncated_file(void) {
  char *path = fresh_path("a.h5");
  fixture fx;
  CU_ASSERT_EQUAL_FATAL(written_fixture(&fx, path), ST_OK);
  CU_ASSERT_EQUAL_FATAL(fixture_truncate_half(path), 0);
  char *err = NULL;
  CU_ASSERT_EQUAL(ckpt_file_verify(path, &err), ST_CORRUPT);
  CU_ASSERT_TRUE(fixture_contains(err, path));
  CU_ASSERT_TRUE(fixture_contains(err, "truncated"));
  free(err);
  fixture_free(&fx);
  cleanup(path);
}

static void test_verify_names_moment_whose_shape_differs_from_param(void) {
  char *path = fresh_path("a.h5");
  fixture fx;
  fixture_init(&fx, 1);
  fx.v[4].shape[2] = 2; /* [2, 3, 2] beside params' [2, 3, 4] */
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_write(path, &fx.content, &err), ST_OK);
  CU_ASSERT_EQUAL(ckpt_file_verify(path, &err), ST_CORRUPT);
  CU_ASSERT_TRUE(fixture_contains(err, "optim/v/bert.encoder.layer.0.intermediate.dense.weight has shape [2, 3, 2]"));
  CU_ASSERT_TRUE(fixture_contains(err, "[2, 3, 4]"));
  free(err);
  fixture_free(&fx);
  cleanup(path);
}

static void test_verify_rejects_file_that_is_not_a_checkpoint(void) {
  char *path = fresh_path("a.h5");
  fixture_write_text(dir, "a.h5", "not an HDF5 file\n");
  char *err = NULL;
  CU_ASSERT_EQUAL(ckpt_file_verify(path, &err), ST_CORRUPT);
  CU_ASSERT_TRUE(fixture_contains(err, "signature"));
  free(err);
  cleanup(path);
}

/* Targets for load tests: a copy of the fixture's params shapes with fresh
 * buffers filled with a sentinel. */
static void make_targets(const fixture *fx, ckpt_tensor *t, size_t n) {
  for (size_t k = 0; k < n; k++) {
    t[k] = fx->params[k % FIXTURE_NT];
    size_t c = fixture_count(&t[k]);
    t[k].data = malloc(c * sizeof(float));
    for (size_t i = 0; i < c; i++) t[k].data[i] = -12345.0f;
  }
}

static void free_targets(ckpt_tensor *t, size_t n) {
  for (size_t k = 0; k < n; k++) free(t[k].data);
}

static void test_strict_load_fails_naming_first_missing_parameter(void) {
  char *path = fresh_path("a.h5");
  fixture fx;
  CU_ASSERT_EQUAL_FATAL(written_fixture(&fx, path), ST_OK);
  ckpt_tensor t[FIXTURE_NT + 1];
  make_targets(&fx, t, FIXTURE_NT + 1);
  t[FIXTURE_NT].name = "classifier.weight";
  ckpt_file *f = NULL;
  char *err = NULL;
  ckpt_load_report r = {0};
  CU_ASSERT_EQUAL_FATAL(ckpt_file_open(path, &f, &err), ST_OK);
  CU_ASSERT_EQUAL(ckpt_file_load(f, "params", t, FIXTURE_NT + 1, 1, &r, &err), ST_MISMATCH);
  CU_ASSERT_TRUE(fixture_contains(err, "params/classifier.weight is missing"));
  CU_ASSERT_EQUAL(r.n_missing, 1);
  CU_ASSERT_EQUAL(r.n_loaded, 0);
  CU_ASSERT_EQUAL(t[0].data[0], -12345.0f);
  ckpt_load_report_clear(&r);
  free(err);
  ckpt_file_close(f);
  free_targets(t, FIXTURE_NT + 1);
  fixture_free(&fx);
  cleanup(path);
}

static void test_strict_load_fails_naming_unexpected_parameter(void) {
  char *path = fresh_path("a.h5");
  fixture fx;
  CU_ASSERT_EQUAL_FATAL(written_fixture(&fx, path), ST_OK);
  ckpt_tensor t[FIXTURE_NT - 1];
  make_targets(&fx, t, FIXTURE_NT - 1); /* all but cls.predictions.bias */
  ckpt_file *f = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_open(path, &f, &err), ST_OK);
  CU_ASSERT_EQUAL(ckpt_file_load(f, "params", t, FIXTURE_NT - 1, 1, NULL, &err), ST_MISMATCH);
  CU_ASSERT_TRUE(fixture_contains(err, "params/cls.predictions.bias is not a tensor of the model"));
  free(err);
  ckpt_file_close(f);
  free_targets(t, FIXTURE_NT - 1);
  fixture_free(&fx);
  cleanup(path);
}

static void test_non_strict_load_reports_names_and_loads_the_rest(void) {
  char *path = fresh_path("a.h5");
  fixture fx;
  CU_ASSERT_EQUAL_FATAL(written_fixture(&fx, path), ST_OK);
  /* The model lacks cls.predictions.bias and adds a classifier head. */
  ckpt_tensor t[FIXTURE_NT];
  make_targets(&fx, t, FIXTURE_NT - 1);
  t[FIXTURE_NT - 1] = (ckpt_tensor){"classifier.weight", 2, {2, 16}, malloc(32 * sizeof(float))};
  for (int i = 0; i < 32; i++) t[FIXTURE_NT - 1].data[i] = 0.5f;
  ckpt_file *f = NULL;
  char *err = NULL;
  ckpt_load_report r = {0};
  CU_ASSERT_EQUAL_FATAL(ckpt_file_open(path, &f, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(ckpt_file_load(f, "params", t, FIXTURE_NT, 0, &r, &err), ST_OK);
  CU_ASSERT_EQUAL(r.n_loaded, FIXTURE_NT - 1);
  CU_ASSERT_EQUAL_FATAL(r.n_missing, 1);
  CU_ASSERT_STRING_EQUAL(r.missing[0], "classifier.weight");
  CU_ASSERT_EQUAL_FATAL(r.n_unexpected, 1);
  CU_ASSERT_STRING_EQUAL(r.unexpected[0], "cls.predictions.bias");
  for (int k = 0; k < FIXTURE_NT - 1; k++)
    for (size_t i = 0; i < fixture_count(&t[k]); i++) CU_ASSERT_EQUAL(t[k].data[i], fixture_value((unsigned)k, i));
  CU_ASSERT_EQUAL(t[FIXTURE_NT - 1].data[31], 0.5f);
  ckpt_load_report_clear(&r);
  ckpt_file_close(f);
  free_targets(t, FIXTURE_NT);
  fixture_free(&fx);
  cleanup(path);
}

static void test_shape_mismatch_fails_naming_both_shapes_even_when_not_strict(void) {
  char *path = fresh_path("a.h5");
  fixture fx;
  CU_ASSERT_EQUAL_FATAL(written_fixture(&fx, path), ST_OK);
  ckpt_tensor t[FIXTURE_NT];
  make_targets(&fx, t, FIXTURE_NT);
  size_t c = fixture_count(&t[2]);
  t[2].shape[1] = 8; /* [16, 8] against the file's [16, 16] */
  ckpt_file *f = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_open(path, &f, &err), ST_OK);
  CU_ASSERT_EQUAL(ckpt_file_load(f, "params", t, FIXTURE_NT, 0, NULL, &err), ST_MISMATCH);
  CU_ASSERT_TRUE(fixture_contains(err, "params/" FIXTURE_QUERY " has shape [16, 16] in the checkpoint but [16, 8] in the model"));
  /* Checks come before any copy: nothing was loaded. */
  CU_ASSERT_EQUAL(t[0].data[0], -12345.0f);
  CU_ASSERT_EQUAL(t[2].data[c / 2 - 1], -12345.0f);
  free(err);
  ckpt_file_close(f);
  free_targets(t, FIXTURE_NT);
  fixture_free(&fx);
  cleanup(path);
}

static void test_load_of_damaged_tensor_names_it(void) {
  char *path = fresh_path("a.h5");
  fixture fx;
  CU_ASSERT_EQUAL_FATAL(written_fixture(&fx, path), ST_OK);
  CU_ASSERT_EQUAL_FATAL(fixture_flip_bit_in_query(path), 0);
  ckpt_tensor t[FIXTURE_NT];
  make_targets(&fx, t, FIXTURE_NT);
  ckpt_file *f = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_open(path, &f, &err), ST_OK);
  CU_ASSERT_EQUAL(ckpt_file_load(f, "params", t, FIXTURE_NT, 1, NULL, &err), ST_CORRUPT);
  CU_ASSERT_TRUE(fixture_contains(err, "params/" FIXTURE_QUERY));
  free(err);
  ckpt_file_close(f);
  free_targets(t, FIXTURE_NT);
  fixture_free(&fx);
  cleanup(path);
}

/* Issue 16, rows 5 and 9: a checksummed NaN, and a negative step. Loading
 * stays bit-exact for any float (test_dotted_names_round_trip_bit_exact);
 * verification, which resume's fallback relies on, refuses them. */
static void test_nan_tensor_fails_verify_naming_it(void) {
  char *path = fresh_path("nan.h5");
  fixture fx;
  fixture_init(&fx, 3);
  fx.params[2].data[7] = -INFINITY;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_write(path, &fx.content, &err), ST_OK);
  CU_ASSERT_EQUAL(ckpt_file_verify(path, &err), ST_CORRUPT);
  CU_ASSERT_TRUE(fixture_contains(err, "params/" FIXTURE_QUERY " holds a non-finite value (-inf at element 7)"));
  free(err);
  fixture_free(&fx);
  cleanup(path);
}

static void test_negative_step_is_refused_by_the_header(void) {
  char *path = fresh_path("neg.h5");
  fixture fx;
  fixture_init(&fx, -5);
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_write(path, &fx.content, &err), ST_OK);
  CU_ASSERT_EQUAL(ckpt_file_verify(path, &err), ST_CORRUPT);
  CU_ASSERT_TRUE(fixture_contains(err, "step -5"));
  free(err);
  fixture_free(&fx);
  cleanup(path);
}

static const harness_test tests[] = {
    {"test_nan_tensor_fails_verify_naming_it", test_nan_tensor_fails_verify_naming_it},
    {"test_negative_step_is_refused_by_the_header", test_negative_step_is_refused_by_the_header},
    {"test_dotted_names_round_trip_bit_exact", test_dotted_names_round_trip_bit_exact},
    {"test_root_attributes_round_trip", test_root_attributes_round_trip},
    {"test_large_and_empty_string_attributes_round_trip", test_large_and_empty_string_attributes_round_trip},
    {"test_int64_arrays_round_trip_with_extreme_values", test_int64_arrays_round_trip_with_extreme_values},
    {"test_list_gives_every_dataset_in_write_order_checksummed", test_list_gives_every_dataset_in_write_order_checksummed},
    {"test_weights_only_file_has_no_optim_and_verifies", test_weights_only_file_has_no_optim_and_verifies},
    {"test_name_with_slash_is_refused_and_no_file_left", test_name_with_slash_is_refused_and_no_file_left},
    {"test_write_refuses_to_overwrite_existing_file", test_write_refuses_to_overwrite_existing_file},
    {"test_edge_chunks_waste_little_space", test_edge_chunks_waste_little_space},
    {"test_verify_accepts_fresh_file", test_verify_accepts_fresh_file},
    {"test_verify_names_dataset_with_flipped_bit", test_verify_names_dataset_with_flipped_bit},
    {"test_verify_names_truncated_file", test_verify_names_truncated_file},
    {"test_verify_names_moment_whose_shape_differs_from_param", test_verify_names_moment_whose_shape_differs_from_param},
    {"test_verify_rejects_file_that_is_not_a_checkpoint", test_verify_rejects_file_that_is_not_a_checkpoint},
    {"test_strict_load_fails_naming_first_missing_parameter", test_strict_load_fails_naming_first_missing_parameter},
    {"test_strict_load_fails_naming_unexpected_parameter", test_strict_load_fails_naming_unexpected_parameter},
    {"test_non_strict_load_reports_names_and_loads_the_rest", test_non_strict_load_reports_names_and_loads_the_rest},
    {"test_shape_mismatch_fails_naming_both_shapes_even_when_not_strict", test_shape_mismatch_fails_naming_both_shapes_even_when_not_strict},
    {"test_load_of_damaged_tensor_names_it", test_load_of_damaged_tensor_names_it},
    {NULL, NULL},
};
const harness_suite storage_ckpt_file_suite = {"ckpt_file", tests};
