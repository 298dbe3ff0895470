/* util/file: atomic replacement, whole or streamed, leaves no temporary
 * behind and replaces the whole file; line filtering keeps exactly the
 * chosen lines; joined paths are never cut short. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "util/file.h"
#include "util/status.h"

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  char *buf = calloc(1, 4096);
  size_t n = fread(buf, 1, 4095, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void test_write_atomic_replaces_whole_file_and_leaves_no_temporary(void) {
  char *dir = harness_tmpdir("file");
  char path[512], *err = NULL;
  snprintf(path, sizeof path, "%s/LATEST", dir);
  CU_ASSERT_EQUAL_FATAL(file_write_atomic(path, "a much longer first version\n", 28, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(file_write_atomic(path, "short\n", 6, &err), ST_OK);
  char *text = slurp(path);
  CU_ASSERT_STRING_EQUAL(text, "short\n");
  free(text);
  DIR *d = opendir(dir);
  int entries = 0;
  for (struct dirent *e; (e = readdir(d));) entries += e->d_name[0] != '.' || strstr(e->d_name, ".tmp-");
  closedir(d);
  CU_ASSERT_EQUAL(entries, 1);
  snprintf(path, sizeof path, "%s/missing/LATEST", dir);
  CU_ASSERT_EQUAL(file_write_atomic(path, "x", 1, &err), ST_IO);
  CU_ASSERT(err && strstr(err, "missing/.LATEST.tmp-"));
  free(err);
  harness_rmtree(dir);
  free(dir);
}

static int count_temporaries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".tmp-") != NULL;
  closedir(d);
  return n;
}

/* A streamed replacement: the old content stays under the name through every
 * write, the new one appears whole at commit, and an abort keeps the old. */
static void test_atomic_stream_publishes_only_on_commit_and_abort_keeps_old_file(void) {
  char *dir = harness_tmpdir("file");
  char path[512], *err = NULL;
  snprintf(path, sizeof path, "%s/tokens.txt", dir);
  CU_ASSERT_EQUAL_FATAL(file_write_atomic(path, "old\n", 4, &err), ST_OK);

  file_atomic *f = NULL;
  CU_ASSERT_EQUAL_FATAL(file_atomic_open(path, &f, &err), ST_OK);
  CU_ASSERT_EQUAL(file_atomic_write(f, "new ", 4, &err), ST_OK);
  CU_ASSERT_EQUAL(file_atomic_write(f, "text\n", 5, &err), ST_OK);
  char *text = slurp(path);
  CU_ASSERT_STRING_EQUAL(text, "old\n");
  free(text);
  CU_ASSERT_EQUAL(count_temporaries(dir), 1);
  CU_ASSERT_EQUAL_FATAL(file_atomic_commit(f, &err), ST_OK);
  text = slurp(path);
  CU_ASSERT_STRING_EQUAL(text, "new text\n");
  free(text);
  CU_ASSERT_EQUAL(count_temporaries(dir), 0);

  CU_ASSERT_EQUAL_FATAL(file_atomic_open(path, &f, &err), ST_OK);
  CU_ASSERT_EQUAL(file_atomic_write(f, "partial", 7, &err), ST_OK);
  file_atomic_abort(f);
  text = slurp(path);
  CU_ASSERT_STRING_EQUAL(text, "new text\n");
  free(text);
  CU_ASSERT_EQUAL(count_temporaries(dir), 0);

  snprintf(path, sizeof path, "%s/missing/tokens.txt", dir);
  CU_ASSERT_EQUAL(file_atomic_open(path, &f, &err), ST_IO);
  CU_ASSERT(err && strstr(err, "missing/.tokens.txt.tmp-"));
  free(err);
  harness_rmtree(dir);
  free(dir);
}

static int keep_even(const char *line, void *ctx) {
  (void)ctx;
  return atoi(line) % 2 == 0;
}

static void test_filter_lines_keeps_chosen_lines_and_ignores_missing_file(void) {
  char *dir = harness_tmpdir("file");
  char path[512], *err = NULL;
  snprintf(path, sizeof path, "%s/log.txt", dir);
  CU_ASSERT_EQUAL(file_filter_lines(path, keep_even, NULL, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(file_write_atomic(path, "1 a\n2 b\n3 c\n4 d", 15, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(file_filter_lines(path, keep_even, NULL, &err), ST_OK);
  char *text = slurp(path);
  CU_ASSERT_STRING_EQUAL(text, "2 b\n4 d");
  free(text);
  harness_rmtree(dir);
  free(dir);
}

static void test_path_join_puts_one_slash_and_never_truncates(void) {
  char *p = file_path_join("corpus", "manifest.json");
  CU_ASSERT_STRING_EQUAL(p, "corpus/manifest.json");
  free(p);
  p = file_path_join("corpus/", "vocab.txt");
  CU_ASSERT_STRING_EQUAL(p, "corpus/vocab.txt");
  free(p);
  p = file_path_join("/", "tmp");
  CU_ASSERT_STRING_EQUAL(p, "/tmp");
  free(p);
  /* Longer than PATH_MAX and any fixed buffer: every byte is kept. */
  char dir[10001];
  memset(dir, 'd', sizeof dir - 1);
  dir[sizeof dir - 1] = '\0';
  p = file_path_join(dir, "shard-00000");
  CU_ASSERT_EQUAL_FATAL(strlen(p), 10000 + 1 + 11);
  CU_ASSERT_STRING_EQUAL(p + 10000, "/shard-00000");
  free(p);
}

static void test_read_all_reads_whole_file_past_buffer_growth_and_enforces_limit(void) {
  char *dir = harness_tmpdir("file");
  char *path = file_path_join(dir, "big");
  size_t n = 200000; /* several growths of the 64 KiB first buffer */
  char *want = malloc(n);
  for (size_t i = 0; i < n; i++) want[i] = (char)('a' + i % 26);
  char *err = NULL, *got = NULL;
  size_t len = 0;
  CU_ASSERT_EQUAL_FATAL(file_write_atomic(path, want, n, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(file_read_all(path, n, &got, &len, &err), ST_OK);
  CU_ASSERT_EQUAL(len, n);
  CU_ASSERT_EQUAL(memcmp(got, want, n), 0);
  CU_ASSERT_EQUAL(got[n], '\0');
  free(got);
  CU_ASSERT_EQUAL(file_read_all(path, n - 1, &got, &len, &err), ST_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "larger than 199999 bytes"));
  free(err);
  err = NULL;
  CU_ASSERT_EQUAL(file_read_all("/nonexistent-ddpt/x", n, &got, &len, &err), ST_IO);
  free(err);
  free(want);
  free(path);
  harness_rmtree(dir);
  free(dir);
}

static const harness_test tests[] = {
    {"test_read_all_reads_whole_file_past_buffer_growth_and_enforces_limit",
     test_read_all_reads_whole_file_past_buffer_growth_and_enforces_limit},
    {"test_write_atomic_replaces_whole_file_and_leaves_no_temporary",
     test_write_atomic_replaces_whole_file_and_leaves_no_temporary},
    {"test_atomic_stream_publishes_only_on_commit_and_abort_keeps_old_file",
     test_atomic_stream_publishes_only_on_commit_and_abort_keeps_old_file},
    {"test_filter_lines_keeps_chosen_lines_and_ignores_missing_file",
     test_filter_lines_keeps_chosen_lines_and_ignores_missing_file},
    {"test_path_join_puts_one_slash_and_never_truncates",
     test_path_join_puts_one_slash_and_never_truncates},
    {NULL, NULL},
};
const harness_suite util_file_suite = {"file", tests};
