/* The GEMM seam: every matrix product of a linear layer goes through gemm(),
 * which computes it in the process's precision. Layers do not know which
 * library computes a product:
 *   fp32: OpenBLAS sgemm, split among the OpenMP threads (the default);
 *   bf16: oneDNN matmul on bf16 operands with fp32 accumulation and output
 *         (trainer/gemm_onednn.c, the only file that includes oneDNN).
 *
 * In bf16 a weight matrix is not converted at every product: the model
 * registers its parameter arena with a bf16 shadow (gemm_shadow_set), fills
 * the shadow once per update (gemm_shadow_fill), and an operand lying inside
 * the arena is read from the shadow at the same offset. Every other operand
 * (an activation or a gradient) is rounded to bf16 at the product. */
#ifndef DDPT_TRAINER_GEMM_H
#define DDPT_TRAINER_GEMM_H

#include <stddef.h>
#include <stdint.h>

typedef enum { GEMM_FP32 = 0, GEMM_BF16 = 1 } gemm_precision;

/* "fp32", "bf16"; NULL past the last (the run config's enum names). */
const char *gemm_precision_name(int precision);
/* GEMM_FP32 or GEMM_BF16 for a name, -1 for anything else. */
int gemm_precision_parse(const char *name);

/* Sets the precision of every later gemm(). GEMM_BF16 fails (ST_INVALID)
 * with one line saying what to do on a CPU whose bf16 products oneDNN would
 * emulate (see gemm_bf16_supported). */
int gemm_set_precision(gemm_precision precision, char **err);
gemm_precision gemm_get_precision(void);

/* Whether this CPU computes bf16 products natively (oneDNN dispatches to
 * avx512_core_bf16 or AMX). When it does not, oneDNN emulates bf16 on
 * AVX-512 (slower than OpenBLAS's fp32) or refuses it: ddpt then refuses
 * precision = bf16. why: a line naming the ISA oneDNN dispatches to. */
int gemm_bf16_supported(char *why, size_t size);

/* Test hook: DDPT_TEST_BF16_EMULATE=1 in the environment makes every bf16
 * product OpenBLAS's sgemm over its bf16 operands widened to fp32 (exact),
 * and bf16 supported on any CPU, so that the tests of the bf16 path (the
 * roundings, the weights' copy, determinism, resume, learning) run on CI
 * machines without bf16 instructions. The values are a bf16 product's up to
 * the order of the fp32 accumulation; the speed is worse than fp32's: never
 * for real runs. Whether it is on. */
int gemm_bf16_emulated(void);

/* "oneDNN 2.6.3 (isa avx512_core_bf16, OpenMP)" or similar: for ddpt
 * version and benchmark reports. */
void gemm_onednn_version(char *buf, size_t size);
/* The ISA oneDNN dispatches to, e.g. "avx512_core_bf16". */
const char *gemm_onednn_isa(void);

typedef enum { GEMM_N = 0, GEMM_T = 1 } gemm_trans;

/* C (M x N) = alpha op(A) op(B) + beta C, row-major fp32 pointers; beta is 0
 * or 1. Threads itself over the OpenMP threads: call it outside parallel
 * regions (bf16 shares one set of conversion buffers). In fp32 the bits do
 * not depend on the thread count. In bf16 they are the same run to run at a
 * fixed thread count. */
void gemm(gemm_trans ta, gemm_trans tb, size_t M, size_t N, size_t K, float alpha,
          const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
          size_t ldc);

/* C (M x N) = op(A) op(B) + bias, the bias (N floats) on every row: a
 * linear layer's forward. In fp32 the same bits as writing the bias rows and
 * gemm() with beta = 1; in bf16 oneDNN adds the bias as it stores C. */
void gemm_bias(gemm_trans ta, gemm_trans tb, size_t M, size_t N, size_t K, const float *A,
               size_t lda, const float *B, size_t ldb, const float *bias, float *C, size_t ldc);

/* A linear layer's two backward products, which share dout (N x OC, row
 * stride ldd): dinp (N x C) = dout w (w: OC x C), written or with add
 * added to, skipped when dinp is NULL; dw (OC x C) += dout^T inp (inp:
 * N x C). In fp32 the same bits as the two gemm() calls; in bf16 dout is
 * rounded once for both. */
void gemm_linear_backward(float *dinp, int add, float *dw, const float *dout, size_t ldd,
                          const float *inp, const float *w, size_t N, size_t C, size_t OC);

/* A linear layer whose input (N x C, rows packed) is already in bf16: an
 * activation its producer rounded once and kept so for both its products
 * (precision = bf16 only). out (N x OC) = inp w^T + bias, with bias (OC);
 * dinp (N x C) = dout w, skipped when NULL, and dw (OC x C) += dout^T inp,
 * dout (N x OC, rows packed). The same bits as gemm_bias and
 * gemm_linear_backward on the float input these values round. */
void gemm_bias_bf16in(const uint16_t *inp, const float *w, const float *bias, float *out,
                      size_t N, size_t C, size_t OC);
void gemm_linear_backward_bf16in(float *dinp, float *dw, const float *dout, const uint16_t *inp,
                                 const float *w, size_t N, size_t C, size_t OC);

/* A product small enough for one thread (attention's per-head products,
 * called inside a parallel loop): fp32 OpenBLAS on the calling thread, in
 * either precision. */
void gemm_small(gemm_trans ta, gemm_trans tb, size_t M, size_t N, size_t K, float alpha,
                const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                size_t ldc);

/* A batch of n1 x n2 products of one shape (attention: sequences x heads).
 * Product (i, j) reads A + i a1 + j a2 and B + i b1 + j b2 and writes
 * C + i c1 + j c2, with gemm()'s row strides and transposes. */
typedef struct gemm_batch {
  size_t n1, n2;
  size_t a1, a2, b1, b2, c1, c2;
} gemm_batch;

/* The batch's products in the process's precision: fp32, each product one
 * gemm_small call, products split among the OpenMP threads (the same bits
 * as one gemm_small per product, for any thread count); bf16, the operands
 * rounded and packed and one oneDNN batched matmul. Call it outside
 * parallel regions. */
void gemm_batched(const gemm_batch *bt, gemm_trans ta, gemm_trans tb, size_t M, size_t N,
                  size_t K, float alpha, const float *A, size_t lda, const float *B, size_t ldb,
                  float beta, float *C, size_t ldc);

/* Registers arena (n floats) and its bf16 shadow (n uint16_t), or none
 * (arena NULL). The caller owns both buffers. */
void gemm_shadow_set(const float *arena, uint16_t *shadow, size_t n);
/* shadow = bf16(arena), rounded to nearest even, over the registered pair. */
void gemm_shadow_fill(void);

/* dst[i] = bf16(src[i]), rounded to nearest even (NaN stays NaN). */
void gemm_to_bf16(uint16_t *dst, const float *src, size_t n);
/* The same on the calling thread only: for loops that are already split
 * among threads (the optimizer writes the weights' copy as it updates). */
void gemm_to_bf16_serial(uint16_t *dst, const float *src, size_t n);
/* The float a bf16 stands for. */
static inline float gemm_bf16_value(uint16_t h) {
  union {
    uint32_t u;
    float f;
  } v = {.u = (uint32_t)h << 16};
  return v.f;
}

/* Bytes of the bf16 conversion buffers grown so far (their high-water mark):
 * what bench compares with the memory estimate. */
size_t gemm_scratch_bytes(void);

/* GFLOP/s of an n x n x n bf16 product (best of reps), on as many threads as
 * OpenMP has: the bf16 ceiling benchmarks report. 0 when bf16 is not
 * supported. */
double gemm_bf16_gflops(int n, int reps);

#endif
