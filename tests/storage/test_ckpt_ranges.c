/* storage/ckpt, ranges of a tensor's flat data: a file whose moments are
 * written in ranges (ckpt_file_writer, ckpt_commit) holds the same bits as
 * one written whole, and fails unless every element was written once;
 * ranges read back (ckpt_file_read_float_range, ckpt_file_load_ranges) are
 * the elements asked for, checksum-verified, with strict name checks. The
 * ranges cut rows, chunks and dimensions anywhere, in scrambled order. */
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "harness.h"
#include "storage/ckpt.h"
#include "storage/storage.h"
#include "util/file.h"
#include "util/status.h"

/* A tensor of 3 x 300 x 700 floats (2.4 MiB: three 1 MiB chunks of one
 * leading index each) beside the fixture's six, so ranges cross chunks. */
enum { BIG_N = 3 * 300 * 700 };
#define BIG_NAME "bert.encoder.layer.1.output.dense.weight"

typedef struct big_fixture {
  fixture fx;
  ckpt_tensor params[FIXTURE_NT + 1], m[FIXTURE_NT + 1], v[FIXTURE_NT + 1];
  float *big[3]; /* params, m, v of BIG_NAME */
  ckpt_content content;
} big_fixture;

static void big_init(big_fixture *b) {
  fixture_init(&b->fx, 77);
  ckpt_tensor *from[3] = {b->fx.params, b->fx.m, b->fx.v}, *to[3] = {b->params, b->m, b->v};
  for (int g = 0; g < 3; g++) {
    memcpy(to[g], from[g], FIXTURE_NT * sizeof *to[g]);
    b->big[g] = malloc(BIG_N * sizeof(float));
    for (size_t i = 0; i < BIG_N; i++) b->big[g][i] = fixture_value(40 + (unsigned)g, i);
    to[g][FIXTURE_NT] = (ckpt_tensor){BIG_NAME, 3, {3, 300, 700}, b->big[g]};
  }
  b->content = b->fx.content;
  b->content.params = b->params;
  b->content.optim_m = b->m;
  b->content.optim_v = b->v;
  b->content.n_params = b->content.n_optim_m = b->content.n_optim_v = FIXTURE_NT + 1;
}

static void big_free(big_fixture *b) {
  for (int g = 0; g < 3; g++) free(b->big[g]);
  fixture_free(&b->fx);
}

/* The same content with optim/m and optim/v pending (no data). */
static ckpt_content pending_moments(big_fixture *b, ckpt_tensor *m, ckpt_tensor *v) {
  ckpt_content c = b->content;
  for (int k = 0; k <= FIXTURE_NT; k++) {
    m[k] = b->m[k];
    v[k] = b->v[k];
    m[k].data = v[k].data = NULL;
  }
  c.optim_m = m;
  c.optim_v = v;
  return c;
}

/* Cuts of [0, n) for tensor k: irregular lengths (1, 7, a row and a bit,
 * a chunk and a bit, ...), so pieces start and end mid-row and mid-chunk. */
static size_t cut_ranges(size_t n, size_t k, size_t (*cuts)[2], size_t cap) {
  static const size_t lens[] = {1, 7, 701, 262145, 33, 90000, 5};
  size_t at = 0, nc = 0;
  while (at < n && nc < cap) {
    size_t len = lens[(nc + k) % (sizeof lens / sizeof *lens)];
    if (len > n - at) len = n - at;
    cuts[nc][0] = at;
    cuts[nc][1] = at + len;
    nc++;
    at += len;
  }
  return nc;
}

/* Puts every range of every moment tensor, last range first. */
static int put_moments(big_fixture *b, int (*put)(void *, const char *, const char *, size_t, size_t,
                                                  const float *, char **),
                       void *w, char **err) {
  const ckpt_tensor *groups[2] = {b->m, b->v};
  const char *names[2] = {"optim/m", "optim/v"};
  size_t cuts[64][2];
  for (int g = 0; g < 2; g++)
    for (size_t k = 0; k <= FIXTURE_NT; k++) {
      const ckpt_tensor *t = &groups[g][k];
      size_t nc = cut_ranges(fixture_count(t), k, cuts, 64);
      for (size_t j = nc; j-- > 0;) {
        int rc = put(w, names[g], t->name, cuts[j][0], cuts[j][1] - cuts[j][0], t->data + cuts[j][0], err);
        if (rc) return rc;
      }
    }
  return ST_OK;
}

static int put_file(void *w, const char *group, const char *name, size_t off, size_t n, const float *x,
                    char **err) {
  return ckpt_file_writer_put(w, group, name, off, n, x, err);
}

static int put_commit(void *w, const char *group, const char *name, size_t off, size_t n, const float *x,
                      char **err) {
  return ckpt_commit_put(w, group, name, off, n, x, err);
}

/* Every float dataset of a and b holds the same bits. */
static int same_tensors(const char *a, const char *b) {
  ckpt_file *fa = NULL, *fb = NULL;
  ckpt_entry *e = NULL;
  size_t n = 0;
  char *err = NULL;
  int same = ckpt_file_open(a, &fa, &err) == ST_OK && ckpt_file_open(b, &fb, &err) == ST_OK &&
             ckpt_file_list(fa, &e, &n, &err) == ST_OK && n > 0;
  for (size_t i = 0; same && i < n; i++) {
    if (e[i].dtype != CKPT_FLOAT32) continue;
    float *x = malloc(e[i].count * sizeof *x), *y = malloc(e[i].count * sizeof *y);
    same = ckpt_file_read_float(fa, e[i].path, x, e[i].count, &err) == ST_OK &&
           ckpt_file_read_float(fb, e[i].path, y, e[i].count, &err) == ST_OK &&
           memcmp(x, y, e[i].count * sizeof *x) == 0;
    if (!same) fprintf(stderr, "%s differs: %s\n", e[i].path, err ? err : "other bits");
    free(x);
    free(y);
  }
  ckpt_entries_free(e, n);
  ckpt_file_close(fa);
  ckpt_file_close(fb);
  free(err);
  return same;
}

static void test_moments_written_in_ranges_equal_the_whole_write_bit_for_bit(void) {
  char *dir = harness_tmpdir("ckpt-ranges");
  char *whole = file_path_join(dir, "whole.h5"), *ranged = file_path_join(dir, "ranged.h5");
  big_fixture b;
  big_init(&b);
  ckpt_tensor m[FIXTURE_NT + 1], v[FIXTURE_NT + 1];
  ckpt_content c = pending_moments(&b, m, v);
  char *err = NULL;
  ckpt_file_writer *w = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_write(whole, &b.content, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(ckpt_file_writer_open(ranged, &c, &w, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(put_moments(&b, put_file, w, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(ckpt_file_writer_close(w, &err), ST_OK);
  CU_ASSERT_EQUAL(ckpt_file_verify(ranged, &err), ST_OK);
  CU_ASSERT_TRUE(same_tensors(whole, ranged));
  free(err);
  big_free(&b);
  free(whole);
  free(ranged);
  harness_rmtree(dir);
  free(dir);
  CU_ASSERT_EQUAL(storage_open_object_count(), 0);
}

/* A range never written would read back as zeros under a valid checksum;
 * one written twice means the caller's ranges overlap. Either fails the
 * close, naming the tensor, and leaves no file. */
static void test_close_fails_on_a_missing_or_doubled_range_and_removes_the_file(void) {
  char *dir = harness_tmpdir("ckpt-ranges");
  char *path = file_path_join(dir, "x.h5");
  big_fixture b;
  big_init(&b);
  ckpt_tensor m[FIXTURE_NT + 1], v[FIXTURE_NT + 1];
  ckpt_content c = pending_moments(&b, m, v);
  for (int twice = 0; twice < 2; twice++) {
    char *err = NULL;
    ckpt_file_writer *w = NULL;
    CU_ASSERT_EQUAL_FATAL(ckpt_file_writer_open(path, &c, &w, &err), ST_OK);
    CU_ASSERT_EQUAL_FATAL(put_moments(&b, put_file, w, &err), ST_OK);
    if (twice)
      CU_ASSERT_EQUAL(ckpt_file_writer_put(w, "optim/v", BIG_NAME, 5000, 10, b.big[2] + 5000, &err), ST_OK);
    CU_ASSERT_EQUAL(ckpt_file_writer_close(w, &err), twice ? ST_INVALID : ST_OK);
    if (twice) CU_ASSERT_TRUE(fixture_contains(err, "optim/v/" BIG_NAME ": elements from 5000 were written twice"));
    CU_ASSERT_EQUAL(fixture_exists(dir, "x.h5"), !twice);
    remove(path);
    free(err);
  }
  char *err = NULL;
  ckpt_file_writer *w = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_writer_open(path, &c, &w, &err), ST_OK);
  CU_ASSERT_EQUAL(ckpt_file_writer_put(w, "optim/m", BIG_NAME, 0, BIG_N - 3, b.big[1], &err), ST_OK);
  CU_ASSERT_EQUAL(ckpt_file_writer_put(w, "params", BIG_NAME, 0, 1, b.big[0], &err), ST_INVALID);
  CU_ASSERT_EQUAL(ckpt_file_writer_put(w, "optim/m", BIG_NAME, BIG_N - 3, 4, b.big[1], &err), ST_INVALID);
  CU_ASSERT_EQUAL(ckpt_file_writer_close(w, &err), ST_INVALID);
  CU_ASSERT_TRUE(fixture_contains(err, "optim/m/bert.embeddings.word_embeddings.weight: elements 0..800 were never written"));
  CU_ASSERT_FALSE(fixture_exists(dir, "x.h5"));
  free(err);
  big_free(&b);
  free(path);
  harness_rmtree(dir);
  free(dir);
  CU_ASSERT_EQUAL(storage_open_object_count(), 0);
}

/* A commit in pieces ends as ckpt_dir_commit's: the step file, LATEST, no
 * temporary file; and so does one whose end runs in the background. */
static void test_commit_in_ranges_commits_like_a_whole_one_in_the_background_too(void) {
  char *dir = harness_tmpdir("ckpt-ranges");
  big_fixture b;
  big_init(&b);
  ckpt_tensor m[FIXTURE_NT + 1], v[FIXTURE_NT + 1];
  ckpt_content c = pending_moments(&b, m, v);
  char *err = NULL, *written = NULL;
  ckpt_commit *cm = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_dir_commit(dir, &b.content, 0, NULL, &err), ST_OK);
  char *whole = file_path_join(dir, "whole.h5"), *first = file_path_join(dir, "ckpt-00000077.h5");
  CU_ASSERT_EQUAL_FATAL(rename(first, whole), 0);
  CU_ASSERT_EQUAL_FATAL(ckpt_commit_begin(dir, &c, &cm, &err), ST_OK);
  CU_ASSERT_EQUAL(fixture_count_matching(dir, ".ckpt-00000077.h5.tmp-*"), 1);
  CU_ASSERT_EQUAL_FATAL(put_moments(&b, put_commit, cm, &err), ST_OK);
  ckpt_writer *w = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_writer_end_commit(cm, 0, &w, &err), ST_OK);
  CU_ASSERT_EQUAL(ckpt_writer_wait(w, &written, &err), ST_OK);
  ckpt_writer_free(w);
  CU_ASSERT_STRING_EQUAL(written, first);
  CU_ASSERT_EQUAL(fixture_count_matching(dir, ".*tmp*"), 0);
  CU_ASSERT_TRUE(same_tensors(whole, first));
  char *path = NULL, *note = NULL;
  CU_ASSERT_EQUAL(ckpt_dir_find_latest_valid(dir, &path, &note, &err), ST_OK);
  CU_ASSERT_STRING_EQUAL(path, first);
  free(path);
  free(note);
  free(written);
  free(whole);
  free(first);
  free(err);
  big_free(&b);
  harness_rmtree(dir);
  free(dir);
  CU_ASSERT_EQUAL(storage_open_object_count(), 0);
}

/* An aborted commit, and one whose pieces are incomplete, leave nothing:
 * no step file, no temporary, no LATEST. */
static void test_aborted_or_incomplete_commit_leaves_nothing(void) {
  char *dir = harness_tmpdir("ckpt-ranges");
  big_fixture b;
  big_init(&b);
  ckpt_tensor m[FIXTURE_NT + 1], v[FIXTURE_NT + 1];
  ckpt_content c = pending_moments(&b, m, v);
  char *err = NULL;
  ckpt_commit *cm = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_commit_begin(dir, &c, &cm, &err), ST_OK);
  ckpt_commit_abort(cm);
  CU_ASSERT_EQUAL_FATAL(ckpt_commit_begin(dir, &c, &cm, &err), ST_OK);
  CU_ASSERT_EQUAL(ckpt_commit_put(cm, "optim/m", BIG_NAME, 0, 10, b.big[1], &err), ST_OK);
  CU_ASSERT_EQUAL(ckpt_commit_end(cm, 0, NULL, &err), ST_INVALID);
  CU_ASSERT_EQUAL(fixture_count_matching(dir, "*"), 0);
  CU_ASSERT_EQUAL(fixture_count_matching(dir, ".*tmp*"), 0);
  free(err);
  big_free(&b);
  harness_rmtree(dir);
  free(dir);
  CU_ASSERT_EQUAL(storage_open_object_count(), 0);
}

static void test_ranges_read_back_the_elements_asked_for(void) {
  char *dir = harness_tmpdir("ckpt-ranges");
  char *path = file_path_join(dir, "r.h5");
  big_fixture b;
  big_init(&b);
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_write(path, &b.content, &err), ST_OK);
  ckpt_file *f = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_open(path, &f, &err), ST_OK);
  /* Across the 3-D tensor's rows, chunks and leading index; a 2-D one's rows. */
  static const size_t at[][2] = {{0, 1}, {699, 2}, {209999, 3}, {1234, 500000}, {BIG_N - 1, 1}, {0, BIG_N}};
  for (size_t i = 0; i < sizeof at / sizeof *at; i++) {
    float *x = malloc(at[i][1] * sizeof *x);
    CU_ASSERT_EQUAL(ckpt_file_read_float_range(f, "optim/v/" BIG_NAME, at[i][0], at[i][1], x, &err), ST_OK);
    CU_ASSERT_EQUAL(memcmp(x, b.big[2] + at[i][0], at[i][1] * sizeof *x), 0);
    free(x);
  }
  float y[40];
  CU_ASSERT_EQUAL(ckpt_file_read_float_range(f, "params/bert.embeddings.word_embeddings.weight", 15, 40, y, &err),
                  ST_OK);
  CU_ASSERT_EQUAL(memcmp(y, b.params[0].data + 15, sizeof y), 0);
  CU_ASSERT_EQUAL(ckpt_file_read_float_range(f, "params/bert.embeddings.LayerNorm.weight", 10, 7, y, &err),
                  ST_MISMATCH);
  CU_ASSERT_TRUE(fixture_contains(err, "holds 16 elements, the caller asks for 10..17"));
  ckpt_file_close(f);
  free(err);
  big_free(&b);
  free(path);
  harness_rmtree(dir);
  free(dir);
  CU_ASSERT_EQUAL(storage_open_object_count(), 0);
}

/* load_ranges reads the ranges into their buffers and nothing else, after
 * the strict load's checks: a tensor of the model missing from the file
 * fails before any range is read. */
static void test_load_ranges_reads_only_its_ranges_after_strict_checks(void) {
  char *dir = harness_tmpdir("ckpt-ranges");
  char *path = file_path_join(dir, "r.h5");
  big_fixture b;
  big_init(&b);
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_write(path, &b.content, &err), ST_OK);
  ckpt_file *f = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_open(path, &f, &err), ST_OK);
  ckpt_tensor t[FIXTURE_NT + 1];
  memcpy(t, b.m, sizeof t);
  float got[3][300] = {{0}};
  ckpt_range r[3] = {{FIXTURE_NT, 419990, 300, got[0]}, {4, 5, 19, got[1]}, {0, 0, 1, got[2]}};
  CU_ASSERT_EQUAL(ckpt_file_load_ranges(f, "optim/m", t, FIXTURE_NT + 1, r, 3, &err), ST_OK);
  CU_ASSERT_EQUAL(memcmp(got[0], b.big[1] + 419990, 300 * sizeof(float)), 0);
  CU_ASSERT_EQUAL(memcmp(got[1], b.m[4].data + 5, 19 * sizeof(float)), 0);
  CU_ASSERT_EQUAL(got[1][19], 0.0f);
  CU_ASSERT_EQUAL(got[2][0], b.m[0].data[0]);
  t[3].name = "bert.encoder.layer.0.attention.self.query.not_there";
  got[2][0] = 0;
  CU_ASSERT_EQUAL(ckpt_file_load_ranges(f, "optim/m", t, FIXTURE_NT + 1, r + 2, 1, &err), ST_MISMATCH);
  CU_ASSERT_TRUE(fixture_contains(err, "optim/m/bert.encoder.layer.0.attention.self.query.not_there is missing"));
  CU_ASSERT_EQUAL(got[2][0], 0.0f);
  ckpt_file_close(f);
  free(err);
  big_free(&b);
  free(path);
  harness_rmtree(dir);
  free(dir);
  CU_ASSERT_EQUAL(storage_open_object_count(), 0);
}

static const harness_test tests[] = {
    {"test_moments_written_in_ranges_equal_the_whole_write_bit_for_bit",
     test_moments_written_in_ranges_equal_the_whole_write_bit_for_bit},
    {"test_close_fails_on_a_missing_or_doubled_range_and_removes_the_file",
     test_close_fails_on_a_missing_or_doubled_range_and_removes_the_file},
    {"test_commit_in_ranges_commits_like_a_whole_one_in_the_background_too",
     test_commit_in_ranges_commits_like_a_whole_one_in_the_background_too},
    {"test_aborted_or_incomplete_commit_leaves_nothing", test_aborted_or_incomplete_commit_leaves_nothing},
    {"test_ranges_read_back_the_elements_asked_for", test_ranges_read_back_the_elements_asked_for},
    {"test_load_ranges_reads_only_its_ranges_after_strict_checks",
     test_load_ranges_reads_only_its_ranges_after_strict_checks},
    {NULL, NULL},
};
const harness_suite storage_ckpt_ranges_suite = {"ckpt_ranges", tests};
