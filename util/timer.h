/* Monotonic wall-clock time, for step timings and ETAs. */
#ifndef DDPT_UTIL_TIMER_H
#define DDPT_UTIL_TIMER_H

#include <stdint.h>

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC); never goes back. */
double timer_now(void);
/* Nanoseconds, same clock. */
uint64_t timer_now_ns(void);

#endif
