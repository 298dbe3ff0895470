/* corpus/: LevelDB and utf8proc are linked and report their versions. */
#include <string.h>

#include "corpus/corpus.h"
#include "harness.h"

static void test_leveldb_and_utf8proc_report_versions(void) {
  char v[64];
  corpus_leveldb_version(v, sizeof v);
  CU_ASSERT_EQUAL(strncmp(v, "LevelDB 1.", 10), 0);
  corpus_utf8proc_version(v, sizeof v);
  CU_ASSERT_EQUAL(strncmp(v, "utf8proc 2.", 11), 0);
}

static const harness_test tests[] = {
    {"test_leveldb_and_utf8proc_report_versions", test_leveldb_and_utf8proc_report_versions},
    {NULL, NULL},
};
const harness_suite corpus_library_suite = {"library", tests};
