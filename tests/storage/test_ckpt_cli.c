/* `ddpt ckpt info|verify|diff` run as a user runs them: exit codes, the
 * tensor table with L2 norms worked out by hand, verify naming a damaged
 * dataset, diff's per-tensor maximum difference and one-sided names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "harness.h"
#include "storage/ckpt.h"
#include "util/file.h"
#include "util/status.h"

/* params/w.a = [[3, 4], [0, 0]] (L2 norm 5), params/w.b = [1, 2, 2] (3),
 * plus extra_value at w.a[1] when nonzero and a third tensor w.c when
 * with_c. Returns the path (malloc'd). */
static char *write_small(const char *dir, const char *name, float extra_value, int with_c) {
  float a[4] = {3, 4, 0, 0}, b[3] = {1, 2, 2}, c[2] = {7, 7};
  if (extra_value != 0) a[1] = extra_value;
  ckpt_tensor t[3] = {{"w.a", 2, {2, 2}, a}, {"w.b", 1, {3}, b}, {"w.c", 1, {2}, c}};
  int64_t cursor[3] = {0, 1, 2};
  ckpt_array arr = {"data/cursor", 2, {1, 3}, cursor};
  ckpt_content content = {.meta = {.step = 77, .tokens_seen = 1000, .world_size = 4, .seed = 9,
                                   .model_type = "bert", .config = "hidden = 2\nlayers = 1\n"},
                          .params = t, .n_params = with_c ? 3 : 2, .arrays = &arr, .n_arrays = 1};
  char *path = file_path_join(dir, name), *err = NULL;
  if (ckpt_file_write(path, &content, &err)) fprintf(stderr, "%s\n", err);
  free(err);
  return path;
}

/* Runs ddpt with args and returns 1 when it exits with want. Otherwise the
 * command, its status and its whole output go to the test log (a
 * sanitizer's report, an unexpected message), so a failure seen once in CI
 * can be read there. */
static int run_ddpt(int want, char **out, const char *fmt, const char *a, const char *b) {
  char args[2048], cmd[4096];
  snprintf(args, sizeof args, fmt, a, b);
  snprintf(cmd, sizeof cmd, "'%s' %s", harness_ddpt_bin(), args);
  int rc = harness_run_capture(cmd, 1, out);
  if (rc != want) fprintf(stderr, "\n%s exited %d, expected %d:\n%s\n", cmd, rc, want, *out);
  return rc == want;
}

/* The line of out that starts with prefix, copied into line. */
static int line_starting(const char *out, const char *prefix, char *line, size_t size) {
  for (const char *p = out; p && *p;) {
    size_t len = strcspn(p, "\n");
    if (strncmp(p, prefix, strlen(prefix)) == 0) {
      snprintf(line, size, "%.*s", (int)len, p);
      return 1;
    }
    p += len + (p[len] == '\n');
  }
  return 0;
}

static void test_info_prints_attributes_and_norms(void) {
  char *dir = harness_tmpdir("ckpt-cli");
  char *path = write_small(dir, "a.h5", 0, 0), *out = NULL, line[512];
  CU_ASSERT_TRUE(run_ddpt(0, &out, "ckpt info '%s'%s", path, ""));
  CU_ASSERT_TRUE(fixture_contains(out, "step:          77\n"));
  CU_ASSERT_TRUE(fixture_contains(out, "world_size:    4\n"));
  CU_ASSERT_TRUE(fixture_contains(out, "  layers = 1\n"));
  CU_ASSERT_TRUE_FATAL(line_starting(out, "params/w.a ", line, sizeof line));
  CU_ASSERT_TRUE(fixture_contains(line, " float32 "));
  CU_ASSERT_TRUE(fixture_contains(line, " [2, 2] "));
  CU_ASSERT_TRUE(line[strlen(line) - 2] == ' ' && line[strlen(line) - 1] == '5');
  CU_ASSERT_TRUE_FATAL(line_starting(out, "params/w.b ", line, sizeof line));
  CU_ASSERT_TRUE(line[strlen(line) - 2] == ' ' && line[strlen(line) - 1] == '3');
  CU_ASSERT_TRUE_FATAL(line_starting(out, "data/cursor ", line, sizeof line));
  CU_ASSERT_TRUE(fixture_contains(line, " int64 "));
  CU_ASSERT_TRUE(fixture_contains(line, " [1, 3] "));
  free(out);
  free(path);
  harness_rmtree(dir);
  free(dir);
}

static void test_verify_exits_0_on_sound_file_and_1_naming_damaged_dataset(void) {
  char *dir = harness_tmpdir("ckpt-cli");
  char *path = file_path_join(dir, "f.h5"), *out = NULL, *err = NULL;
  fixture fx;
  fixture_init(&fx, 5);
  CU_ASSERT_EQUAL_FATAL(ckpt_file_write(path, &fx.content, &err), ST_OK);
  CU_ASSERT_TRUE(run_ddpt(0, &out, "ckpt verify '%s'%s", path, ""));
  CU_ASSERT_TRUE(fixture_contains(out, ": ok ("));
  free(out);
  CU_ASSERT_EQUAL_FATAL(fixture_flip_bit_in_query(path), 0);
  CU_ASSERT_TRUE(run_ddpt(1, &out, "ckpt verify '%s'%s", path, ""));
  CU_ASSERT_TRUE(fixture_contains(out, "ddpt ckpt: "));
  CU_ASSERT_TRUE(fixture_contains(out, "params/" FIXTURE_QUERY));
  free(out);
  fixture_free(&fx);
  free(path);
  harness_rmtree(dir);
  free(dir);
}

static void test_diff_exits_0_when_identical(void) {
  char *dir = harness_tmpdir("ckpt-cli");
  char *a = write_small(dir, "a.h5", 0, 0), *b = write_small(dir, "b.h5", 0, 0), *out = NULL;
  CU_ASSERT_TRUE(run_ddpt(0, &out, "ckpt diff '%s' '%s'", a, b));
  CU_ASSERT_TRUE(fixture_contains(out, "identical: 3 datasets"));
  free(out);
  free(a);
  free(b);
  harness_rmtree(dir);
  free(dir);
}

static void test_diff_exits_1_with_max_difference_and_one_sided_names(void) {
  char *dir = harness_tmpdir("ckpt-cli");
  char *a = write_small(dir, "a.h5", 0, 0), *b = write_small(dir, "b.h5", 4.5f, 1), *out = NULL, line[512];
  CU_ASSERT_TRUE(run_ddpt(1, &out, "ckpt diff '%s' '%s'", a, b));
  CU_ASSERT_TRUE_FATAL(line_starting(out, "params/w.a ", line, sizeof line));
  CU_ASSERT_TRUE(fixture_contains(line, " 0.5"));
  CU_ASSERT_TRUE_FATAL(line_starting(out, "params/w.b ", line, sizeof line));
  CU_ASSERT_TRUE(fixture_contains(line, "identical"));
  CU_ASSERT_TRUE(fixture_contains(out, "only in B: params/w.c\n"));
  CU_ASSERT_TRUE(fixture_contains(out, "differ: 1 common dataset differ, 0 only in A, 1 only in B"));
  free(out);
  free(a);
  free(b);
  harness_rmtree(dir);
  free(dir);
}

static void test_ckpt_usage_errors_exit_2(void) {
  char *out = NULL;
  CU_ASSERT_TRUE(run_ddpt(2, &out, "ckpt%s%s", "", ""));
  CU_ASSERT_TRUE(fixture_contains(out, "usage: ddpt ckpt info FILE"));
  free(out);
  CU_ASSERT_TRUE(run_ddpt(2, &out, "ckpt frobnicate x%s%s", "", ""));
  CU_ASSERT_TRUE(fixture_contains(out, "unknown subcommand 'frobnicate'"));
  free(out);
  CU_ASSERT_TRUE(run_ddpt(2, &out, "ckpt diff only-one%s%s", "", ""));
  free(out);
  CU_ASSERT_TRUE(run_ddpt(1, &out, "ckpt verify /nonexistent-ddpt.h5%s%s", "", ""));
  CU_ASSERT_TRUE(fixture_contains(out, "/nonexistent-ddpt.h5"));
  free(out);
}

static const harness_test tests[] = {
    {"test_info_prints_attributes_and_norms", test_info_prints_attributes_and_norms},
    {"test_verify_exits_0_on_sound_file_and_1_naming_damaged_dataset", test_verify_exits_0_on_sound_file_and_1_naming_damaged_dataset},
    {"test_diff_exits_0_when_identical", test_diff_exits_0_when_identical},
    {"test_diff_exits_1_with_max_difference_and_one_sided_names", test_diff_exits_1_with_max_difference_and_one_sided_names},
    {"test_ckpt_usage_errors_exit_2", test_ckpt_usage_errors_exit_2},
    {NULL, NULL},
};
const harness_suite storage_ckpt_cli_suite = {"ckpt_cli", tests};
