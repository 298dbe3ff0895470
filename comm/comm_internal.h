/* Shared between the files of comm/ only. */
#ifndef DDPT_COMM_INTERNAL_H
#define DDPT_COMM_INTERNAL_H

/* Turns an MPI return code into a one-line ST_COMM message naming this rank. */
int comm_mpi_error(char **err, int rc, const char *call);

#endif
