/* comm/: a process started without mpirun is a world of one. */
#include <string.h>

#include "comm/comm.h"
#include "harness.h"

static void test_without_launcher_world_is_one_rank(void) {
  CU_ASSERT_EQUAL(comm_rank(), 0);
  CU_ASSERT_EQUAL(comm_world_size(), 1);
  char *err = NULL;
  int argc = 1;
  char *args[] = {"test_comm", NULL}, **argv = args;
  CU_ASSERT_EQUAL_FATAL(comm_init(&argc, &argv, &err), 0);
  CU_ASSERT_EQUAL(comm_rank(), 0);
  CU_ASSERT_EQUAL(comm_world_size(), 1);
  comm_finalize();
  CU_ASSERT_EQUAL(comm_world_size(), 1);
}

static void test_library_version_names_open_mpi_and_standard(void) {
  char v[256];
  comm_library_version(v, sizeof v);
  CU_ASSERT_PTR_NOT_NULL(strstr(v, "Open MPI v"));
  CU_ASSERT_PTR_NOT_NULL(strstr(v, "(MPI 3."));
}

static const harness_test tests[] = {
    {"test_without_launcher_world_is_one_rank", test_without_launcher_world_is_one_rank},
    {"test_library_version_names_open_mpi_and_standard", test_library_version_names_open_mpi_and_standard},
    {NULL, NULL},
};
const harness_suite comm_world_suite = {"world", tests};
