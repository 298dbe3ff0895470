/* corpus/inputs: the one listing of input files that ddpt vocab and ddpt
 * shard share: byte order at every level, dot-entries inside directories
 * skipped, named paths always read, streams only where allowed, and the
 * output never among the inputs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corpus/inputs.h"
#include "harness.h"
#include "util/file.h"
#include "util/status.h"

static char *put(const char *root, const char *rel, const char *text) {
  char *path = file_path_join(root, rel);
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text, f);
  fclose(f);
  return path;
}

static char *make_dir(const char *root, const char *rel) {
  char *path = file_path_join(root, rel);
  CU_ASSERT_EQUAL_FATAL(mkdir(path, 0755), 0);
  return path;
}

/* root/ Z.txt a.txt b.txt .hidden.txt .git/config sub/c.txt sub/.c.swp
 *       sub/.dot/d.txt pipe (a FIFO) empty/ */
static char *make_tree(void) {
  char *root = harness_tmpdir("inputs");
  const char *dirs[] = {".git", "sub", "sub/.dot", "empty"};
  for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) free(make_dir(root, dirs[i]));
  const char *files[][2] = {{"b.txt", "bb\n"},           {"a.txt", "a\n"},
                            {"Z.txt", "zzz\n"},          {".hidden.txt", "hidden\n"},
                            {".git/config", "[core]\n"}, {"sub/c.txt", "cccc\n"},
                            {"sub/.c.swp", "swap\n"},    {"sub/.dot/d.txt", "d\n"}};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++)
    free(put(root, files[i][0], files[i][1]));
  char *pipe = file_path_join(root, "pipe");
  CU_ASSERT_EQUAL_FATAL(mkfifo(pipe, 0644), 0);
  free(pipe);
  return root;
}

/* Lists paths; on success checks the list against want (paths relative to
 * root, NULL-terminated); returns the status and leaves err for the caller. */
static int list(const char *root, const char *const *paths, size_t n, int streams,
                const char *output, const char *const *want, uint64_t want_bytes, char **err) {
  corpus_inputs in;
  int rc = corpus_inputs_list(&in, paths, n, streams, output, err);
  if (rc == ST_OK) {
    size_t k = 0;
    for (; want[k]; k++) {
      char *path = strcmp(want[k], "-") == 0 ? strdup("-") : file_path_join(root, want[k]);
      CU_ASSERT_FATAL(k < in.n);
      if (strcmp(in.paths[k], path) != 0)
        fprintf(stderr, "input %zu: %s, want %s\n", k, in.paths[k], path);
      CU_ASSERT_STRING_EQUAL(in.paths[k], path);
      free(path);
    }
    CU_ASSERT_EQUAL(in.n, k);
    CU_ASSERT_EQUAL(in.total_bytes, want_bytes);
  }
  corpus_inputs_free(&in);
  return rc;
}

static void test_inputs_are_sorted_by_byte_and_skip_dot_entries_in_directories(void) {
  char *root = make_tree();
  const char *paths[] = {root};
  const char *want[] = {"Z.txt", "a.txt", "b.txt", "sub/c.txt", NULL};
  char *err = NULL;
  CU_ASSERT_EQUAL(list(root, paths, 1, 1, NULL, want, 4 + 2 + 3 + 5, &err), ST_OK);
  free(err);
  harness_rmtree(root);
  free(root);
}

static void test_named_dot_paths_are_read(void) {
  char *root = make_tree();
  char *hidden = file_path_join(root, ".hidden.txt"), *dot = file_path_join(root, "sub/.dot");
  const char *paths[] = {hidden, dot};
  const char *want[] = {".hidden.txt", "sub/.dot/d.txt", NULL};
  char *err = NULL;
  CU_ASSERT_EQUAL(list(root, paths, 2, 0, NULL, want, 7 + 2, &err), ST_OK);
  free(err);
  free(hidden);
  free(dot);
  harness_rmtree(root);
  free(root);
}

static void test_streams_only_where_each_input_is_read_once(void) {
  char *root = make_tree();
  char *pipe = file_path_join(root, "pipe"), *err = NULL;
  const char *paths[] = {"-", pipe};
  const char *want[] = {"-", "pipe", NULL};
  CU_ASSERT_EQUAL(list(root, paths, 2, 1, NULL, want, 0, &err), ST_OK);
  CU_ASSERT_EQUAL(list(root, paths, 1, 0, NULL, want, 0, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "standard input (-)"));
  free(err);
  err = NULL;
  CU_ASSERT_EQUAL(list(root, paths + 1, 1, 0, NULL, want, 0, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "pipe is not a regular file"));
  free(err);
  free(pipe);
  harness_rmtree(root);
  free(root);
}

static void test_output_among_inputs_missing_and_empty_are_refused(void) {
  char *root = make_tree();
  char *b = file_path_join(root, "b.txt"), *sub = file_path_join(root, "sub");
  char *missing = file_path_join(root, "missing.txt"), *empty = file_path_join(root, "empty");
  const char *none[] = {NULL};
  const char *paths[] = {root};
  char *err = NULL;
  CU_ASSERT_EQUAL(list(root, paths, 1, 1, b, none, 0, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "among the inputs") && strstr(err, "b.txt"));
  free(err);
  err = NULL;
  CU_ASSERT_EQUAL(list(root, paths, 1, 1, sub, none, 0, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "among the inputs"));
  free(err);
  err = NULL;
  paths[0] = missing;
  CU_ASSERT_EQUAL(list(root, paths, 1, 1, NULL, none, 0, &err), ST_IO);
  CU_ASSERT(err && strstr(err, "missing.txt"));
  free(err);
  err = NULL;
  paths[0] = empty;
  CU_ASSERT_EQUAL(list(root, paths, 1, 1, NULL, none, 0, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "no input files"));
  free(err);
  free(b);
  free(sub);
  free(missing);
  free(empty);
  harness_rmtree(root);
  free(root);
}

static const harness_test tests[] = {
    {"test_inputs_are_sorted_by_byte_and_skip_dot_entries_in_directories",
     test_inputs_are_sorted_by_byte_and_skip_dot_entries_in_directories},
    {"test_named_dot_paths_are_read", test_named_dot_paths_are_read},
    {"test_streams_only_where_each_input_is_read_once",
     test_streams_only_where_each_input_is_read_once},
    {"test_output_among_inputs_missing_and_empty_are_refused",
     test_output_among_inputs_missing_and_empty_are_refused},
    {NULL, NULL},
};
const harness_suite corpus_inputs_suite = {"inputs", tests};
