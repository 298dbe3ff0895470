/* The GEMM seam (see gemm.h): fp32 products split among the OpenMP threads
 * onto single-threaded OpenBLAS calls; bf16 products handed whole to oneDNN
 * (trainer/gemm_onednn.c), which threads them itself. */
#include "trainer/gemm.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>

#include "trainer/gemm_onednn.h"
#include "trainer/simd.h"
#include "util/log.h"
#include "util/rng.h"
#include "util/status.h"
#include "util/timer.h"

/* Conversions shorter than this run on one thread: waking the team costs
 * more. */
#define PAR_MIN 32768

static CBLAS_TRANSPOSE cblas_trans(gemm_trans t) { return t == GEMM_T ? CblasTrans : CblasNoTrans; }

/* gemm_split cuts C once the side it splits is GEMM_SPLIT_MIN long: rows
 * into one run per thread, bounded at multiples of GEMM_ROW_GRAIN; columns
 * into about GEMM_COL_BLOCKS blocks (multiples of 16, at least GEMM_COL_MIN
 * wide) that the threads share. No sgemm call takes more than
 * GEMM_CALL_MAX rows or columns. */
#define GEMM_SPLIT_MIN 128
#define GEMM_ROW_GRAIN 48
#define GEMM_CALL_MAX (128 * GEMM_ROW_GRAIN)
#define GEMM_COL_BLOCKS 16
#define GEMM_COL_MIN 256

/* C (M x N) = alpha op(A) op(B) + beta C, row-major, split among the OpenMP
 * threads, each part one single-threaded sgemm. ddpt runs OpenBLAS on one
 * thread (blas_set_threads): one pool of threads for GEMMs and element-wise
 * loops alike, instead of OpenBLAS's workers spinning for a core while
 * OpenMP's run.
 *
 * The bits must not depend on the thread count, yet OpenBLAS does not sum
 * an element of C the same way wherever it lies in a call: its AVX2 kernels
 * (Haswell, Zen; 0.3.21) take C's rows in panels of 12 counted from the
 * call's first row and again from row GEMM_R (104512), its columns in
 * blocks of GEMM_P (320) sized from the call's width, and keep two partial
 * sums per element in some panels. So rows are cut at multiples of 48 (of
 * 12, and of the 16 the AVX-512 kernel was checked with) into calls of at
 * most GEMM_CALL_MAX rows: a row then sits at the same place of the same
 * panel for any thread count. Columns are cut into blocks that depend on N
 * alone: each is the same call for any thread count. Checked, 1 thread
 * against 2, under each kernel this CPU runs (tests/trainer_kernels.cmake).
 *
 * Each part packs its own copy of the operand it shares: op(B) for a run
 * of rows, op(A) for a block of columns, and blocks outnumber threads when
 * threads are few. So C is split by rows unless it has fewer than
 * GEMM_SPLIT_MIN or is at least 4 times as wide as tall, like the MLM
 * decoder's [predictions, V], where no thread then packs the whole [V, H]
 * matrix again. */
static void gemm_split(gemm_trans gta, gemm_trans gtb, size_t M, size_t N, size_t K,
                       float alpha, const float *A, size_t lda, const float *B, size_t ldb,
                       float beta, float *C, size_t ldc) {
  CBLAS_TRANSPOSE ta = cblas_trans(gta), tb = cblas_trans(gtb);
  int by_rows = M >= GEMM_SPLIT_MIN && N < 4 * M;
  size_t len = by_rows ? M : N;
  /* Part p covers grains [p * ng / nparts, (p + 1) * ng / nparts). */
  size_t grain = len, ng = 1, nparts = 1;
  if (by_rows) {
    size_t nt = (size_t)omp_get_max_threads();
    grain = GEMM_ROW_GRAIN;
    ng = (len + grain - 1) / grain;
    nparts = nt < ng ? nt : ng;
  } else if (len >= GEMM_SPLIT_MIN) {
    grain = ((len + GEMM_COL_BLOCKS - 1) / GEMM_COL_BLOCKS + 15) / 16 * 16;
    if (grain < GEMM_COL_MIN) grain = GEMM_COL_MIN;
    ng = nparts = (len + grain - 1) / grain;
  }
#pragma omp parallel for schedule(dynamic, 1) if (nparts > 1)
  for (size_t part = 0; part < nparts; part++) {
    size_t end = (part + 1) * ng / nparts * grain;
    if (end > len) end = len;
    for (size_t i0 = part * ng / nparts * grain; i0 < end; i0 += GEMM_CALL_MAX) {
      size_t n = end - i0 < GEMM_CALL_MAX ? end - i0 : GEMM_CALL_MAX;
      if (by_rows) {
        const float *a = ta == CblasNoTrans ? A + i0 * lda : A + i0;
        cblas_sgemm(CblasRowMajor, ta, tb, (int)n, (int)N, (int)K, alpha, a, (int)lda, B,
                    (int)ldb, beta, C + i0 * ldc, (int)ldc);
      } else {
        const float *b = tb == CblasNoTrans ? B + i0 : B + i0 * ldb;
        cblas_sgemm(CblasRowMajor, ta, tb, (int)M, (int)n, (int)K, alpha, A, (int)lda, b,
                    (int)ldb, beta, C + i0, (int)ldc);
      }
    }
  }
}


void gemm_small(gemm_trans ta, gemm_trans tb, size_t M, size_t N, size_t K, float alpha,
                const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                size_t ldc) {
  cblas_sgemm(CblasRowMajor, cblas_trans(ta), cblas_trans(tb), (int)M, (int)N, (int)K, alpha, A,
              (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

const char *gemm_precision_name(int precision) {
  static const char *const names[] = {"fp32", "bf16"};
  return precision >= 0 && precision < 2 ? names[precision] : NULL;
}

int gemm_precision_parse(const char *name) {
  for (int p = 0; gemm_precision_name(p); p++)
    if (strcmp(name, gemm_precision_name(p)) == 0) return p;
  return -1;
}

/* ---------------------------------------------------------------- bf16 */

static gemm_precision g_precision = GEMM_FP32;

/* The registered parameter arena and its bf16 shadow. */
static const float *g_arena;
static uint16_t *g_shadow;
static size_t g_arena_n;

/* Conversion buffers for the operands that are not in the arena. */
static uint16_t *g_scratch[2];
static size_t g_scratch_n[2];

/* The rounding of AVX512_BF16's VCVTNEPS2BF16, which to_bf16_range uses
 * where the CPU has it, so that every CPU gives the same bits: round to
 * nearest even on the 16 bits dropped; a NaN keeps a mantissa bit (quiet)
 * so it does not become an infinity; a denormal becomes a zero of its sign
 * (the instruction treats denormal inputs as zero). */
static inline uint16_t to_bf16(float f) {
  union {
    float f;
    uint32_t u;
  } v = {.f = f};
  uint32_t rounded = (v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16;
  uint16_t sign_zero = (uint16_t)((v.u >> 16) & 0x8000u);
  return (v.u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((v.u >> 16) | 0x40u)
         : (v.u & 0x7f800000u) == 0       ? sign_zero
                                          : (uint16_t)rounded;
}

VECTOR_CLONES static void to_bf16_portable(uint16_t *dst, const float *src, size_t n) {
#pragma omp simd
  for (size_t i = 0; i < n; i++) dst[i] = to_bf16(src[i]);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* One instruction per 16 values instead of the dozen the portable rounding
 * vectorises to: the conversions are most of the non-GEMM cost that bf16
 * adds (attention's operands are rounded at every product). */
__attribute__((target("avx512f,avx512bf16"))) static void to_bf16_native(uint16_t *dst,
                                                                         const float *src,
                                                                         size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
    _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)h);
  }
  for (; i < n; i++) dst[i] = to_bf16(src[i]);
}

/* Set once at load, before any thread reads it. */
static int g_cpu_bf16;
__attribute__((constructor)) static void detect_cpu_bf16(void) {
  __builtin_cpu_init();
  g_cpu_bf16 = __builtin_cpu_supports("avx512bf16");
}
#endif

static void to_bf16_range(uint16_t *dst, const float *src, size_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (g_cpu_bf16) {
    to_bf16_native(dst, src, n);
    return;
  }
#endif
  to_bf16_portable(dst, src, n);
}

void gemm_to_bf16_serial(uint16_t *dst, const float *src, size_t n) { to_bf16_range(dst, src, n); }

void gemm_to_bf16(uint16_t *dst, const float *src, size_t n) {
  enum { CHUNK = 16384 };
  size_t nchunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for if (n >= PAR_MIN)
  for (size_t ch = 0; ch < nchunks; ch++) {
    size_t i0 = ch * CHUNK, len = n - i0 < CHUNK ? n - i0 : CHUNK;
    to_bf16_range(dst + i0, src + i0, len);
  }
}

void gemm_shadow_set(const float *arena, uint16_t *shadow, size_t n) {
  g_arena = arena;
  g_shadow = arena ? shadow : NULL;
  g_arena_n = arena ? n : 0;
}

void gemm_shadow_fill(void) {
  if (g_arena) gemm_to_bf16(g_shadow, g_arena, g_arena_n);
}

size_t gemm_scratch_bytes(void) { return (g_scratch_n[0] + g_scratch_n[1]) * sizeof(uint16_t); }

/* Conversion buffer `slot`, grown to n bf16 values. Out of memory ends the
 * process with one line (no caller could recover mid-pass); rows x cols
 * names the operand. */
static uint16_t *scratch_reserve(int slot, size_t n, size_t rows, size_t cols) {
  if (n > g_scratch_n[slot]) {
    uint16_t *grown = realloc(g_scratch[slot], n * sizeof(uint16_t));
    if (!grown) {
      log_error("out of memory for a %zu x %zu bf16 operand: lower the batch size or run with "
                "precision = fp32", rows, cols);
      exit(EXIT_FAILURE);
    }
    g_scratch[slot] = grown, g_scratch_n[slot] = n;
  }
  return g_scratch[slot];
}

/* An operand stored as rows x cols floats, row stride ld, in bf16: its
 * shadow when it lies in the registered arena (*ld_out = ld), else rounded
 * into conversion buffer `slot`, rows packed (*ld_out = cols). */
static const uint16_t *bf16_operand(const float *x, size_t rows, size_t cols, size_t ld, int slot,
                                    size_t *ld_out) {
  if (g_arena && x >= g_arena && x < g_arena + g_arena_n) {
    *ld_out = ld;
    return g_shadow + (x - g_arena);
  }
  size_t need = rows * cols;
  uint16_t *dst = scratch_reserve(slot, need, rows, cols);
  if (ld == cols)
    gemm_to_bf16(dst, x, need);
  else {
#pragma omp parallel for if (need >= PAR_MIN)
    for (size_t r = 0; r < rows; r++) to_bf16_range(dst + r * cols, x + r * ld, cols);
  }
  *ld_out = cols;
  return dst;
}

int gemm_bf16_emulated(void) {
  static int on = -1;
  if (on < 0) {
    const char *e = getenv("DDPT_TEST_BF16_EMULATE");
    on = e && *e && strcmp(e, "0") != 0;
  }
  return on;
}

/* The emulation's fp32 copies of the operands (and a product, with a
 * bias), grown as needed: products run one at a time, on the calling
 * thread (oneDNN's cache is not shared either). */
static float *g_wide[3];
static size_t g_wide_n[3];

static float *wide_reserve(int slot, size_t n, char **err) {
  if (g_wide_n[slot] < n) {
    float *p = realloc(g_wide[slot], n * sizeof *p);
    if (!p) {
      status_set(err, ST_NOMEM, "out of memory for %zu floats of an emulated bf16 product", n);
      return NULL;
    }
    g_wide[slot] = p, g_wide_n[slot] = n;
  }
  return g_wide[slot];
}

static void widen(float *dst, const uint16_t *src, size_t rows, size_t cols, size_t ld) {
  for (size_t r = 0; r < rows; r++)
    for (size_t c = 0; c < cols; c++) dst[r * cols + c] = gemm_bf16_value(src[r * ld + c]);
}

/* DDPT_TEST_BF16_EMULATE's product, as onednn_matmul_bf16_batched
 * defines it: C = alpha op(A) op(B) (+ bias) + beta C per product. */
static int matmul_bf16_emulated(const onednn_batch *ob, gemm_trans ta, gemm_trans tb, size_t M,
                                size_t N, size_t K, float alpha, const uint16_t *A, size_t la,
                                const uint16_t *B, size_t lb, const float *bias, float beta, float *C,
                                size_t ldc, char **err) {
  size_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
  float *a = wide_reserve(0, ar * ac, err), *b = a ? wide_reserve(1, br * bc, err) : NULL;
  float *t = b && bias ? wide_reserve(2, M * N, err) : NULL;
  if (!a || !b || (bias && !t)) return ST_NOMEM;
  for (size_t i = 0; i < ob->n1; i++)
    for (size_t j = 0; j < ob->n2; j++) {
      widen(a, A + i * ob->sa[0] + j * ob->sa[1], ar, ac, la);
      widen(b, B + i * ob->sb[0] + j * ob->sb[1], br, bc, lb);
      float *c = C + i * ob->sc[0] + j * ob->sc[1];
      if (!bias) {
        cblas_sgemm(CblasRowMajor, cblas_trans(ta), cblas_trans(tb), (int)M, (int)N, (int)K, alpha, a, (int)ac,
                    b, (int)bc, beta, c, (int)ldc);
        continue;
      }
      cblas_sgemm(CblasRowMajor, cblas_trans(ta), cblas_trans(tb), (int)M, (int)N, (int)K, alpha, a, (int)ac, b,
                  (int)bc, 0.0f, t, (int)N);
      for (size_t r = 0; r < M; r++)
        for (size_t k = 0; k < N; k++) {
          float v = t[r * N + k] + bias[k];
          c[r * ldc + k] = beta != 0.0f ? v + beta * c[r * ldc + k] : v;
        }
    }
  return ST_OK;
}

/* One bf16 product (a batch of them, or one with ob = NULL): oneDNN's, or
 * the test hook's emulation. */
static int product_bf16(const onednn_batch *ob, gemm_trans ta, gemm_trans tb, size_t M, size_t N, size_t K,
                        float alpha, const uint16_t *a, size_t la, const uint16_t *b, size_t lb,
                        const float *bias, float beta, float *C, size_t ldc, char **err) {
  static const onednn_batch one = {.n1 = 1, .n2 = 1};
  if (gemm_bf16_emulated())
    return matmul_bf16_emulated(ob ? ob : &one, ta, tb, M, N, K, alpha, a, la, b, lb, bias, beta, C, ldc, err);
  return onednn_matmul_bf16_batched(ob ? ob : &one, ta, tb, M, N, K, alpha, a, la, b, lb, bias, beta, C, ldc,
                                    err);
}

/* One bf16 product. A failure here means a shape oneDNN cannot do though
 * it did the probe product of gemm_set_precision: no caller could recover,
 * so it ends the process with the one line. */
static void matmul_bf16(const onednn_batch *ob, gemm_trans ta, gemm_trans tb, size_t M, size_t N,
                        size_t K, float alpha, const uint16_t *a, size_t la, const uint16_t *b,
                        size_t lb, const float *bias, float beta, float *C, size_t ldc) {
  char *err = NULL;
  if (product_bf16(ob, ta, tb, M, N, K, alpha, a, la, b, lb, bias, beta, C, ldc, &err) != ST_OK) {
    log_error("%s", err);
    free(err);
    exit(EXIT_FAILURE);
  }
}

/* The bf16 product of an A already in bf16 (row stride la), with a bias
 * row or none. */
static void gemm_bf16_a(gemm_trans ta, gemm_trans tb, size_t M, size_t N, size_t K, float alpha,
                        const uint16_t *a, size_t la, const float *B, size_t ldb,
                        const float *bias, float beta, float *C, size_t ldc) {
  size_t lb;
  const uint16_t *b = bf16_operand(B, tb ? N : K, tb ? K : N, ldb, 1, &lb);
  matmul_bf16(NULL, ta, tb, M, N, K, alpha, a, la, b, lb, bias, beta, C, ldc);
}

/* The bf16 product, with a bias row or none. */
static void gemm_bf16(gemm_trans ta, gemm_trans tb, size_t M, size_t N, size_t K, float alpha,
                      const float *A, size_t lda, const float *B, size_t ldb, const float *bias,
                      float beta, float *C, size_t ldc) {
  size_t la;
  const uint16_t *a = bf16_operand(A, ta ? K : M, ta ? M : K, lda, 0, &la);
  gemm_bf16_a(ta, tb, M, N, K, alpha, a, la, B, ldb, bias, beta, C, ldc);
}

void gemm(gemm_trans ta, gemm_trans tb, size_t M, size_t N, size_t K, float alpha,
          const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
          size_t ldc) {
  if (g_precision == GEMM_FP32 || M == 0 || N == 0 || K == 0) {
    gemm_split(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, NULL, beta, C, ldc);
}

void gemm_bias(gemm_trans ta, gemm_trans tb, size_t M, size_t N, size_t K, const float *A,
               size_t lda, const float *B, size_t ldb, const float *bias, float *C, size_t ldc) {
  if (g_precision == GEMM_BF16 && M && N && K) {
    /* oneDNN adds the bias as it stores C: no pass writing the bias rows
     * and no reading them back. */
    gemm_bf16(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, bias, 0.0f, C, ldc);
    return;
  }
#pragma omp parallel for if (M * N >= PAR_MIN)
  for (size_t i = 0; i < M; i++) memcpy(C + i * ldc, bias, N * sizeof(float));
  gemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 1.0f, C, ldc);
}

/* gemm_linear_backward in bf16, its input given as a float (inp) or
 * already in bf16 (inp_h, rows packed); N, C, OC > 0. */
static void linear_backward_bf16(float *dinp, int add, float *dw, const float *dout, size_t ldd,
                                 const float *inp, const uint16_t *inp_h, const float *w, size_t N,
                                 size_t C, size_t OC) {
  size_t ld, lw, li = C;
  const uint16_t *d = bf16_operand(dout, N, OC, ldd, 0, &ld);
  if (dinp) {
    const uint16_t *wh = bf16_operand(w, OC, C, C, 1, &lw);
    matmul_bf16(NULL, GEMM_N, GEMM_N, N, C, OC, 1.0f, d, ld, wh, lw, NULL, add ? 1.0f : 0.0f,
                dinp, C);
  }
  const uint16_t *x = inp_h ? inp_h : bf16_operand(inp, N, C, C, 1, &li);
  matmul_bf16(NULL, GEMM_T, GEMM_N, OC, C, N, 1.0f, d, ld, x, li, NULL, 1.0f, dw, C);
}

void gemm_linear_backward(float *dinp, int add, float *dw, const float *dout, size_t ldd,
                          const float *inp, const float *w, size_t N, size_t C, size_t OC) {
  if (g_precision == GEMM_FP32 || N == 0 || C == 0 || OC == 0) {
    if (dinp) gemm(GEMM_N, GEMM_N, N, C, OC, 1.0f, dout, ldd, w, C, add ? 1.0f : 0.0f, dinp, C);
    gemm(GEMM_T, GEMM_N, OC, C, N, 1.0f, dout, ldd, inp, C, 1.0f, dw, C);
    return;
  }
  linear_backward_bf16(dinp, add, dw, dout, ldd, inp, NULL, w, N, C, OC);
}

void gemm_bias_bf16in(const uint16_t *inp, const float *w, const float *bias, float *out,
                      size_t N, size_t C, size_t OC) {
  assert(g_precision == GEMM_BF16 && "an input kept in bf16 outside precision = bf16");
  if (N == 0 || OC == 0) return;
  if (C == 0) {
    for (size_t i = 0; i < N; i++) memcpy(out + i * OC, bias, OC * sizeof *out);
    return;
  }
  gemm_bf16_a(GEMM_N, GEMM_T, N, OC, C, 1.0f, inp, C, w, C, bias, 0.0f, out, OC);
}

void gemm_linear_backward_bf16in(float *dinp, float *dw, const float *dout, const uint16_t *inp,
                                 const float *w, size_t N, size_t C, size_t OC) {
  assert(g_precision == GEMM_BF16 && "an input kept in bf16 outside precision = bf16");
  if (N == 0 || C == 0 || OC == 0) {
    if (dinp) memset(dinp, 0, N * C * sizeof *dinp);
    return;
  }
  linear_backward_bf16(dinp, 0, dw, dout, OC, NULL, inp, w, N, C, OC);
}

/* The bf16 operand of each product (i, j) of a batch: the stored rows x
 * cols matrix at x + i s1 + j s2 (row stride ld), rounded into conversion
 * buffer `slot`, the products' matrices back to back (rows x cols each, in
 * (i, j) order). */
static const uint16_t *bf16_batch_operand(const float *x, size_t n1, size_t n2, size_t s1,
                                          size_t s2, size_t rows, size_t cols, size_t ld,
                                          int slot) {
  size_t nrows = n1 * n2 * rows;
  uint16_t *dst = scratch_reserve(slot, nrows * cols, rows, cols);
#pragma omp parallel for if (nrows * cols >= PAR_MIN)
  for (size_t r = 0; r < nrows; r++) {
    size_t ij = r / rows, i = ij / n2, j = ij % n2;
    to_bf16_range(dst + r * cols, x + i * s1 + j * s2 + (r % rows) * ld, cols);
  }
  return dst;
}

void gemm_batched(const gemm_batch *bt, gemm_trans ta, gemm_trans tb, size_t M, size_t N,
                  size_t K, float alpha, const float *A, size_t lda, const float *B, size_t ldb,
                  float beta, float *C, size_t ldc) {
  size_t count = bt->n1 * bt->n2;
  if (count == 0 || M == 0 || N == 0) return;
  if (g_precision == GEMM_FP32 || K == 0) {
#pragma omp parallel for schedule(static, 1) if (count > 1)
    for (size_t ij = 0; ij < count; ij++) {
      size_t i = ij / bt->n2, j = ij % bt->n2;
      gemm_small(ta, tb, M, N, K, alpha, A + i * bt->a1 + j * bt->a2, lda,
                 B + i * bt->b1 + j * bt->b2, ldb, beta, C + i * bt->c1 + j * bt->c2, ldc);
    }
    return;
  }
  size_t arows = ta ? K : M, acols = ta ? M : K, brows = tb ? N : K, bcols = tb ? K : N;
  const uint16_t *a = bf16_batch_operand(A, bt->n1, bt->n2, bt->a1, bt->a2, arows, acols, lda, 0);
  const uint16_t *b = bf16_batch_operand(B, bt->n1, bt->n2, bt->b1, bt->b2, brows, bcols, ldb, 1);
  size_t asz = arows * acols, bsz = brows * bcols;
  onednn_batch ob = {bt->n1, bt->n2, {bt->n2 * asz, asz}, {bt->n2 * bsz, bsz}, {bt->c1, bt->c2}};
  matmul_bf16(&ob, ta, tb, M, N, K, alpha, a, acols, b, bcols, NULL, beta, C, ldc);
}

int gemm_bf16_supported(char *why, size_t size) {
  int native = onednn_bf16_native();
  if (why)
    snprintf(why, size, "oneDNN dispatches to %s, which %s%s", onednn_isa(),
             native ? "computes bf16 natively" : "has no bf16 instructions (AVX512_BF16 or AMX)",
             gemm_bf16_emulated() ? "; DDPT_TEST_BF16_EMULATE emulates the products (tests only)" : "");
  return native || gemm_bf16_emulated();
}

/* Max relative error of a 64x48x80 bf16 product (both transposes) against
 * a double loop over the same bf16 values: the library computes what ddpt
 * asks. */
static double bf16_probe(void) {
  enum { M = 64, N = 48, K = 80 };
  static float a[K * M], b[N * K], c[M * N];
  static uint16_t ah[K * M], bh[N * K];
  rng_stream s;
  rng_stream_init(&s, 7, 1, 6, 0);
  for (int i = 0; i < K * M; i++) a[i] = rng_next_uniform(&s) - 0.5f;
  for (int i = 0; i < N * K; i++) b[i] = rng_next_uniform(&s) - 0.5f;
  gemm_to_bf16(ah, a, K * M);
  gemm_to_bf16(bh, b, N * K);
  if (product_bf16(NULL, GEMM_T, GEMM_T, M, N, K, 1.0f, ah, M, bh, K, NULL, 0.0f, c, N, NULL) != ST_OK) return 1.0;
  double worst = 0.0;
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double ref = 0.0, mag = 0.0;
      for (int k = 0; k < K; k++) {
        double t = (double)gemm_bf16_value(ah[k * M + i]) * gemm_bf16_value(bh[j * K + k]);
        ref += t, mag += t < 0 ? -t : t;
      }
      double d = c[i * N + j] - ref, rel = (d < 0 ? -d : d) / (mag > 0 ? mag : 1.0);
      if (rel > worst) worst = rel;
    }
  return worst;
}

int gemm_set_precision(gemm_precision precision, char **err) {
  /* Checked once per process: every model's pass sets its precision. */
  static int checked;
  static double probe_error;
  if (precision == GEMM_BF16) {
    char why[160];
    if (!gemm_bf16_supported(why, sizeof why))
      return status_set(err, ST_INVALID,
                        "precision = bf16 would run slower than fp32 on this CPU (%s): use "
                        "precision = fp32",
                        why);
    if (!checked) probe_error = bf16_probe(), checked = 1;
    if (!(probe_error < 1e-5))
      return status_set(err, ST_INVALID,
                        "oneDNN's bf16 matmul (isa %s) computes a test product with relative "
                        "error %.2g: use precision = fp32",
                        onednn_isa(), probe_error);
  }
  g_precision = precision;
  return ST_OK;
}

gemm_precision gemm_get_precision(void) { return g_precision; }

void gemm_onednn_version(char *buf, size_t size) { onednn_version(buf, size); }
const char *gemm_onednn_isa(void) { return onednn_isa(); }

double gemm_bf16_gflops(int n, int reps) {
  if (!onednn_bf16_native()) return 0.0;
  size_t nn = (size_t)n * (size_t)n;
  uint16_t *a = malloc(2 * nn * sizeof(uint16_t));
  float *c = malloc(nn * sizeof(float));
  double best = 0.0;
  if (a && c) {
    uint16_t *b = a + nn;
    for (size_t i = 0; i < 2 * nn; i++) a[i] = to_bf16((float)(i % 7) * 0.125f - 0.375f);
    for (int r = 0; r < reps; r++) {
      double t0 = timer_now();
      if (onednn_matmul_bf16(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n, NULL) != ST_OK) break;
      double gf = 2.0 * (double)n * nn / (timer_now() - t0) / 1e9;
      if (gf > best) best = gf;
    }
  }
  free(a);
  free(c);
  return best;
}
