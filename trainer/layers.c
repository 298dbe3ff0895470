/* Layer forward/backward passes (see layers.h). Products go through the
 * GEMM seam (trainer/gemm.h), which picks the library and precision; the
 * element-wise loops are written so the compiler vectorises them and OpenMP
 * splits them over rows. */
#include "trainer/layers.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include <omp.h>

#include "trainer/gemm.h"
#include "trainer/simd.h"


/* Loops shorter than this run on one thread: waking the team costs more. */
#define PAR_MIN 32768

/* Column sums (of N rows of width C) are split over column blocks, so each
 * column is summed by one thread in row order, whatever the thread count. */
#define COL_BLOCK 64

void layer_embeddings_forward(float *out, const int32_t *ids, const int32_t *types,
                              const float *wte, const float *wpe, const float *wtt, size_t B,
                              size_t T, size_t C) {
#pragma omp parallel for if (B * T * C >= PAR_MIN)
  for (size_t bt = 0; bt < B * T; bt++) {
    const float *w = wte + (size_t)ids[bt] * C;
    const float *pe = wpe + (bt % T) * C;
    const float *tt = wtt + (size_t)types[bt] * C;
    float *o = out + bt * C;
    for (size_t c = 0; c < C; c++) o[c] = w[c] + pe[c] + tt[c];
  }
}

void layer_embeddings_backward(float *dwte, float *dwpe, float *dwtt, const float *dout,
                               const int32_t *ids, const int32_t *types, size_t B, size_t T,
                               size_t C) {
  size_t nblocks = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for if (B * T * C >= PAR_MIN)
  for (size_t cb = 0; cb < nblocks; cb++) {
    size_t c0 = cb * COL_BLOCK, c1 = c0 + COL_BLOCK < C ? c0 + COL_BLOCK : C;
    for (size_t bt = 0; bt < B * T; bt++) {
      const float *d = dout + bt * C;
      float *w = dwte + (size_t)ids[bt] * C;
      float *pe = dwpe + (bt % T) * C;
      float *tt = dwtt + (size_t)types[bt] * C;
      for (size_t c = c0; c < c1; c++) {
        w[c] += d[c];
        pe[c] += d[c];
        tt[c] += d[c];
      }
    }
  }
}

void layer_linear_forward_ld(float *out, size_t ldo, const float *inp, const float *w,
                             const float *b, size_t N, size_t C, size_t OC) {
  if (b)
    gemm_bias(GEMM_N, GEMM_T, N, OC, C, inp, C, w, C, b, out, ldo);
  else
    gemm(GEMM_N, GEMM_T, N, OC, C, 1.0f, inp, C, w, C, 0.0f, out, ldo);
}

void layer_linear_forward(float *out, const float *inp, const float *w, const float *b, size_t N,
                          size_t C, size_t OC) {
  layer_linear_forward_ld(out, OC, inp, w, b, N, C, OC);
}

/* acc[k] = sum over the N rows of src[n * ld + k], k < w <= COL_BLOCK, in
 * row order. A full block keeps its sums in registers. */
VECTOR_CLONES static void column_block_sums(float *acc, const float *src, size_t ld, size_t N,
                                            size_t w) {
  if (w == COL_BLOCK) {
    float a[COL_BLOCK] = {0};
    for (size_t n = 0; n < N; n++) {
      const float *row = src + n * ld;
#pragma omp simd
      for (size_t k = 0; k < COL_BLOCK; k++) a[k] += row[k];
    }
    memcpy(acc, a, sizeof a);
    return;
  }
  for (size_t k = 0; k < w; k++) acc[k] = 0.0f;
  for (size_t n = 0; n < N; n++) {
    const float *row = src + n * ld;
#pragma omp simd
    for (size_t k = 0; k < w; k++) acc[k] += row[k];
  }
}

/* dst[c] += sum over rows of src[n, c] (row stride ld); deterministic (see
 * COL_BLOCK). */
static void column_sums_add(float *dst, const float *src, size_t ld, size_t N, size_t C) {
  size_t nblocks = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for if (N * C >= PAR_MIN)
  for (size_t cb = 0; cb < nblocks; cb++) {
    size_t c0 = cb * COL_BLOCK, w = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
    float acc[COL_BLOCK];
    column_block_sums(acc, src + c0, ld, N, w);
    for (size_t k = 0; k < w; k++) dst[c0 + k] += acc[k];
  }
}

void layer_linear_backward_ld(float *dinp, int add, float *dw, float *db, const float *dout,
                              size_t ldd, const float *inp, const float *w, size_t N, size_t C,
                              size_t OC) {
  gemm_linear_backward(dinp, add, dw, dout, ldd, inp, w, N, C, OC);
  if (db) column_sums_add(db, dout, ldd, N, OC);
}

void layer_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                           const float *w, size_t N, size_t C, size_t OC) {
  layer_linear_backward_ld(dinp, 0, dw, db, dout, OC, inp, w, N, C, OC);
}

void layer_linear_forward_bf16in(float *out, const uint16_t *inp, const float *w, const float *b,
                                 size_t N, size_t C, size_t OC) {
  gemm_bias_bf16in(inp, w, b, out, N, C, OC);
}

void layer_linear_backward_bf16in(float *dinp, float *dw, float *db, const float *dout,
                                  const uint16_t *inp, const float *w, size_t N, size_t C,
                                  size_t OC) {
  gemm_linear_backward_bf16in(dinp, dw, dout, inp, w, N, C, OC);
  if (db) column_sums_add(db, dout, OC, N, OC);
}

VECTOR_CLONES static void layernorm_row_forward(float *o, float *mean, float *rstd,
                                                const float *x, const float *w, const float *b,
                                                size_t C, float eps) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (size_t c = 0; c < C; c++) s += x[c];
  float m = s / (float)C;
  float v = 0.0f;
#pragma omp simd reduction(+ : v)
  for (size_t c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
  float r = 1.0f / sqrtf(v / (float)C + eps);
#pragma omp simd
  for (size_t c = 0; c < C; c++) o[c] = (x[c] - m) * r * w[c] + b[c];
  *mean = m;
  *rstd = r;
}

void layer_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                             const float *w, const float *b, size_t N, size_t C, float eps) {
#pragma omp parallel for if (N * C >= PAR_MIN)
  for (size_t n = 0; n < N; n++)
    layernorm_row_forward(out + n * C, mean + n, rstd + n, inp + n * C, w, b, C, eps);
}

VECTOR_CLONES static void layernorm_row_backward(float *di, const float *d, const float *x,
                                                 const float *w, float m, float r, size_t C) {
  float dnorm_mean = 0.0f, dnorm_dot = 0.0f;
#pragma omp simd reduction(+ : dnorm_mean, dnorm_dot)
  for (size_t c = 0; c < C; c++) {
    float dn = w[c] * d[c];
    dnorm_mean += dn;
    dnorm_dot += dn * (x[c] - m) * r;
  }
  dnorm_mean /= (float)C;
  dnorm_dot /= (float)C;
#pragma omp simd
  for (size_t c = 0; c < C; c++) {
    float xh = (x[c] - m) * r;
    di[c] = (w[c] * d[c] - dnorm_mean - xh * dnorm_dot) * r;
  }
}

/* aw[k] = sum over rows of xhat[n, c0 + k] d[n, c0 + k], ab[k] = sum of
 * d[n, c0 + k], k < w <= COL_BLOCK, in row order. */
VECTOR_CLONES static void layernorm_block_grads(float *aw, float *ab, const float *inp,
                                                const float *dout, const float *mean,
                                                const float *rstd, size_t N, size_t C,
                                                size_t w) {
  for (size_t k = 0; k < w; k++) aw[k] = ab[k] = 0.0f;
  for (size_t n = 0; n < N; n++) {
    const float *x = inp + n * C, *d = dout + n * C;
    float m = mean[n], r = rstd[n];
#pragma omp simd
    for (size_t k = 0; k < w; k++) {
      aw[k] += (x[k] - m) * r * d[k];
      ab[k] += d[k];
    }
  }
}

void layer_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                              const float *inp, const float *w, const float *mean,
                              const float *rstd, size_t N, size_t C) {
#pragma omp parallel for if (N * C >= PAR_MIN)
  for (size_t n = 0; n < N; n++)
    layernorm_row_backward(dinp + n * C, dout + n * C, inp + n * C, w, mean[n], rstd[n], C);
  size_t nblocks = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for if (N * C >= PAR_MIN)
  for (size_t cb = 0; cb < nblocks; cb++) {
    size_t c0 = cb * COL_BLOCK, wd = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
    float aw[COL_BLOCK], ab[COL_BLOCK];
    layernorm_block_grads(aw, ab, inp + c0, dout + c0, mean, rstd, N, C, wd);
    for (size_t k = 0; k < wd; k++) {
      dw[c0 + k] += aw[k];
      db[c0 + k] += ab[k];
    }
  }
}

/* exp and erf written as plain arithmetic, so the GELU loops vectorise
 * (libm's expf/erff are calls the compiler cannot vectorise). */
static inline float fast_expf(float x) {
  /* e^x = 2^n e^r, |r| <= ln2/2; degree-6 Taylor for e^r (error < 2e-7
   * relative); n is clamped so 2^n stays a normal float. */
  x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
  /* Round to nearest by adding and removing 1.5 * 2^23 (no SSE4.1 round). */
  float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693145752f - n * 1.42860677e-6f;
  float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
  union {
    float f;
    int32_t i;
  } scale = {.i = ((int32_t)n + 127) << 23};
  return p * scale.f;
}

/* erf(x) = x p(s), s = x^2 (2 / 3.92^2) - 1 in [-1, 1], for |x| < 3.92, and
 * +-1 beyond (where erf is within 4.3e-8 of it). p is a degree-16 weighted
 * least-squares Chebyshev fit of erf(x) / x made for ddpt (numpy), here in
 * monomial form: evaluated in float, |error| < 2e-7 for all x. No division
 * and no exp: a Horner chain of 16 multiply-add steps. */
static inline float fast_erff(float x) {
  float ax = fabsf(x);
  float s = ax * ax * 0.1301541f - 1.0f;
  float p = 3.460178559e-04f;
  p = p * s - 9.038571152e-04f;
  p = p * s + 7.309308858e-04f;
  p = p * s - 1.169508905e-03f;
  p = p * s + 4.111133516e-03f;
  p = p * s - 7.997033186e-03f;
  p = p * s + 1.238762029e-02f;
  p = p * s - 1.974010840e-02f;
  p = p * s + 3.053419478e-02f;
  p = p * s - 4.353962839e-02f;
  p = p * s + 5.818831176e-02f;
  p = p * s - 7.399871945e-02f;
  p = p * s + 9.062215686e-02f;
  p = p * s - 1.091811135e-01f;
  p = p * s + 1.340834051e-01f;
  p = p * s - 1.801085770e-01f;
  p = p * s + 3.607368171e-01f;
  float r = ax >= 3.92f ? 1.0f : ax * p;
  return x < 0 ? -r : r;
}

/* The GELU loops are compute-bound polynomials: one copy per vector width,
 * the widest the CPU runs picked at load time (GCC function multiversioning),
 * called on chunks that OpenMP splits among threads. */
#define GELU_CHUNK 16384

VECTOR_CLONES static void gelu_forward_range(float *out, const float *inp, size_t n) {
#pragma omp simd
  for (size_t i = 0; i < n; i++) out[i] = 0.5f * inp[i] * (1.0f + fast_erff(inp[i] * (float)M_SQRT1_2));
}

/* d gelu / dx = Phi(x) + x phi(x). Phi(x) is read back from the forward
 * output, gelu(x) / x (to a few ulp: gelu was computed as x/2 (1 + erf)), so
 * only phi's exp is computed; near 0, where the division would lose
 * precision, Phi is 1/2 to float precision anyway. */
VECTOR_CLONES static void gelu_backward_range(float *dinp, const float *dout, const float *inp,
                                              const float *out, size_t n) {
  const float inv_sqrt_2pi = 0.3989422804014327f;
#pragma omp simd
  for (size_t i = 0; i < n; i++) {
    float x = inp[i];
    float cdf = fabsf(x) > 1e-20f ? out[i] / x : 0.5f;
    float pdf = inv_sqrt_2pi * fast_expf(-0.5f * x * x);
    dinp[i] = dout[i] * (cdf + x * pdf);
  }
}

void layer_gelu_forward(float *out, const float *inp, size_t n) {
  size_t nchunks = (n + GELU_CHUNK - 1) / GELU_CHUNK;
#pragma omp parallel for if (n >= PAR_MIN)
  for (size_t ch = 0; ch < nchunks; ch++) {
    size_t i0 = ch * GELU_CHUNK, len = n - i0 < GELU_CHUNK ? n - i0 : GELU_CHUNK;
    gelu_forward_range(out + i0, inp + i0, len);
  }
}

void layer_gelu_backward(float *dinp, const float *dout, const float *inp, const float *out,
                         size_t n) {
  size_t nchunks = (n + GELU_CHUNK - 1) / GELU_CHUNK;
#pragma omp parallel for if (n >= PAR_MIN)
  for (size_t ch = 0; ch < nchunks; ch++) {
    size_t i0 = ch * GELU_CHUNK, len = n - i0 < GELU_CHUNK ? n - i0 : GELU_CHUNK;
    gelu_backward_range(dinp + i0, dout + i0, inp + i0, out + i0, len);
  }
}

void layer_tanh_forward(float *out, const float *inp, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = tanhf(inp[i]);
}

void layer_tanh_backward(float *dinp, const float *dout, const float *out, size_t n) {
  for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * (1.0f - out[i] * out[i]);
}

/* Elements are processed in chunks of DROP_CHUNK, each from its own seek
 * into the stream, so threads draw exactly the words a single thread would. */
#define DROP_CHUNK 4096

/* Philox4x32-10 as util/rng.h defines it (word i of stream (seed, a, b, c) is
 * lane i % 4 of philox({i / 4, a, b, c}, seed)), written out in dropout_mask
 * so the compiler runs 16 blocks side by side in vector registers; a test
 * pins it to rng_next_u32. */
#define DROP_LANES 16

/* keep[i - i0] for i in [i0, i1): 1 when element i survives. i0 is a
 * multiple of 4 * DROP_LANES. */
VECTOR_CLONES static void dropout_mask_portable(uint8_t *keep, size_t i0, size_t i1, float p,
                                                layer_rng key) {
  uint32_t threshold = (uint32_t)((double)p * 4294967296.0);
  uint32_t k0 = (uint32_t)key.seed, k1 = (uint32_t)(key.seed >> 32);
  for (size_t i = i0; i < i1; i += 4 * DROP_LANES) {
    uint32_t c0[DROP_LANES], c1[DROP_LANES], c2[DROP_LANES], c3[DROP_LANES];
    for (int l = 0; l < DROP_LANES; l++) {
      c0[l] = (uint32_t)(i / 4) + (uint32_t)l;
      c1[l] = key.a;
      c2[l] = key.b;
      c3[l] = key.c;
    }
    uint32_t r0 = k0, r1 = k1;
    for (int round = 0; round < 10; round++) {
#pragma omp simd
      for (int l = 0; l < DROP_LANES; l++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0[l];
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2[l];
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[l] ^ r0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[l] ^ r1;
        c1[l] = (uint32_t)p1;
        c3[l] = (uint32_t)p0;
        c0[l] = n0;
        c2[l] = n2;
      }
      r0 += 0x9E3779B9u;
      r1 += 0xBB67AE85u;
    }
    uint8_t block[4 * DROP_LANES];
    for (int l = 0; l < DROP_LANES; l++) {
      block[4 * l] = c0[l] >= threshold;
      block[4 * l + 1] = c1[l] >= threshold;
      block[4 * l + 2] = c2[l] >= threshold;
      block[4 * l + 3] = c3[l] >= threshold;
    }
    size_t n = i1 - i < 4 * DROP_LANES ? i1 - i : 4 * DROP_LANES;
    memcpy(keep + (i - i0), block, n);
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* hi:lo = a * m, 32 x 32 -> 64 bits, in each 32-bit lane: the even lanes'
 * products from one unsigned multiply, the odd lanes' from another, their
 * halves blended back into place. */
__attribute__((target("avx2"))) static inline void mul_hilo(__m256i a, __m256i m, __m256i *hi,
                                                            __m256i *lo) {
  __m256i even = _mm256_mul_epu32(a, m), odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xaa);
  *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xaa);
}

/* Keep bytes of 8 blocks (32 words): byte 4l + j is word j of block l,
 * the order of dropout_mask_portable's block. */
__attribute__((target("avx2"))) static inline __m256i keep_bytes(__m256i c0, __m256i c1,
                                                                 __m256i c2, __m256i c3,
                                                                 __m256i threshold) {
  /* x >= t, unsigned: max(x, t) == x. */
#define GE(x) _mm256_cmpeq_epi32(_mm256_max_epu32((x), threshold), (x))
  __m256i b = _mm256_and_si256(GE(c0), _mm256_set1_epi32(0x1));
  b = _mm256_or_si256(b, _mm256_and_si256(GE(c1), _mm256_set1_epi32(0x100)));
  b = _mm256_or_si256(b, _mm256_and_si256(GE(c2), _mm256_set1_epi32(0x10000)));
  return _mm256_or_si256(b, _mm256_and_si256(GE(c3), _mm256_set1_epi32(0x1000000)));
#undef GE
}

/* dropout_mask_portable with the 16 blocks as two vectors of 8 kept in
 * registers: the compiler's vectorisation of the portable loop spills the
 * state to the stack and shuffles each product's halves at every round
 * (measured: 3.0 against 1.1 ns per word on AVX2, docs/model.md). The same
 * words: a test pins the masks to rng_next_u32. */
__attribute__((target("avx2"))) static void dropout_mask_avx2(uint8_t *keep, size_t i0, size_t i1,
                                                              float p, layer_rng key) {
  const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
  const __m256i threshold = _mm256_set1_epi32((int)(uint32_t)((double)p * 4294967296.0));
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (size_t i = i0; i < i1; i += 4 * DROP_LANES) {
    __m256i base = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)(i / 4)), lanes);
    __m256i a0 = base, b0 = _mm256_add_epi32(base, _mm256_set1_epi32(8));
    __m256i a1 = _mm256_set1_epi32((int)key.a), b1 = a1;
    __m256i a2 = _mm256_set1_epi32((int)key.b), b2 = a2;
    __m256i a3 = _mm256_set1_epi32((int)key.c), b3 = a3;
    uint32_t r0 = (uint32_t)key.seed, r1 = (uint32_t)(key.seed >> 32);
    for (int round = 0; round < 10; round++) {
      __m256i k0 = _mm256_set1_epi32((int)r0), k1 = _mm256_set1_epi32((int)r1);
      __m256i ha0, la0, ha2, la2, hb0, lb0, hb2, lb2;
      mul_hilo(a0, m0, &ha0, &la0);
      mul_hilo(a2, m1, &ha2, &la2);
      mul_hilo(b0, m0, &hb0, &lb0);
      mul_hilo(b2, m1, &hb2, &lb2);
      a0 = _mm256_xor_si256(_mm256_xor_si256(ha2, a1), k0);
      a2 = _mm256_xor_si256(_mm256_xor_si256(ha0, a3), k1);
      a1 = la2, a3 = la0;
      b0 = _mm256_xor_si256(_mm256_xor_si256(hb2, b1), k0);
      b2 = _mm256_xor_si256(_mm256_xor_si256(hb0, b3), k1);
      b1 = lb2, b3 = lb0;
      r0 += 0x9E3779B9u;
      r1 += 0xBB67AE85u;
    }
    /* A whole block straight to keep; the last, partial one through a
     * buffer. */
    uint8_t block[4 * DROP_LANES], *to = i1 - i >= 4 * DROP_LANES ? keep + (i - i0) : block;
    _mm256_storeu_si256((__m256i *)to, keep_bytes(a0, a1, a2, a3, threshold));
    _mm256_storeu_si256((__m256i *)(to + 32), keep_bytes(b0, b1, b2, b3, threshold));
    if (to == block) memcpy(keep + (i - i0), block, i1 - i);
  }
}

/* Set once at load, before any thread reads it; g_use_avx2 changes only
 * in tests (layer_dropout_simd). */
static int g_cpu_avx2, g_use_avx2;
__attribute__((constructor)) static void detect_cpu_avx2(void) {
  __builtin_cpu_init();
  g_use_avx2 = g_cpu_avx2 = __builtin_cpu_supports("avx2");
}
#endif

int layer_dropout_simd(int on) {
#if defined(__x86_64__) && defined(__GNUC__)
  g_use_avx2 = on && g_cpu_avx2;
  return g_use_avx2;
#else
  (void)on;
  return 0;
#endif
}

static void dropout_mask(uint8_t *keep, size_t i0, size_t i1, float p, layer_rng key) {
  assert(i0 % (4 * DROP_LANES) == 0 && i1 / 4 <= UINT32_MAX);
#if defined(__x86_64__) && defined(__GNUC__)
  if (g_use_avx2) {
    dropout_mask_avx2(keep, i0, i1, p, key);
    return;
  }
#endif
  dropout_mask_portable(keep, i0, i1, p, key);
}

/* out[i] = (keep[i] ? inp[i] * scale : 0) (+ res[i] when res). */
VECTOR_CLONES static void dropout_apply(float *out, const float *inp, const float *res,
                                        const uint8_t *keep, size_t n, float scale) {
  if (res) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) out[i] = (keep[i] ? inp[i] * scale : 0.0f) + res[i];
  } else {
#pragma omp simd
    for (size_t i = 0; i < n; i++) out[i] = keep[i] ? inp[i] * scale : 0.0f;
  }
}

/* keep[k] for words i0 + k, k < n, at any alignment: the mask is generated
 * from the 64-aligned word at or before i0. */
static void dropout_span(uint8_t *keep, size_t i0, size_t n, float p, layer_rng key) {
  size_t a0 = i0 / (4 * DROP_LANES) * (4 * DROP_LANES);
  if (a0 == i0) {
    dropout_mask(keep, i0, i0 + n, p, key);
    return;
  }
  uint8_t head[4 * DROP_LANES];
  size_t skip = i0 - a0, first = 4 * DROP_LANES - skip < n ? 4 * DROP_LANES - skip : n;
  dropout_mask(head, a0, a0 + skip + first, p, key);
  memcpy(keep, head + skip, first);
  if (n > first) dropout_mask(keep + first, i0 + first, i0 + n, p, key);
}

/* out[k] = dropout(inp[k]) (+ res[k]) for words word0 + k of the site, k < n;
 * with mask, the keep bytes are recorded there. */
static void dropout_words(float *out, const float *inp, const float *res, uint8_t *mask,
                          size_t word0, size_t n, float p, layer_rng key) {
  float scale = p == 0.0f ? 1.0f : 1.0f / (1.0f - p);
  for (size_t j = 0; j < n; j += DROP_CHUNK) {
    size_t len = n - j < DROP_CHUNK ? n - j : DROP_CHUNK;
    uint8_t buf[DROP_CHUNK], *keep = mask ? mask + j : buf;
    if (p == 0.0f)
      memset(keep, 1, len);
    else
      dropout_span(keep, word0 + j, len, p, key);
    dropout_apply(out + j, inp + j, res ? res + j : NULL, keep, len, scale);
  }
}

/* Row r of (n, C) in out/inp (and res, mask) is row rows[r] of the site, its
 * words rows[r] * C + c (rows NULL: row r, and the site is split in chunks
 * instead of rows). */
static void dropout_rows(float *out, const float *inp, const float *res, uint8_t *mask,
                         const size_t *rows, size_t n, size_t C, float p, layer_rng key) {
  size_t total = n * C;
  size_t per = rows ? C : DROP_CHUNK, nchunks = rows ? n : (total + DROP_CHUNK - 1) / DROP_CHUNK;
#pragma omp parallel for if (total >= PAR_MIN)
  for (size_t ch = 0; ch < nchunks; ch++) {
    size_t i0 = ch * per, len = total - i0 < per ? total - i0 : per;
    dropout_words(out + i0, inp + i0, res ? res + i0 : NULL, mask ? mask + i0 : NULL,
                  rows ? rows[ch] * C : i0, len, p, key);
  }
}

void layer_dropout_forward(float *out, const float *inp, size_t n, float p, layer_rng key) {
  assert(p >= 0.0f && p < 1.0f);
  if (p == 0.0f) {
    if (out != inp) memmove(out, inp, n * sizeof(float));
    return;
  }
  dropout_rows(out, inp, NULL, NULL, NULL, n, 1, p, key);
}

void layer_dropout_backward(float *dinp, const float *dout, size_t n, float p, layer_rng key) {
  assert(p >= 0.0f && p < 1.0f);
  dropout_rows(dinp, dout, NULL, NULL, NULL, n, 1, p, key);
}

void layer_dropout_add_forward(float *out, const float *inp, const float *res, uint8_t *mask,
                               const size_t *rows, size_t n, size_t C, float p, layer_rng key) {
  assert(p >= 0.0f && p < 1.0f);
  dropout_rows(out, inp, res, p > 0.0f ? mask : NULL, rows, n, C, p, key);
}

void layer_dropout_mask_backward(float *dinp, const float *dout, const uint8_t *mask, size_t n,
                                 float p) {
  assert(p >= 0.0f && p < 1.0f);
  if (p == 0.0f) {
    memcpy(dinp, dout, n * sizeof(float));
    return;
  }
  float scale = 1.0f / (1.0f - p);
  size_t nchunks = (n + DROP_CHUNK - 1) / DROP_CHUNK;
#pragma omp parallel for if (n >= PAR_MIN)
  for (size_t ch = 0; ch < nchunks; ch++) {
    size_t i0 = ch * DROP_CHUNK, len = n - i0 < DROP_CHUNK ? n - i0 : DROP_CHUNK;
    dropout_apply(dinp + i0, dout + i0, NULL, mask + i0, len, scale);
  }
}

/* Softmax of one row of scores over the keys whose mask is set; padding
 * keys get exactly 0 (HuggingFace adds the most negative float to their
 * scores, which gives the same zero). */
VECTOR_CLONES static void masked_softmax_row(float *a, const int32_t *m, size_t T) {
  float mx = -INFINITY;
  for (size_t j = 0; j < T; j++)
    if (m[j] && a[j] > mx) mx = a[j];
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (size_t j = 0; j < T; j++) {
    a[j] = m[j] ? fast_expf(a[j] - mx) : 0.0f;
    s += a[j];
  }
  float inv = 1.0f / s;
#pragma omp simd
  for (size_t j = 0; j < T; j++) a[j] *= inv;
}

/* Which queries of sequence b: rows first .. first + count - 1 of q (and of
 * out), at positions pos[first + i] (qs NULL: all T, in order). Their
 * scores form the (count, T) block of head h at att + (first * NH + h *
 * count) * T, which is (B, NH, T, T) when every position is a query. */
static size_t q_first(const layer_queries *qs, size_t b, size_t T) { return qs ? qs->first[b] : b * T; }
static size_t q_count(const layer_queries *qs, size_t b, size_t T) {
  return qs ? qs->first[b + 1] - qs->first[b] : T;
}
static size_t q_pos(const layer_queries *qs, size_t row, size_t T) { return qs ? qs->pos[row] : row % T; }

/* Softmax over the keys of one head's nq x T scores a (in place) and, when
 * p > 0, their dropout into ad. Row i is the query at position pos of
 * sequence b; score (b, h, pos, key j) is word (bh T + pos) T + j of the
 * site: the full layout's, whichever queries are computed. */
static void attention_probs(float *a, float *ad, const int32_t *mask, const layer_queries *qs,
                            size_t first, size_t nq, size_t bh, size_t T, float p,
                            layer_rng key) {
  for (size_t i = 0; i < nq; i++) masked_softmax_row(a + i * T, mask, T);
  if (p > 0.0f)
    for (size_t i = 0; i < nq; i++)
      dropout_words(ad + i * T, a + i * T, NULL, NULL, (bh * T + q_pos(qs, first + i, T)) * T,
                    T, p, key);
}

/* One head's nq x T d(probabilities) ds, in place, into d(scores): through
 * the dropout, then the softmax, with the 1/sqrt(hs) of the scores folded
 * in. The dropout mask is read off ad: a kept probability is nonzero there
 * unless it is 0 in a too, and then the softmax backward multiplies its term
 * by that 0 anyway. */
static void attention_dscores(float *ds, const float *a, const float *ad, size_t nq, size_t T,
                              float p, float scale) {
  float keep_scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
  for (size_t i = 0; i < nq; i++) {
    float *dsi = ds + i * T;
    if (p > 0.0f) {
      const float *di = ad + i * T;
#pragma omp simd
      for (size_t j = 0; j < T; j++) dsi[j] = di[j] != 0.0f ? dsi[j] * keep_scale : 0.0f;
    }
    const float *ai = a + i * T;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (size_t j = 0; j < T; j++) dot += ai[j] * dsi[j];
#pragma omp simd
    for (size_t j = 0; j < T; j++) dsi[j] = scale * ai[j] * (dsi[j] - dot);
  }
}

/* Every query of every sequence: each product is one batch over
 * (sequence, head) through the GEMM seam (bf16 when the process is), the
 * softmax and dropout between them in fp32. */
static void attention_forward_all(float *out, float *att, float *attd, const float *q, size_t ldq,
                                  const float *kv, size_t ldkv, const int32_t *mask, float p,
                                  layer_rng key, size_t B, size_t T, size_t C, size_t NH) {
  size_t hs = C / NH, TT = T * T;
  float scale = 1.0f / sqrtf((float)hs);
  gemm_batch scores = {B, NH, T * ldq, hs, T * ldkv, hs, NH * TT, TT};
  gemm_batched(&scores, GEMM_N, GEMM_T, T, T, hs, scale, q, ldq, kv, ldkv, 0.0f, att, T);
#pragma omp parallel for schedule(static, 1) if (B * NH > 1)
  for (size_t bh = 0; bh < B * NH; bh++)
    attention_probs(att + bh * TT, p > 0.0f ? attd + bh * TT : NULL, mask + bh / NH * T, NULL,
                    bh / NH * T, T, bh, T, p, key);
  gemm_batch context = {B, NH, NH * TT, TT, T * ldkv, hs, T * C, hs};
  gemm_batched(&context, GEMM_N, GEMM_N, T, hs, T, 1.0f, p > 0.0f ? attd : att, T, kv + C, ldkv,
               0.0f, out, C);
}

static void attention_backward_all(float *dq, float *dkv, float *scratch, const float *dout,
                                   const float *q, size_t ldq, const float *kv, size_t ldkv,
                                   const float *att, const float *attd, float p, size_t B,
                                   size_t T, size_t C, size_t NH) {
  size_t hs = C / NH, TT = T * T;
  float scale = 1.0f / sqrtf((float)hs);
  const float *probs = p > 0.0f ? attd : att;
  /* d(probs) = dout v^T; dv = probs^T dout. */
  gemm_batch dprobs = {B, NH, T * C, hs, T * ldkv, hs, NH * TT, TT};
  gemm_batched(&dprobs, GEMM_N, GEMM_T, T, T, hs, 1.0f, dout, C, kv + C, ldkv, 0.0f, scratch, T);
  gemm_batch dv = {B, NH, NH * TT, TT, T * C, hs, T * ldkv, hs};
  gemm_batched(&dv, GEMM_T, GEMM_N, T, hs, T, 1.0f, probs, T, dout, C, 0.0f, dkv + C, ldkv);
#pragma omp parallel for schedule(static, 1) if (B * NH > 1)
  for (size_t bh = 0; bh < B * NH; bh++)
    attention_dscores(scratch + bh * TT, att + bh * TT, p > 0.0f ? attd + bh * TT : NULL, T, T,
                      p, scale);
  /* dq = d(scores) k; dk = d(scores)^T q. */
  gemm_batch dqb = {B, NH, NH * TT, TT, T * ldkv, hs, T * ldq, hs};
  gemm_batched(&dqb, GEMM_N, GEMM_N, T, hs, T, 1.0f, scratch, T, kv, ldkv, 0.0f, dq, ldq);
  gemm_batch dkb = {B, NH, NH * TT, TT, T * ldq, hs, T * ldkv, hs};
  gemm_batched(&dkb, GEMM_T, GEMM_N, T, hs, T, 1.0f, scratch, T, q, ldq, 0.0f, dkv, ldkv);
}

/* Some queries per sequence (the pruned last layer): the per-head products
 * are small (count x T x hs) and their row counts change with every batch,
 * which would build a new bf16 primitive for each: heads are split among
 * threads and each product runs on one in fp32 (gemm_small). They are a
 * sixth of one layer's attention FLOPs. */
void layer_attention_forward_q(float *out, float *att, float *attd, const float *q, size_t ldq,
                               const float *kv, size_t ldkv, const layer_queries *qs,
                               const int32_t *mask, float p, layer_rng key, size_t B, size_t T,
                               size_t C, size_t NH) {
  assert(C % NH == 0 && (p == 0.0f || attd));
  if (!qs) {
    attention_forward_all(out, att, attd, q, ldq, kv, ldkv, mask, p, key, B, T, C, NH);
    return;
  }
  size_t hs = C / NH;
  float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for schedule(static, 1) if (B * NH > 1)
  for (size_t bh = 0; bh < B * NH; bh++) {
    size_t b = bh / NH, h = bh % NH, first = q_first(qs, b, T), nq = q_count(qs, b, T);
    if (nq == 0) continue;
    const float *qb = q + first * ldq + h * hs, *k = kv + b * T * ldkv + h * hs, *v = k + C;
    size_t blk = (first * NH + h * nq) * T;
    float *a = att + blk, *ad = p > 0.0f ? attd + blk : NULL;
    gemm_small(GEMM_N, GEMM_T, nq, T, hs, scale, qb, ldq, k, ldkv, 0.0f, a, T);
    attention_probs(a, ad, mask + b * T, qs, first, nq, bh, T, p, key);
    gemm_small(GEMM_N, GEMM_N, nq, hs, T, 1.0f, ad ? ad : a, T, v, ldkv, 0.0f,
               out + first * C + h * hs, C);
  }
}

void layer_attention_backward_q(float *dq, float *dkv, float *scratch, const float *dout,
                                const float *q, size_t ldq, const float *kv, size_t ldkv,
                                const layer_queries *qs, const float *att, const float *attd,
                                float p, size_t B, size_t T, size_t C, size_t NH) {
  assert(C % NH == 0 && (p == 0.0f || attd));
  if (!qs) {
    attention_backward_all(dq, dkv, scratch, dout, q, ldq, kv, ldkv, att, attd, p, B, T, C, NH);
    return;
  }
  size_t hs = C / NH;
  float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for schedule(static, 1) if (B * NH > 1)
  for (size_t bh = 0; bh < B * NH; bh++) {
    size_t b = bh / NH, h = bh % NH, first = q_first(qs, b, T), nq = q_count(qs, b, T);
    float *dk = dkv + b * T * ldkv + h * hs, *dv = dk + C;
    if (nq == 0) {
      /* No query of this sequence is computed: its keys and values had no
       * effect. */
      for (size_t t = 0; t < T; t++) {
        memset(dk + t * ldkv, 0, hs * sizeof(float));
        memset(dv + t * ldkv, 0, hs * sizeof(float));
      }
      continue;
    }
    size_t blk = (first * NH + h * nq) * T;
    const float *a = att + blk, *ad = p > 0.0f ? attd + blk : NULL;
    const float *k = kv + b * T * ldkv + h * hs, *v = k + C, *qb = q + first * ldq + h * hs;
    const float *d = dout + first * C + h * hs;
    float *ds = scratch + blk, *dqb = dq + first * ldq + h * hs;
    /* d(probs) = dout v^T; dv = probs^T dout. */
    gemm_small(GEMM_N, GEMM_T, nq, T, hs, 1.0f, d, C, v, ldkv, 0.0f, ds, T);
    gemm_small(GEMM_T, GEMM_N, T, hs, nq, 1.0f, ad ? ad : a, T, d, C, 0.0f, dv, ldkv);
    attention_dscores(ds, a, ad, nq, T, p, scale);
    gemm_small(GEMM_N, GEMM_N, nq, hs, T, 1.0f, ds, T, k, ldkv, 0.0f, dqb, ldq);
    gemm_small(GEMM_T, GEMM_N, T, hs, nq, 1.0f, ds, T, qb, ldq, 0.0f, dk, ldkv);
  }
}

void layer_attention_forward(float *out, float *att, float *attd, const float *qkv,
                             const int32_t *mask, float p, layer_rng key, size_t B, size_t T,
                             size_t C, size_t NH) {
  layer_attention_forward_q(out, att, attd, qkv, 3 * C, qkv + C, 3 * C, NULL, mask, p, key, B, T,
                            C, NH);
}

void layer_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                              const float *att, const float *attd, float p, size_t B, size_t T,
                              size_t C, size_t NH) {
  layer_attention_backward_q(dqkv, dqkv + C, scratch, dout, qkv, 3 * C, qkv + C, 3 * C, NULL, att,
                             attd, p, B, T, C, NH);
}

void layer_gather_forward(float *out, const float *inp, const size_t *rows, size_t P, size_t C) {
  for (size_t i = 0; i < P; i++) memcpy(out + i * C, inp + rows[i] * C, C * sizeof(float));
}

void layer_gather_backward(float *dinp, const float *dout, const size_t *rows, size_t P,
                           size_t C) {
  for (size_t i = 0; i < P; i++) {
    float *d = dinp + rows[i] * C;
    const float *s = dout + i * C;
    for (size_t c = 0; c < C; c++) d[c] += s[c];
  }
}

/* Softmax of one row in place. */
VECTOR_CLONES static void softmax_row(float *x, size_t V) {
  float mx = x[0];
  for (size_t v = 1; v < V; v++) mx = x[v] > mx ? x[v] : mx;
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (size_t v = 0; v < V; v++) {
    x[v] = fast_expf(x[v] - mx);
    s += x[v];
  }
  float inv = 1.0f / s;
#pragma omp simd
  for (size_t v = 0; v < V; v++) x[v] *= inv;
}

double layer_crossentropy_forward(float *logits, const int32_t *targets, size_t N, size_t V) {
#pragma omp parallel for if (N * V >= PAR_MIN)
  for (size_t n = 0; n < N; n++) softmax_row(logits + n * V, V);
  /* Summed on one thread in row order, so the loss is the same bits for any
   * thread count. */
  double total = 0.0;
  for (size_t n = 0; n < N; n++) {
    assert(targets[n] >= 0 && (size_t)targets[n] < V);
    float prob = logits[n * V + (size_t)targets[n]];
    total -= log(prob > FLT_MIN ? (double)prob : (double)FLT_MIN);
  }
  return N ? total / (double)N : 0.0;
}

void layer_crossentropy_backward_inplace(float *probs, const int32_t *targets, size_t N, size_t V,
                                         float dloss) {
  float g = N ? dloss / (float)N : 0.0f;
#pragma omp parallel for if (N * V >= PAR_MIN)
  for (size_t n = 0; n < N; n++) {
    float *x = probs + n * V;
    for (size_t v = 0; v < V; v++) x[v] *= g;
    x[targets[n]] -= g;
  }
}
