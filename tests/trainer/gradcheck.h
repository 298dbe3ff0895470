/* Finite-difference gradient checks for the trainer tests: central
 * differences of a scalar loss (accumulated in double) against the gradient
 * the code computes, compared as a relative error over sampled coordinates. */
#ifndef DDPT_TESTS_TRAINER_GRADCHECK_H
#define DDPT_TESTS_TRAINER_GRADCHECK_H

#include <stddef.h>
#include <stdint.h>

/* The loss at the current parameter values. */
typedef double (*gradcheck_loss_fn)(void *ctx);

/* Perturbs up to `samples` coordinates of x (chosen by a fixed stream) by
 * +-eps, and returns ||numeric - analytic|| / max(||analytic||, floor) over
 * them. x is restored. */
double gradcheck_rel_error(gradcheck_loss_fn loss, void *ctx, float *x, const float *analytic,
                           size_t n, size_t samples, float eps, double floor);

/* Fills x with uniform values in [-scale, scale) from a fixed stream. */
void gradcheck_fill(float *x, size_t n, float scale, uint32_t stream);

/* sum_i out[i] * r[i] in double: the loss whose d/d(out) is r. */
double gradcheck_dot(const float *out, const float *r, size_t n);

/* Relative error tolerance used by every check, and the step. The forward
 * passes run in float, so the difference quotient carries about
 * 1e-7 * |loss| / eps of rounding noise; eps = 1e-2 keeps it and the O(eps^2)
 * truncation error both under 1e-3 for the sizes tested. */
#define GRADCHECK_EPS 1e-2f
#define GRADCHECK_TOL 1e-2

#endif
