/* The run configuration (see run_config.h): a table of keys with types and
 * ranges; INI parsing by inih; [model] resolved through trainer/bert.h. */
#include "trainer/run_config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ini.h>

#include "trainer/gemm.h"
#include "util/log.h"
#include "util/status.h"

typedef enum { K_SIZE, K_U64, K_UINT, K_INT, K_DOUBLE, K_FLOAT, K_BOOL, K_STR, K_ENUM, K_POINTS } key_kind;

typedef struct key_def {
  const char *section, *key;
  key_kind kind;
  size_t offset, size;       /* size: buffer size for K_STR */
  double lo, hi;             /* allowed range for numbers */
  int lo_open;               /* 1: lo itself is not allowed */
  /* K_ENUM: the owning module's name of value i, NULL past the last one
   * (the names are written once, where the enum is). */
  const char *(*name_of)(int i);
} key_def;


#define OFF(field) offsetof(run_config, field)
#define STR(field) OFF(field), sizeof(((run_config *)0)->field)
static const key_def k_keys[] = {
    {"data", "corpus", K_STR, STR(corpus), 0, 0, 0, NULL},
    {"data", "max_predictions", K_SIZE, OFF(max_predictions), 0, 0, 4096, 0, NULL},
    {"data", "mask_prob", K_DOUBLE, OFF(mask_prob), 0, 0, 1, 1, NULL},
    {"data", "whole_word_mask", K_BOOL, OFF(whole_word_mask), 0, 0, 1, 0, NULL},
    {"data", "eval_batches", K_SIZE, OFF(eval_batches), 0, 0, 1e6, 0, NULL},
    {"optim", "name", K_ENUM, OFF(optim.kind), 0, 0, 0, 0, optim_kind_name},
    {"optim", "lr", K_DOUBLE, OFF(lr), 0, 0, 10, 1, NULL},
    {"optim", "beta1", K_FLOAT, OFF(optim.beta1), 0, 0, 0.999999, 0, NULL},
    {"optim", "beta2", K_FLOAT, OFF(optim.beta2), 0, 0, 0.999999, 0, NULL},
    {"optim", "eps", K_FLOAT, OFF(optim.eps), 0, 0, 1, 1, NULL},
    {"optim", "weight_decay", K_FLOAT, OFF(optim.weight_decay), 0, 0, 1, 0, NULL},
    {"optim", "bias_correction", K_BOOL, OFF(optim.bias_correction), 0, 0, 1, 0, NULL},
    {"optim", "momentum", K_FLOAT, OFF(optim.momentum), 0, 0, 0.999999, 0, NULL},
    {"optim", "clip_norm", K_FLOAT, OFF(optim.clip_norm), 0, 0, 1e6, 0, NULL},
    {"optim", "max_nonfinite", K_UINT, OFF(max_nonfinite), 0, 1, 1e6, 0, NULL},
    {"schedule", "kind", K_ENUM, OFF(sched.kind), 0, 0, 0, 0, schedule_kind_name},
    {"schedule", "warmup_steps", K_U64, OFF(sched.warmup), 0, 0, 1e12, 0, NULL},
    {"schedule", "warmup_ratio", K_DOUBLE, OFF(warmup_ratio), 0, 0, 0.999999, 0, NULL},
    {"schedule", "points", K_POINTS, OFF(sched), 0, 0, 0, 0, NULL},
    {"train", "batch_size", K_SIZE, OFF(batch_size), 0, 1, 65536, 0, NULL},
    {"train", "accumulation", K_SIZE, OFF(accumulation), 0, 1, 65536, 0, NULL},
    {"train", "steps", K_U64, OFF(steps), 0, 0, 1e12, 0, NULL},
    {"train", "tokens", K_U64, OFF(tokens), 0, 0, 1e18, 0, NULL},
    {"train", "seed", K_U64, OFF(seed), 0, 0, 18446744073709551616.0, 0, NULL},
    {"train", "threads", K_INT, OFF(threads), 0, 0, 1024, 0, NULL},
    {"train", "precision", K_ENUM, OFF(precision), 0, 0, 0, 0, gemm_precision_name},
    {"train", "bucket_mb", K_DOUBLE, OFF(bucket_mb), 0, 0, 4096, 1, NULL},
    {"train", "zero", K_INT, OFF(zero), 0, 0, 1, 0, NULL},
    {"train", "hash_every", K_U64, OFF(hash_every), 0, 0, 1e12, 0, NULL},
    {"train", "watchdog_s", K_DOUBLE, OFF(watchdog_s), 0, 0, 1e7, 0, NULL},
    {"checkpoint", "every", K_U64, OFF(ckpt_every), 0, 0, 1e12, 0, NULL},
    {"checkpoint", "keep", K_UINT, OFF(ckpt_keep), 0, 0, 1e6, 0, NULL},
    {"log", "every", K_U64, OFF(log_every), 0, 1, 1e12, 0, NULL},
    {"log", "eval_every", K_U64, OFF(eval_every), 0, 0, 1e12, 0, NULL},
    {"log", "level", K_ENUM, OFF(log_level), 0, 0, 0, 0, log_level_name},
    {"log", "samples", K_BOOL, OFF(log_samples), 0, 0, 1, 0, NULL},
    {"finetune", "freeze_embeddings", K_BOOL, OFF(finetune.freeze_embeddings), 0, 0, 1, 0, NULL},
    {"finetune", "freeze_layers", K_SIZE, OFF(finetune.freeze_layers), 0, 0, 1000, 0, NULL},
    {"finetune", "head_lr", K_DOUBLE, OFF(finetune.head_lr), 0, 0, 10, 0, NULL},
    {"finetune", "layer_lr_decay", K_DOUBLE, OFF(finetune.layer_lr_decay), 0, 0, 1, 1, NULL},
    {"finetune", "crf", K_BOOL, OFF(finetune.crf), 0, 0, 1, 0, NULL},
    {"finetune", "best_metric", K_ENUM, OFF(finetune.best_metric), 0, 0, 0, 0, run_config_best_metric_name},
};
#undef STR
#undef OFF

/* [model] keys other than preset and hf_config, by HuggingFace name. */
static const char *const k_model_keys[] = {
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
    "max_position_embeddings", "type_vocab_size", "hidden_dropout_prob",
    "attention_probs_dropout_prob", "layer_norm_eps", "hidden_act", "task", "num_labels", "crf",
    NULL};

static const char *const k_sections[] = {"model", "data",       "optim", "schedule", "train",
                                         "checkpoint", "log", "finetune", NULL};

const char *run_config_best_metric_name(int metric) {
  static const char *const names[] = {"auto", "accuracy", "macro_f1", "token_accuracy", "entity_f1", "loss"};
  return metric >= 0 && metric < (int)(sizeof names / sizeof names[0]) ? names[metric] : NULL;
}

/* A chunk tag as task_metrics reads one: O, or a B/I/E/S/M prefix alone or
 * before '-'. */
static int is_chunk_tag(const char *name) {
  if (strcmp(name, "O") == 0) return 1;
  return name[0] && strchr("BIESM", name[0]) && (name[1] == '\0' || name[1] == '-');
}

run_best_metric run_config_best_metric_auto(int task, const char *const *names, size_t K) {
  if (task != BERT_TASK_TAG) return RUN_BEST_ACCURACY;
  for (size_t k = 0; k < K; k++)
    if (!is_chunk_tag(names[k])) return RUN_BEST_TOKEN_ACCURACY;
  return RUN_BEST_ENTITY_F1;
}

void run_config_defaults(run_config *c) {
  memset(c, 0, sizeof *c);
  snprintf(c->preset, sizeof c->preset, "bert-tiny");
  bert_config_preset(&c->model, c->preset, NULL);
  c->model.vocab_size = 0;
  c->mask_prob = 0.15;
  c->eval_batches = 20;
  c->optim = optim_config_default();
  c->lr = 1e-4;
  c->max_nonfinite = 10;
  c->sched.kind = SCHED_LINEAR;
  c->warmup_ratio = 0.01;
  c->batch_size = 32;
  c->accumulation = 1;
  c->steps = 1000;
  c->seed = 12345;
  /* 25 MiB (PyTorch DDP's too): from the namespaced-hosts bench and its
   * fitted model (docs/scaling.md), the best bucket at 512 ranks for the
   * binomial tree Open MPI runs, and a ring's latency term at 512 ranks
   * costs 4 MiB buckets most of bert-base's step. */
  c->bucket_mb = 25;
  /* Ten minutes: a healthy step's waits in collectives last as long as
   * the ranks' skew, seconds even for bert-base on slow nodes, and the
   * longest single phase (a bert-base micro-batch of 32 x 512 on a small
   * node) about two; a stalled job still ends within ten (docs/distributed.md). */
  c->watchdog_s = 600;
  c->hash_every = 100;
  c->ckpt_every = 1000;
  c->ckpt_keep = 3;
  c->log_every = 10;
  c->eval_every = 500;
  c->log_level = LOG_INFO;
  c->finetune.layer_lr_decay = 1;
}

static const key_def *find_key(const char *section, const char *key) {
  for (size_t i = 0; i < sizeof k_keys / sizeof k_keys[0]; i++)
    if (strcmp(k_keys[i].section, section) == 0 && strcmp(k_keys[i].key, key) == 0) return &k_keys[i];
  return NULL;
}

static int is_model_key(const char *key) {
  for (const char *const *k = k_model_keys; *k; k++)
    if (strcmp(*k, key) == 0) return 1;
  return 0;
}

static int known_section(const char *section) {
  for (const char *const *s = k_sections; *s; s++)
    if (strcmp(*s, section) == 0) return 1;
  return 0;
}

static void describe_range(const key_def *d, char *buf, size_t size) {
  if (d->kind == K_ENUM) {
    size_t used = (size_t)snprintf(buf, size, "one of");
    for (int i = 0; d->name_of(i) && used < size; i++)
      used += (size_t)snprintf(buf + used, size - used, " %s", d->name_of(i));
  } else if (d->kind == K_BOOL) {
    snprintf(buf, size, "true or false");
  } else if (d->kind == K_STR || d->kind == K_POINTS) {
    snprintf(buf, size, "text");
  } else {
    snprintf(buf, size, "%s %g .. %g", d->lo_open ? "above" : "from", d->lo, d->hi);
  }
}

/* Whether a text value survives run_config_format and a second load (the
 * resolved config is read back on resume): inih strips surrounding spaces
 * and cuts at ';' where it follows a space (an inline comment); a value
 * that begins with one is read as it stands only directly after '='. */
static int reads_back(const char *value) {
  size_t n = strlen(value);
  if (n && (isspace((unsigned char)value[0]) || isspace((unsigned char)value[n - 1]) || value[0] == ';'))
    return 0;
  for (size_t i = 0; i < n; i++)
    if (iscntrl((unsigned char)value[i]) || (value[i] == ';' && i > 0 && isspace((unsigned char)value[i - 1])))
      return 0;
  return 1;
}

static int is_integral(key_kind k) { return k == K_SIZE || k == K_U64 || k == K_UINT || k == K_INT; }

static int parse_number(const key_def *d, const char *value, double *out) {
  char *end;
  errno = 0;
  double v = strtod(value, &end);
  while (*end == ' ') end++;
  if (end == value || *end || errno || !isfinite(v)) return -1;
  if (v < d->lo || (d->lo_open && v == d->lo) || v > d->hi) return -1;
  *out = v;
  return 0;
}

/* Integers are read as integers: a double holds only 53 bits, so a 64-bit
 * seed read through strtod would silently change. Plain decimal digits
 * (none of the integer keys is negative). */
static int parse_integer(const key_def *d, const char *value, uint64_t *out) {
  const char *p = value;
  if (*p < '0' || *p > '9') return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(p, &end, 10);
  while (*end == ' ') end++;
  if (*end || errno) return -1;
  /* The bounds are whole numbers; hi at or above 2^64 means "any". */
  if ((double)v < d->lo || (d->lo_open && (double)v == d->lo)) return -1;
  if (d->hi < 18446744073709551616.0 && v > (unsigned long long)d->hi) return -1;
  *out = v;
  return 0;
}

static int parse_bool(const char *value) {
  if (!strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes")) return 1;
  if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no")) return 0;
  return -1;
}

int run_config_set(run_config *c, const char *section, const char *key, const char *value, char **err) {
  if (strcmp(section, "model") == 0) {
    if (strcmp(key, "hidden_dropout_prob") == 0 || strcmp(key, "attention_probs_dropout_prob") == 0)
      c->dropout_given = 1;
    else
      c->model_given = 1;
    if (strcmp(key, "preset") == 0) {
      if (!*value) { /* a config whose model came from elsewhere (--init) names no preset */
        c->preset[0] = '\0';
        return ST_OK;
      }
      bert_config m;
      if (bert_config_preset(&m, value, err)) return status_wrap(err, ST_INVALID, "[model] preset");
      snprintf(c->preset, sizeof c->preset, "%s", value);
      size_t vocab = c->model.vocab_size;
      c->model = m;
      c->model.vocab_size = vocab;
      return ST_OK;
    }
    if (strcmp(key, "hf_config") == 0) {
      if (!*value) {
        c->hf_config[0] = '\0';
        return ST_OK;
      }
      if (strlen(value) >= sizeof c->hf_config)
        return status_set(err, ST_INVALID, "[model] hf_config: path longer than %zu bytes", sizeof c->hf_config - 1);
      snprintf(c->hf_config, sizeof c->hf_config, "%s", value);
      return bert_config_read_json(&c->model, value, err);
    }
    if (!is_model_key(key))
      return status_set(err, ST_INVALID,
                        "unknown key '%s' in [model]; use preset, hf_config or a HuggingFace config name "
                        "(hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, ...)", key);
    if (strcmp(key, "vocab_size") == 0 && strcmp(value, "0") == 0) {
      c->model.vocab_size = 0; /* taken from the corpus */
      return ST_OK;
    }
    if (bert_config_set(&c->model, key, value, err)) return status_wrap(err, ST_INVALID, "[model] %s", key);
    return ST_OK;
  }
  if (!known_section(section))
    return status_set(err, ST_INVALID,
                      "unknown section [%s]; sections are model, data, optim, schedule, train, checkpoint, log, "
                      "finetune", section);
  const key_def *d = find_key(section, key);
  if (!d)
    return status_set(err, ST_INVALID, "unknown key '%s' in [%s]; `ddpt help %s` lists the keys", key, section,
                      strcmp(section, "finetune") == 0 ? "finetune" : "train");
  char *at = (char *)c + d->offset;
  char range[128];
  describe_range(d, range, sizeof range);
  double v = 0;
  uint64_t u = 0;
  switch (d->kind) {
  case K_STR:
    if (strlen(value) >= d->size)
      return status_set(err, ST_INVALID, "[%s] %s: value longer than %zu bytes", section, key, d->size - 1);
    /* inih reads at most INI_MAX_LINE - 1 bytes a line and cuts the rest
     * silently into a line of its own: "key = value" must fit. */
    if (strlen(key) + 3 + strlen(value) + 1 >= INI_MAX_LINE)
      return status_set(err, ST_INVALID, "[%s] %s: %zu bytes is longer than one config line holds (%d bytes "
                        "with the key): use a shorter path, e.g. through a symbolic link", section, key,
                        strlen(value), INI_MAX_LINE - 1);
    if (!reads_back(value))
      return status_set(err, ST_INVALID, "[%s] %s: '%s' would not read back from config.ini (it starts or ends "
                        "with a space, starts with ';' or has one after a space, which INI reads as a comment, or "
                        "holds a control character): rename the path", section, key, value);
    snprintf(at, d->size, "%s", value);
    return ST_OK;
  case K_POINTS:
    if (!*value) {
      c->sched.npoints = 0;
      return ST_OK;
    }
    if (schedule_points_parse(&c->sched, value, err)) return status_wrap(err, ST_INVALID, "[%s] %s", section, key);
    return ST_OK;
  case K_BOOL: {
    int b = parse_bool(value);
    if (b < 0) return status_set(err, ST_INVALID, "[%s] %s = '%s': allowed: %s", section, key, value, range);
    *(int *)at = b;
    return ST_OK;
  }
  case K_ENUM:
    for (int i = 0; d->name_of(i); i++)
      if (strcmp(d->name_of(i), value) == 0) {
        *(int *)at = i;
        return ST_OK;
      }
    return status_set(err, ST_INVALID, "[%s] %s = '%s': allowed: %s", section, key, value, range);
  default:
    if (is_integral(d->kind) ? parse_integer(d, value, &u) : parse_number(d, value, &v))
      return status_set(err, ST_INVALID, "[%s] %s = '%s': allowed: %s%s", section, key, value,
                        is_integral(d->kind) ? "an integer " : "a number ", range);
    switch (d->kind) {
    case K_SIZE: *(size_t *)at = (size_t)u; break;
    case K_U64: *(uint64_t *)at = u; break;
    case K_UINT: *(unsigned *)at = (unsigned)u; break;
    case K_INT: *(int *)at = (int)u; break;
    case K_DOUBLE: *(double *)at = v; break;
    default: *(float *)at = (float)v; break;
    }
    return ST_OK;
  }
}

/* The file's (and the overrides') settings, in order, before resolving. */
typedef struct setting {
  char section[32], key[64];
  char *value;
  int line;   /* 1: from the file, 0: from --set */
} setting;

typedef struct settings {
  setting *items;
  size_t n, cap;
  int oom;
} settings;

static int settings_add(settings *s, const char *section, const char *key, const char *value, int line) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 32;
    setting *grown = realloc(s->items, cap * sizeof *grown);
    if (!grown) return -1;
    s->items = grown;
    s->cap = cap;
  }
  setting *it = &s->items[s->n];
  if (strlen(section) >= sizeof it->section || strlen(key) >= sizeof it->key) return -2;
  strcpy(it->section, section);
  strcpy(it->key, key);
  it->value = strdup(value);
  if (!it->value) return -1;
  it->line = line;
  s->n++;
  return 0;
}

static void settings_free(settings *s) {
  for (size_t i = 0; i < s->n; i++) free(s->items[i].value);
  free(s->items);
}

/* Debian's inih is built without INI_HANDLER_LINENO, so a setting from the
 * file is named by file, section and key rather than by line. */
static int on_ini_entry(void *user, const char *section, const char *key, const char *value) {
  settings *s = user;
  int rc = settings_add(s, section, key, value, 1);
  if (rc == -1) s->oom = 1;
  return rc == 0;
}

static int where(char *buf, size_t size, const char *path, const setting *it) {
  if (it->line) return snprintf(buf, size, "%s", path ? path : "config");
  return snprintf(buf, size, "--set %s.%s", it->section, it->key);
}

/* Applies the parsed settings s (owned: freed here) and the overrides to c.
 * source names the file in messages. */
static int resolve(run_config *c, settings s, const char *path, char *const *overrides, size_t n, char **err);

int run_config_load(run_config *c, const char *path, char *const *overrides, size_t n, char **err) {
  settings s = {0};
  if (path) {
    FILE *f = fopen(path, "r");
    if (!f) return status_set(err, ST_IO, "cannot read config %s: %s", path, strerror(errno));
    /* A directory opens for reading on Linux and reads as empty: it would
     * train on defaults without a word. */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
      fclose(f);
      return status_set(err, ST_INVALID, "config %s is a directory; give an INI file such as configs/bert-tiny.ini",
                        path);
    }
    int bad = ini_parse_file(f, on_ini_entry, &s);
    fclose(f);
    if (s.oom || bad) {
      settings_free(&s);
      if (s.oom) return status_set(err, ST_NOMEM, "out of memory reading %s", path);
      return status_set(err, ST_INVALID, "%s:%d: not a valid INI line (expected [section] or key = value)", path, bad);
    }
  }
  return resolve(c, s, path, overrides, n, err);
}

int run_config_load_text(run_config *c, const char *text, const char *source, char *const *overrides, size_t n,
                         char **err) {
  settings s = {0};
  int bad = ini_parse_string(text, on_ini_entry, &s);
  if (s.oom || bad) {
    settings_free(&s);
    if (s.oom) return status_set(err, ST_NOMEM, "out of memory reading %s", source);
    return status_set(err, ST_INVALID, "%s:%d: not a valid INI line (expected [section] or key = value)", source, bad);
  }
  return resolve(c, s, source, overrides, n, err);
}

static int resolve(run_config *c, settings s, const char *path, char *const *overrides, size_t n, char **err) {
  int rc = ST_OK;
  for (size_t i = 0; i < n; i++) {
    const char *o = overrides[i];
    const char *dot = strchr(o, '.'), *eq = strchr(o, '=');
    if (!dot || !eq || dot > eq || dot == o || eq == dot + 1) {
      rc = status_set(err, ST_INVALID, "--set '%s': expected section.key=value (e.g. optim.lr=1e-4)", o);
      goto done;
    }
    char section[32], key[64];
    if ((size_t)(dot - o) >= sizeof section || (size_t)(eq - dot - 1) >= sizeof key) {
      rc = status_set(err, ST_INVALID, "--set '%s': section or key too long", o);
      goto done;
    }
    memcpy(section, o, (size_t)(dot - o));
    section[dot - o] = '\0';
    memcpy(key, dot + 1, (size_t)(eq - dot - 1));
    key[eq - dot - 1] = '\0';
    if (settings_add(&s, section, key, eq + 1, 0)) {
      rc = status_set(err, ST_NOMEM, "out of memory for --set %s", o);
      goto done;
    }
  }
  /* [model]: preset first, then hf_config, then single fields. */
  static const char *const order[] = {"preset", "hf_config", NULL};
  for (int pass = 0; pass < 3; pass++) {
    for (size_t i = 0; i < s.n; i++) {
      setting *it = &s.items[i];
      if (strcmp(it->section, "model") != 0) continue;
      int is_pass = pass < 2 ? strcmp(it->key, order[pass]) == 0
                             : strcmp(it->key, "preset") && strcmp(it->key, "hf_config");
      if (!is_pass) continue;
      if ((rc = run_config_set(c, "model", it->key, it->value, err))) {
        char at[RUN_CONFIG_PATH_MAX + 64];
        where(at, sizeof at, path, it);
        status_wrap(err, rc, "%s", at);
        goto done;
      }
    }
  }
  for (size_t i = 0; i < s.n; i++) {
    setting *it = &s.items[i];
    if (strcmp(it->section, "model") == 0) continue;
    if ((rc = run_config_set(c, it->section, it->key, it->value, err))) {
      char at[RUN_CONFIG_PATH_MAX + 64];
      where(at, sizeof at, path, it);
      status_wrap(err, rc, "%s", at);
      goto done;
    }
  }
  if (c->sched.kind == SCHED_PIECEWISE && c->sched.npoints == 0) {
    rc = status_set(err, ST_INVALID, "[schedule] kind = piecewise needs points (e.g. points = 1000:1, 20000:0.1)");
    goto done;
  }
done:
  settings_free(&s);
  return rc;
}

static void append(char **buf, size_t *len, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void append(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
  if (!*buf) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < *cap - *len) {
      *len += (size_t)n;
      return;
    }
    char *grown = realloc(*buf, *cap * 2 + (size_t)n);
    if (!grown) {
      free(*buf);
      *buf = NULL;
      return;
    }
    *buf = grown;
    *cap = *cap * 2 + (size_t)n;
  }
}

/* Shortest decimal that reads back as the same float (or double). */
static const char *fmt_float(char *buf, size_t size, float v) {
  for (int p = 6; p <= 9; p++) {
    snprintf(buf, size, "%.*g", p, (double)v);
    if (strtof(buf, NULL) == v) break;
  }
  return buf;
}

static const char *fmt_double(char *buf, size_t size, double v) {
  for (int p = 15; p <= 17; p++) {
    snprintf(buf, size, "%.*g", p, v);
    if (strtod(buf, NULL) == v) break;
  }
  return buf;
}

char *run_config_format(const run_config *c) {
  char f1[32], f2[32], f3[32];
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  if (!buf) return NULL;
  buf[0] = '\0';
  const bert_config *m = &c->model;
  /* hf_config is written as a comment: its fields are the keys that follow,
   * and the file need not exist where the config is read back (a resumed
   * run on another machine, fill-mask). */
  append(&buf, &len, &cap,
         "[model]\npreset = %s\n; hf_config = %s (applied: its fields are the keys below)\nvocab_size = %zu\nhidden_size = %zu\nnum_hidden_layers = %zu\n"
         "num_attention_heads = %zu\nintermediate_size = %zu\nmax_position_embeddings = %zu\n"
         "type_vocab_size = %zu\nhidden_dropout_prob = %s\nattention_probs_dropout_prob = %s\n"
         "layer_norm_eps = %s\ntask = %s\nnum_labels = %zu\ncrf = %s\n",
         c->preset, c->hf_config, m->vocab_size, m->hidden, m->layers, m->heads, m->intermediate,
         m->max_positions, m->type_vocab, fmt_float(f1, sizeof f1, m->hidden_dropout),
         fmt_float(f2, sizeof f2, m->attention_dropout), fmt_float(f3, sizeof f3, m->ln_eps),
         bert_task_name(m->task), m->num_labels, m->crf ? "true" : "false");
  const char *section = "model";
  for (size_t i = 0; i < sizeof k_keys / sizeof k_keys[0]; i++) {
    const key_def *d = &k_keys[i];
    if (strcmp(section, d->section) != 0) {
      section = d->section;
      append(&buf, &len, &cap, "\n[%s]\n", section);
    }
    const char *at = (const char *)c + d->offset;
    char points[512];
    switch (d->kind) {
    case K_STR: append(&buf, &len, &cap, "%s = %s\n", d->key, at); break;
    case K_POINTS:
      schedule_points_format(&c->sched, points, sizeof points);
      append(&buf, &len, &cap, "%s = %s\n", d->key, points);
      break;
    case K_BOOL: append(&buf, &len, &cap, "%s = %s\n", d->key, *(const int *)at ? "true" : "false"); break;
    case K_ENUM:
      append(&buf, &len, &cap, "%s = %s\n", d->key,
             d->name_of(*(const int *)at));
      break;
    case K_SIZE: append(&buf, &len, &cap, "%s = %zu\n", d->key, *(const size_t *)at); break;
    case K_U64: append(&buf, &len, &cap, "%s = %llu\n", d->key, (unsigned long long)*(const uint64_t *)at); break;
    case K_UINT: append(&buf, &len, &cap, "%s = %u\n", d->key, *(const unsigned *)at); break;
    case K_INT: append(&buf, &len, &cap, "%s = %d\n", d->key, *(const int *)at); break;
    case K_DOUBLE: append(&buf, &len, &cap, "%s = %s\n", d->key, fmt_double(f1, sizeof f1, *(const double *)at)); break;
    case K_FLOAT: append(&buf, &len, &cap, "%s = %s\n", d->key, fmt_float(f1, sizeof f1, *(const float *)at)); break;
    }
  }
  return buf;
}
