/* Learning-rate schedules: a multiplier of the peak learning rate for each
 * update t = 1, 2, ... (the first update uses t = 1, so a warmup never
 * spends an update at learning rate zero).
 *
 *  linear     t/W during warmup, then (T - t)/(T - W) down to 0 at T (BERT, as
 *             HuggingFace's get_linear_schedule_with_warmup)
 *  cosine     t/W during warmup, then 0.5 (1 + cos(pi (t - W)/(T - W)))
 *  constant   t/W during warmup, then 1
 *  piecewise  bert4keras's piecewise-linear {step: multiplier}: linear between
 *             the points, from (0, 0) when the first point is not at 0, and
 *             the last multiplier after the last point
 */
#ifndef DDPT_TRAINER_SCHEDULE_H
#define DDPT_TRAINER_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

typedef enum { SCHED_LINEAR = 0, SCHED_COSINE, SCHED_CONSTANT, SCHED_PIECEWISE } schedule_kind;

enum { SCHEDULE_POINTS_MAX = 32 };

typedef struct schedule {
  schedule_kind kind;
  uint64_t warmup; /* W */
  uint64_t total;  /* T: the run's total updates */
  size_t npoints;  /* piecewise */
  uint64_t at[SCHEDULE_POINTS_MAX];
  double mult[SCHEDULE_POINTS_MAX];
} schedule;

/* "linear", "cosine", "constant", "piecewise" for the schedule_kind values;
 * NULL past the last (so a caller can list them). */
const char *schedule_kind_name(int kind);

/* Parses "1000:1, 20000:0.1" (steps strictly increasing, multipliers >= 0)
 * into s's points. ST_INVALID naming the offending item. */
int schedule_points_parse(schedule *s, const char *text, char **err);
/* Writes the points back in the same syntax. */
void schedule_points_format(const schedule *s, char *buf, size_t size);

double schedule_multiplier(const schedule *s, uint64_t t);

#endif
