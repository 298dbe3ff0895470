/* MPI world set-up and version reporting (see comm.h). */
#include "comm/comm.h"

#include <stdio.h>
#include <string.h>

#include <mpi.h>

#include "util/status.h"

static int g_we_initialised = 0;
static int g_rank = 0, g_size = 1;

int comm_init(int *argc, char ***argv, char **err) {
  int already = 0;
  MPI_Initialized(&already);
  if (!already) {
    int provided = 0;
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS)
      return status_set(err, ST_COMM, "MPI_Init_thread failed (code %d); check the Open MPI installation with `mpirun -np 1 true`", rc);
    if (provided < MPI_THREAD_FUNNELED)
      return status_set(err, ST_COMM, "MPI provides thread level %d, ddpt needs MPI_THREAD_FUNNELED", provided);
    g_we_initialised = 1;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  return ST_OK;
}

void comm_finalize(void) {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (g_we_initialised && !finalized) MPI_Finalize();
  g_we_initialised = 0;
  g_rank = 0;
  g_size = 1;
}

int comm_rank(void) { return g_rank; }
int comm_world_size(void) { return g_size; }

void comm_library_version(char *buf, size_t size) {
  char lib[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0, major = 0, minor = 0;
  MPI_Get_library_version(lib, &len);
  MPI_Get_version(&major, &minor);
  lib[strcspn(lib, ",\n")] = '\0';
  snprintf(buf, size, "%s (MPI %d.%d)", lib, major, minor);
}
