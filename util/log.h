/* Rank-aware logging to stderr. The level comes from DDPT_LOG (error, warn,
 * info, debug; default info). When the world has more than one rank, each
 * line is prefixed with "[rank R/W]" so interleaved output stays readable. */
#ifndef DDPT_UTIL_LOG_H
#define DDPT_UTIL_LOG_H

#include <stdio.h>

typedef enum { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG } log_level;

/* Reads DDPT_LOG and records (rank, world) for the prefix. Callable again
 * once the world is known. Returns the level in force. An unknown DDPT_LOG
 * value leaves the level at info and logs one warning. */
log_level log_init(int rank, int world);

/* Overrides the level (e.g. from a command-line flag). */
void log_set_level(log_level level);
/* Parses "error"/"warn"/"info"/"debug"; returns -1 for anything else. */
int log_level_parse(const char *name);
/* "error", "warn", "info", "debug" for the log_level values; NULL past the last. */
const char *log_level_name(int level);

/* Redirects log output (tests); NULL restores stderr. */
void log_set_stream(FILE *stream);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
