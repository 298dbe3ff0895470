/* oneDNN behind the GEMM seam (trainer/gemm.c): the only oneDNN user in
 * ddpt. Private to trainer/gemm.c and its tests. */
#ifndef DDPT_TRAINER_GEMM_ONEDNN_H
#define DDPT_TRAINER_GEMM_ONEDNN_H

#include <stddef.h>
#include <stdint.h>

/* C (M x N, fp32, row stride ldc) = alpha op(A) op(B) + beta C with A, B
 * bf16, row-major (op = transpose when ta / tb), fp32 accumulation; beta 0
 * or 1. One matmul on as many threads as OpenMP has; its primitive is made
 * once per shape and kept. Fails (ST_INVALID) when oneDNN has no
 * implementation, with a line naming the shape. */
int onednn_matmul_bf16(int ta, int tb, size_t M, size_t N, size_t K, float alpha,
                       const uint16_t *A, size_t lda, const uint16_t *B, size_t ldb, float beta,
                       float *C, size_t ldc, char **err);

/* A batch of n1 x n2 such products in one matmul: product (i, j) reads
 * A + i sa[0] + j sa[1], B + i sb[0] + j sb[1] (elements) and writes
 * C + i sc[0] + j sc[1]. bias (N floats, one product only) or NULL: added
 * to every row of C, before the beta sum. */
typedef struct onednn_batch {
  size_t n1, n2;
  size_t sa[2], sb[2], sc[2];
} onednn_batch;
int onednn_matmul_bf16_batched(const onednn_batch *bt, int ta, int tb, size_t M, size_t N,
                               size_t K, float alpha, const uint16_t *A, size_t lda,
                               const uint16_t *B, size_t ldb, const float *bias, float beta,
                               float *C, size_t ldc, char **err);

/* The ISA oneDNN dispatches to ("avx512_core_bf16"), and whether bf16
 * products run natively there (avx512_core_bf16 or AMX). */
const char *onednn_isa(void);
int onednn_bf16_native(void);

/* "oneDNN 2.6.3 (isa avx512_core_bf16, OpenMP)". */
void onednn_version(char *buf, size_t size);

#endif
