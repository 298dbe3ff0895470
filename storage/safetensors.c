/* safetensors files (see safetensors.h): the header parsed and checked with
 * cJSON, tensors read with pread straight into the caller's floats (F16 and
 * BF16 widened in place), files written through util/file.h's atomic stream,
 * and sharded models tied together by model.safetensors.index.json. */
#include "storage/safetensors.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "util/file.h"
#include "util/half.h"
#include "util/status.h"

/* The format is little-endian and both directions move values between the
 * file and float arrays without swapping. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "storage/safetensors.c assumes a little-endian host"
#endif

#define SINGLE_NAME "model.safetensors"
#define INDEX_NAME "model.safetensors.index.json"

/* Elements converted per write when narrowing to F16/BF16. */
enum { WRITE_CHUNK = 1 << 19 };

static const struct {
  const char *name;
  size_t size;
} dtypes[] = {
    [SAFET_F32] = {"F32", 4},         [SAFET_F16] = {"F16", 2},         [SAFET_BF16] = {"BF16", 2},
    [SAFET_F64] = {"F64", 8},         [SAFET_I64] = {"I64", 8},         [SAFET_I32] = {"I32", 4},
    [SAFET_I16] = {"I16", 2},         [SAFET_I8] = {"I8", 1},           [SAFET_U64] = {"U64", 8},
    [SAFET_U32] = {"U32", 4},         [SAFET_U16] = {"U16", 2},         [SAFET_U8] = {"U8", 1},
    [SAFET_BOOL] = {"BOOL", 1},       [SAFET_F8_E4M3] = {"F8_E4M3", 1}, [SAFET_F8_E5M2] = {"F8_E5M2", 1},
};
enum { N_DTYPES = sizeof dtypes / sizeof dtypes[0] };

const char *safet_dtype_name(safet_dtype d) {
  assert((unsigned)d < N_DTYPES);
  return dtypes[d].name;
}

size_t safet_dtype_size(safet_dtype d) {
  assert((unsigned)d < N_DTYPES);
  return dtypes[d].size;
}

int safet_dtype_parse(const char *s) {
  for (int d = 0; d < N_DTYPES; d++)
    if (strcmp(s, dtypes[d].name) == 0) return d;
  return -1;
}

static int dtype_is_float(safet_dtype d) { return d == SAFET_F32 || d == SAFET_F16 || d == SAFET_BF16; }

/* In place: the n 16-bit values sit in the upper half of dst's bytes. Going
 * forward, writing float i never reaches value i + 1 (4i + 4 <= 2n + 2i + 2
 * for i < n), so no second buffer is needed. */
static void widen_in_place(float *dst, size_t n, safet_dtype dtype) {
  const unsigned char *src = (const unsigned char *)dst + 2 * n;
  for (size_t i = 0; i < n; i++) {
    uint16_t h;
    memcpy(&h, src + 2 * i, sizeof h);
    float x = dtype == SAFET_BF16 ? half_bf16_to_f32(h) : half_f16_to_f32(h);
    memcpy(dst + i, &x, sizeof x);
  }
}

/* ---------------------------------------------------------------- messages */

/* A name from a file as it may appear in a one-line message: control bytes
 * escaped, very long names cut. */
typedef struct {
  char s[200];
} shown_name;

static shown_name shown(const char *name) {
  shown_name r;
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)name; *p && o + 8 < sizeof r.s; p++) {
    if (*p < 0x20 || *p == 0x7f)
      o += (size_t)snprintf(r.s + o, sizeof r.s - o, "\\x%02x", *p);
    else
      r.s[o++] = (char)*p;
    if (o + 8 >= sizeof r.s && p[1]) {
      memcpy(r.s + o, "...", 3);
      o += 3;
    }
  }
  r.s[o] = '\0';
  return r;
}

typedef struct {
  char s[CKPT_NDIM_MAX * 22 + 4];
} shown_shape;

static shown_shape shape_of(const size_t *shape, int ndim) {
  shown_shape r;
  size_t o = (size_t)snprintf(r.s, sizeof r.s, "[");
  for (int d = 0; d < ndim; d++) o += (size_t)snprintf(r.s + o, sizeof r.s - o, d ? ", %zu" : "%zu", shape[d]);
  snprintf(r.s + o, sizeof r.s - o, "]");
  return r;
}

/* ------------------------------------------------------------------ header */

/* A JSON number that is an integer in [0, 2^53], where doubles are exact. */
static int json_uint(const cJSON *j, uint64_t *out) {
  if (!cJSON_IsNumber(j)) return 0;
  double d = j->valuedouble;
  if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d) return 0;
  *out = (uint64_t)d;
  return 1;
}

static int parse_entry(const cJSON *e, const char *what, safet_info *t, char **err) {
  if (!cJSON_IsObject(e))
    return status_set(err, ST_CORRUPT, "%s: tensor '%s': entry is not a JSON object", what, shown(t->name).s);
  const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
  const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
  const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
  if (!cJSON_IsString(dtype))
    return status_set(err, ST_CORRUPT, "%s: tensor '%s': no \"dtype\" string", what, shown(t->name).s);
  int d = safet_dtype_parse(dtype->valuestring);
  if (d < 0)
    return status_set(err, ST_CORRUPT, "%s: tensor '%s': unknown dtype \"%s\"", what, shown(t->name).s,
                      shown(dtype->valuestring).s);
  t->dtype = (safet_dtype)d;
  if (!cJSON_IsArray(shape))
    return status_set(err, ST_CORRUPT, "%s: tensor '%s': no \"shape\" array", what, shown(t->name).s);
  int ndim = cJSON_GetArraySize(shape);
  if (ndim > CKPT_NDIM_MAX)
    return status_set(err, ST_CORRUPT, "%s: tensor '%s': shape has %d dimensions, more than the %d ddpt reads",
                      what, shown(t->name).s, ndim, CKPT_NDIM_MAX);
  t->ndim = 0;
  uint64_t count = 1;
  int too_large = 0;
  for (const cJSON *s = shape->child; s; s = s->next) {
    uint64_t dim;
    if (!json_uint(s, &dim))
      return status_set(err, ST_CORRUPT, "%s: tensor '%s': shape entry %d is not a non-negative integer", what,
                        shown(t->name).s, t->ndim);
    t->shape[t->ndim++] = (size_t)dim;
    if (dim && count > UINT64_MAX / dim) too_large = 1;
    count *= dim;
  }
  uint64_t begin, end;
  if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 || !json_uint(offsets->child, &begin) ||
      !json_uint(offsets->child->next, &end))
    return status_set(err, ST_CORRUPT, "%s: tensor '%s': \"data_offsets\" is not [begin, end] in bytes", what,
                      shown(t->name).s);
  if (begin > end)
    return status_set(err, ST_CORRUPT, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin",
                      what, shown(t->name).s, (unsigned long long)begin, (unsigned long long)end);
  t->begin = begin;
  t->end = end;
  if (too_large || count > UINT64_MAX / dtypes[d].size || count * dtypes[d].size != end - begin) {
    if (too_large || count > UINT64_MAX / dtypes[d].size)
      return status_set(err, ST_CORRUPT, "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but shape %s of %s needs more than 2^64",
                        what, shown(t->name).s, (unsigned long long)begin, (unsigned long long)end,
                        (unsigned long long)(end - begin), shape_of(t->shape, t->ndim).s, dtypes[d].name);
    return status_set(err, ST_CORRUPT, "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but shape %s of %s needs %llu",
                      what, shown(t->name).s, (unsigned long long)begin, (unsigned long long)end,
                      (unsigned long long)(end - begin), shape_of(t->shape, t->ndim).s, dtypes[d].name,
                      (unsigned long long)(count * dtypes[d].size));
  }
  t->count = (size_t)count;
  return ST_OK;
}

static int check_metadata(const cJSON *meta, const char *what, char **err) {
  if (!cJSON_IsObject(meta)) return status_set(err, ST_CORRUPT, "%s: \"__metadata__\" is not a JSON object", what);
  for (const cJSON *m = meta->child; m; m = m->next)
    if (!cJSON_IsString(m))
      return status_set(err, ST_CORRUPT, "%s: \"__metadata__\" entry '%s' is not a string", what, shown(m->string).s);
  return ST_OK;
}

static int info_by_name(const void *a, const void *b) {
  return strcmp((*(const safet_info *const *)a)->name, (*(const safet_info *const *)b)->name);
}

/* File order of the data; equal offsets (empty tensors) by name. */
static int info_by_offset(const void *a, const void *b) {
  const safet_info *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return strcmp(x->name, y->name);
}

static int check_unique(const safet_info *t, size_t n, const char *what, char **err) {
  const safet_info **by_name = malloc((n ? n : 1) * sizeof *by_name);
  if (!by_name) return status_set(err, ST_NOMEM, "%s: out of memory reading the header", what);
  for (size_t i = 0; i < n; i++) by_name[i] = &t[i];
  qsort(by_name, n, sizeof *by_name, info_by_name);
  int rc = ST_OK;
  for (size_t i = 1; i < n && !rc; i++)
    if (strcmp(by_name[i - 1]->name, by_name[i]->name) == 0)
      rc = status_set(err, ST_CORRUPT, "%s: tensor '%s' appears twice in the header", what, shown(by_name[i]->name).s);
  free(by_name);
  return rc;
}

/* Sorted by begin, the tensors must cover [0, data_size) exactly. */
static int check_tiling(const safet_info *t, size_t n, uint64_t data_size, const char *what, char **err) {
  uint64_t pos = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned long long b = t[i].begin, e = t[i].end;
    if (t[i].begin > pos)
      return status_set(err, ST_CORRUPT, "%s: tensor '%s': data_offsets [%llu, %llu] leave a gap: bytes [%llu, %llu) belong to no tensor",
                        what, shown(t[i].name).s, b, e, (unsigned long long)pos, b);
    if (t[i].begin < pos)
      return status_set(err, ST_CORRUPT, "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' at [%llu, %llu]",
                        what, shown(t[i].name).s, b, e, shown(t[i - 1].name).s,
                        (unsigned long long)t[i - 1].begin, (unsigned long long)t[i - 1].end);
    if (t[i].end > data_size)
      return status_set(err, ST_CORRUPT, "%s: tensor '%s': data_offsets [%llu, %llu] run past the %llu data bytes the file holds (truncated?)",
                        what, shown(t[i].name).s, b, e, (unsigned long long)data_size);
    pos = t[i].end;
  }
  if (pos != data_size) {
    if (n == 0)
      return status_set(err, ST_CORRUPT, "%s: no tensors, but %llu data bytes follow the header", what,
                        (unsigned long long)data_size);
    return status_set(err, ST_CORRUPT, "%s: tensor '%s': the last data ends at byte %llu, but %llu data bytes follow the header (file size does not match)",
                      what, shown(t[n - 1].name).s, (unsigned long long)pos, (unsigned long long)data_size);
  }
  return ST_OK;
}

void safet_infos_free(safet_info *t, size_t n) {
  if (!t) return;
  for (size_t i = 0; i < n; i++) free(t[i].name);
  free(t);
}

int safet_header_parse(const char *json, size_t len, uint64_t data_size, const char *what, safet_info **out,
                       size_t *n, char **err) {
  safet_info *t = NULL;
  size_t nt = 0;
  int rc = ST_OK;
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
  if (!root) {
    size_t at = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
    return status_set(err, ST_CORRUPT, "%s: header is not valid JSON (error near byte %zu of %zu)", what, at, len);
  }
  for (const char *p = end; p < json + len; p++)
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
      rc = status_set(err, ST_CORRUPT, "%s: header has bytes after its JSON object (at byte %zu of %zu)", what,
                      (size_t)(p - json), len);
      goto fail;
    }
  if (!cJSON_IsObject(root)) {
    rc = status_set(err, ST_CORRUPT, "%s: header is not a JSON object", what);
    goto fail;
  }
  size_t cap = 0;
  int metadata_seen = 0;
  for (const cJSON *e = root->child; e; e = e->next) cap++;
  t = calloc(cap ? cap : 1, sizeof *t);
  if (!t) {
    rc = status_set(err, ST_NOMEM, "%s: out of memory for %zu header entries", what, cap);
    goto fail;
  }
  for (const cJSON *e = root->child; e; e = e->next) {
    if (strcmp(e->string, "__metadata__") == 0) {
      if (metadata_seen++) {
        rc = status_set(err, ST_CORRUPT, "%s: \"__metadata__\" appears twice in the header", what);
        goto fail;
      }
      if ((rc = check_metadata(e, what, err))) goto fail;
      continue;
    }
    if (!(t[nt].name = strdup(e->string))) {
      rc = status_set(err, ST_NOMEM, "%s: out of memory reading the header", what);
      goto fail;
    }
    nt++;
    if ((rc = parse_entry(e, what, &t[nt - 1], err))) goto fail;
  }
  if ((rc = check_unique(t, nt, what, err))) goto fail;
  qsort(t, nt, sizeof *t, info_by_offset);
  if ((rc = check_tiling(t, nt, data_size, what, err))) goto fail;
  cJSON_Delete(root);
  *out = t;
  *n = nt;
  return ST_OK;
fail:
  safet_infos_free(t, nt);
  cJSON_Delete(root);
  return rc;
}

/* ------------------------------------------------------------------- files */

typedef struct {
  char *path;
  int fd;
  uint64_t size, data_start; /* the file's size when opened; 8 + header length */
  safet_info *t;             /* (n) in file order */
  size_t n;
} st_file;

typedef struct {
  const char *name;
  size_t index; /* into safet_model.info */
} safet_named;

struct safet_model {
  st_file *files;
  size_t nfiles;
  size_t count;
  const safet_info **info; /* (count) shard order, then file order */
  size_t *file_of;         /* (count) index into files */
  safet_named *by_name;    /* (count) sorted by name */
};

static int read_at(int fd, void *buf, size_t len, uint64_t off, const char *path, char **err) {
  for (size_t got = 0; got < len;) {
    ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return status_set(err, ST_IO, "%s: cannot read: %s", path, strerror(errno));
    if (r == 0)
      return status_set(err, ST_CORRUPT, "%s: file ends at byte %llu, before the %zu bytes wanted at %llu (changed while reading?)",
                        path, (unsigned long long)(off + got), len, (unsigned long long)off);
    got += (size_t)r;
  }
  return ST_OK;
}

static void file_close(st_file *f) {
  if (f->fd >= 0) close(f->fd);
  safet_infos_free(f->t, f->n);
  free(f->path);
}

/* Opens and checks one .safetensors file. f->path is taken over. */
static int file_open(st_file *f, char **err) {
  char *header = NULL;
  unsigned char len8[8];
  struct stat st;
  int rc;
  f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
  if (f->fd < 0) return status_set(err, ST_IO, "%s: cannot open: %s", f->path, strerror(errno));
  if (fstat(f->fd, &st) != 0) return status_set(err, ST_IO, "%s: cannot stat: %s", f->path, strerror(errno));
  if (!S_ISREG(st.st_mode)) return status_set(err, ST_INVALID, "%s: not a regular file", f->path);
  f->size = (uint64_t)st.st_size;
  if (f->size < 8)
    return status_set(err, ST_CORRUPT, "%s: %llu bytes, too short for a safetensors file (8-byte header length first)",
                      f->path, (unsigned long long)f->size);
  if ((rc = read_at(f->fd, len8, 8, 0, f->path, err))) return rc;
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | len8[i];
  if (n > SAFET_HEADER_MAX)
    return status_set(err, ST_CORRUPT, "%s: header length %llu is over the %d-byte limit: not a safetensors file, or damaged",
                      f->path, (unsigned long long)n, SAFET_HEADER_MAX);
  if (n > f->size - 8)
    return status_set(err, ST_CORRUPT, "%s: header length %llu runs past the end of the %llu-byte file (truncated?)",
                      f->path, (unsigned long long)n, (unsigned long long)f->size);
  f->data_start = 8 + n;
  if (!(header = malloc(n ? n : 1))) return status_set(err, ST_NOMEM, "%s: out of memory for the header", f->path);
  rc = read_at(f->fd, header, n, 8, f->path, err);
  if (rc == ST_OK) rc = safet_header_parse(header, n, f->size - f->data_start, f->path, &f->t, &f->n, err);
  free(header);
  return rc;
}

/* ------------------------------------------------------------------- model */

static int named_cmp(const void *a, const void *b) {
  return strcmp(((const safet_named *)a)->name, ((const safet_named *)b)->name);
}

/* Lists every tensor of m->files, in order and by name. */
static int model_index(safet_model *m, char **err) {
  for (size_t f = 0; f < m->nfiles; f++) m->count += m->files[f].n;
  size_t n = m->count ? m->count : 1;
  m->info = malloc(n * sizeof *m->info);
  m->file_of = malloc(n * sizeof *m->file_of);
  m->by_name = malloc(n * sizeof *m->by_name);
  if (!m->info || !m->file_of || !m->by_name)
    return status_set(err, ST_NOMEM, "%s: out of memory listing %zu tensors", m->files[0].path, m->count);
  size_t k = 0;
  for (size_t f = 0; f < m->nfiles; f++)
    for (size_t i = 0; i < m->files[f].n; i++, k++) {
      m->info[k] = &m->files[f].t[i];
      m->file_of[k] = f;
      m->by_name[k] = (safet_named){m->files[f].t[i].name, k};
    }
  /* Names are unique: each file's header refuses a repeat, and the index
   * gives every name one shard. */
  qsort(m->by_name, m->count, sizeof *m->by_name, named_cmp);
  return ST_OK;
}

typedef struct {
  const char *name, *shard;
  int found;
} index_entry;

static int entry_by_name(const void *a, const void *b) {
  return strcmp(((const index_entry *)a)->name, ((const index_entry *)b)->name);
}

static int shard_name_cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A shard must be a file beside the index, not a path leading elsewhere. */
static int shard_name_is_plain(const char *s) {
  return *s && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* Opens the shards that index_path names and checks that each holds
 * exactly the tensors the index gives it. */
static int model_open_index(safet_model *m, const char *index_path, char **err) {
  char *text = NULL, *dir = NULL;
  const char **shards = NULL;
  index_entry *e = NULL;
  size_t len = 0, ne = 0, ns = 0;
  cJSON *root = NULL;
  int rc = file_read_all(index_path, SAFET_HEADER_MAX, &text, &len, err);
  if (rc) return rc;
  root = cJSON_ParseWithLength(text, len);
  const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
  if (!cJSON_IsObject(root) || !cJSON_IsObject(map)) {
    rc = status_set(err, ST_CORRUPT, "%s: not a JSON object with a \"weight_map\" object", index_path);
    goto fail;
  }
  for (const cJSON *j = map->child; j; j = j->next) ne++;
  if (ne == 0) {
    rc = status_set(err, ST_CORRUPT, "%s: \"weight_map\" names no tensors", index_path);
    goto fail;
  }
  e = calloc(ne, sizeof *e);
  shards = calloc(ne, sizeof *shards);
  const char *slash = strrchr(index_path, '/');
  dir = slash ? strndup(index_path, slash == index_path ? 1 : (size_t)(slash - index_path)) : strdup(".");
  if (!e || !shards || !dir) {
    rc = status_set(err, ST_NOMEM, "%s: out of memory", index_path);
    goto fail;
  }
  ne = 0;
  for (const cJSON *j = map->child; j; j = j->next, ne++) {
    if (!cJSON_IsString(j) || !shard_name_is_plain(j->valuestring)) {
      rc = status_set(err, ST_CORRUPT, "%s: tensor '%s': the shard must be a file name beside the index", index_path,
                      shown(j->string).s);
      goto fail;
    }
    e[ne] = (index_entry){j->string, j->valuestring, 0};
    shards[ne] = j->valuestring;
  }
  qsort(e, ne, sizeof *e, entry_by_name);
  for (size_t i = 1; i < ne; i++)
    if (strcmp(e[i - 1].name, e[i].name) == 0) {
      rc = status_set(err, ST_CORRUPT, "%s: tensor '%s' appears twice in \"weight_map\"", index_path,
                      shown(e[i].name).s);
      goto fail;
    }
  qsort(shards, ne, sizeof *shards, shard_name_cmp);
  for (size_t i = 0; i < ne; i++)
    if (ns == 0 || strcmp(shards[ns - 1], shards[i]) != 0) shards[ns++] = shards[i];
  if (!(m->files = calloc(ns, sizeof *m->files))) {
    rc = status_set(err, ST_NOMEM, "%s: out of memory", index_path);
    goto fail;
  }
  for (size_t s = 0; s < ns; s++) {
    st_file *f = &m->files[m->nfiles++];
    f->fd = -1;
    if (!(f->path = file_path_join(dir, shards[s]))) {
      rc = status_set(err, ST_NOMEM, "%s: out of memory", index_path);
      goto fail;
    }
    if ((rc = file_open(f, err))) goto fail;
    for (size_t i = 0; i < f->n; i++) {
      index_entry key = {f->t[i].name, NULL, 0};
      index_entry *hit = bsearch(&key, e, ne, sizeof *e, entry_by_name);
      if (!hit) {
        rc = status_set(err, ST_CORRUPT, "%s: tensor '%s' is missing from the index %s", f->path,
                        shown(f->t[i].name).s, index_path);
        goto fail;
      }
      if (strcmp(hit->shard, shards[s]) != 0) {
        rc = status_set(err, ST_CORRUPT, "%s: tensor '%s' is here, but the index %s puts it in %s", f->path,
                        shown(f->t[i].name).s, index_path, shown(hit->shard).s);
        goto fail;
      }
      hit->found = 1;
    }
  }
  for (size_t i = 0; i < ne; i++)
    if (!e[i].found) {
      rc = status_set(err, ST_CORRUPT, "%s: tensor '%s': the index puts it in %s, which does not hold it", index_path,
                      shown(e[i].name).s, shown(e[i].shard).s);
      goto fail;
    }
fail:
  free(shards);
  free(e);
  free(dir);
  cJSON_Delete(root);
  free(text);
  return rc;
}

static int is_regular(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

int safet_model_open(const char *path, safet_model **out, char **err) {
  char *single = NULL, *index = NULL;
  struct stat st;
  int rc;
  safet_model *m = calloc(1, sizeof *m);
  if (!m) return status_set(err, ST_NOMEM, "%s: out of memory", path);
  if (stat(path, &st) != 0) {
    rc = status_set(err, ST_IO, "%s: cannot open: %s", path, strerror(errno));
    goto fail;
  }
  if (S_ISDIR(st.st_mode)) {
    single = file_path_join(path, SINGLE_NAME);
    index = file_path_join(path, INDEX_NAME);
    if (!single || !index) {
      rc = status_set(err, ST_NOMEM, "%s: out of memory", path);
      goto fail;
    }
    /* As from_pretrained: the single file first. */
    if (!is_regular(single) && !is_regular(index)) {
      rc = status_set(err, ST_INVALID, "%s: no %s or %s in this directory (a pytorch_model.bin needs scripts/torch_to_safetensors.py first)",
                      path, SINGLE_NAME, INDEX_NAME);
      goto fail;
    }
    if (is_regular(single)) {
      free(index);
      index = NULL;
    } else {
      free(single);
      single = NULL;
    }
  } else if (has_suffix(path, ".index.json")) {
    if (!(index = strdup(path))) {
      rc = status_set(err, ST_NOMEM, "%s: out of memory", path);
      goto fail;
    }
  } else if (!(single = strdup(path))) {
    rc = status_set(err, ST_NOMEM, "%s: out of memory", path);
    goto fail;
  }
  if (single) {
    if (!(m->files = calloc(1, sizeof *m->files))) {
      rc = status_set(err, ST_NOMEM, "%s: out of memory", path);
      goto fail;
    }
    m->nfiles = 1;
    m->files[0].path = single;
    single = NULL;
    rc = file_open(&m->files[0], err);
  } else {
    rc = model_open_index(m, index, err);
  }
  if (rc == ST_OK) rc = model_index(m, err);
  if (rc) goto fail;
  free(index);
  *out = m;
  return ST_OK;
fail:
  free(single);
  free(index);
  safet_model_close(m);
  return rc;
}

void safet_model_close(safet_model *m) {
  if (!m) return;
  for (size_t f = 0; f < m->nfiles; f++) file_close(&m->files[f]);
  free(m->files);
  free(m->info);
  free(m->file_of);
  free(m->by_name);
  free(m);
}

size_t safet_model_count(const safet_model *m) { return m->count; }

const safet_info *safet_model_info(const safet_model *m, size_t i) {
  assert(i < m->count);
  return m->info[i];
}

long safet_model_find(const safet_model *m, const char *name) {
  size_t lo = 0, hi = m->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(m->by_name[mid].name, name);
    if (c == 0) return (long)m->by_name[mid].index;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

int safet_model_read_f32(safet_model *m, size_t i, float *dst, char **err) {
  assert(i < m->count);
  const safet_info *t = m->info[i];
  st_file *f = &m->files[m->file_of[i]];
  if (!dtype_is_float(t->dtype))
    return status_set(err, ST_INVALID, "%s: tensor '%s' is %s, which cannot be read as float (only F32, F16, BF16)",
                      f->path, shown(t->name).s, dtypes[t->dtype].name);
  struct stat st;
  if (fstat(f->fd, &st) != 0) return status_set(err, ST_IO, "%s: cannot stat: %s", f->path, strerror(errno));
  if ((uint64_t)st.st_size != f->size)
    return status_set(err, ST_CORRUPT, "%s: the file was %llu bytes when opened and is %lld now: it changed, open it again",
                      f->path, (unsigned long long)f->size, (long long)st.st_size);
  /* F32 lands in place; 16-bit values land in dst's upper half and widen. */
  size_t bytes = (size_t)(t->end - t->begin), at = t->dtype == SAFET_F32 ? 0 : 2 * t->count;
  int rc = read_at(f->fd, (char *)dst + at, bytes, f->data_start + t->begin, f->path, err);
  if (rc) return status_wrap(err, rc, "tensor '%s'", shown(t->name).s);
  if (t->dtype != SAFET_F32) widen_in_place(dst, t->count, t->dtype);
  return ST_OK;
}

/* ----------------------------------------------------------------- writing */

static void json_string(FILE *out, const char *s) {
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(out, "\\%c", *p);
    else if (*p < 0x20)
      fprintf(out, "\\u%04x", *p);
    else
      fputc(*p, out);
  }
  fputc('"', out);
}

static int tensor_by_name(const void *a, const void *b) {
  return strcmp((*(const safet_tensor *const *)a)->name, (*(const safet_tensor *const *)b)->name);
}

/* Checks what safet_write is given and sizes each tensor (elements). */
static int write_check(const char *path, const safet_tensor *t, size_t n, size_t *count, char **err) {
  for (size_t i = 0; i < n; i++) {
    if (!t[i].name || !*t[i].name || strcmp(t[i].name, "__metadata__") == 0)
      return status_set(err, ST_INVALID, "%s: tensor %zu: name \"%s\" cannot be a safetensors tensor name", path, i,
                        t[i].name ? t[i].name : "");
    if (t[i].ndim < 1 || t[i].ndim > CKPT_NDIM_MAX)
      return status_set(err, ST_INVALID, "%s: tensor '%s': %d dimensions, not 1..%d", path, shown(t[i].name).s,
                        t[i].ndim, CKPT_NDIM_MAX);
    uint64_t c = 1;
    for (int d = 0; d < t[i].ndim; d++) {
      if (t[i].shape[d] && c > (UINT64_MAX / 8) / t[i].shape[d])
        return status_set(err, ST_INVALID, "%s: tensor '%s': shape %s is too large", path, shown(t[i].name).s,
                          shape_of(t[i].shape, t[i].ndim).s);
      c *= t[i].shape[d];
    }
    count[i] = (size_t)c;
  }
  const safet_tensor **by_name = malloc((n ? n : 1) * sizeof *by_name);
  if (!by_name) return status_set(err, ST_NOMEM, "%s: out of memory", path);
  for (size_t i = 0; i < n; i++) by_name[i] = &t[i];
  qsort(by_name, n, sizeof *by_name, tensor_by_name);
  int rc = ST_OK;
  for (size_t i = 1; i < n && !rc; i++)
    if (strcmp(by_name[i - 1]->name, by_name[i]->name) == 0)
      rc = status_set(err, ST_INVALID, "%s: tensor '%s' is given twice", path, shown(by_name[i]->name).s);
  free(by_name);
  return rc;
}

/* The 8-byte length and the header padded to a multiple of 8 (malloc'd). */
static int write_header(const char *path, const safet_tensor *t, size_t n, const size_t *count, safet_dtype dtype,
                        char **out, size_t *len, char **err) {
  char *buf = NULL;
  size_t size = 0;
  FILE *h = open_memstream(&buf, &size);
  if (!h) return status_set(err, ST_NOMEM, "%s: out of memory for the header", path);
  fputs("........{\"__metadata__\":{\"format\":\"pt\"}", h);
  uint64_t offset = 0;
  for (size_t i = 0; i < n; i++) {
    fputc(',', h);
    json_string(h, t[i].name);
    fprintf(h, ":{\"dtype\":\"%s\",\"shape\":[", dtypes[dtype].name);
    for (int d = 0; d < t[i].ndim; d++) fprintf(h, d ? ",%zu" : "%zu", t[i].shape[d]);
    uint64_t bytes = (uint64_t)count[i] * dtypes[dtype].size;
    fprintf(h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset, (unsigned long long)(offset + bytes));
    offset += bytes;
  }
  fputc('}', h);
  while (ftell(h) % 8) fputc(' ', h);
  if (fclose(h) != 0 || !buf) {
    free(buf);
    return status_set(err, ST_NOMEM, "%s: out of memory for the header", path);
  }
  uint64_t hlen = size - 8;
  if (hlen > SAFET_HEADER_MAX) {
    free(buf);
    return status_set(err, ST_INVALID, "%s: the header would be %llu bytes, over the %d-byte limit readers accept", path,
                      (unsigned long long)hlen, SAFET_HEADER_MAX);
  }
  for (int i = 0; i < 8; i++) buf[i] = (char)(hlen >> 8 * i & 0xffu);
  *out = buf;
  *len = size;
  return ST_OK;
}

static int write_narrowed(file_atomic *f, const char *path, const safet_tensor *t, size_t count, safet_dtype dtype,
                          uint16_t *buf, char **err) {
  for (size_t lo = 0; lo < count; lo += WRITE_CHUNK) {
    size_t hi = count - lo < WRITE_CHUNK ? count : lo + WRITE_CHUNK;
    for (size_t i = lo; i < hi; i++) {
      if (dtype == SAFET_BF16)
        buf[i - lo] = half_f32_to_bf16(t->data[i]);
      else if (!half_f32_to_f16(t->data[i], &buf[i - lo]))
        return status_set(err, ST_INVALID, "%s: tensor '%s': element %zu is %g, beyond F16's largest value 65504: write it as BF16 or F32",
                          path, shown(t->name).s, i, (double)t->data[i]);
    }
    int rc = file_atomic_write(f, buf, (hi - lo) * sizeof *buf, err);
    if (rc) return rc;
  }
  return ST_OK;
}

int safet_write(const char *path, const safet_tensor *t, size_t n, safet_dtype dtype, char **err) {
  if (!dtype_is_float(dtype))
    return status_set(err, ST_INVALID, "%s: cannot write %s tensors: F32, F16 or BF16 only", path,
                      (unsigned)dtype < N_DTYPES ? dtypes[dtype].name : "unknown");
  size_t *count = malloc((n ? n : 1) * sizeof *count), hlen = 0;
  uint16_t *buf = NULL;
  char *header = NULL;
  file_atomic *f = NULL;
  int rc;
  if (!count) return status_set(err, ST_NOMEM, "%s: out of memory", path);
  if ((rc = write_check(path, t, n, count, err))) goto fail;
  if ((rc = write_header(path, t, n, count, dtype, &header, &hlen, err))) goto fail;
  if (dtype != SAFET_F32 && !(buf = malloc(WRITE_CHUNK * sizeof *buf))) {
    rc = status_set(err, ST_NOMEM, "%s: out of memory", path);
    goto fail;
  }
  if ((rc = file_atomic_open(path, &f, err))) goto fail;
  if ((rc = file_atomic_write(f, header, hlen, err))) goto fail;
  for (size_t i = 0; i < n; i++) {
    if (dtype == SAFET_F32)
      rc = file_atomic_write(f, t[i].data, count[i] * sizeof(float), err);
    else
      rc = write_narrowed(f, path, &t[i], count[i], dtype, buf, err);
    if (rc) goto fail;
  }
  rc = file_atomic_commit(f, err);
  f = NULL;
fail:
  file_atomic_abort(f);
  free(header);
  free(buf);
  free(count);
  return rc;
}
