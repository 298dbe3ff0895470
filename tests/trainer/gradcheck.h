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
 * +-eps (central differences over the step the float coordinate actually
 * took), and returns ||numeric - analytic|| / max(||analytic||, floor) over
 * them. x is restored. */
double gradcheck_rel_error(gradcheck_loss_fn loss, void *ctx, float *x, const float *analytic,
                           size_t n, size_t samples, float eps, double floor);

/* Fills x with uniform values in [-scale, scale) from a fixed stream. */
void gradcheck_fill(float *x, size_t n, float scale, uint32_t stream);

/* Buffers for the checks, malloc'd (the caller frees): n values from
 * gradcheck_fill; n zeros; n NaNs, for gradients a backward must write
 * (=), which any addition would leave NaN. */
float *gradcheck_vec(size_t n, float scale, uint32_t stream);
float *gradcheck_zeros(size_t n);
float *gradcheck_stale(size_t n);
/* Asserts rel < GRADCHECK_TOL, printing what failed and by how much. */
void gradcheck_expect_close(const char *what, double rel);

/* sum_i out[i] * r[i] in double: the loss whose d/d(out) is r. */
double gradcheck_dot(const float *out, const float *r, size_t n);

/* The default step, and the relative error tolerances. The forward passes
 * run in float, so the difference quotient carries about
 * 1e-7 * |loss| / eps of rounding noise, against an O(eps^2) truncation
 * error. Measured (gcc 12 -O2 and the ASan build, AVX2): the layer checks
 * at eps = 1e-2 stay under 4e-6; those that need eps = 1e-3 (LayerNorm's
 * input, GELU, tanh, attention, cross-entropy) under 8e-4, the worst being
 * LayerNorm's input, where the error is rounding noise (it halves when eps
 * doubles). The whole model (test_bert.c, step MODEL_EPS) reaches 5.2e-3
 * (the embedding LayerNorm's weight; the small query and key gradients).
 * Each tolerance is about 2.5x its worst case; a wrong gradient is off by
 * far more. */
#define GRADCHECK_EPS 1e-2f
#define GRADCHECK_TOL 2e-3       /* single layers (test_layers.c) */
#define GRADCHECK_MODEL_TOL 1e-2 /* the whole model (test_bert.c) */

#endif
