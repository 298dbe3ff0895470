/* Implementation of harness.h; included by exactly one file (main.c) of each
 * test executable, so that the harness needs no library of its own. */
#include "harness.h"

#include <CUnit/Basic.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int harness_run(const harness_suite *const *suites) {
  if (CU_initialize_registry() != CUE_SUCCESS) return 1;
  const char *only = getenv("DDPT_TEST");
  if (only && !*only) only = NULL;
  for (const harness_suite *const *s = suites; *s; s++) {
    CU_pSuite suite = CU_add_suite((*s)->name, NULL, NULL);
    for (const harness_test *t = (*s)->tests; t->name; t++)
      if (!only || strcmp(only, t->name) == 0) CU_add_test(suite, t->name, t->fn);
  }
  CU_basic_set_mode(CU_BRM_VERBOSE);
  CU_basic_run_tests();
  unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
  unsigned run = CU_get_number_of_tests_run();
  CU_cleanup_registry();
  if (run == 0) {
    fprintf(stderr, "no test ran\n");
    return 1;
  }
  return failed ? 1 : 0;
}

char *harness_tmpdir(const char *tag) {
  const char *base = getenv("TMPDIR");
  if (!base || !*base) base = "/tmp";
  size_t n = strlen(base) + strlen(tag) + 32;
  char *path = malloc(n);
  snprintf(path, n, "%s/ddpt-%s-XXXXXX", base, tag);
  if (!mkdtemp(path)) {
    free(path);
    return NULL;
  }
  return path;
}

static int harness_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

void harness_rmtree(const char *path) {
  if (path) nftw(path, harness_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *harness_source_dir(void) {
  const char *d = getenv("DDPT_SOURCE_DIR");
  return d && *d ? d : ".";
}

const char *harness_ddpt_bin(void) {
  const char *b = getenv("DDPT_BIN");
  return b && *b ? b : "./ddpt";
}

int harness_run_capture(const char *cmdline, int merge_stderr, char **output) {
  size_t n = strlen(cmdline) + 16;
  char *full = malloc(n);
  snprintf(full, n, merge_stderr ? "%s 2>&1" : "%s", cmdline);
  FILE *p = popen(full, "r");
  free(full);
  if (!p) return -1;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t got;
  while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
    len += got;
    if (cap - len < 2) buf = realloc(buf, cap *= 2);
  }
  buf[len] = '\0';
  int status = pclose(p);
  if (output) *output = buf;
  else free(buf);
  if (status == -1) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
