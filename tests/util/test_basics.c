/* Status messages, rank-aware logging, the monotonic timer, SHA-256
 * (FIPS 180-2 example vectors) and growing arrays. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "util/array.h"
#include "util/log.h"
#include "util/sha256.h"
#include "util/status.h"
#include "util/timer.h"

static void test_status_set_formats_and_wrap_prefixes(void) {
  char *err = NULL;
  int rc = status_set(&err, ST_IO, "cannot open %s", "a.txt");
  CU_ASSERT_EQUAL(rc, ST_IO);
  CU_ASSERT_STRING_EQUAL(err, "cannot open a.txt");
  rc = status_wrap(&err, ST_IO, "loading vocab %d", 3);
  CU_ASSERT_STRING_EQUAL(err, "loading vocab 3: cannot open a.txt");
  rc = status_set(&err, ST_CORRUPT, "replaced");
  CU_ASSERT_STRING_EQUAL(err, "replaced");
  CU_ASSERT_STRING_EQUAL(status_name(ST_CORRUPT), "corrupt");
  free(err);
  CU_ASSERT_EQUAL(status_set(NULL, ST_INVALID, "ignored"), ST_INVALID);
}

static char *log_capture(int rank, int world, log_level level, const char *env) {
  char *buf = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&buf, &len);
  if (env) setenv("DDPT_LOG", env, 1);
  else unsetenv("DDPT_LOG");
  log_set_level(LOG_INFO);
  log_set_stream(mem);
  log_init(rank, world);
  log_msg(level, "step %d", 5);
  log_set_stream(NULL);
  fclose(mem);
  log_init(0, 1);
  return buf;
}

static void test_log_prefixes_rank_only_in_multi_rank_world(void) {
  char *one = log_capture(0, 1, LOG_INFO, NULL);
  CU_ASSERT_STRING_EQUAL(one, "info: step 5\n");
  char *many = log_capture(2, 4, LOG_WARN, NULL);
  CU_ASSERT_STRING_EQUAL(many, "[rank 2/4] warn: step 5\n");
  free(one);
  free(many);
}

static void test_log_level_comes_from_environment(void) {
  char *hidden = log_capture(0, 1, LOG_INFO, "error");
  CU_ASSERT_STRING_EQUAL(hidden, "");
  char *shown = log_capture(0, 1, LOG_DEBUG, "debug");
  CU_ASSERT_STRING_EQUAL(shown, "debug: step 5\n");
  char *bad = log_capture(0, 1, LOG_INFO, "loud");
  CU_ASSERT_PTR_NOT_NULL(strstr(bad, "DDPT_LOG=loud is not a log level"));
  CU_ASSERT_PTR_NOT_NULL(strstr(bad, "info: step 5"));
  free(hidden);
  free(shown);
  free(bad);
  unsetenv("DDPT_LOG");
}

static void test_timer_is_monotonic_and_advances(void) {
  double t0 = timer_now();
  uint64_t n0 = timer_now_ns();
  volatile double x = 0;
  for (int i = 0; i < 1000000; i++) x += i;
  (void)x;
  CU_ASSERT(timer_now() > t0);
  CU_ASSERT(timer_now_ns() > n0);
}

static void test_sha256_matches_fips_vectors(void) {
  uint8_t d[32];
  char hex[65];
  sha256("abc", 3, d);
  sha256_hex(d, hex);
  CU_ASSERT_STRING_EQUAL(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  sha256("", 0, d);
  sha256_hex(d, hex);
  CU_ASSERT_STRING_EQUAL(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  /* Streaming in uneven pieces equals one shot. */
  const char *msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  sha256_ctx *ctx = sha256_begin();
  CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
  sha256_update(ctx, msg, 5);
  sha256_update(ctx, msg + 5, strlen(msg) - 5);
  sha256_end(ctx, d);
  sha256_hex(d, hex);
  CU_ASSERT_STRING_EQUAL(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_sha256_file_hashes_bytes_and_reports_missing_path(void) {
  char *dir = harness_tmpdir("sha");
  CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
  char path[512];
  snprintf(path, sizeof path, "%s/x.txt", dir);
  FILE *f = fopen(path, "wb");
  fputs("abc", f);
  fclose(f);
  uint8_t d[32];
  char hex[65], *err = NULL;
  CU_ASSERT_EQUAL(sha256_file(path, d, &err), ST_OK);
  sha256_hex(d, hex);
  CU_ASSERT_STRING_EQUAL(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  snprintf(path, sizeof path, "%s/missing.txt", dir);
  CU_ASSERT_EQUAL(sha256_file(path, d, &err), ST_IO);
  CU_ASSERT(err && strstr(err, "missing.txt"));
  free(err);
  harness_rmtree(dir);
  free(dir);
}

static void test_array_grow_doubles_from_64_and_keeps_contents(void) {
  int *a = NULL;
  size_t cap = 0;
  CU_ASSERT_EQUAL_FATAL(array_grow(&a, &cap, 100, sizeof *a), ST_OK);
  CU_ASSERT_EQUAL(cap, 128);
  for (int i = 0; i < 100; i++) a[i] = i * 7;
  int *before = a;
  CU_ASSERT_EQUAL(array_grow(&a, &cap, 128, sizeof *a), ST_OK); /* fits: untouched */
  CU_ASSERT_EQUAL(cap, 128);
  CU_ASSERT_PTR_EQUAL(a, before);
  CU_ASSERT_EQUAL_FATAL(array_grow(&a, &cap, 1000, sizeof *a), ST_OK);
  CU_ASSERT_EQUAL(cap, 1024);
  int kept = 1;
  for (int i = 0; i < 100; i++) kept &= a[i] == i * 7;
  CU_ASSERT(kept);
  free(a);
}

static const harness_test tests[] = {
    {"test_status_set_formats_and_wrap_prefixes", test_status_set_formats_and_wrap_prefixes},
    {"test_log_prefixes_rank_only_in_multi_rank_world", test_log_prefixes_rank_only_in_multi_rank_world},
    {"test_log_level_comes_from_environment", test_log_level_comes_from_environment},
    {"test_timer_is_monotonic_and_advances", test_timer_is_monotonic_and_advances},
    {"test_sha256_matches_fips_vectors", test_sha256_matches_fips_vectors},
    {"test_sha256_file_hashes_bytes_and_reports_missing_path", test_sha256_file_hashes_bytes_and_reports_missing_path},
    {"test_array_grow_doubles_from_64_and_keeps_contents", test_array_grow_doubles_from_64_and_keeps_contents},
    {NULL, NULL},
};
const harness_suite util_basics_suite = {"basics", tests};
