/* Monotonic clock (see timer.h). */
#include "util/timer.h"

#include <time.h>

uint64_t timer_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double timer_now(void) { return (double)timer_now_ns() * 1e-9; }
