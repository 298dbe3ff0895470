/* Shared between the files of comm/ only. */
#ifndef DDPT_COMM_INTERNAL_H
#define DDPT_COMM_INTERNAL_H

#include <mpi.h>

/* Waits for n requests of one collective (call names it in messages) once
 * this rank has started all of them. Every collective waits exactly once
 * per call, on every rank in the same order: the watchdog counts the waits.
 * With the watchdog on, polls instead of blocking and fails (ST_COMM,
 * naming the step, the operation and the ranks behind) past the limit. */
int comm_watch_wait(MPI_Request *req, int n, const char *call, char **err);

/* Turns an MPI return code into a one-line ST_COMM message naming this rank. */
int comm_mpi_error(char **err, int rc, const char *call);

#endif
