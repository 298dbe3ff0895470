/* storage/ckpt, the run directory: atomic commit and LATEST, keep-K pruning
 * with markers, the fallback from a damaged LATEST, the background writer,
 * and a writer killed with SIGKILL mid-write leaving LATEST complete. */
#include <signal.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixtures.h"
#include "harness.h"
#include "storage/ckpt.h"
#include "storage/storage.h"
#include "util/file.h"
#include "util/status.h"

static char *read_text(const char *dir, const char *name) {
  char path[1024], buf[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return strdup(buf);
}

static int commit_step(const char *dir, int64_t step, int keep) {
  fixture fx;
  fixture_init(&fx, step);
  char *err = NULL;
  int rc = ckpt_dir_commit(dir, &fx.content, keep, NULL, &err);
  if (rc) fprintf(stderr, "commit failed: %s\n", err);
  free(err);
  fixture_free(&fx);
  return rc;
}

static void test_commit_writes_step_file_and_latest_and_no_temp(void) {
  char *dir = harness_tmpdir("ckpt-dir");
  fixture fx;
  fixture_init(&fx, 1000);
  char *err = NULL, *written = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_dir_commit(dir, &fx.content, 3, &written, &err), ST_OK);
  char *want = file_path_join(dir, "ckpt-00001000.h5");
  CU_ASSERT_STRING_EQUAL(written, want);
  char *latest = read_text(dir, "LATEST");
  CU_ASSERT_STRING_EQUAL(latest, "ckpt-00001000.h5\n");
  CU_ASSERT_EQUAL(fixture_count_matching(dir, "*"), 2);
  CU_ASSERT_EQUAL(fixture_count_matching(dir, ".*tmp*"), 0);
  CU_ASSERT_EQUAL(ckpt_file_verify(written, &err), ST_OK);
  free(latest);
  free(want);
  free(written);
  fixture_free(&fx);
  harness_rmtree(dir);
  free(dir);
  CU_ASSERT_EQUAL(storage_open_object_count(), 0);
}

static void test_commit_creates_missing_run_dir(void) {
  char *base = harness_tmpdir("ckpt-dir");
  char *dir = file_path_join(base, "run");
  CU_ASSERT_EQUAL(commit_step(dir, 5, 0), ST_OK);
  CU_ASSERT_TRUE(fixture_exists(dir, "ckpt-00000005.h5"));
  harness_rmtree(base);
  free(dir);
  free(base);
}

static void test_failed_commit_leaves_latest_and_no_temp(void) {
  char *dir = harness_tmpdir("ckpt-dir");
  CU_ASSERT_EQUAL_FATAL(commit_step(dir, 1, 0), ST_OK);
  fixture fx;
  fixture_init(&fx, 2);
  fx.m[4].name = "bad/name"; /* fails after params/ is already written */
  char *err = NULL, *written = NULL;
  CU_ASSERT_EQUAL(ckpt_dir_commit(dir, &fx.content, 0, &written, &err), ST_INVALID);
  CU_ASSERT_TRUE(fixture_contains(err, "optim/m/bad/name"));
  CU_ASSERT_PTR_NULL(written);
  char *latest = read_text(dir, "LATEST");
  CU_ASSERT_STRING_EQUAL(latest, "ckpt-00000001.h5\n");
  CU_ASSERT_EQUAL(fixture_count_matching(dir, "*"), 2);
  CU_ASSERT_EQUAL(fixture_count_matching(dir, ".*"), 2); /* "." and ".." only */
  free(latest);
  free(err);
  fixture_free(&fx);
  harness_rmtree(dir);
  free(dir);
  CU_ASSERT_EQUAL(storage_open_object_count(), 0);
}

static void test_keep_k_prunes_oldest_but_not_marked_or_latest(void) {
  char *dir = harness_tmpdir("ckpt-dir");
  for (int s = 1; s <= 5; s++) CU_ASSERT_EQUAL_FATAL(commit_step(dir, s, 0), ST_OK);
  CU_ASSERT_EQUAL(fixture_count_matching(dir, "ckpt-*.h5"), 5);
  fixture_write_text(dir, "ckpt-00000002.h5.keep", "");
  CU_ASSERT_EQUAL_FATAL(commit_step(dir, 6, 2), ST_OK);
  CU_ASSERT_EQUAL(fixture_count_matching(dir, "ckpt-*.h5"), 3);
  CU_ASSERT_TRUE(fixture_exists(dir, "ckpt-00000006.h5"));
  CU_ASSERT_TRUE(fixture_exists(dir, "ckpt-00000005.h5"));
  CU_ASSERT_TRUE(fixture_exists(dir, "ckpt-00000002.h5"));
  /* LATEST pointing back at an older file protects it too, and a dead
   * writer's temporary file goes. */
  fixture_write_text(dir, "LATEST", "ckpt-00000005.h5\n");
  fixture_write_text(dir, ".ckpt-00000009.h5.tmp-1", "partial");
  char *err = NULL;
  CU_ASSERT_EQUAL(ckpt_dir_prune(dir, 1, &err), ST_OK);
  CU_ASSERT_EQUAL(fixture_count_matching(dir, "ckpt-*.h5"), 3);
  CU_ASSERT_FALSE(fixture_exists(dir, ".ckpt-00000009.h5.tmp-1"));
  CU_ASSERT_EQUAL(ckpt_dir_prune(dir, 0, &err), ST_OK);
  CU_ASSERT_EQUAL(fixture_count_matching(dir, "ckpt-*.h5"), 3);
  fixture_write_text(dir, "LATEST", "ckpt-00000006.h5\n");
  CU_ASSERT_EQUAL(ckpt_dir_prune(dir, 1, &err), ST_OK);
  CU_ASSERT_EQUAL(fixture_count_matching(dir, "ckpt-*.h5"), 2);
  CU_ASSERT_FALSE(fixture_exists(dir, "ckpt-00000005.h5"));
  CU_ASSERT_PTR_NULL(err);
  harness_rmtree(dir);
  free(dir);
}

/* BEST names a checkpoint that pruning keeps however old, is written
 * atomically (no temporary left, a dead writer's one removed) and refuses a
 * name that is not a checkpoint of the directory. */
static void test_best_is_never_pruned_and_only_names_checkpoints(void) {
  char *dir = harness_tmpdir("ckpt-dir");
  char *err = NULL, *best = NULL;
  CU_ASSERT_EQUAL(ckpt_dir_read_best(dir, &best, &err), ST_OK);
  CU_ASSERT_PTR_NULL(best); /* no BEST yet */
  for (int s = 1; s <= 3; s++) CU_ASSERT_EQUAL_FATAL(commit_step(dir, s, 0), ST_OK);
  CU_ASSERT_EQUAL_FATAL(ckpt_dir_set_best(dir, "ckpt-00000002.h5", &err), ST_OK);
  char *text = read_text(dir, "BEST");
  CU_ASSERT_STRING_EQUAL(text, "ckpt-00000002.h5\n");
  free(text);
  CU_ASSERT_EQUAL(fixture_count_matching(dir, ".*tmp*"), 0);
  fixture_write_text(dir, ".BEST.tmp-1", "ckpt-0000");
  for (int s = 4; s <= 6; s++) CU_ASSERT_EQUAL_FATAL(commit_step(dir, s, 1), ST_OK);
  CU_ASSERT_EQUAL(fixture_count_matching(dir, "ckpt-*.h5"), 2);
  CU_ASSERT_TRUE(fixture_exists(dir, "ckpt-00000002.h5"));
  CU_ASSERT_TRUE(fixture_exists(dir, "ckpt-00000006.h5"));
  CU_ASSERT_FALSE(fixture_exists(dir, ".BEST.tmp-1"));
  CU_ASSERT_EQUAL(ckpt_dir_read_best(dir, &best, &err), ST_OK);
  CU_ASSERT_STRING_EQUAL(best, "ckpt-00000002.h5");
  free(best);
  /* Moving BEST lets the old best go at the next prune. */
  CU_ASSERT_EQUAL_FATAL(ckpt_dir_set_best(dir, "ckpt-00000006.h5", &err), ST_OK);
  CU_ASSERT_EQUAL(ckpt_dir_prune(dir, 1, &err), ST_OK);
  CU_ASSERT_EQUAL(fixture_count_matching(dir, "ckpt-*.h5"), 1);
  CU_ASSERT_EQUAL(ckpt_dir_set_best(dir, "ckpt-00000002.h5", &err), ST_INVALID); /* pruned */
  CU_ASSERT_TRUE(fixture_contains(err, "no such checkpoint"));
  free(err);
  err = NULL;
  CU_ASSERT_EQUAL(ckpt_dir_set_best(dir, "../x.h5", &err), ST_INVALID);
  free(err);
  err = NULL;
  fixture_write_text(dir, "BEST", "not a checkpoint\n");
  CU_ASSERT_EQUAL(ckpt_dir_read_best(dir, &best, &err), ST_CORRUPT);
  free(err);
  err = NULL;
  /* A damaged BEST does not stop pruning. */
  CU_ASSERT_EQUAL(commit_step(dir, 7, 1), ST_OK);
  CU_ASSERT_EQUAL(fixture_count_matching(dir, "ckpt-*.h5"), 1);
  harness_rmtree(dir);
  free(dir);
}

static void test_find_latest_valid_uses_intact_latest(void) {
  char *dir = harness_tmpdir("ckpt-dir");
  CU_ASSERT_EQUAL_FATAL(commit_step(dir, 1, 0), ST_OK);
  CU_ASSERT_EQUAL_FATAL(commit_step(dir, 2, 0), ST_OK);
  char *path = NULL, *note = NULL, *err = NULL;
  CU_ASSERT_EQUAL(ckpt_dir_find_latest_valid(dir, &path, &note, &err), ST_OK);
  CU_ASSERT_TRUE(fixture_contains(path, "/ckpt-00000002.h5"));
  CU_ASSERT_PTR_NULL(note);
  free(path);
  harness_rmtree(dir);
  free(dir);
  CU_ASSERT_EQUAL(storage_open_object_count(), 0);
}

static void check_fallback(const char *dir, const char *reason) {
  char *path = NULL, *note = NULL, *err = NULL;
  CU_ASSERT_EQUAL(ckpt_dir_find_latest_valid(dir, &path, &note, &err), ST_OK);
  CU_ASSERT_TRUE(fixture_contains(path, "/ckpt-00000001.h5"));
  CU_ASSERT_TRUE(fixture_contains(note, "LATEST names"));
  CU_ASSERT_TRUE(fixture_contains(note, "ckpt-00000002.h5"));
  CU_ASSERT_TRUE(fixture_contains(note, "ckpt-00000001.h5"));
  CU_ASSERT_TRUE(fixture_contains(note, reason));
  free(path);
  free(note);
  free(err);
  CU_ASSERT_EQUAL(storage_open_object_count(), 0);
}

/* Issue 16, row 5: a NaN that Fletcher-32 vouches for (the writer
 * checksummed it) fails verification, so resume takes the older file. */
static void test_find_latest_valid_falls_back_from_a_nan_the_checksum_covers(void) {
  char *dir = harness_tmpdir("ckpt-dir");
  CU_ASSERT_EQUAL_FATAL(commit_step(dir, 1, 0), ST_OK);
  fixture fx;
  fixture_init(&fx, 2);
  fx.params[2].data[5] = NAN;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_dir_commit(dir, &fx.content, 0, NULL, &err), ST_OK);
  fixture_free(&fx);
  check_fallback(dir, "non-finite value (nan at element 5)");
  harness_rmtree(dir);
  free(dir);
}

static void test_find_latest_valid_falls_back_from_truncated_latest(void) {
  char *dir = harness_tmpdir("ckpt-dir");
  CU_ASSERT_EQUAL_FATAL(commit_step(dir, 1, 0), ST_OK);
  CU_ASSERT_EQUAL_FATAL(commit_step(dir, 2, 0), ST_OK);
  char *p2 = file_path_join(dir, "ckpt-00000002.h5");
  CU_ASSERT_EQUAL_FATAL(fixture_truncate_half(p2), 0);
  check_fallback(dir, "truncated");
  free(p2);
  harness_rmtree(dir);
  free(dir);
}

static void test_find_latest_valid_falls_back_from_bit_flip_naming_dataset(void) {
  char *dir = harness_tmpdir("ckpt-dir");
  CU_ASSERT_EQUAL_FATAL(commit_step(dir, 1, 0), ST_OK);
  CU_ASSERT_EQUAL_FATAL(commit_step(dir, 2, 0), ST_OK);
  char *p2 = file_path_join(dir, "ckpt-00000002.h5");
  CU_ASSERT_EQUAL_FATAL(fixture_flip_bit_in_query(p2), 0);
  check_fallback(dir, "params/" FIXTURE_QUERY);
  free(p2);
  harness_rmtree(dir);
  free(dir);
}

static void test_find_latest_valid_without_latest_uses_newest_file(void) {
  char *dir = harness_tmpdir("ckpt-dir");
  CU_ASSERT_EQUAL_FATAL(commit_step(dir, 1, 0), ST_OK);
  CU_ASSERT_EQUAL_FATAL(commit_step(dir, 2, 0), ST_OK);
  char *latest = file_path_join(dir, "LATEST");
  remove(latest);
  char *path = NULL, *note = NULL, *err = NULL;
  CU_ASSERT_EQUAL(ckpt_dir_find_latest_valid(dir, &path, &note, &err), ST_OK);
  CU_ASSERT_TRUE(fixture_contains(path, "/ckpt-00000002.h5"));
  CU_ASSERT_TRUE(fixture_contains(note, "no LATEST"));
  free(path);
  free(note);
  free(latest);
  harness_rmtree(dir);
  free(dir);
}

static void test_find_latest_valid_in_empty_dir_gives_no_path(void) {
  char *dir = harness_tmpdir("ckpt-dir");
  char *path = NULL, *note = NULL, *err = NULL;
  CU_ASSERT_EQUAL(ckpt_dir_find_latest_valid(dir, &path, &note, &err), ST_OK);
  CU_ASSERT_PTR_NULL(path);
  CU_ASSERT_PTR_NULL(note);
  harness_rmtree(dir);
  free(dir);
}

static void test_find_latest_valid_fails_when_every_file_is_damaged(void) {
  char *dir = harness_tmpdir("ckpt-dir");
  CU_ASSERT_EQUAL_FATAL(commit_step(dir, 1, 0), ST_OK);
  CU_ASSERT_EQUAL_FATAL(commit_step(dir, 2, 0), ST_OK);
  char *p1 = file_path_join(dir, "ckpt-00000001.h5"), *p2 = file_path_join(dir, "ckpt-00000002.h5");
  fixture_truncate_half(p1);
  fixture_flip_bit_in_query(p2);
  char *path = NULL, *note = NULL, *err = NULL;
  CU_ASSERT_EQUAL(ckpt_dir_find_latest_valid(dir, &path, &note, &err), ST_CORRUPT);
  CU_ASSERT_PTR_NULL(path);
  CU_ASSERT_TRUE(fixture_contains(err, "ckpt-00000002.h5"));
  CU_ASSERT_TRUE(fixture_contains(err, "ckpt-00000001.h5"));
  free(err);
  free(p1);
  free(p2);
  harness_rmtree(dir);
  free(dir);
  CU_ASSERT_EQUAL(storage_open_object_count(), 0);
}

static void test_background_writer_commits_the_snapshot_taken_at_begin(void) {
  char *dir = harness_tmpdir("ckpt-dir");
  fixture fx;
  fixture_init(&fx, 3);
  char vocab[] = "[PAD]\n[UNK]\n中文\n";
  ckpt_attr attrs[1] = {{"vocab", vocab}};
  fx.content.meta.attrs = attrs;
  fx.content.meta.n_attrs = 1;
  ckpt_writer *w = NULL;
  char *err = NULL, *written = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_writer_begin(dir, &fx.content, 0, &w, &err), ST_OK);
  /* Training goes on: the live buffers change at once. */
  for (int k = 0; k < FIXTURE_NT; k++) memset(fx.params[k].data, 0, fixture_count(&fx.params[k]) * sizeof(float));
  fx.cursor[0] = 99;
  vocab[0] = 'X';
  attrs[0].name = "changed";
  CU_ASSERT_EQUAL(ckpt_writer_wait(w, &written, &err), ST_OK);
  CU_ASSERT_TRUE(ckpt_writer_done(w));
  ckpt_writer_free(w);
  CU_ASSERT_TRUE(fixture_contains(written, "/ckpt-00000003.h5"));
  ckpt_file *f = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_file_open(written, &f, &err), ST_OK);
  float q[256];
  int64_t cursor[12];
  CU_ASSERT_EQUAL(ckpt_file_read_float(f, "params/" FIXTURE_QUERY, q, 256, &err), ST_OK);
  for (size_t i = 0; i < 256; i++) CU_ASSERT_EQUAL(q[i], fixture_value(2, i));
  CU_ASSERT_EQUAL(ckpt_file_read_int64(f, "data/cursor", cursor, 12, &err), ST_OK);
  CU_ASSERT_EQUAL(cursor[0], 0);
  char *value = NULL;
  CU_ASSERT_EQUAL(ckpt_file_read_attr(f, "vocab", &value, &err), ST_OK);
  CU_ASSERT_PTR_NOT_NULL_FATAL(value);
  CU_ASSERT_STRING_EQUAL(value, "[PAD]\n[UNK]\n中文\n");
  free(value);
  value = (char *)1;
  CU_ASSERT_EQUAL(ckpt_file_read_attr(f, "changed", &value, &err), ST_OK);
  CU_ASSERT_PTR_NULL(value); /* absent: a name the snapshot never had */
  ckpt_file_close(f);
  free(written);
  fixture_free(&fx);
  harness_rmtree(dir);
  free(dir);
  CU_ASSERT_EQUAL(storage_open_object_count(), 0);
}

/* A run dir nobody can create, root included (the writer makes missing parents). */
static void test_background_writer_reports_failure(void) {
  fixture fx;
  fixture_init(&fx, 3);
  ckpt_writer *w = NULL;
  char *err = NULL, *written = NULL;
  CU_ASSERT_EQUAL_FATAL(ckpt_writer_begin("/proc/ddpt-cannot-exist/run", &fx.content, 0, &w, &err), ST_OK);
  CU_ASSERT_EQUAL(ckpt_writer_wait(w, &written, &err), ST_IO);
  CU_ASSERT_TRUE(fixture_contains(err, "/proc/ddpt-cannot-exist/run"));
  CU_ASSERT_PTR_NULL(written);
  ckpt_writer_free(w);
  free(err);
  fixture_free(&fx);
}

/* The child commits a 128 MiB checkpoint; the parent kills it with SIGKILL
 * once the temporary file has begun to grow. */
static void crash_child(const char *dir, int64_t step) {
  enum { BIG = 32 << 20 };
  float *big = malloc(BIG * sizeof(float));
  for (size_t i = 0; i < BIG; i++) big[i] = fixture_value(7, i);
  ckpt_tensor t = {"bert.big.weight", 2, {BIG / 1024, 1024}, big};
  ckpt_content c = {.meta = {.step = step, .world_size = 1, .model_type = "bert", .config = ""},
                    .params = &t, .n_params = 1};
  char *err = NULL;
  _exit(ckpt_dir_commit(dir, &c, 0, NULL, &err) == ST_OK ? 0 : 1);
}

static off_t size_of(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? st.st_size : -1;
}

static void test_sigkill_during_write_leaves_latest_complete(void) {
  char *dir = harness_tmpdir("ckpt-crash");
  CU_ASSERT_EQUAL_FATAL(commit_step(dir, 1, 0), ST_OK);
  int landed_mid_write = 0;
  for (int attempt = 0; attempt < 10 && !landed_mid_write; attempt++) {
    int64_t step = 2 + attempt;
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) crash_child(dir, step);
    char tmp[1024], final[1024];
    snprintf(tmp, sizeof tmp, "%s/.ckpt-%08lld.h5.tmp-%ld", dir, (long long)step, (long)pid);
    snprintf(final, sizeof final, "%s/ckpt-%08lld.h5", dir, (long long)step);
    /* Later attempts wait for more bytes: a kill that lands after the
     * rename proves less, so the next try aims earlier or later. */
    off_t threshold = (off_t)(1 << 20) << (attempt % 5);
    for (int i = 0; i < 20000 && size_of(tmp) < threshold && size_of(final) < 0; i++) usleep(500);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    landed_mid_write = size_of(final) < 0 && size_of(tmp) >= 0;
    if (size_of(final) >= 0) { /* too late: undo the commit and aim again */
      remove(final);
      fixture_write_text(dir, "LATEST", "ckpt-00000001.h5\n");
    }
    /* Whatever the moment, LATEST names a complete, verifiable file. */
    char *path = NULL, *note = NULL, *err = NULL;
    CU_ASSERT_EQUAL(ckpt_dir_find_latest_valid(dir, &path, &note, &err), ST_OK);
    CU_ASSERT_PTR_NULL(note);
    CU_ASSERT_PTR_NOT_NULL(path);
    if (path) CU_ASSERT_EQUAL(ckpt_file_verify(path, &err), ST_OK);
    if (err) fprintf(stderr, "%s\n", err);
    free(path);
    free(note);
    free(err);
  }
  CU_ASSERT_TRUE(landed_mid_write);
  char *latest = read_text(dir, "LATEST");
  CU_ASSERT_STRING_EQUAL(latest, "ckpt-00000001.h5\n");
  free(latest);
  /* The temporary never counts as a checkpoint, and the next commit clears it. */
  CU_ASSERT_EQUAL(fixture_count_matching(dir, "ckpt-*.h5"), 1);
  CU_ASSERT_TRUE(fixture_count_matching(dir, ".ckpt-*.tmp-*") >= 1);
  CU_ASSERT_EQUAL(commit_step(dir, 50, 0), ST_OK);
  CU_ASSERT_EQUAL(fixture_count_matching(dir, ".ckpt-*.tmp-*"), 0);
  harness_rmtree(dir);
  free(dir);
  CU_ASSERT_EQUAL(storage_open_object_count(), 0);
}

static const harness_test tests[] = {
    {"test_commit_writes_step_file_and_latest_and_no_temp", test_commit_writes_step_file_and_latest_and_no_temp},
    {"test_commit_creates_missing_run_dir", test_commit_creates_missing_run_dir},
    {"test_failed_commit_leaves_latest_and_no_temp", test_failed_commit_leaves_latest_and_no_temp},
    {"test_keep_k_prunes_oldest_but_not_marked_or_latest", test_keep_k_prunes_oldest_but_not_marked_or_latest},
    {"test_best_is_never_pruned_and_only_names_checkpoints", test_best_is_never_pruned_and_only_names_checkpoints},
    {"test_find_latest_valid_uses_intact_latest", test_find_latest_valid_uses_intact_latest},
    {"test_find_latest_valid_falls_back_from_truncated_latest", test_find_latest_valid_falls_back_from_truncated_latest},
    {"test_find_latest_valid_falls_back_from_a_nan_the_checksum_covers",
     test_find_latest_valid_falls_back_from_a_nan_the_checksum_covers},
    {"test_find_latest_valid_falls_back_from_bit_flip_naming_dataset", test_find_latest_valid_falls_back_from_bit_flip_naming_dataset},
    {"test_find_latest_valid_without_latest_uses_newest_file", test_find_latest_valid_without_latest_uses_newest_file},
    {"test_find_latest_valid_in_empty_dir_gives_no_path", test_find_latest_valid_in_empty_dir_gives_no_path},
    {"test_find_latest_valid_fails_when_every_file_is_damaged", test_find_latest_valid_fails_when_every_file_is_damaged},
    {"test_background_writer_commits_the_snapshot_taken_at_begin", test_background_writer_commits_the_snapshot_taken_at_begin},
    {"test_background_writer_reports_failure", test_background_writer_reports_failure},
    {"test_sigkill_during_write_leaves_latest_complete", test_sigkill_during_write_leaves_latest_complete},
    {NULL, NULL},
};
const harness_suite storage_ckpt_dir_suite = {"ckpt_dir", tests};
