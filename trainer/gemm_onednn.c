/* oneDNN matmul for bf16 products (see gemm_onednn.h). oneDNN's own
 * primitive cache would find a primitive again, but only after building its
 * descriptor: ddpt keeps the few dozen shapes of a model itself, each with
 * its memory objects, so a product costs one lookup and one execute. */
#include "trainer/gemm_onednn.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "util/log.h"
#include "util/status.h"

/* A model has ~10 distinct linear shapes per direction; the MLM head's rows
 * vary with the number of masked tokens, so the table evicts the least
 * recently used entry rather than grow. */
enum { CACHE_SIZE = 64 };

typedef struct mm_key {
  int ta, tb;
  size_t M, N, K, lda, ldb, ldc;
  float alpha, beta;
  onednn_batch batch; /* n1 = n2 = 1 (strides 0): one product */
  int bias;           /* a bias row added to C (one product only) */
} mm_key;

typedef struct mm_entry {
  mm_key key;
  dnnl_primitive_t prim;
  dnnl_memory_t a, b, c, bias;
  unsigned long long used; /* tick of the last use; 0: empty slot */
} mm_entry;

static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
static mm_entry g_cache[CACHE_SIZE];
static unsigned long long g_tick;

static int engine_ready(char **err) {
  if (g_stream) return ST_OK;
  if (dnnl_engine_create(&g_engine, dnnl_cpu, 0) != dnnl_success ||
      dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags) != dnnl_success)
    return status_set(err, ST_INVALID, "oneDNN could not create its CPU engine: check libdnnl2");
  return ST_OK;
}

static void entry_clear(mm_entry *e) {
  if (e->prim) dnnl_primitive_destroy(e->prim);
  if (e->a) dnnl_memory_destroy(e->a);
  if (e->b) dnnl_memory_destroy(e->b);
  if (e->c) dnnl_memory_destroy(e->c);
  if (e->bias) dnnl_memory_destroy(e->bias);
  memset(e, 0, sizeof *e);
}

/* A row-major rows x cols matrix with row stride ld, or its transpose
 * (trans: the stored matrix is cols x rows); with a batch, an (n1, n2)
 * array of them, strides bs apart. */
static void matrix_desc(dnnl_memory_desc_t *md, const onednn_batch *bt, const size_t *bs,
                        size_t rows, size_t cols, size_t ld, int trans, dnnl_data_type_t type) {
  dnnl_dim_t rs = trans ? 1 : (dnnl_dim_t)ld, cs = trans ? (dnnl_dim_t)ld : 1;
  if (bt->n1 * bt->n2 == 1) {
    dnnl_dims_t dims = {(dnnl_dim_t)rows, (dnnl_dim_t)cols}, strides = {rs, cs};
    dnnl_memory_desc_init_by_strides(md, 2, dims, type, strides);
    return;
  }
  dnnl_dims_t dims = {(dnnl_dim_t)bt->n1, (dnnl_dim_t)bt->n2, (dnnl_dim_t)rows, (dnnl_dim_t)cols};
  dnnl_dims_t strides = {(dnnl_dim_t)bs[0], (dnnl_dim_t)bs[1], rs, cs};
  dnnl_memory_desc_init_by_strides(md, 4, dims, type, strides);
}

/* Builds the primitive and memory objects of e->key. */
static int entry_build(mm_entry *e, char **err) {
  const mm_key *k = &e->key;
  dnnl_memory_desc_t a_md, b_md, c_md, bias_md;
  const onednn_batch *bt = &k->batch;
  matrix_desc(&a_md, bt, bt->sa, k->M, k->K, k->lda, k->ta, dnnl_bf16);
  matrix_desc(&b_md, bt, bt->sb, k->K, k->N, k->ldb, k->tb, dnnl_bf16);
  matrix_desc(&c_md, bt, bt->sc, k->M, k->N, k->ldc, 0, dnnl_f32);
  matrix_desc(&bias_md, bt, bt->sc, 1, k->N, k->N, 0, dnnl_f32);
  dnnl_matmul_desc_t desc;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t ops = NULL;
  dnnl_primitive_desc_t pd = NULL;
  int ok = dnnl_matmul_desc_init(&desc, &a_md, &b_md, k->bias ? &bias_md : NULL, &c_md) ==
               dnnl_success &&
           dnnl_primitive_attr_create(&attr) == dnnl_success;
  if (ok && k->alpha != 1.0f)
    ok = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &k->alpha) == dnnl_success;
  if (ok && k->beta != 0.0f)
    ok = dnnl_post_ops_create(&ops) == dnnl_success &&
         dnnl_post_ops_append_sum(ops, k->beta) == dnnl_success &&
         dnnl_primitive_attr_set_post_ops(attr, ops) == dnnl_success;
  ok = ok && dnnl_primitive_desc_create(&pd, &desc, attr, g_engine, NULL) == dnnl_success &&
       dnnl_primitive_create(&e->prim, pd) == dnnl_success &&
       dnnl_memory_create(&e->a, &a_md, g_engine, DNNL_MEMORY_NONE) == dnnl_success &&
       dnnl_memory_create(&e->b, &b_md, g_engine, DNNL_MEMORY_NONE) == dnnl_success &&
       dnnl_memory_create(&e->c, &c_md, g_engine, DNNL_MEMORY_NONE) == dnnl_success &&
       (!k->bias ||
        dnnl_memory_create(&e->bias, &bias_md, g_engine, DNNL_MEMORY_NONE) == dnnl_success);
  if (ok) {
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    log_debug("oneDNN matmul %zux%zux%zu x %zu (%c%c, ldc %zu): %s", k->M, k->N, k->K,
              bt->n1 * bt->n2, k->ta ? 'T' : 'N', k->tb ? 'T' : 'N', k->ldc, impl ? impl : "?");
  }
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (ops) dnnl_post_ops_destroy(ops);
  if (attr) dnnl_primitive_attr_destroy(attr);
  if (!ok) {
    entry_clear(e);
    return status_set(err, ST_INVALID,
                      "oneDNN has no bf16 matmul for %zux%zux%zu on this CPU (isa %s): run with "
                      "precision = fp32",
                      k->M, k->N, k->K, onednn_isa());
  }
  return ST_OK;
}

/* The cached entry of key, built on first use (evicting the least recently
 * used one when the table is full). */
static mm_entry *entry_get(const mm_key *key, char **err) {
  mm_entry *slot = &g_cache[0];
  for (int i = 0; i < CACHE_SIZE; i++) {
    mm_entry *e = &g_cache[i];
    if (e->used && memcmp(&e->key, key, sizeof *key) == 0) {
      e->used = ++g_tick;
      return e;
    }
    if (e->used < slot->used) slot = e;
  }
  entry_clear(slot);
  slot->key = *key;
  if (entry_build(slot, err) != ST_OK) return NULL;
  slot->used = ++g_tick;
  return slot;
}

int onednn_matmul_bf16(int ta, int tb, size_t M, size_t N, size_t K, float alpha,
                       const uint16_t *A, size_t lda, const uint16_t *B, size_t ldb, float beta,
                       float *C, size_t ldc, char **err) {
  static const onednn_batch one = {.n1 = 1, .n2 = 1};
  return onednn_matmul_bf16_batched(&one, ta, tb, M, N, K, alpha, A, lda, B, ldb, NULL, beta, C,
                                    ldc, err);
}

int onednn_matmul_bf16_batched(const onednn_batch *bt, int ta, int tb, size_t M, size_t N,
                               size_t K, float alpha, const uint16_t *A, size_t lda,
                               const uint16_t *B, size_t ldb, const float *bias, float beta,
                               float *C, size_t ldc, char **err) {
  assert(!bias || bt->n1 * bt->n2 == 1);
  int rc = engine_ready(err);
  if (rc != ST_OK) return rc;
  mm_key key;
  memset(&key, 0, sizeof key); /* the padding too: keys are compared bytewise */
  key = (mm_key){ta, tb, M, N, K, lda, ldb, ldc, alpha, beta, *bt, bias != NULL};
  mm_entry *e = entry_get(&key, err);
  if (!e) return ST_INVALID;
  dnnl_memory_set_data_handle(e->a, (void *)A);
  dnnl_memory_set_data_handle(e->b, (void *)B);
  dnnl_memory_set_data_handle(e->c, C);
  if (bias) dnnl_memory_set_data_handle(e->bias, (void *)bias);
  dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, e->a},
                            {DNNL_ARG_WEIGHTS, e->b},
                            {DNNL_ARG_DST, e->c},
                            {DNNL_ARG_BIAS, e->bias}};
  if (dnnl_primitive_execute(e->prim, g_stream, bias ? 4 : 3, args) != dnnl_success ||
      dnnl_stream_wait(g_stream) != dnnl_success)
    return status_set(err, ST_INVALID, "oneDNN bf16 matmul %zux%zux%zu failed to run", M, N, K);
  return ST_OK;
}

const char *onednn_isa(void) {
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "unknown";
  }
}

int onednn_bf16_native(void) {
  /* The ISA values are bit sets, each containing the ones below it. */
  unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
  return (isa & (unsigned)dnnl_cpu_isa_avx512_core_bf16) == (unsigned)dnnl_cpu_isa_avx512_core_bf16;
}

void onednn_version(char *buf, size_t size) {
  const dnnl_version_t *v = dnnl_version();
  snprintf(buf, size, "oneDNN %d.%d.%d (isa %s, %s)", v->major, v->minor, v->patch, onednn_isa(),
           v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other threading");
}
