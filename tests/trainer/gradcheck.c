/* Finite-difference helpers for the trainer tests (see gradcheck.h). */
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "util/rng.h"

double gradcheck_rel_error(gradcheck_loss_fn loss, void *ctx, float *x, const float *analytic,
                           size_t n, size_t samples, float eps, double floor) {
  rng_stream s;
  rng_stream_init(&s, 12345, (uint32_t)n, 77, 0);
  size_t count = samples < n ? samples : n;
  double diff2 = 0.0, ref2 = 0.0;
  for (size_t k = 0; k < count; k++) {
    size_t i = count == n ? k : rng_next_below(&s, (uint32_t)n);
    float saved = x[i];
    x[i] = saved + eps;
    double up = loss(ctx), x_up = x[i];
    x[i] = saved - eps;
    double down = loss(ctx), x_down = x[i];
    x[i] = saved;
    /* Divide by the step the float coordinate actually took: saved + eps
     * rounds to float, off from 2 * eps by up to one ulp of x. */
    double numeric = (up - down) / (x_up - x_down);
    diff2 += (numeric - analytic[i]) * (numeric - analytic[i]);
    ref2 += (double)analytic[i] * analytic[i];
  }
  double ref = sqrt(ref2);
  return sqrt(diff2) / (ref > floor ? ref : floor);
}

void gradcheck_fill(float *x, size_t n, float scale, uint32_t stream) {
  rng_stream s;
  rng_stream_init(&s, 2024, stream, 0, 0);
  for (size_t i = 0; i < n; i++) x[i] = scale * (2.0f * rng_next_uniform(&s) - 1.0f);
}

double gradcheck_dot(const float *out, const float *r, size_t n) {
  double acc = 0.0;
  for (size_t i = 0; i < n; i++) acc += (double)out[i] * r[i];
  return acc;
}

float *gradcheck_vec(size_t n, float scale, uint32_t stream) {
  float *x = malloc(n * sizeof *x);
  gradcheck_fill(x, n, scale, stream);
  return x;
}

float *gradcheck_zeros(size_t n) { return calloc(n, sizeof(float)); }

float *gradcheck_stale(size_t n) {
  float *x = malloc(n * sizeof *x);
  for (size_t i = 0; i < n; i++) x[i] = NAN;
  return x;
}

void gradcheck_expect_close(const char *what, double rel) {
  if (rel >= GRADCHECK_TOL) printf("\n  %s: relative error %.3g\n", what, rel);
  CU_ASSERT(rel < GRADCHECK_TOL);
}
