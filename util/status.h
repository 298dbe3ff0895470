/* Status codes and error messages shared by every module.
 *
 * Conventions (as in LevelDB's C API):
 *  1. A function that can fail at run time returns an int status: ST_OK (0)
 *     on success, one of the codes below otherwise.
 *  2. Its last argument is `char **err`. On failure *err receives a malloc'd
 *     one-line message that says what failed, on which file or rank, and what
 *     to do; the caller frees it. On success *err is left untouched.
 *  3. Programmer errors (a NULL where the contract forbids it, a size that
 *     cannot happen) are assert()s, not statuses.
 */
#ifndef DDPT_UTIL_STATUS_H
#define DDPT_UTIL_STATUS_H

typedef enum {
  ST_OK = 0,
  ST_INVALID,     /* bad input: argument, config value, file content */
  ST_IO,          /* a file or directory could not be read or written */
  ST_NOMEM,       /* an allocation failed or would exceed a stated limit */
  ST_CORRUPT,     /* data failed a checksum, length or format check */
  ST_MISMATCH,    /* two things that must agree do not (hash, shape, vocab) */
  ST_COMM,        /* a rank or the MPI layer failed */
  ST_INTERRUPTED, /* stopped on request (SIGINT/SIGTERM) */
} status_code;

/* Short lower-case name of a code ("io", "corrupt"); never NULL. */
const char *status_name(int code);

/* Sets *err to a malloc'd message formatted from fmt (freeing any message it
 * held) and returns code. err may be NULL, then only code is returned. */
int status_set(char **err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " (formatted) to the message in *err, if there is one,
 * and returns code. Used to add context as an error travels up. */
int status_wrap(char **err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
