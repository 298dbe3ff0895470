/* The parameter dictionary (see params.h): a name table over one float arena
 * per role (values, gradients, Adam m and v), and BERT's initialisation. */
#include "trainer/params.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "storage/ckpt.h"
#include "util/array.h"
#include "util/rng.h"
#include "util/status.h"

params *params_create(void) { return calloc(1, sizeof(params)); }

void params_free(params *p) {
  if (!p) return;
  free(p->entries);
  free(p->data);
  free(p->grad);
  free(p->m);
  free(p->v);
  free(p);
}

int params_add(params *p, const char *name, int ndim, const size_t *shape, unsigned flags,
               params_init_kind init, char **err) {
  assert(p && name && shape && ndim >= 1 && ndim <= PARAMS_NDIM_MAX);
  if (strlen(name) >= PARAMS_NAME_MAX)
    return status_set(err, ST_INVALID, "parameter name '%s' is longer than %d characters", name,
                      PARAMS_NAME_MAX - 1);
  if (params_find(p, name))
    return status_set(err, ST_INVALID, "parameter '%s' is already in the dictionary", name);
  if (array_grow(&p->entries, &p->cap, p->count + 1, sizeof *p->entries) != ST_OK)
    return status_set(err, ST_NOMEM, "out of memory growing the parameter table");
  params_entry *e = &p->entries[p->count];
  memset(e, 0, sizeof *e);
  strcpy(e->name, name);
  e->ndim = ndim;
  e->count = 1;
  for (int i = 0; i < ndim; i++) {
    assert(shape[i] > 0);
    e->shape[i] = shape[i];
    e->count *= shape[i];
  }
  e->offset = p->total;
  e->flags = flags;
  e->init = init;
  e->lr_scale = 1.0f;
  p->total += e->count;
  p->count++;
  return ST_OK;
}

/* A first allocation is calloc's: the zero pages stay untouched, so the
 * arenas a command never uses (gradients and moments for import, export,
 * predict) cost address space, not memory. */
static int grow_arena(float **arena, size_t old_n, size_t new_n) {
  if (!*arena) {
    *arena = calloc(new_n ? new_n : 1, sizeof(float));
    return *arena ? 0 : -1;
  }
  float *grown = realloc(*arena, new_n * sizeof(float));
  if (!grown) return -1;
  memset(grown + old_n, 0, (new_n - old_n) * sizeof(float));
  *arena = grown;
  return 0;
}

int params_alloc(params *p, char **err) {
  assert(p);
  if (p->allocated == p->total && p->data) return ST_OK;
  float **arenas[] = {&p->data, &p->grad, &p->m, &p->v};
  for (size_t i = 0; i < sizeof arenas / sizeof *arenas; i++)
    if (grow_arena(arenas[i], p->allocated, p->total) != 0)
      return status_set(err, ST_NOMEM,
                        "cannot allocate %zu parameters (%.1f MiB per arena, 4 arenas): reduce "
                        "the model size",
                        p->total, (double)p->total * sizeof(float) / (1 << 20));
  p->allocated = p->total;
  return ST_OK;
}

const params_entry *params_find(const params *p, const char *name) {
  for (size_t i = 0; i < p->count; i++)
    if (strcmp(p->entries[i].name, name) == 0) return &p->entries[i];
  return NULL;
}

float *params_data(const params *p, const char *name) {
  const params_entry *e = params_find(p, name);
  return e && p->data ? p->data + e->offset : NULL;
}

float *params_grad(const params *p, const char *name) {
  const params_entry *e = params_find(p, name);
  return e && p->grad ? p->grad + e->offset : NULL;
}

/* FNV-1a: the entry's RNG stream is keyed by its name, not its position. */
static uint64_t name_hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

void params_init_entry(params *p, const params_entry *e, uint64_t seed) {
  assert(p && e && p->data && e->offset + e->count <= p->allocated);
  float *x = p->data + e->offset;
  switch (e->init) {
    case PARAMS_INIT_ZEROS:
      memset(x, 0, e->count * sizeof *x);
      return;
    case PARAMS_INIT_ONES:
      for (size_t i = 0; i < e->count; i++) x[i] = 1.0f;
      return;
    case PARAMS_INIT_NORMAL:
    case PARAMS_INIT_KAIMING:
      break;
  }
  uint64_t h = name_hash(e->name);
  rng_stream s;
  rng_stream_init(&s, rng_mix64(seed), (uint32_t)h, (uint32_t)(h >> 32), 0x1417u);
  if (e->init == PARAMS_INIT_KAIMING) {
    size_t fan_in = e->ndim > 1 ? e->count / e->shape[0] : e->count;
    double std = sqrt(2.0 / (double)fan_in);
    for (size_t i = 0; i < e->count; i++) x[i] = (float)(std * rng_next_normal(&s));
    return;
  }
  /* HuggingFace's _init_weights: normal(0, initializer_range = 0.02), not
   * TensorFlow BERT's truncated normal (whose std is 0.88 of that). */
  for (size_t i = 0; i < e->count; i++) x[i] = (float)(0.02 * rng_next_normal(&s));
}

void params_init(params *p, uint64_t seed) {
  /* Entries draw from their own streams, so they can be filled in any order
   * and on any thread with the same result. */
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t i = 0; i < p->count; i++) params_init_entry(p, &p->entries[i], seed);
}

void params_zero_grad(params *p) {
  assert(p && p->grad);
  memset(p->grad, 0, p->allocated * sizeof(float));
}

const params_entry *params_first_nonfinite(const params *p, size_t *at) {
  for (size_t i = 0; i < p->count; i++) {
    const params_entry *e = &p->entries[i];
    const float *x = p->data + e->offset;
    for (size_t j = 0; j < e->count; j++)
      if (!isfinite(x[j])) {
        *at = j;
        return e;
      }
  }
  return NULL;
}

size_t params_bytes(const params *p) { return p->total * sizeof(float); }

ckpt_tensor *params_ckpt_tensors(const params *p, float *arena) {
  _Static_assert((int)PARAMS_NDIM_MAX <= (int)CKPT_NDIM_MAX, "a parameter's shape must fit a checkpoint tensor's");
  ckpt_tensor *ts = calloc(p->count ? p->count : 1, sizeof *ts);
  if (!ts) return NULL;
  for (size_t i = 0; i < p->count; i++) {
    const params_entry *e = &p->entries[i];
    ts[i].name = e->name;
    ts[i].ndim = e->ndim;
    for (int d = 0; d < e->ndim; d++) ts[i].shape[d] = e->shape[d];
    ts[i].data = arena ? arena + e->offset : NULL;
  }
  return ts;
}
