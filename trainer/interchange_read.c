/* Reading a BERT from any source ddpt knows (interchange.h): which kind the
 * path is, the config and vocab beside it, foreign names mapped to ddpt's,
 * kernels transposed, ties checked, and what was left out reported. */
#define _GNU_SOURCE /* asprintf, vasprintf, strndup */
#include "trainer/interchange.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "corpus/vocab.h"
#include "storage/ckpt.h"
#include "storage/safetensors.h"
#include "storage/tf_bundle.h"
#include "trainer/run_config.h"
#include "util/file.h"
#include "util/status.h"

#define WORD_EMB "bert.embeddings.word_embeddings.weight"
#define MLM_BIAS "cls.predictions.bias"
#define NSP_WEIGHT "cls.seq_relationship.weight"
#define JSON_MAX ((size_t)1 << 20)
#define VOCAB_MAX ((size_t)64 << 20)

/* ------------------------------------------------------------- report */

static int list_add(char ***list, size_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int list_add(char ***list, size_t *n, const char *fmt, ...) {
  char *s = NULL;
  va_list ap;
  va_start(ap, fmt);
  int len = vasprintf(&s, fmt, ap);
  va_end(ap);
  char **grown = len < 0 ? NULL : realloc(*list, (*n + 1) * sizeof **list);
  if (!grown) {
    if (len >= 0) free(s);
    return ST_NOMEM;
  }
  *list = grown;
  (*list)[(*n)++] = s;
  return ST_OK;
}

static void list_free(char **list, size_t n) {
  for (size_t i = 0; i < n; i++) free(list[i]);
  free(list);
}

void xchg_report_clear(xchg_report *r) {
  if (!r) return;
  list_free(r->unused, r->n_unused);
  list_free(r->fresh, r->n_fresh);
  list_free(r->notes, r->n_notes);
  memset(r, 0, sizeof *r);
}

void xchg_model_clear(xchg_model *m) {
  if (!m) return;
  params_free(m->p);
  params_free(m->extra);
  free(m->vocab);
  free(m->labels);
  xchg_report_clear(&m->report);
  memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------- names */

typedef enum {
  NAME_PARAM,          /* a model tensor, under ddpt's (HuggingFace's) name */
  NAME_OPTIMIZER,      /* an Adam slot or a step counter */
  NAME_BUFFER,         /* position_ids: a constant, not a parameter */
  NAME_DECODER_WEIGHT, /* the MLM decoder weight, tied to the embeddings */
  NAME_DECODER_BIAS,   /* HuggingFace's second name for cls.predictions.bias */
} name_kind;

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Google's names: "bert/encoder/layer_3/attention/self/query/kernel" is
 * "bert.encoder.layer.3.attention.self.query.weight", transposed; gamma and
 * beta are LayerNorm's weight and bias; embedding tables gain ".weight";
 * output_weights/output_bias are the heads' weight and bias. */
static name_kind name_from_tf(const char *tf, char *out, size_t size, int *transpose) {
  *transpose = 0;
  if (!strchr(tf, '/') || ends_with(tf, "/adam_m") || ends_with(tf, "/adam_v")) return NAME_OPTIMIZER;
  char *o = out, *end = out + size - 16; /* room for the longest suffix below */
  const char *last = strrchr(tf, '/') + 1;
  for (const char *c = tf; c < last && o < end; c++) {
    if (*c == '/') {
      *o++ = '.';
    } else if (strncmp(c, "layer_", 6) == 0 && (c == tf || c[-1] == '/') && c[6] >= '0' && c[6] <= '9') {
      memcpy(o, "layer.", 6);
      o += 6;
      c += 5;
    } else {
      *o++ = *c;
    }
  }
  *o = '\0';
  size_t room = (size_t)(out + size - o);
  if (strcmp(last, "kernel") == 0) {
    *transpose = 1;
    snprintf(o, room, "weight");
  } else if (strcmp(last, "gamma") == 0 || strcmp(last, "output_weights") == 0) {
    snprintf(o, room, "weight");
  } else if (strcmp(last, "beta") == 0 || strcmp(last, "output_bias") == 0) {
    snprintf(o, room, "bias");
  } else if (ends_with(last, "_embeddings")) {
    snprintf(o, room, "%s.weight", last);
  } else {
    snprintf(o, room, "%s", last);
  }
  return NAME_PARAM;
}

/* HuggingFace's names, old and new: BertModel's lack "bert.", checkpoints
 * from before transformers 2.x say LayerNorm.gamma/beta. */
static name_kind name_from_hf(const char *hf, char *out, size_t size, int *renamed) {
  *renamed = 0;
  if (ends_with(hf, "position_ids")) return NAME_BUFFER;
  if (strcmp(hf, "cls.predictions.decoder.weight") == 0) return NAME_DECODER_WEIGHT;
  if (strcmp(hf, "cls.predictions.decoder.bias") == 0) return NAME_DECODER_BIAS;
  const char *prefix = "";
  if (strncmp(hf, "embeddings.", 11) == 0 || strncmp(hf, "encoder.", 8) == 0 || strncmp(hf, "pooler.", 7) == 0) {
    prefix = "bert.";
    *renamed = 1;
  }
  snprintf(out, size, "%s%s", prefix, hf);
  size_t n = strlen(out);
  if (ends_with(out, "LayerNorm.gamma")) {
    snprintf(out + n - 5, size - (n - 5), "weight");
    *renamed = 1;
  } else if (ends_with(out, "LayerNorm.beta")) {
    snprintf(out + n - 4, size - (n - 4), "bias");
    *renamed = 1;
  }
  return NAME_PARAM;
}

/* ------------------------------------------------------------- sources */

/* One tensor of a foreign source, in a form both readers share. */
typedef struct src_tensor {
  const char *name;
  int ndim;
  const size_t *shape;
  size_t count;
  int is_float; /* readable as float32 */
  const char *dtype;
} src_tensor;

typedef struct source {
  const char *path;
  int tf; /* a TensorFlow bundle, else safetensors */
  safet_model *st;
  tfb_bundle *tfb;
} source;

static size_t source_count(const source *s) {
  return s->tf ? tfb_count(s->tfb) : safet_model_count(s->st);
}

static src_tensor source_tensor(const source *s, size_t i) {
  src_tensor t;
  if (s->tf) {
    const tfb_entry *e = tfb_entry_at(s->tfb, i);
    int fl = e->dtype == TFB_DT_FLOAT || e->dtype == TFB_DT_HALF || e->dtype == TFB_DT_BFLOAT16 ||
             e->dtype == TFB_DT_DOUBLE;
    t = (src_tensor){e->name, e->ndim, e->shape, e->count, fl, fl ? "a float type" : "not a float type"};
  } else {
    const safet_info *e = safet_model_info(s->st, i);
    int fl = e->dtype == SAFET_F32 || e->dtype == SAFET_F16 || e->dtype == SAFET_BF16;
    t = (src_tensor){e->name, e->ndim, e->shape, e->count, fl, safet_dtype_name(e->dtype)};
  }
  return t;
}

static int source_read(source *s, size_t i, float *dst, char **err) {
  return s->tf ? tfb_read_f32(s->tfb, i, dst, err) : safet_model_read_f32(s->st, i, dst, err);
}

static void shape_text(char *buf, size_t size, int ndim, const size_t *shape) {
  size_t at = (size_t)snprintf(buf, size, "[");
  for (int d = 0; d < ndim && at < size; d++)
    at += (size_t)snprintf(buf + at, size - at, "%s%zu", d ? ", " : "", shape[d]);
  if (at < size) snprintf(buf + at, size - at, "]");
}

/* Maps tensor i's name; *transpose for TF kernels. */
static name_kind source_name(const source *s, const char *name, char *out, size_t size, int *transpose,
                             int *renamed) {
  *transpose = 0;
  *renamed = 0;
  if (s->tf) return name_from_tf(name, out, size, transpose);
  return name_from_hf(name, out, size, renamed);
}

/* Whether the source has the next-sentence head, which decides the layout. */
static int source_has_nsp(const source *s) {
  char name[PARAMS_NAME_MAX + 32];
  int tr, rn;
  for (size_t i = 0; i < source_count(s); i++) {
    src_tensor t = source_tensor(s, i);
    if (source_name(s, t.name, name, sizeof name, &tr, &rn) == NAME_PARAM && strcmp(name, NSP_WEIGHT) == 0)
      return 1;
  }
  return 0;
}

/* Reads a tensor that stands for a model entry, transposing a TF kernel. */
static int load_entry(source *s, size_t i, const src_tensor *t, int transpose, float *dst, char **err) {
  if (!transpose) return source_read(s, i, dst, err);
  float *tmp = malloc(t->count * sizeof *tmp);
  if (!tmp) return status_set(err, ST_NOMEM, "out of memory reading %s", t->name);
  int rc = source_read(s, i, tmp, err);
  size_t rows = t->shape[0], cols = t->shape[1];
  for (size_t r = 0; r < rows && !rc; r++)
    for (size_t c = 0; c < cols; c++) dst[c * rows + r] = tmp[r * cols + c];
  free(tmp);
  return rc;
}

static int check_shape(const source *s, const src_tensor *t, const params_entry *e, int transpose,
                       char **err) {
  int same = t->ndim == e->ndim;
  for (int d = 0; same && d < e->ndim; d++)
    same = t->shape[transpose ? e->ndim - 1 - d : d] == e->shape[d];
  if (transpose && e->ndim != 2) same = 0;
  if (same) return ST_OK;
  char have[96], want[96];
  shape_text(have, sizeof have, t->ndim, t->shape);
  shape_text(want, sizeof want, e->ndim, e->shape);
  return status_set(err, ST_MISMATCH, "%s: tensor %s has shape %s%s but the model's config needs %s for %s",
                    s->path, t->name, have, transpose ? " (a kernel, transposed on import)" : "", want,
                    e->name);
}

/* A tied copy the source stores (decoder weight or bias), compared with the
 * tensor ddpt keeps. */
typedef struct tied_copy {
  float *data;
  size_t count;
  const char *name;
} tied_copy;

static int read_tied(source *s, size_t i, const src_tensor *t, const params_entry *keeper, tied_copy *out,
                     char **err) {
  if (t->count != keeper->count)
    return status_set(err, ST_MISMATCH, "%s: %s has %zu values but %s has %zu; they must be tied", s->path,
                      t->name, t->count, keeper->name, keeper->count);
  if (!(out->data = malloc(t->count * sizeof *out->data)))
    return status_set(err, ST_NOMEM, "out of memory reading %s", t->name);
  out->count = t->count;
  out->name = t->name;
  return source_read(s, i, out->data, err);
}

/* Compares a stored tie with what ddpt keeps and says so in the report; a
 * tie whose keeper the source lacks (a bias only the decoder holds) fills
 * the keeper, and *filled says so. */
static int settle_tie(xchg_model *m, const tied_copy *c, const params_entry *keeper, unsigned char *filled,
                      char **err) {
  float *k = m->p->data + keeper->offset;
  int rc;
  if (!*filled) {
    memcpy(k, c->data, c->count * sizeof *k);
    *filled = 1;
    m->report.loaded++;
    rc = list_add(&m->report.notes, &m->report.n_notes, "%s loaded as %s", c->name, keeper->name);
  } else {
    double worst = 0.0;
    for (size_t j = 0; j < c->count; j++) {
      double d = k[j] - c->data[j];
      if (d < 0) d = -d;
      if (!(d <= worst)) worst = d; /* NaN wins */
    }
    if (worst == 0.0)
      rc = list_add(&m->report.notes, &m->report.n_notes, "%s equals %s: tied, stored once", c->name,
                    keeper->name);
    else
      rc = list_add(&m->report.notes, &m->report.n_notes,
                    "warning: %s differs from %s (max |difference| %g); ddpt ties them and keeps %s", c->name,
                    keeper->name, worst, keeper->name);
  }
  return rc ? status_set(err, ST_NOMEM, "out of memory") : ST_OK;
}

/* --with-optimizer: the Adam slot "<variable>/adam_m" (or adam_v) into the
 * moment arena at the variable's place. */
static int load_slot(source *s, size_t i, const src_tensor *t, xchg_model *m, unsigned char *seen, char **err) {
  char var[PARAMS_NAME_MAX + 32], name[PARAMS_NAME_MAX + 32];
  size_t len = strlen(t->name) - 7; /* "/adam_m" */
  if (len >= sizeof var) return status_set(err, ST_INVALID, "%s: slot name %s is too long", s->path, t->name);
  memcpy(var, t->name, len);
  var[len] = '\0';
  int transpose;
  const params_entry *e = NULL;
  if (name_from_tf(var, name, sizeof name, &transpose) == NAME_PARAM) e = params_find(m->p, name);
  if (!e) return list_add(&m->report.unused, &m->report.n_unused, "%s", t->name) ? status_set(err, ST_NOMEM, "out of memory") : ST_OK;
  int v = ends_with(t->name, "/adam_v");
  size_t idx = (size_t)(e - m->p->entries);
  int rc = check_shape(s, t, e, transpose, err);
  if (!rc) rc = load_entry(s, i, t, transpose, (v ? m->p->v : m->p->m) + e->offset, err);
  if (!rc) seen[idx] |= (unsigned char)(v ? 2 : 1);
  return rc;
}

/* Every variable needs both slots, or the moments would be half fresh. */
static int check_slots(const source *s, const xchg_model *m, const unsigned char *seen, char **err) {
  for (size_t i = 0; i < m->p->count; i++)
    if (seen[i] != 3)
      return status_set(err, ST_INVALID, "%s: --with-optimizer: %s has no %s slot; import without --with-optimizer",
                        s->path, m->p->entries[i].name, seen[i] & 1 ? "adam_v" : "adam_m");
  return ST_OK;
}

/* An unused tensor goes to m->extra under its ddpt name (its value is read
 * by load_extras once every entry is known). Shapes beyond the table's
 * dimensions and duplicate names are simply not kept. */
static int keep_extra(xchg_model *m, const src_tensor *t, const char *name, int transpose, char **err) {
  if (t->ndim < 1 || t->ndim > PARAMS_NDIM_MAX || (transpose && t->ndim != 2) || strlen(name) >= PARAMS_NAME_MAX)
    return ST_OK;
  if (!m->extra && !(m->extra = params_create())) return status_set(err, ST_NOMEM, "out of memory");
  if (params_find(m->extra, name)) return ST_OK;
  size_t shape[PARAMS_NDIM_MAX];
  for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[transpose ? t->ndim - 1 - d : d];
  return params_add(m->extra, name, t->ndim, shape, 0, PARAMS_INIT_ZEROS, err);
}

static int load_extras(source *s, xchg_model *m, char **err) {
  int rc = params_alloc(m->extra, err);
  char name[PARAMS_NAME_MAX + 32];
  for (size_t i = 0; i < source_count(s) && !rc; i++) {
    src_tensor t = source_tensor(s, i);
    int transpose, renamed;
    if (source_name(s, t.name, name, sizeof name, &transpose, &renamed) != NAME_PARAM || params_find(m->p, name))
      continue;
    const params_entry *e = params_find(m->extra, name);
    if (e && t.is_float) rc = load_entry(s, i, &t, transpose, m->extra->data + e->offset, err);
  }
  return rc;
}

/* What read_foreign keeps while it walks the source's tensors. */
typedef struct reading {
  unsigned char *filled;             /* (p->count) entry loaded from the source */
  unsigned char *slots;              /* (p->count) --with-optimizer: 1 adam_m, 2 adam_v seen */
  tied_copy dec_w, dec_b;            /* a stored decoder weight and bias */
  int buffers;                       /* position_ids buffers dropped */
  const params_entry *word, *bias;   /* what the decoder's are tied to (bias NULL without MLM head) */
} reading;

static int list_unused(xchg_model *m, const char *name, char **err) {
  return list_add(&m->report.unused, &m->report.n_unused, "%s", name) ? status_set(err, ST_NOMEM, "out of memory")
                                                                    : ST_OK;
}

/* Source tensor i: an optimizer slot, a buffer, a tie, a model entry or
 * unused (kept in m->extra). */
static int place_tensor(source *s, size_t i, const xchg_read_opts *o, xchg_model *m, reading *r, char **err) {
  src_tensor t = source_tensor(s, i);
  char name[PARAMS_NAME_MAX + 32];
  int transpose, renamed;
  name_kind kind = source_name(s, t.name, name, sizeof name, &transpose, &renamed);
  if (kind == NAME_OPTIMIZER) {
    if (o->with_optimizer && s->tf && (ends_with(t.name, "/adam_m") || ends_with(t.name, "/adam_v")) && t.is_float)
      return load_slot(s, i, &t, m, r->slots, err);
    m->report.optimizer++;
    return ST_OK;
  }
  if (kind == NAME_BUFFER) {
    r->buffers++;
    return ST_OK;
  }
  if (!t.is_float)
    return status_set(err, ST_INVALID, "%s: tensor %s is %s, not float32/float16/bfloat16", s->path, t.name,
                      t.dtype);
  if (kind == NAME_DECODER_WEIGHT || kind == NAME_DECODER_BIAS) {
    const params_entry *keeper = kind == NAME_DECODER_WEIGHT ? r->word : r->bias;
    tied_copy *c = kind == NAME_DECODER_WEIGHT ? &r->dec_w : &r->dec_b;
    if (!keeper || m->cfg.task != BERT_TASK_PRETRAIN) return list_unused(m, t.name, err); /* no MLM head */
    return c->data ? ST_OK : read_tied(s, i, &t, keeper, c, err);
  }
  const params_entry *e = params_find(m->p, name);
  if (!e) {
    int rc = list_unused(m, t.name, err);
    return rc ? rc : keep_extra(m, &t, name, transpose, err);
  }
  size_t idx = (size_t)(e - m->p->entries);
  if (r->filled[idx])
    return status_set(err, ST_CORRUPT, "%s: two tensors map to %s (the second is %s); remove one", s->path,
                      e->name, t.name);
  int rc = check_shape(s, &t, e, transpose, err);
  if (!rc) rc = load_entry(s, i, &t, transpose, m->p->data + e->offset, err);
  if (rc) return rc;
  r->filled[idx] = 1;
  m->report.loaded++;
  m->report.renamed += (size_t)renamed;
  return ST_OK;
}

/* After every tensor is placed: extras, ties, fresh entries, the slots. */
static int finish_reading(source *s, const xchg_read_opts *o, xchg_model *m, reading *r, char **err) {
  int rc = m->extra ? load_extras(s, m, err) : ST_OK;
  if (!rc && r->buffers)
    rc = list_add(&m->report.notes, &m->report.n_notes, "dropped %d position_ids buffer%s (a constant)",
                  r->buffers, r->buffers == 1 ? "" : "s")
             ? status_set(err, ST_NOMEM, "out of memory")
             : ST_OK;
  if (!rc && r->dec_w.data) rc = settle_tie(m, &r->dec_w, r->word, &r->filled[r->word - m->p->entries], err);
  if (!rc && r->dec_b.data) rc = settle_tie(m, &r->dec_b, r->bias, &r->filled[r->bias - m->p->entries], err);
  for (size_t i = 0; i < m->p->count && !rc; i++) {
    if (r->filled[i]) continue;
    const params_entry *e = &m->p->entries[i];
    char shape[96];
    shape_text(shape, sizeof shape, e->ndim, e->shape);
    params_init_entry(m->p, e, o->seed);
    if (list_add(&m->report.fresh, &m->report.n_fresh, "%s %s", e->name, shape))
      rc = status_set(err, ST_NOMEM, "out of memory");
  }
  if (!rc && m->report.loaded == 0)
    rc = status_set(err, ST_INVALID, "%s: no tensor has a BERT name ddpt knows; is it a BERT model?", s->path);
  if (!rc && o->with_optimizer) {
    if (!s->tf)
      rc = status_set(err, ST_INVALID, "%s: --with-optimizer reads TensorFlow checkpoints' Adam slots; this is not one",
                      s->path);
    else if (!(rc = check_slots(s, m, r->slots, err)))
      m->has_optim = 1;
  }
  return rc;
}

static int read_foreign(source *s, const xchg_read_opts *o, xchg_model *m, char **err) {
  m->report.format = s->tf ? "TensorFlow checkpoint" : "safetensors";
  m->cfg.nsp = m->cfg.task == BERT_TASK_PRETRAIN && source_has_nsp(s);
  int rc;
  if (!(m->p = params_create())) return status_set(err, ST_NOMEM, "out of memory");
  if ((rc = bert_params_add(m->p, &m->cfg, err)) || (rc = params_alloc(m->p, err))) return rc;
  reading r = {.filled = calloc(m->p->count, 1), .slots = calloc(m->p->count, 1),
               .word = params_find(m->p, WORD_EMB), .bias = params_find(m->p, MLM_BIAS)};
  if (!r.filled || !r.slots) rc = status_set(err, ST_NOMEM, "out of memory");
  for (size_t i = 0; i < source_count(s) && !rc; i++) rc = place_tensor(s, i, o, m, &r, err);
  if (!rc) rc = finish_reading(s, o, m, &r, err);
  free(r.slots);
  free(r.dec_w.data);
  free(r.dec_b.data);
  free(r.filled);
  return rc;
}

/* ------------------------------------------------------------- paths */

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int has_file(const char *dir, const char *name) {
  char *p = file_path_join(dir, name);
  int yes = p && is_file(p);
  free(p);
  return yes;
}

/* "dir/name" when it is a regular file; NULL otherwise (or out of memory). */
static char *file_beside(const char *dir, const char *name) {
  char *p = file_path_join(dir, name);
  if (p && !is_file(p)) {
    free(p);
    p = NULL;
  }
  return p;
}

static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  return strndup(path, (size_t)(slash - path));
}

static int is_hdf5(const char *path) {
  static const unsigned char magic[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  unsigned char buf[8];
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  int yes = fread(buf, 1, 8, f) == 8 && memcmp(buf, magic, 8) == 0;
  fclose(f);
  return yes;
}

/* The TF prefix a path names: "x.ckpt" with x.ckpt.index beside it, the
 * .index file itself, or a directory holding exactly one *.index. NULL if
 * it is none of these. */
static char *tf_prefix(const char *src) {
  if (ends_with(src, ".index") && is_file(src)) return strndup(src, strlen(src) - 6);
  char *idx = NULL;
  if (asprintf(&idx, "%s.index", src) < 0) return NULL;
  int yes = is_file(idx);
  free(idx);
  if (yes) return strdup(src);
  if (!is_dir(src)) return NULL;
  char *ckpt = file_path_join(src, "bert_model.ckpt");
  if (ckpt && asprintf(&idx, "%s.index", ckpt) >= 0) {
    yes = is_file(idx);
    free(idx);
    if (yes) return ckpt;
  }
  free(ckpt);
  return NULL;
}

/* ------------------------------------------------------------- config, vocab */

static int read_json_bool(const char *path, const char *key, int *value, char **err) {
  char *text = NULL;
  size_t len;
  int rc = file_read_all(path, JSON_MAX, &text, &len, err);
  if (rc) return rc;
  cJSON *root = cJSON_Parse(text);
  free(text);
  if (!root || !cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return status_set(err, ST_CORRUPT, "%s: not a JSON object", path);
  }
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
  if (cJSON_IsBool(item)) *value = cJSON_IsTrue(item);
  cJSON_Delete(root);
  return ST_OK;
}

/* The vocab: a recorded or bundled one, else --vocab; both given must be
 * the same bytes. Its size must be the config's vocab_size. */
static int settle_vocab(xchg_model *m, const char *found, const char *src, const xchg_read_opts *o,
                        char **err) {
  int rc;
  if (found && !m->vocab) {
    size_t len;
    if ((rc = file_read_all(found, VOCAB_MAX, &m->vocab, &len, err))) return rc;
  }
  if (o->vocab_path) {
    char *given = NULL;
    size_t len;
    if ((rc = file_read_all(o->vocab_path, VOCAB_MAX, &given, &len, err))) return rc;
    if (m->vocab && strcmp(m->vocab, given) != 0) {
      free(given);
      return status_set(err, ST_MISMATCH,
                        "--vocab %s differs from the vocab %s carries; drop --vocab, or use the model's own",
                        o->vocab_path, src);
    }
    free(m->vocab);
    m->vocab = given;
  }
  if (!m->vocab) return ST_OK;
  tok_vocab *v = NULL;
  if ((rc = tok_vocab_parse(o->vocab_path ? o->vocab_path : found ? found : src, m->vocab,
                            strlen(m->vocab), &v, err)))
    return rc;
  size_t size = tok_vocab_size(v);
  tok_vocab_free(v);
  if (size != m->cfg.vocab_size)
    return status_set(err, ST_MISMATCH, "the vocab of %s has %zu tokens but its config says vocab_size %zu",
                      src, size, m->cfg.vocab_size);
  return ST_OK;
}

/* HuggingFace's config.json and Google's bert_config.json share their keys;
 * one that omits a size takes bert-base's. */
static int read_model_config(xchg_model *m, const char *json, char **err) {
  return bert_config_resolve(&m->cfg, "bert-base", json, NULL, 0, err);
}

/* A fine-tuned HuggingFace model: the task from `architectures`, the label
 * names from id2label (ids 0..K-1), or num_labels with HF's LABEL_i names. */
static int read_hf_task(xchg_model *m, const char *json, char **err) {
  char *text = NULL;
  size_t len;
  int rc = file_read_all(json, JSON_MAX, &text, &len, err);
  if (rc) return rc;
  cJSON *root = cJSON_Parse(text), *names = NULL;
  free(text);
  const cJSON *arch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "architectures"), 0);
  const char *a = cJSON_IsString(arch) ? arch->valuestring : "";
  int task = strcmp(a, "BertForSequenceClassification") == 0 ? BERT_TASK_CLASSIFY
             : strcmp(a, "BertForTokenClassification") == 0  ? BERT_TASK_TAG
                                                             : BERT_TASK_PRETRAIN;
  if (task == BERT_TASK_PRETRAIN) goto done;
  const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(root, "id2label");
  const cJSON *num = cJSON_GetObjectItemCaseSensitive(root, "num_labels");
  size_t k = cJSON_IsObject(id2label) ? (size_t)cJSON_GetArraySize(id2label)
             : cJSON_IsNumber(num)    ? (size_t)num->valuedouble
                                      : 2; /* HF's default */
  if (k < 2 || k > 32767) {
    rc = status_set(err, ST_INVALID, "%s: %zu labels; a classifier needs 2..32767", json, k);
    goto done;
  }
  if (!(names = cJSON_CreateArray())) goto nomem;
  for (size_t i = 0; i < k; i++) {
    char key[32], fallback[40];
    snprintf(key, sizeof key, "%zu", i);
    snprintf(fallback, sizeof fallback, "LABEL_%zu", i);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(id2label, key);
    if (cJSON_IsObject(id2label) && !cJSON_IsString(name)) {
      rc = status_set(err, ST_INVALID, "%s: id2label has no string for id %zu (ids must be 0..%zu)", json, i,
                      k - 1);
      goto done;
    }
    if (!cJSON_AddItemToArray(names, cJSON_CreateString(name ? name->valuestring : fallback))) goto nomem;
  }
  if (!(m->labels = cJSON_PrintUnformatted(names))) goto nomem;
  m->cfg.task = task;
  m->cfg.num_labels = k;
  m->cfg.nsp = 0;
  goto done;
nomem:
  rc = status_set(err, ST_NOMEM, "out of memory");
done:
  cJSON_Delete(names);
  cJSON_Delete(root);
  return rc;
}

/* ------------------------------------------------------------- the kinds */

static int read_ddpt(const char *path, const xchg_read_opts *o, xchg_model *m, char **err) {
  ckpt_file *f = NULL;
  ckpt_header h = {0};
  ckpt_entry *ents = NULL;
  size_t n = 0;
  char *lower = NULL;
  ckpt_tensor *ts = NULL;
  m->report.format = "ddpt checkpoint";
  int rc = ckpt_file_open(path, &f, err);
  if (!rc) rc = ckpt_file_read_header(f, &h, err);
  if (rc) goto done;
  run_config rcfg;
  run_config_defaults(&rcfg);
  if ((rc = run_config_load_text(&rcfg, h.config, "config", NULL, 0, err))) {
    status_wrap(err, rc, "%s: the config attribute", path);
    goto done;
  }
  m->cfg = rcfg.model;
  if ((rc = ckpt_file_list(f, &ents, &n, err))) goto done;
  m->cfg.nsp = 0;
  for (size_t i = 0; i < n; i++)
    if (strcmp(ents[i].path, "params/" NSP_WEIGHT) == 0) m->cfg.nsp = 1;
  if ((rc = bert_config_validate(&m->cfg, err))) goto done;
  if ((rc = ckpt_file_read_attr(f, "vocab", &m->vocab, err)) ||
      (rc = ckpt_file_read_attr(f, "vocab_lowercase", &lower, err)) ||
      (rc = ckpt_file_read_attr(f, "labels", &m->labels, err)))
    goto done;
  m->lowercase = lower ? strcmp(lower, "0") != 0 : !o->cased;
  if (!(m->p = params_create())) {
    rc = status_set(err, ST_NOMEM, "out of memory");
    goto done;
  }
  if ((rc = bert_params_add(m->p, &m->cfg, err)) || (rc = params_alloc(m->p, err))) goto done;
  if (!(ts = params_ckpt_tensors(m->p, m->p->data))) {
    rc = status_set(err, ST_NOMEM, "out of memory");
    goto done;
  }
  if ((rc = ckpt_file_load(f, "params", ts, m->p->count, 1, NULL, err))) goto done;
  m->report.loaded = m->p->count;
  rc = settle_vocab(m, NULL, path, o, err);
done:
  free(ts);
  free(lower);
  ckpt_entries_free(ents, n);
  ckpt_header_clear(&h);
  ckpt_file_close(f);
  return rc;
}

/* A HuggingFace directory or file: config.json (and vocab.txt,
 * tokenizer_config.json) beside the weights, or --config. */
static int read_hf(const char *src, const xchg_read_opts *o, xchg_model *m, char **err) {
  char *dir = is_dir(src) ? strdup(src) : dir_of(src);
  char *config = NULL, *vocab = NULL, *tokcfg = NULL;
  source s = {.path = src};
  int rc = ST_OK;
  if (!dir) return status_set(err, ST_NOMEM, "out of memory");
  config = o->config_path ? strdup(o->config_path) : file_beside(dir, "config.json");
  if (!config) {
    rc = status_set(err, ST_INVALID, "%s: no config.json beside the weights; give --config FILE", src);
    goto done;
  }
  if ((rc = read_model_config(m, config, err)) || (rc = read_hf_task(m, config, err))) goto done;
  if ((rc = safet_model_open(src, &s.st, err))) goto done;
  m->lowercase = !o->cased;
  if ((tokcfg = file_beside(dir, "tokenizer_config.json")) &&
      (rc = read_json_bool(tokcfg, "do_lower_case", &m->lowercase, err)))
    goto done;
  vocab = file_beside(dir, "vocab.txt");
  if ((rc = read_foreign(&s, o, m, err))) goto done;
  rc = settle_vocab(m, vocab, src, o, err);
done:
  safet_model_close(s.st);
  free(tokcfg);
  free(vocab);
  free(config);
  free(dir);
  return rc;
}

/* Google's layout: bert_model.ckpt.{index,data-*} with bert_config.json and
 * vocab.txt beside it. */
static int read_tf(const char *prefix, const xchg_read_opts *o, xchg_model *m, char **err) {
  char *dir = dir_of(prefix), *config = NULL, *vocab = NULL;
  source s = {.path = prefix, .tf = 1};
  int rc = ST_OK;
  if (!dir) return status_set(err, ST_NOMEM, "out of memory");
  config = o->config_path ? strdup(o->config_path) : file_beside(dir, "bert_config.json");
  if (!config) {
    rc = status_set(err, ST_INVALID, "%s: no bert_config.json beside the checkpoint; give --config FILE",
                    prefix);
    goto done;
  }
  if ((rc = read_model_config(m, config, err))) goto done;
  if ((rc = tfb_open(prefix, &s.tfb, err))) goto done;
  m->lowercase = !o->cased;
  vocab = file_beside(dir, "vocab.txt");
  if ((rc = read_foreign(&s, o, m, err))) goto done;
  rc = settle_vocab(m, vocab, prefix, o, err);
done:
  tfb_close(s.tfb);
  free(vocab);
  free(config);
  free(dir);
  return rc;
}

int xchg_read(const char *src, const xchg_read_opts *o, xchg_model *out, char **err) {
  assert(src && o && out);
  memset(out, 0, sizeof *out);
  int rc;
  char *prefix = tf_prefix(src);
  struct stat st;
  if (!prefix && stat(src, &st) != 0)
    return status_set(err, ST_IO, "cannot open %s: %s", src, strerror(errno));
  if (prefix) {
    rc = read_tf(prefix, o, out, err);
  } else if (is_file(src) && is_hdf5(src)) {
    rc = read_ddpt(src, o, out, err);
  } else if (is_dir(src) && !has_file(src, "model.safetensors") &&
             !has_file(src, "model.safetensors.index.json") && has_file(src, "pytorch_model.bin")) {
    rc = status_set(err, ST_INVALID,
                    "%s holds pytorch_model.bin, a Python pickle ddpt does not read: convert it with "
                    "/usr/bin/python3 scripts/torch_to_safetensors.py %s",
                    src, src);
  } else {
    rc = read_hf(src, o, out, err);
  }
  free(prefix);
  if (rc) xchg_model_clear(out);
  return rc;
}
