/* The one parser of numeric option values for every subcommand (cli.h):
 * whole-argument, range-checked, with one usage line on failure. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "cli/cli.h"

int cli_parse_u64(const char *cmd, const char *opt, const char *arg, uint64_t lo, uint64_t hi, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = arg[0] >= '0' && arg[0] <= '9' ? strtoull(arg, &end, 10) : 0;
  if (arg[0] < '0' || arg[0] > '9' || errno || *end || v < lo || v > hi)
    return cli_usage_error(cmd, "%s: '%s' is not an integer in %llu..%llu", opt, arg, (unsigned long long)lo,
                           (unsigned long long)hi);
  *out = v;
  return CLI_EXIT_OK;
}

int cli_parse_size(const char *cmd, const char *opt, const char *arg, size_t lo, size_t hi, size_t *out) {
  uint64_t v;
  int rc = cli_parse_u64(cmd, opt, arg, lo, hi, &v);
  if (rc == CLI_EXIT_OK) *out = (size_t)v;
  return rc;
}

int cli_parse_int(const char *cmd, const char *opt, const char *arg, int lo, int hi, int *out) {
  char *end;
  errno = 0;
  long v = strtol(arg, &end, 10);
  if (!arg[0] || errno || *end || v < lo || v > hi)
    return cli_usage_error(cmd, "%s: '%s' is not an integer in %d..%d", opt, arg, lo, hi);
  *out = (int)v;
  return CLI_EXIT_OK;
}

int cli_parse_double(const char *cmd, const char *opt, const char *arg, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(arg, &end);
  if (!arg[0] || errno || *end || !isfinite(v) || v < lo || v > hi)
    return cli_usage_error(cmd, "%s: '%s' is not a number in %g..%g", opt, arg, lo, hi);
  *out = v;
  return CLI_EXIT_OK;
}
