/* comm: everything MPI. The rest of ddpt sees ranks and float buffers, never
 * mpi.h. Without mpirun, ddpt is a world of one and needs no launcher.
 *
 * Conventions: functions that can fail return a status (util/status.h) and a
 * malloc'd message through the last argument. */
#ifndef DDPT_COMM_COMM_H
#define DDPT_COMM_COMM_H

#include <stddef.h>

/* Initialises MPI (thread level MPI_THREAD_FUNNELED) if it is not already.
 * Safe to call when the process was not started by mpirun. */
int comm_init(int *argc, char ***argv, char **err);
/* Finalises MPI if comm_init initialised it; no-op otherwise. */
void comm_finalize(void);

/* Rank and world size; 0 and 1 before comm_init. */
int comm_rank(void);
int comm_world_size(void);

/* The MPI library's own version line (MPI_Get_library_version, first line),
 * plus the MPI standard version. Callable before comm_init. */
void comm_library_version(char *buf, size_t size);

#endif
