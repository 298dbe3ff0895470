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

/* Tests a collective's requests and starts its next ones (one that comm
 * drives itself, message by message); *done once all have completed. */
typedef int (*comm_advance_fn)(void *ctx, int *done, char **err);

/* comm_watch_wait for such a collective: calls advance until it reports
 * done, under the watchdog's limit and counting as one wait (off: polls
 * without a limit). */
int comm_watch_progress(comm_advance_fn advance, void *ctx, const char *call, char **err);

/* Whether MPI was initialised with MPI_THREAD_MULTIPLE (threads other
 * than the main one may then call MPI). */
int comm_thread_multiple(void);

/* Turns an MPI return code into a one-line ST_COMM message naming this rank. */
int comm_mpi_error(char **err, int rc, const char *call);

#endif
