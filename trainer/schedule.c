/* Learning-rate multipliers per update (see schedule.h for the formulas). */
#include "trainer/schedule.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/status.h"

const char *schedule_kind_name(int kind) {
  static const char *const names[] = {"linear", "cosine", "constant", "piecewise"};
  return kind >= 0 && kind < (int)(sizeof names / sizeof names[0]) ? names[kind] : NULL;
}

int schedule_points_parse(schedule *s, const char *text, char **err) {
  s->npoints = 0;
  const char *p = text;
  while (*p) {
    while (*p == ' ' || *p == ',' || *p == '{' || *p == '}') p++;
    if (!*p) break;
    if (s->npoints == SCHEDULE_POINTS_MAX)
      return status_set(err, ST_INVALID, "schedule points: more than %d points in '%s'", SCHEDULE_POINTS_MAX, text);
    char *end;
    errno = 0;
    unsigned long long at = strtoull(p, &end, 10);
    if (end == p || errno || *end != ':' || *p == '-')
      return status_set(err, ST_INVALID, "schedule points: expected STEP:MULTIPLIER at '%s' (e.g. \"1000:1, 20000:0.1\")", p);
    p = end + 1;
    double mult = strtod(p, &end);
    if (end == p || !isfinite(mult) || mult < 0)
      return status_set(err, ST_INVALID, "schedule points: multiplier at '%s' must be a number >= 0", p);
    if (s->npoints > 0 && at <= s->at[s->npoints - 1])
      return status_set(err, ST_INVALID, "schedule points: step %llu does not come after step %llu; list steps in increasing order",
                        at, (unsigned long long)s->at[s->npoints - 1]);
    s->at[s->npoints] = at;
    s->mult[s->npoints] = mult;
    s->npoints++;
    p = end;
  }
  if (s->npoints == 0)
    return status_set(err, ST_INVALID, "schedule points: no STEP:MULTIPLIER pairs in '%s'", text);
  return ST_OK;
}

void schedule_points_format(const schedule *s, char *buf, size_t size) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < s->npoints && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%llu:%g", i ? ", " : "",
                             (unsigned long long)s->at[i], s->mult[i]);
}

static double piecewise(const schedule *s, uint64_t t) {
  uint64_t prev_at = 0;
  double prev_mult = 0.0;
  size_t i = 0;
  if (s->at[0] == 0) {
    prev_mult = s->mult[0];
    i = 1;
  }
  for (; i < s->npoints; i++) {
    if (t < s->at[i])
      return prev_mult + (s->mult[i] - prev_mult) * (double)(t - prev_at) / (double)(s->at[i] - prev_at);
    prev_at = s->at[i];
    prev_mult = s->mult[i];
  }
  return prev_mult;
}

double schedule_multiplier(const schedule *s, uint64_t t) {
  if (s->kind == SCHED_PIECEWISE) return piecewise(s, t);
  if (t < s->warmup) return (double)t / (double)s->warmup;
  if (s->kind == SCHED_CONSTANT) return 1.0;
  if (t >= s->total) return 0.0;
  if (s->total <= s->warmup) return 1.0;
  double progress = (double)(t - s->warmup) / (double)(s->total - s->warmup);
  if (s->kind == SCHED_LINEAR) return 1.0 - progress;
  return 0.5 * (1.0 + cos(3.14159265358979323846 * progress));
}
