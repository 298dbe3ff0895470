/* Test harness shared by the per-module CUnit executables: suites are
 * static tables, main() hands them to harness_run. */
#ifndef DDPT_TESTS_HARNESS_H
#define DDPT_TESTS_HARNESS_H

#include <CUnit/CUnit.h>

typedef struct harness_test {
  const char *name;
  CU_TestFunc fn;
} harness_test;

typedef struct harness_suite {
  const char *name;
  const harness_test *tests; /* terminated by {NULL, NULL} */
} harness_suite;

/* Registers and runs the NULL-terminated list of suites in CUnit's basic
 * mode (verbose). Returns 0 when every assertion passed, 1 otherwise. A
 * single test can be chosen with the environment variable DDPT_TEST=name. */
int harness_run(const harness_suite *const *suites);

/* A fresh empty directory under $TMPDIR (or /tmp); malloc'd path. Removed
 * with everything in it by harness_rmtree. */
char *harness_tmpdir(const char *tag);
void harness_rmtree(const char *path);

/* The repository root (DDPT_SOURCE_DIR from ctest, else "."). */
const char *harness_source_dir(void);
/* The ddpt executable (DDPT_BIN from ctest, else "./ddpt"). */
const char *harness_ddpt_bin(void);

/* Runs a shell command line, capturing stdout (and stderr when
 * merge_stderr) into a malloc'd NUL-terminated string; returns the exit
 * status (or -1). */
int harness_run_capture(const char *cmdline, int merge_stderr, char **output);

#endif
