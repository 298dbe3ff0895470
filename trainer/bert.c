/* BERT for pretraining (see bert.h): configuration and presets, the
 * HuggingFace-named parameter table, the activation arena, and the forward
 * and backward passes built from trainer/layers.h. */
#include "trainer/bert.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "trainer/gemm.h"
#include "trainer/heads.h"
#include "trainer/layers.h"
#include "util/size.h"
#include "util/status.h"

/* ------------------------------------------------------------------ config */

typedef struct preset {
  const char *name;
  size_t layers, hidden, heads, intermediate;
} preset;

/* The compact BERTs of Turc et al. (2019) and BERT-base. */
static const preset presets[] = {
    {"bert-tiny", 2, 128, 2, 512},     {"bert-mini", 4, 256, 4, 1024},
    {"bert-small", 4, 512, 8, 2048},   {"bert-medium", 8, 512, 8, 2048},
    {"bert-base", 12, 768, 12, 3072},
};

int bert_config_preset(bert_config *cfg, const char *name, char **err) {
  for (size_t i = 0; i < sizeof presets / sizeof *presets; i++) {
    if (strcmp(presets[i].name, name) != 0) continue;
    *cfg = (bert_config){
        .vocab_size = 30522,
        .hidden = presets[i].hidden,
        .layers = presets[i].layers,
        .heads = presets[i].heads,
        .intermediate = presets[i].intermediate,
        .max_positions = 512,
        .type_vocab = 2,
        .hidden_dropout = 0.1f,
        .attention_dropout = 0.1f,
        .ln_eps = 1e-12f,
        .nsp = 1,
    };
    return ST_OK;
  }
  return status_set(err, ST_INVALID,
                    "unknown model preset '%s': use bert-tiny, bert-mini, bert-small, "
                    "bert-medium or bert-base",
                    name);
}

/* FIELD_SIZE and FIELD_FLOAT are the architecture, read from a HuggingFace
 * config.json too; the others (the heads) are ddpt's own settings. */
typedef enum { FIELD_SIZE, FIELD_FLOAT, FIELD_BOOL, FIELD_COUNT, FIELD_TASK } field_kind;

typedef struct field {
  const char *key; /* HuggingFace config.json key */
  field_kind kind;
  size_t offset;
} field;

static const field fields[] = {
    {"vocab_size", FIELD_SIZE, offsetof(bert_config, vocab_size)},
    {"hidden_size", FIELD_SIZE, offsetof(bert_config, hidden)},
    {"num_hidden_layers", FIELD_SIZE, offsetof(bert_config, layers)},
    {"num_attention_heads", FIELD_SIZE, offsetof(bert_config, heads)},
    {"intermediate_size", FIELD_SIZE, offsetof(bert_config, intermediate)},
    {"max_position_embeddings", FIELD_SIZE, offsetof(bert_config, max_positions)},
    {"type_vocab_size", FIELD_SIZE, offsetof(bert_config, type_vocab)},
    {"hidden_dropout_prob", FIELD_FLOAT, offsetof(bert_config, hidden_dropout)},
    {"attention_probs_dropout_prob", FIELD_FLOAT, offsetof(bert_config, attention_dropout)},
    {"layer_norm_eps", FIELD_FLOAT, offsetof(bert_config, ln_eps)},
    {"nsp", FIELD_BOOL, offsetof(bert_config, nsp)},
    {"task", FIELD_TASK, offsetof(bert_config, task)},
    {"num_labels", FIELD_COUNT, offsetof(bert_config, num_labels)},
    {"crf", FIELD_BOOL, offsetof(bert_config, crf)},
};

static const char *const task_names[] = {"pretrain", "classify", "tag"};

const char *bert_task_name(int task) {
  if (task < 0 || (size_t)task >= sizeof task_names / sizeof *task_names) return NULL;
  return task_names[task];
}

int bert_task_parse(const char *name) {
  for (size_t i = 0; i < sizeof task_names / sizeof *task_names; i++)
    if (strcmp(task_names[i], name) == 0) return (int)i;
  return -1;
}

int bert_config_set(bert_config *cfg, const char *key, const char *value, char **err) {
  if (strcmp(key, "hidden_act") == 0) {
    if (strcmp(value, "gelu") == 0) return ST_OK;
    return status_set(err, ST_INVALID, "hidden_act '%s' is not supported: ddpt uses 'gelu' (erf)",
                      value);
  }
  for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
    const field *f = &fields[i];
    if (strcmp(f->key, key) != 0) continue;
    char *end = NULL;
    errno = 0;
    char *at = (char *)cfg + f->offset;
    if (f->kind == FIELD_SIZE || f->kind == FIELD_COUNT) {
      unsigned long long v = strtoull(value, &end, 10);
      if (errno || end == value || *end || value[0] == '-' || (v == 0 && f->kind == FIELD_SIZE))
        return status_set(err, ST_INVALID, "%s: '%s' is not a %s integer", key, value,
                          f->kind == FIELD_SIZE ? "positive" : "non-negative");
      *(size_t *)at = (size_t)v;
    } else if (f->kind == FIELD_TASK) {
      int task = bert_task_parse(value);
      if (task < 0)
        return status_set(err, ST_INVALID, "task '%s' is unknown: use pretrain, classify or tag",
                          value);
      *(int *)at = task;
      /* The presets carry the NSP head, which only pretraining has. */
      if (task != BERT_TASK_PRETRAIN) cfg->nsp = 0;
    } else if (f->kind == FIELD_FLOAT) {
      float v = strtof(value, &end);
      if (errno || end == value || *end)
        return status_set(err, ST_INVALID, "%s: '%s' is not a number", key, value);
      *(float *)at = v;
    } else {
      int v = strcmp(value, "1") == 0 || strcmp(value, "true") == 0   ? 1
              : strcmp(value, "0") == 0 || strcmp(value, "false") == 0 ? 0
                                                                       : -1;
      if (v < 0) return status_set(err, ST_INVALID, "%s: '%s' is not true/false", key, value);
      *(int *)at = v;
    }
    return ST_OK;
  }
  return status_set(err, ST_INVALID, "unknown model setting '%s'", key);
}

int bert_config_read_json(bert_config *cfg, const char *path, char **err) {
  FILE *f = fopen(path, "rb");
  if (!f) return status_set(err, ST_IO, "cannot open %s: %s", path, strerror(errno));
  char text[65536];
  size_t n = fread(text, 1, sizeof text - 1, f);
  int too_long = !feof(f);
  fclose(f);
  if (too_long) return status_set(err, ST_INVALID, "%s: larger than 64 KiB, not a config.json", path);
  text[n] = '\0';
  cJSON *root = cJSON_Parse(text);
  if (!root || !cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return status_set(err, ST_CORRUPT, "%s: not a JSON object", path);
  }
  int rc = ST_OK;
  for (size_t i = 0; i < sizeof fields / sizeof *fields && rc == ST_OK; i++) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, fields[i].key);
    if (!item || (fields[i].kind != FIELD_SIZE && fields[i].kind != FIELD_FLOAT)) continue;
    char value[64];
    if (!cJSON_IsNumber(item)) {
      rc = status_set(err, ST_INVALID, "%s: %s is not a number", path, fields[i].key);
      break;
    }
    snprintf(value, sizeof value, fields[i].kind == FIELD_SIZE ? "%.0f" : "%.9g",
             item->valuedouble);
    rc = bert_config_set(cfg, fields[i].key, value, err);
  }
  const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
  if (rc == ST_OK && cJSON_IsString(act)) rc = bert_config_set(cfg, "hidden_act", act->valuestring, err);
  cJSON_Delete(root);
  if (rc != ST_OK) return status_wrap(err, rc, "%s", path);
  return ST_OK;
}

int bert_config_validate(const bert_config *cfg, char **err) {
  if (!cfg->vocab_size || !cfg->hidden || !cfg->layers || !cfg->heads || !cfg->intermediate ||
      !cfg->max_positions || !cfg->type_vocab)
    return status_set(err, ST_INVALID, "model config has a zero size");
  if (cfg->hidden % cfg->heads)
    return status_set(err, ST_INVALID, "hidden size %zu is not a multiple of %zu heads",
                      cfg->hidden, cfg->heads);
  if (cfg->vocab_size > INT32_MAX || cfg->hidden > 65536 || cfg->intermediate > 1u << 20 ||
      cfg->layers > 4096 || cfg->max_positions > 1u << 16 || cfg->type_vocab > 1u << 16)
    return status_set(err, ST_INVALID,
                      "model config sizes are out of range (at most: vocab_size 2^31 - 1, hidden_size 65536, "
                      "intermediate_size 2^20, num_hidden_layers 4096, max_position_embeddings 65536, "
                      "type_vocab_size 65536)");
  if (!(cfg->hidden_dropout >= 0.0f && cfg->hidden_dropout < 1.0f) ||
      !(cfg->attention_dropout >= 0.0f && cfg->attention_dropout < 1.0f))
    return status_set(err, ST_INVALID, "dropout rates must be in [0, 1)");
  if (!(cfg->ln_eps > 0.0f)) return status_set(err, ST_INVALID, "layer_norm_eps must be > 0");
  if (!bert_task_name(cfg->task))
    return status_set(err, ST_INVALID, "model task %d is unknown", cfg->task);
  if (cfg->task == BERT_TASK_PRETRAIN && cfg->num_labels)
    return status_set(err, ST_INVALID,
                      "num_labels = %zu needs task = classify or tag: pretraining has no labels",
                      cfg->num_labels);
  if (cfg->task != BERT_TASK_PRETRAIN && (cfg->num_labels < 2 || cfg->num_labels > 1u << 16))
    return status_set(err, ST_INVALID, "task %s needs num_labels in 2..65536, not %zu",
                      bert_task_name(cfg->task), cfg->num_labels);
  if (cfg->crf && cfg->task != BERT_TASK_TAG)
    return status_set(err, ST_INVALID, "crf needs task = tag, not %s", bert_task_name(cfg->task));
  if (cfg->nsp && cfg->task != BERT_TASK_PRETRAIN)
    return status_set(err, ST_INVALID, "the NSP head needs task = pretrain, not %s",
                      bert_task_name(cfg->task));
  return ST_OK;
}

int bert_config_resolve(bert_config *cfg, const char *preset, const char *json,
                        char *const *sets, size_t nsets, char **err) {
  int rc = bert_config_preset(cfg, preset ? preset : "bert-base", err);
  if (rc == ST_OK && json) rc = bert_config_read_json(cfg, json, err);
  for (size_t i = 0; i < nsets && rc == ST_OK; i++) {
    char key[64];
    const char *eq = strchr(sets[i], '=');
    if (!eq || eq == sets[i] || (size_t)(eq - sets[i]) >= sizeof key)
      return status_set(err, ST_INVALID, "model setting '%s' is not key=value", sets[i]);
    memcpy(key, sets[i], (size_t)(eq - sets[i]));
    key[eq - sets[i]] = '\0';
    rc = bert_config_set(cfg, key, eq + 1, err);
  }
  if (rc == ST_OK) rc = bert_config_validate(cfg, err);
  return rc;
}

void bert_config_describe(const bert_config *cfg, char *buf, size_t size) {
  const char *task = bert_task_name(cfg->task);
  int n = snprintf(buf, size,
                   "layers=%zu hidden=%zu heads=%zu intermediate=%zu vocab=%zu max_positions=%zu "
                   "type_vocab=%zu hidden_dropout=%g attention_dropout=%g ln_eps=%g nsp=%d "
                   "task=%s",
                   cfg->layers, cfg->hidden, cfg->heads, cfg->intermediate, cfg->vocab_size,
                   cfg->max_positions, cfg->type_vocab, cfg->hidden_dropout,
                   cfg->attention_dropout, cfg->ln_eps, cfg->nsp, task ? task : "?");
  if (cfg->task != BERT_TASK_PRETRAIN && n >= 0 && (size_t)n < size)
    snprintf(buf + n, size - (size_t)n, " num_labels=%zu crf=%d", cfg->num_labels, cfg->crf);
}

/* ------------------------------------------------------------- parameters */

/* Offsets (in floats) of one encoder layer's parameters, valid in every arena. */
typedef struct layer_offsets {
  size_t qkvw; /* (3C, C) */
  size_t qkvb; /* (3C) */
  size_t aow;  /* (C, C) */
  size_t aob;  /* (C) */
  size_t ln1w, ln1b; /* (C) */
  size_t fcw;  /* (I, C) */
  size_t fcb;  /* (I) */
  size_t fow;  /* (C, I) */
  size_t fob;  /* (C) */
  size_t ln2w, ln2b; /* (C) */
} layer_offsets;

typedef struct model_offsets {
  size_t wte, wpe, wtt, eln_w, eln_b;
  size_t heads; /* the first entry after the encoder: pooler or head */
  size_t pool_w, pool_b;
  size_t mt_w, mt_b, mln_w, mln_b, mbias;
  size_t nsp_w, nsp_b;
  size_t cls_w, cls_b;         /* classifier (K, C), (K) */
  size_t crf_t, crf_s, crf_e;  /* CRF transitions (K, K), start and end (K) */
} model_offsets;

static int add(params *p, const char *name, size_t d0, size_t d1, size_t *offset, char **err) {
  size_t shape[2] = {d0, d1};
  int is_bias = d1 == 0;
  int is_norm = strstr(name, "LayerNorm") != NULL;
  unsigned flags = PARAMS_TRAINABLE | (is_bias || is_norm ? 0 : PARAMS_DECAY);
  params_init_kind init = is_norm && strstr(name, ".weight") ? PARAMS_INIT_ONES
                          : is_bias || is_norm              ? PARAMS_INIT_ZEROS
                                                            : PARAMS_INIT_NORMAL;
  int rc = params_add(p, name, is_bias ? 1 : 2, shape, flags, init, err);
  if (rc == ST_OK && offset) *offset = p->entries[p->count - 1].offset;
  return rc;
}

/* The parameter table, written once: adds the entries in layout order and
 * records in o and lo (one per layer) where each entry the passes read
 * starts. o and lo NULL: the entries only. */
static int add_params(params *p, const bert_config *cfg, model_offsets *o, layer_offsets *lo,
                      char **err) {
  size_t C = cfg->hidden, I = cfg->intermediate;
  model_offsets unused_o;
  if (!o) o = &unused_o;
  char name[PARAMS_NAME_MAX];
  int rc = ST_OK;
#define ADD(offset, d0, d1, ...)                                      \
  do {                                                                \
    snprintf(name, sizeof name, __VA_ARGS__);                         \
    if ((rc = add(p, name, d0, d1, offset, err)) != ST_OK) return rc; \
  } while (0)
  /* Pretraining: the word embeddings are also the MLM decoder's weight,
   * and come last, after the heads: the decoder's (dense) share of their
   * gradient is final with the heads', so it is reduced while the encoder's
   * backward runs; the lookup's (sparse) share is kept out of the arena
   * (bert_set_word_grad_rows). */
  int tied_last = cfg->task == BERT_TASK_PRETRAIN;
  if (!tied_last) ADD(&o->wte, cfg->vocab_size, C, "bert.embeddings.word_embeddings.weight");
  ADD(&o->wpe, cfg->max_positions, C, "bert.embeddings.position_embeddings.weight");
  ADD(&o->wtt, cfg->type_vocab, C, "bert.embeddings.token_type_embeddings.weight");
  ADD(&o->eln_w, C, 0, "bert.embeddings.LayerNorm.weight");
  ADD(&o->eln_b, C, 0, "bert.embeddings.LayerNorm.bias");
  for (size_t l = 0; l < cfg->layers; l++) {
    layer_offsets unused_l, *y = lo ? &lo[l] : &unused_l;
    /* query, key, value weights then biases back to back: one [3C, C]
     * matrix and one [3C] vector for the fused projection (params.h, 1). */
    ADD(&y->qkvw, C, C, "bert.encoder.layer.%zu.attention.self.query.weight", l);
    ADD(NULL, C, C, "bert.encoder.layer.%zu.attention.self.key.weight", l);
    ADD(NULL, C, C, "bert.encoder.layer.%zu.attention.self.value.weight", l);
    ADD(&y->qkvb, C, 0, "bert.encoder.layer.%zu.attention.self.query.bias", l);
    ADD(NULL, C, 0, "bert.encoder.layer.%zu.attention.self.key.bias", l);
    ADD(NULL, C, 0, "bert.encoder.layer.%zu.attention.self.value.bias", l);
    ADD(&y->aow, C, C, "bert.encoder.layer.%zu.attention.output.dense.weight", l);
    ADD(&y->aob, C, 0, "bert.encoder.layer.%zu.attention.output.dense.bias", l);
    ADD(&y->ln1w, C, 0, "bert.encoder.layer.%zu.attention.output.LayerNorm.weight", l);
    ADD(&y->ln1b, C, 0, "bert.encoder.layer.%zu.attention.output.LayerNorm.bias", l);
    ADD(&y->fcw, I, C, "bert.encoder.layer.%zu.intermediate.dense.weight", l);
    ADD(&y->fcb, I, 0, "bert.encoder.layer.%zu.intermediate.dense.bias", l);
    ADD(&y->fow, C, I, "bert.encoder.layer.%zu.output.dense.weight", l);
    ADD(&y->fob, C, 0, "bert.encoder.layer.%zu.output.dense.bias", l);
    ADD(&y->ln2w, C, 0, "bert.encoder.layer.%zu.output.LayerNorm.weight", l);
    ADD(&y->ln2b, C, 0, "bert.encoder.layer.%zu.output.LayerNorm.bias", l);
  }
  o->heads = p->total;
  if (cfg->nsp || cfg->task == BERT_TASK_CLASSIFY) {
    ADD(&o->pool_w, C, C, "bert.pooler.dense.weight");
    ADD(&o->pool_b, C, 0, "bert.pooler.dense.bias");
  }
  if (cfg->task == BERT_TASK_PRETRAIN) {
    ADD(&o->mt_w, C, C, "cls.predictions.transform.dense.weight");
    ADD(&o->mt_b, C, 0, "cls.predictions.transform.dense.bias");
    ADD(&o->mln_w, C, 0, "cls.predictions.transform.LayerNorm.weight");
    ADD(&o->mln_b, C, 0, "cls.predictions.transform.LayerNorm.bias");
    ADD(&o->mbias, cfg->vocab_size, 0, "cls.predictions.bias");
  }
  if (cfg->nsp) {
    ADD(&o->nsp_w, 2, C, "cls.seq_relationship.weight");
    ADD(&o->nsp_b, 2, 0, "cls.seq_relationship.bias");
  }
  if (tied_last) ADD(&o->wte, cfg->vocab_size, C, "bert.embeddings.word_embeddings.weight");
  if (cfg->task != BERT_TASK_PRETRAIN) {
    /* HuggingFace's initializer_range normal, as for every Linear. */
    ADD(&o->cls_w, cfg->num_labels, C, "classifier.weight");
    ADD(&o->cls_b, cfg->num_labels, 0, "classifier.bias");
  }
  if (cfg->crf) {
    /* Zeros, not pytorch-crf's uniform(-0.1, 0.1): a new CRF then starts as
     * the plain token classifier (emissions alone decide), and its scores
     * move only as far as the labels push them. No weight decay: they are
     * scores between labels, not a projection's weights. */
    size_t K = cfg->num_labels, kk[2] = {K, K};
    static const char *const crf_names[] = {"crf.transitions", "crf.start_transitions",
                                            "crf.end_transitions"};
    size_t *crf_offsets[] = {&o->crf_t, &o->crf_s, &o->crf_e};
    for (int i = 0; i < 3; i++) {
      if ((rc = params_add(p, crf_names[i], i == 0 ? 2 : 1, kk, PARAMS_TRAINABLE,
                           PARAMS_INIT_ZEROS, err)) != ST_OK)
        return rc;
      *crf_offsets[i] = p->entries[p->count - 1].offset;
    }
  }
#undef ADD
  return ST_OK;
}

int bert_params_add(params *p, const bert_config *cfg, char **err) {
  return add_params(p, cfg, NULL, NULL, err);
}

/* One encoder layer's activations, kept from forward for backward. */
typedef struct layer_acts {
  float *qkv;        /* (N, 3C) */
  float *att;        /* (B, NH, L, L) softmax probabilities */
  float *attd;       /* (B, NH, L, L) after dropout, NULL without attention dropout */
  float *ctx;        /* (N, C) attention output before its projection; NULL in bf16 */
  uint16_t *ctx_h;   /* (N, C) bf16: ctx kept in bf16, NULL in fp32 */
  float *r1;         /* (N, C) input of the attention LayerNorm */
  float *ln1;        /* (N, C) */
  float *mean1, *rstd1; /* (N) */
  float *fc;         /* (N, I) before GELU */
  float *gelu;       /* (N, I) */
  float *r2;         /* (N, C) input of the output LayerNorm */
  float *ln2;        /* (N, C) the layer's output */
  float *mean2, *rstd2; /* (N) */
  uint8_t *keep1, *keep2; /* (N, C) dropout masks before the two residual joins */
} layer_acts;

struct bert_model {
  bert_config cfg;
  params *p;
  size_t B, L, max_pred;
  model_offsets off;
  layer_offsets *loff; /* (layers) */
  float *arena;        /* activations and backward scratch (arena_layout) */
  float *emb;          /* (N, C) embedding sum, input of its LayerNorm */
  float *emb_mean, *emb_rstd; /* (N) */
  float *x0;           /* (N, C) embeddings after LayerNorm and dropout */
  layer_acts *acts;    /* (layers) */
  /* MLM head, over the P predicted positions. */
  size_t *mlm_rows;    /* (B * max_pred) */
  int32_t *mlm_targets; /* (B * max_pred) */
  float *mh;           /* (P, C) gathered encoder output */
  float *mt;           /* (P, C) transform dense */
  float *mg;           /* (P, C) GELU */
  float *mu;           /* (P, C) transform LayerNorm */
  float *m_mean, *m_rstd; /* (P) */
  float *logits;       /* (P, V) logits, then probabilities, then their gradient */
  /* Pooler (NSP and CLASSIFY). */
  float *ph;           /* (B, C) encoder output at [CLS] */
  float *pd;           /* (B, C) pooler dense */
  float *pt;           /* (B, C) tanh */
  /* NSP head. */
  float *nl;           /* (B, 2) NSP logits / probabilities */
  /* CLASSIFY and TAG heads, over R rows: R = B (the pooled [CLS]) or N. */
  float *hd;           /* (R, C) the classifier's input, after dropout */
  float *tl;           /* (R, K) logits (bert_task_logits) */
  float *tp;           /* (R, K) softmax probabilities, then in backward d(logits) */
  float *emis;         /* (N, K) CRF emissions: the chain rows' logits */
  float *demis;        /* (N, K) their gradient (backward scratch) */
  size_t *chain_rows;  /* (N) CRF: positions of the chain rows (head_chain_rows) */
  size_t *chain_first; /* (B + 1) */
  int32_t *chain_tags; /* (N) their labels, or Viterbi's */
  double *crf_work;    /* (head_crf_work_len(L, K)) */
  int32_t *crf_back;   /* (L, K) Viterbi back-pointers */
  /* Backward scratch. */
  float *dx, *dr, *df, *dctx; /* (N, C) */
  float *dqkv;                 /* (N, 3C) */
  float *dgelu, *dfc;          /* (N, I) */
  float *datt;                 /* (B, NH, L, L) */
  /* The last encoder layer runs only for the rows the heads read (see
   * plan_last_layer): sorted rows, per-sequence ranges for the attention,
   * and where each head row sits among them. */
  int last_full;       /* bert_set_last_layer_full */
  int pruned;          /* the last forward computed only nkeep rows */
  size_t nkeep;
  size_t *keep_rows;   /* (N) */
  size_t *keep_first;  /* (B + 1) */
  size_t *keep_pos;    /* (N) position of each kept row in its sequence */
  size_t *mlm_local;   /* (B * max_pred) MLM rows among the last layer's rows */
  size_t *cls_local;   /* (B) */
  float *xq;           /* (N, C) the kept rows of the last layer's input */
  float *q;            /* (N, C) their queries */
  /* Told when gradients become final (bert_set_grad_ready). */
  bert_grad_ready_fn grad_ready;
  void *grad_ready_ctx;
  /* Where the word-embedding lookup's gradient goes (bert_set_word_grad_rows). */
  float *word_grad;         /* (rows, C) NULL: into the arena */
  const int32_t *word_rows; /* (B, L) */
  /* What the last forward saw. */
  size_t P, batch_B;
  size_t task_count;   /* bert_loss.task_count, for backward's scale */
  int dropout_on;
  bert_dropout drop;
  /* bert_set_precision: GEMM_BF16 keeps a bf16 copy of the parameters
   * (p->bf16), kept current by the optimizer's updates and refilled at the
   * first pass after bert_weights_changed. */
  int precision;
  uint16_t *shadow;    /* (p->total) */
  int shadow_stale;
};

/* Floats that hold a dropout mask of n bytes. */
static size_t mask_floats(size_t n) { return (n + sizeof(float) - 1) / sizeof(float); }

/* Hands out consecutive pieces of the arena; with no arena (base NULL) it
 * only counts. */
typedef struct arena_cursor {
  float *base;
  size_t used; /* floats */
} arena_cursor;

static float *take(arena_cursor *c, size_t n) {
  float *at = c->base ? c->base + c->used : NULL;
  c->used += n;
  return at;
}

/* n bf16 values: half as many floats, rounded up. */
static uint16_t *take_bf16(arena_cursor *c, size_t n) { return (uint16_t *)take(c, (n + 1) / 2); }

/* The one description of the activation arena for (m->B, m->L,
 * m->max_pred): every buffer once, with its size, in arena order — the
 * forward activations backward reads, then the backward scratch. With
 * m->arena set it points m's buffers into it; with m->arena NULL it only
 * counts, which is how bert_memory_estimate sizes the arena that
 * bert_model_create then carves. *act and *scratch: floats of each part.
 *
 * In bf16 (m->precision) the attention context, which only products read,
 * is kept in bf16: rounded once after attention, read as it is by the
 * output projection's weight gradient (rounding once earlier gives the
 * same values). The GELU output is not: its backward reads it in fp32, and
 * computing it again there costs more than rounding it twice (docs/model.md,
 * "bf16"). */
static void arena_layout(bert_model *m, size_t *act, size_t *scratch) {
  const bert_config *cfg = &m->cfg;
  int h = m->precision == GEMM_BF16;
  size_t B = m->B, N = m->B * m->L, C = cfg->hidden, I = cfg->intermediate;
  size_t P = B * m->max_pred, att = B * cfg->heads * m->L * m->L, K = cfg->num_labels;
  size_t R = cfg->task == BERT_TASK_CLASSIFY ? B : cfg->task == BERT_TASK_TAG ? N : 0;
  arena_cursor c = {m->arena, 0};
  m->emb = take(&c, N * C);
  m->emb_mean = take(&c, N);
  m->emb_rstd = take(&c, N);
  m->x0 = take(&c, N * C);
  for (size_t l = 0; l < cfg->layers; l++) {
    layer_acts counted, *a = m->acts ? &m->acts[l] : &counted;
    a->qkv = take(&c, N * 3 * C);
    a->att = take(&c, att);
    a->attd = cfg->attention_dropout > 0.0f ? take(&c, att) : NULL;
    a->ctx = h ? NULL : take(&c, N * C);
    a->ctx_h = h ? take_bf16(&c, N * C) : NULL;
    a->r1 = take(&c, N * C);
    a->ln1 = take(&c, N * C);
    a->mean1 = take(&c, N);
    a->rstd1 = take(&c, N);
    a->fc = take(&c, N * I);
    a->gelu = take(&c, N * I);
    a->r2 = take(&c, N * C);
    a->ln2 = take(&c, N * C);
    a->mean2 = take(&c, N);
    a->rstd2 = take(&c, N);
    a->keep1 = (uint8_t *)take(&c, mask_floats(N * C));
    a->keep2 = (uint8_t *)take(&c, mask_floats(N * C));
  }
  m->mh = take(&c, P * C);
  m->mt = take(&c, P * C);
  m->mg = take(&c, P * C);
  m->mu = take(&c, P * C);
  m->m_mean = take(&c, P);
  m->m_rstd = take(&c, P);
  m->logits = take(&c, P * cfg->vocab_size);
  if (cfg->nsp || cfg->task == BERT_TASK_CLASSIFY) {
    m->ph = take(&c, B * C);
    m->pd = take(&c, B * C);
    m->pt = take(&c, B * C);
  }
  if (cfg->nsp) m->nl = take(&c, B * 2);
  if (R) {
    m->hd = take(&c, R * C);
    m->tl = take(&c, R * K);
    m->tp = take(&c, R * K);
  }
  if (cfg->crf) m->emis = take(&c, N * K);
  m->xq = take(&c, N * C);
  m->q = take(&c, N * C);
  *act = c.used;
  m->dx = take(&c, N * C);
  m->dr = take(&c, N * C);
  m->df = take(&c, N * C);
  m->dctx = take(&c, N * C);
  m->dqkv = take(&c, N * 3 * C);
  m->dgelu = take(&c, N * I);
  m->dfc = take(&c, N * I);
  m->datt = take(&c, att);
  if (cfg->crf) m->demis = take(&c, N * K);
  *scratch = c.used - *act;
}

/* Floats of the parameter table, counted by building it. */
static int count_params(const bert_config *cfg, size_t *count, char **err) {
  params *p = params_create();
  if (!p) return status_set(err, ST_NOMEM, "out of memory");
  int rc = add_params(p, cfg, NULL, NULL, err);
  *count = p->total;
  params_free(p);
  return rc;
}

/* The bf16 conversion buffers' floats (trainer/gemm.c): the largest A
 * operand that is not a weight (an input, or an output gradient of up to
 * max(3C, I, V, K) columns, or attention's (B, heads, L, L) probabilities)
 * and the largest B operand that is not (an input of a weight gradient, C
 * or I columns; attention's keys, values, queries and output gradient have
 * N x C), over every product. */
static size_t bf16_operand_floats(const bert_config *cfg, size_t B, size_t L, size_t max_pred) {
  size_t N = B * L, P = B * max_pred, C = cfg->hidden, I = cfg->intermediate;
  size_t a = N * (3 * C > I ? 3 * C : I), b = N * (C > I ? C : I);
  if (P * cfg->vocab_size > a) a = P * cfg->vocab_size;
  if (N * cfg->heads * L > a) a = N * cfg->heads * L;
  if (N * cfg->num_labels > a) a = N * cfg->num_labels;
  return a + b;
}

size_t bert_memory_total(const bert_memory *mem, int precision) {
  size_t total = mem->params + mem->grads + mem->adam + mem->scratch;
  return precision == GEMM_BF16 ? total + mem->activations_bf16 + mem->bf16_weights + mem->bf16_operands
                                : total + mem->activations;
}

int bert_memory_estimate(const bert_config *cfg, size_t B, size_t L, size_t max_pred,
                         bert_memory *mem, char **err) {
  int rc = bert_config_validate(cfg, err);
  if (rc != ST_OK) return rc;
  int mlm = cfg->task == BERT_TASK_PRETRAIN;
  if (!B || !L || L > cfg->max_positions || (mlm && !max_pred) || max_pred > L)
    return status_set(err, ST_INVALID,
                      "batch %zu x seq_len %zu (max %zu predictions per sequence) does not fit "
                      "a model with %zu positions",
                      B, L, max_pred, cfg->max_positions);
  /* The largest products arena_layout forms, checked before it forms them
   * unchecked: per layer B x L x (hidden, intermediate) and B x heads x L x
   * L, and the MLM logits B x max_pred x vocab, with room for the sums. */
  size_t per_token = cfg->hidden * 16 + cfg->intermediate * 4; /* bounded by bert_config_validate */
  size_t bl, acts, attn, layer, all, preds, logits;
  if (!size_mul_ok(B, L, &bl) || !size_mul_ok(bl, per_token, &acts) || !size_mul_ok(bl, cfg->heads, &attn) ||
      !size_mul_ok(attn, L * 4, &attn) || !size_add_ok(acts, attn, &layer) ||
      !size_mul_ok(layer, cfg->layers, &all) || !size_mul_ok(B, max_pred, &preds) ||
      !size_mul_ok(preds, cfg->vocab_size * 4, &logits) || all > SIZE_MAX / 64 || logits > SIZE_MAX / 64)
    return status_set(err, ST_NOMEM,
                      "batch %zu x seq_len %zu for this model (hidden %zu, %zu layers, vocab %zu) is too large to "
                      "address: reduce the batch size or the sequence length",
                      B, L, cfg->hidden, cfg->layers, cfg->vocab_size);
  size_t count;
  if ((rc = count_params(cfg, &count, err)) != ST_OK) return rc;
  /* A model that is never allocated: the layout only counts. */
  bert_model counting = {.cfg = *cfg, .B = B, .L = L, .max_pred = mlm ? max_pred : 0};
  size_t act, act_bf16, scratch;
  counting.precision = GEMM_BF16;
  arena_layout(&counting, &act_bf16, &scratch);
  counting.precision = GEMM_FP32;
  arena_layout(&counting, &act, &scratch);
  *mem = (bert_memory){
      .params = count * sizeof(float),
      .grads = count * sizeof(float),
      .adam = 2 * count * sizeof(float),
      .activations = act * sizeof(float),
      .activations_bf16 = act_bf16 * sizeof(float),
      .scratch = scratch * sizeof(float),
      .param_count = count,
      .bf16_weights = count * sizeof(uint16_t),
      .bf16_operands = bf16_operand_floats(cfg, B, L, mlm ? max_pred : 0) * sizeof(uint16_t),
  };
  return ST_OK;
}

int bert_flops_per_step(const bert_config *cfg, size_t B, size_t L, size_t predicted,
                        bert_flops *out, char **err) {
  int rc = bert_config_validate(cfg, err);
  if (rc != ST_OK) return rc;
  if (!B || !L || L > cfg->max_positions || predicted > B * L)
    return status_set(err, ST_INVALID,
                      "batch %zu x seq_len %zu with %zu predicted tokens does not fit a model "
                      "with %zu positions",
                      B, L, predicted, cfg->max_positions);
  size_t count;
  if ((rc = count_params(cfg, &count, err)) != ST_OK) return rc;
  double tokens = (double)(B * L);
  double attn = 12.0 * (double)cfg->layers * (double)L * (double)cfg->hidden * tokens;
  out->model = 6.0 * (double)count * tokens + attn;
  /* The rows the pruned last layer computes (plan_last_layer): the
   * predicted tokens and each [CLS] the pooler reads; all of them when that
   * is none, and for tagging, which reads every row. */
  double C = (double)cfg->hidden, I = (double)cfg->intermediate, V = (double)cfg->vocab_size;
  double K = (double)cfg->num_labels, layers = (double)cfg->layers, L_ = (double)L;
  int pooled = cfg->nsp || cfg->task == BERT_TASK_CLASSIFY;
  if (cfg->task != BERT_TASK_PRETRAIN) predicted = 0; /* no MLM head */
  double rows = (double)predicted + (pooled ? (double)B : 0.0);
  if (rows == 0.0 || rows > tokens || cfg->task == BERT_TASK_TAG) rows = tokens;
  double per_token = 4 * C * C + 2 * C * I;
  double last = 2 * C * C * tokens + (2 * C * C + 2 * C * I) * rows;
  out->work = 6.0 * ((layers - 1) * per_token * tokens + last) +
              12.0 * L_ * C * ((layers - 1) * tokens + rows) +
              6.0 * (C * C + V * C) * (double)predicted +
              (pooled ? 6.0 * C * C * (double)B : 0.0) +
              (cfg->nsp ? 6.0 * 2 * C * (double)B : 0.0) +
              (cfg->task == BERT_TASK_CLASSIFY ? 6.0 * K * C * (double)B : 0.0) +
              (cfg->task == BERT_TASK_TAG ? 6.0 * K * C * tokens : 0.0);
  return ST_OK;
}

int bert_model_create(bert_model **out, const bert_config *cfg, size_t B, size_t L,
                      size_t max_pred, char **err) {
  bert_memory mem;
  int rc = bert_memory_estimate(cfg, B, L, max_pred, &mem, err);
  if (rc != ST_OK) return rc;
  bert_model *m = calloc(1, sizeof *m);
  if (!m) return status_set(err, ST_NOMEM, "out of memory");
  m->cfg = *cfg;
  m->B = B;
  m->L = L;
  m->max_pred = cfg->task == BERT_TASK_PRETRAIN ? max_pred : 0;
  size_t P = B * m->max_pred, N = B * L, K = cfg->num_labels;
  m->p = params_create();
  m->loff = calloc(cfg->layers, sizeof *m->loff);
  m->acts = calloc(cfg->layers, sizeof *m->acts);
  m->mlm_rows = calloc(P + 1, sizeof *m->mlm_rows); /* + 1: P is 0 without the MLM head */
  m->mlm_targets = calloc(P + 1, sizeof *m->mlm_targets);
  m->keep_rows = malloc(N * sizeof *m->keep_rows);
  m->keep_first = malloc((B + 1) * sizeof *m->keep_first);
  m->keep_pos = malloc(N * sizeof *m->keep_pos);
  m->mlm_local = calloc(P + 1, sizeof *m->mlm_local);
  m->cls_local = malloc(B * sizeof *m->cls_local);
  if (cfg->crf) {
    m->chain_rows = malloc(N * sizeof *m->chain_rows);
    m->chain_first = malloc((B + 1) * sizeof *m->chain_first);
    m->chain_tags = malloc(N * sizeof *m->chain_tags);
    m->crf_work = malloc(head_crf_work_len(L, K) * sizeof *m->crf_work);
    m->crf_back = malloc(L * K * sizeof *m->crf_back);
  }
  if (!m->p || !m->loff || !m->acts || !m->mlm_rows || !m->mlm_targets ||
      !m->keep_rows || !m->keep_first || !m->keep_pos || !m->mlm_local || !m->cls_local ||
      (cfg->crf && (!m->chain_rows || !m->chain_first || !m->chain_tags || !m->crf_work ||
                    !m->crf_back))) {
    rc = status_set(err, ST_NOMEM, "out of memory");
    goto fail;
  }
  if ((rc = add_params(m->p, cfg, &m->off, m->loff, err)) != ST_OK) goto fail;
  /* Linux overcommits: a malloc larger than the machine succeeds and the
   * process dies later, at first touch. Refuse it here with the figures. */
  double need = (double)(mem.params + mem.grads + mem.adam + mem.activations + mem.scratch);
  double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
  if (have > 0 && need > have) {
    rc = status_set(err, ST_NOMEM,
                    "model needs %.1f GiB (parameters, gradients and Adam state %.1f GiB, "
                    "activations for batch %zu x seq_len %zu %.1f GiB) but this machine has "
                    "%.1f GiB: reduce the batch size or the sequence length",
                    need / (1 << 30), (double)(mem.params + mem.grads + mem.adam) / (1 << 30), B,
                    L, (double)(mem.activations + mem.scratch) / (1 << 30), have / (1 << 30));
    goto fail;
  }
  if ((rc = params_alloc(m->p, err)) != ST_OK) goto fail;
  size_t arena_bytes = mem.activations + mem.scratch;
  m->arena = malloc(arena_bytes);
  if (!m->arena) {
    rc = status_set(err, ST_NOMEM,
                    "cannot allocate %.1f MiB of activations for batch %zu x seq_len %zu: "
                    "reduce the batch size or the sequence length",
                    (double)arena_bytes / (1 << 20), B, L);
    goto fail;
  }
  size_t act, scratch;
  arena_layout(m, &act, &scratch);
  *out = m;
  return ST_OK;
fail:
  bert_model_free(m);
  return rc;
}

void bert_model_free(bert_model *m) {
  if (!m) return;
  params_free(m->p);
  free(m->loff);
  free(m->acts);
  free(m->mlm_rows);
  free(m->mlm_targets);
  free(m->keep_rows);
  free(m->keep_first);
  free(m->keep_pos);
  free(m->mlm_local);
  free(m->cls_local);
  free(m->chain_rows);
  free(m->chain_first);
  free(m->chain_tags);
  free(m->crf_work);
  free(m->crf_back);
  free(m->arena);
  if (m->shadow) gemm_shadow_set(NULL, NULL, 0);
  free(m->shadow);
  free(m);
}

/* The activation arena laid out and sized for precision (arena_layout):
 * its contents are one pass's, not kept across. Out of memory (growing it
 * back to fp32's layout) leaves m as it was. */
static int arena_place(bert_model *m, int precision, char **err) {
  int was = m->precision;
  float *old = m->arena;
  size_t act, scratch;
  m->precision = precision;
  m->arena = NULL; /* counts only */
  arena_layout(m, &act, &scratch);
  size_t bytes = (act + scratch) * sizeof(float);
  float *placed = realloc(old, bytes);
  if (!placed) m->precision = was;
  m->arena = placed ? placed : old;
  arena_layout(m, &act, &scratch);
  if (!placed)
    return status_set(err, ST_NOMEM,
                      "cannot allocate %.1f MiB of activations for precision = %s: reduce the batch "
                      "size or the sequence length",
                      (double)bytes / (1 << 20), gemm_precision_name(precision));
  return ST_OK;
}

int bert_set_precision(bert_model *m, int precision, char **err) {
  int rc = gemm_set_precision((gemm_precision)precision, err);
  if (rc != ST_OK) return rc;
  if (precision == GEMM_BF16 && !m->shadow) {
    m->shadow = malloc(m->p->total * sizeof *m->shadow);
    if (!m->shadow)
      return status_set(err, ST_NOMEM,
                        "cannot allocate %.1f MiB for the bf16 copy of the weights: run with "
                        "precision = fp32",
                        (double)(m->p->total * sizeof *m->shadow) / (1 << 20));
  }
  if ((rc = arena_place(m, precision, err)) != ST_OK) precision = m->precision;
  if (precision != GEMM_BF16) {
    gemm_shadow_set(NULL, NULL, 0);
    free(m->shadow);
    m->shadow = NULL;
  }
  /* The optimizer writes the copy as it updates (optimizer.h, 4). */
  m->p->bf16 = m->shadow;
  m->shadow_stale = 1;
  return rc;
}

int bert_precision(const bert_model *m) { return m->precision; }

void bert_weights_changed(bert_model *m) { m->shadow_stale = 1; }

/* Every pass computes in this model's precision, reading its own shadow
 * (the seam's state is per process; a test may hold two models). The
 * shadow is filled once per update, at the first pass that needs it. */
static void use_precision(bert_model *m) {
  int rc = gemm_set_precision((gemm_precision)m->precision, NULL);
  assert(rc == ST_OK); /* bert_set_precision checked it */
  (void)rc;
  if (!m->shadow) return;
  gemm_shadow_set(m->p->data, m->shadow, m->p->total);
  if (m->shadow_stale) gemm_shadow_fill();
  m->shadow_stale = 0;
}

params *bert_model_params(bert_model *m) { return m->p; }

/* ----------------------------------------------------------------- passes */

/* Dropout sites within a step: three per layer, one for the embeddings, one
 * before the classifier. */
enum {
  SITE_ATT = 0,
  SITE_ATT_OUT = 1,
  SITE_FFN_OUT = 2,
  SITE_EMB = 0xffffff,
  SITE_HEAD = 0xfffffe,
};

static layer_rng site_key(const bert_model *m, uint32_t site) {
  return (layer_rng){m->drop.seed, m->drop.step, m->drop.micro, site};
}

static float rate(const bert_model *m, float p) { return m->dropout_on ? p : 0.0f; }

static int check_batch(const bert_model *m, const bert_batch *batch, char **err) {
  const bert_config *cfg = &m->cfg;
  if (batch->B == 0 || batch->B > m->B || batch->L != m->L)
    return status_set(err, ST_INVALID,
                      "batch of %zu x %zu does not fit a model created for %zu x %zu", batch->B,
                      batch->L, m->B, m->L);
  if (cfg->nsp && !batch->nsp_labels)
    return status_set(err, ST_INVALID, "the model has an NSP head but the batch has no labels");
  int mlm = cfg->task == BERT_TASK_PRETRAIN;
  if (mlm && !batch->mlm_labels)
    return status_set(err, ST_INVALID, "a pretraining batch needs MLM labels");
  size_t N = batch->B * batch->L;
  const int32_t *task_labels = cfg->task == BERT_TASK_CLASSIFY ? batch->class_labels
                               : cfg->task == BERT_TASK_TAG    ? batch->tag_labels
                                                               : NULL;
  size_t nlabels = cfg->task == BERT_TASK_CLASSIFY ? batch->B : N;
  for (size_t i = 0; task_labels && i < nlabels; i++)
    if (task_labels[i] != HEAD_IGNORE &&
        (task_labels[i] < 0 || (size_t)task_labels[i] >= cfg->num_labels))
      return status_set(err, ST_INVALID, "label %d at %zu is outside 0..%zu (or -100, none)",
                        task_labels[i], i, cfg->num_labels - 1);
  for (size_t i = 0; i < N; i++) {
    if (batch->input_ids[i] < 0 || (size_t)batch->input_ids[i] >= cfg->vocab_size)
      return status_set(err, ST_INVALID, "token id %d at %zu is outside the vocabulary of %zu",
                        batch->input_ids[i], i, cfg->vocab_size);
    if (batch->segment_ids[i] < 0 || (size_t)batch->segment_ids[i] >= cfg->type_vocab)
      return status_set(err, ST_INVALID, "segment id %d at %zu is outside 0..%zu",
                        batch->segment_ids[i], i, cfg->type_vocab - 1);
    if (mlm && (batch->mlm_labels[i] < -1 || batch->mlm_labels[i] >= (int32_t)cfg->vocab_size))
      return status_set(err, ST_INVALID, "MLM label %d at %zu is outside the vocabulary",
                        batch->mlm_labels[i], i);
  }
  for (size_t b = 0; b < batch->B; b++) {
    if (!batch->attention_mask[b * batch->L])
      return status_set(err, ST_INVALID, "sequence %zu starts with padding", b);
    if (cfg->nsp && (batch->nsp_labels[b] < 0 || batch->nsp_labels[b] > 1))
      return status_set(err, ST_INVALID, "NSP label %d of sequence %zu is not 0 or 1",
                        batch->nsp_labels[b], b);
  }
  return ST_OK;
}

/* Rows (N, V) of probabilities whose largest entry (the first, on ties) is
 * at the row's target. */
static size_t count_correct(const float *probs, const int32_t *targets, size_t N, size_t V) {
  size_t correct = 0;
  for (size_t i = 0; i < N; i++) {
    const float *row = probs + i * V;
    size_t best = 0;
    for (size_t v = 1; v < V; v++)
      if (row[v] > row[best]) best = v;
    correct += (int32_t)best == targets[i];
  }
  return correct;
}

void bert_set_grad_ready(bert_model *m, bert_grad_ready_fn fn, void *ctx) {
  m->grad_ready = fn;
  m->grad_ready_ctx = ctx;
}

void bert_set_word_grad_rows(bert_model *m, float *dwte, const int32_t *rows) {
  m->word_grad = dwte;
  m->word_rows = dwte ? rows : NULL;
}

static void grads_ready_from(const bert_model *m, size_t lo) {
  if (m->grad_ready) m->grad_ready(m->grad_ready_ctx, lo);
}

void bert_set_last_layer_full(bert_model *m, int full) { m->last_full = full; }

/* The heads read the last layer's output only at the predicted tokens and,
 * through the pooler (NSP, CLASSIFY), at each [CLS]: the last layer computes
 * just those rows (its keys and values still come from every row). Collects
 * them in row order, with each sequence's range and where each head row sits
 * among them. Every row is computed when the model is told to
 * (bert_set_last_layer_full), for tagging, or when the kept rows would be
 * all or none of them. */
static void plan_last_layer(bert_model *m, size_t B, size_t L) {
  size_t n = 0, ip = 0;
  int pooled = m->cfg.nsp || m->cfg.task == BERT_TASK_CLASSIFY;
  for (size_t b = 0; b < B; b++) {
    m->keep_first[b] = n;
    size_t end = (b + 1) * L;
    if (pooled) {
      m->cls_local[b] = n;
      m->keep_rows[n] = b * L;
      m->keep_pos[n++] = 0;
    }
    for (; ip < m->P && m->mlm_rows[ip] < end; ip++) {
      size_t row = m->mlm_rows[ip];
      if (n > m->keep_first[b] && m->keep_rows[n - 1] == row) {
        m->mlm_local[ip] = n - 1; /* a prediction at [CLS] */
        continue;
      }
      m->mlm_local[ip] = n;
      m->keep_rows[n] = row;
      m->keep_pos[n++] = row - b * L;
    }
  }
  m->keep_first[B] = n;
  m->nkeep = n;
  m->pruned = !m->last_full && m->cfg.task != BERT_TASK_TAG && n > 0 && n < B * L;
  if (!m->pruned) {
    m->nkeep = B * L;
    for (size_t i = 0; i < m->P; i++) m->mlm_local[i] = m->mlm_rows[i];
    for (size_t b = 0; b < B; b++) m->cls_local[b] = b * L;
  }
}

/* Encoder layer l on input x (N, C). In the pruned last layer every
 * activation after the key/value projection has nkeep rows. */
static void encoder_forward(bert_model *m, size_t l, const bert_batch *batch, const float *x) {
  const bert_config *cfg = &m->cfg;
  const float *w = m->p->data;
  const layer_offsets *lo = &m->loff[l];
  layer_acts *a = &m->acts[l];
  size_t B = batch->B, L = batch->L, N = B * L, C = cfg->hidden, I = cfg->intermediate;
  uint32_t site = (uint32_t)l * 4;
  float pa = rate(m, cfg->attention_dropout), ph = rate(m, cfg->hidden_dropout);
  int prune = m->pruned && l + 1 == cfg->layers;
  size_t n = prune ? m->nkeep : N;
  const size_t *rows = prune ? m->keep_rows : NULL;
  const float *xres = x;
  /* bf16 keeps the context in bf16 only: attention writes it to backward's
   * scratch, free during forward, and it is rounded once from there. */
  float *ctx = a->ctx_h ? m->dctx : a->ctx;
  if (prune) {
    layer_queries qs = {m->keep_first, m->keep_pos};
    layer_linear_forward_ld(a->qkv + C, 3 * C, x, w + lo->qkvw + C * C, w + lo->qkvb + C, N, C,
                            2 * C);
    layer_gather_forward(m->xq, x, rows, n, C);
    layer_linear_forward(m->q, m->xq, w + lo->qkvw, w + lo->qkvb, n, C, C);
    layer_attention_forward_q(ctx, a->att, pa > 0.0f ? a->attd : NULL, m->q, C, a->qkv + C,
                              3 * C, &qs, batch->attention_mask, pa, site_key(m, site + SITE_ATT),
                              B, L, C, cfg->heads);
    xres = m->xq;
  } else {
    layer_linear_forward(a->qkv, x, w + lo->qkvw, w + lo->qkvb, N, C, 3 * C);
    layer_attention_forward(ctx, a->att, pa > 0.0f ? a->attd : NULL, a->qkv,
                            batch->attention_mask, pa, site_key(m, site + SITE_ATT), B, L, C,
                            cfg->heads);
  }
  if (a->ctx_h) {
    gemm_to_bf16(a->ctx_h, ctx, n * C);
    layer_linear_forward_bf16in(a->r1, a->ctx_h, w + lo->aow, w + lo->aob, n, C, C);
  } else
    layer_linear_forward(a->r1, a->ctx, w + lo->aow, w + lo->aob, n, C, C);
  layer_dropout_add_forward(a->r1, a->r1, xres, a->keep1, rows, n, C, ph,
                            site_key(m, site + SITE_ATT_OUT));
  layer_layernorm_forward(a->ln1, a->mean1, a->rstd1, a->r1, w + lo->ln1w, w + lo->ln1b, n, C,
                          cfg->ln_eps);
  layer_linear_forward(a->fc, a->ln1, w + lo->fcw, w + lo->fcb, n, C, I);
  layer_gelu_forward(a->gelu, a->fc, n * I);
  layer_linear_forward(a->r2, a->gelu, w + lo->fow, w + lo->fob, n, I, C);
  layer_dropout_add_forward(a->r2, a->r2, a->ln1, a->keep2, rows, n, C, ph,
                            site_key(m, site + SITE_FFN_OUT));
  layer_layernorm_forward(a->ln2, a->mean2, a->rstd2, a->r2, w + lo->ln2w, w + lo->ln2b, n, C,
                          cfg->ln_eps);
}

/* The CLASSIFY or TAG head on x, the last layer's output: dropout, the
 * classifier, and with labels the loss. CLASSIFY reads the pooled [CLS]
 * rows (pt), TAG every row of x. */
static void task_forward(bert_model *m, const bert_batch *batch, const float *x, bert_loss *loss) {
  const bert_config *cfg = &m->cfg;
  const float *w = m->p->data;
  const model_offsets *o = &m->off;
  int classify = cfg->task == BERT_TASK_CLASSIFY;
  size_t R = classify ? batch->B : batch->B * batch->L, C = cfg->hidden, K = cfg->num_labels;
  const int32_t *labels = classify ? batch->class_labels : batch->tag_labels;
  layer_dropout_forward(m->hd, classify ? m->pt : x, R * C, rate(m, cfg->hidden_dropout),
                        site_key(m, SITE_HEAD));
  layer_linear_forward(m->tl, m->hd, w + o->cls_w, w + o->cls_b, R, C, K);
  if (!labels) return; /* prediction: the logits only */
  if (!cfg->crf) {
    loss->task = head_softmax_ce_forward(m->tp, &loss->task_count, &loss->task_correct, m->tl,
                                         labels, R, K);
    return;
  }
  size_t P = head_chain_rows(m->chain_rows, m->chain_first, m->chain_tags, labels, batch->B,
                             batch->L);
  layer_gather_forward(m->emis, m->tl, m->chain_rows, P, K);
  loss->task = head_crf_forward(&loss->task_count, m->crf_work, m->emis, m->chain_tags,
                                m->chain_first, w + o->crf_t, w + o->crf_s, w + o->crf_e,
                                batch->B, K);
}

int bert_forward(bert_model *m, const bert_batch *batch, const bert_dropout *drop,
                 bert_loss *loss, char **err) {
  int rc = check_batch(m, batch, err);
  if (rc != ST_OK) return rc;
  use_precision(m);
  const bert_config *cfg = &m->cfg;
  const float *w = m->p->data;
  const model_offsets *o = &m->off;
  size_t B = batch->B, L = batch->L, N = B * L, C = cfg->hidden, V = cfg->vocab_size;

  size_t P = 0;
  for (size_t i = 0; cfg->task == BERT_TASK_PRETRAIN && i < N; i++) {
    if (batch->mlm_labels[i] < 0) continue;
    if (P == B * m->max_pred)
      return status_set(err, ST_INVALID,
                        "batch has more than %zu predicted tokens (%zu per sequence): raise the "
                        "model's predictions per sequence",
                        B * m->max_pred, m->max_pred);
    m->mlm_rows[P] = i;
    m->mlm_targets[P++] = batch->mlm_labels[i];
  }
  m->P = P;
  m->batch_B = B;
  m->dropout_on = drop != NULL;
  m->drop = drop ? *drop : (bert_dropout){0};
  plan_last_layer(m, B, L);

  layer_embeddings_forward(m->emb, batch->input_ids, batch->segment_ids, w + o->wte, w + o->wpe,
                           w + o->wtt, B, L, C);
  layer_layernorm_forward(m->x0, m->emb_mean, m->emb_rstd, m->emb, w + o->eln_w, w + o->eln_b, N,
                          C, cfg->ln_eps);
  layer_dropout_forward(m->x0, m->x0, N * C, rate(m, cfg->hidden_dropout), site_key(m, SITE_EMB));
  const float *x = m->x0;
  for (size_t l = 0; l < cfg->layers; l++) {
    encoder_forward(m, l, batch, x);
    x = m->acts[l].ln2;
  }

  *loss = (bert_loss){.predicted = P};
  if (P > 0) {
    layer_gather_forward(m->mh, x, m->mlm_local, P, C);
    layer_linear_forward(m->mt, m->mh, w + o->mt_w, w + o->mt_b, P, C, C);
    layer_gelu_forward(m->mg, m->mt, P * C);
    layer_layernorm_forward(m->mu, m->m_mean, m->m_rstd, m->mg, w + o->mln_w, w + o->mln_b, P, C,
                            cfg->ln_eps);
    layer_linear_forward(m->logits, m->mu, w + o->wte, w + o->mbias, P, C, V);
    loss->mlm = layer_crossentropy_forward(m->logits, m->mlm_targets, P, V);
    loss->mlm_correct = count_correct(m->logits, m->mlm_targets, P, V);
  }
  if (cfg->nsp || cfg->task == BERT_TASK_CLASSIFY) {
    layer_gather_forward(m->ph, x, m->cls_local, B, C);
    layer_linear_forward(m->pd, m->ph, w + o->pool_w, w + o->pool_b, B, C, C);
    layer_tanh_forward(m->pt, m->pd, B * C);
  }
  if (cfg->nsp) {
    layer_linear_forward(m->nl, m->pt, w + o->nsp_w, w + o->nsp_b, B, C, 2);
    loss->nsp = layer_crossentropy_forward(m->nl, batch->nsp_labels, B, 2);
    loss->nsp_correct = count_correct(m->nl, batch->nsp_labels, B, 2);
    loss->nsp_count = B;
  }
  if (cfg->task != BERT_TASK_PRETRAIN) task_forward(m, batch, x, loss);
  m->task_count = loss->task_count;
  loss->total = loss->mlm + loss->nsp + loss->task;
  return ST_OK;
}

const float *bert_task_logits(const bert_model *m, size_t *rows, size_t *K) {
  if (m->cfg.task == BERT_TASK_PRETRAIN) {
    *rows = *K = 0;
    return NULL;
  }
  *rows = m->cfg.task == BERT_TASK_CLASSIFY ? m->batch_B : m->batch_B * m->L;
  *K = m->cfg.num_labels;
  return m->tl;
}

int bert_tag_decode(bert_model *m, const int32_t *chain, int32_t *pred, char **err) {
  const bert_config *cfg = &m->cfg;
  if (cfg->task != BERT_TASK_TAG)
    return status_set(err, ST_INVALID, "tag decoding needs a tagging model, not task %s",
                      bert_task_name(cfg->task));
  size_t B = m->batch_B, L = m->L, N = B * L, K = cfg->num_labels;
  for (size_t i = 0; i < N; i++) pred[i] = HEAD_IGNORE;
  if (!cfg->crf) {
    for (size_t i = 0; i < N; i++) {
      if (chain[i] == HEAD_IGNORE) continue;
      const float *row = m->tl + i * K;
      size_t best = 0;
      for (size_t k = 1; k < K; k++)
        if (row[k] > row[best]) best = k;
      pred[i] = (int32_t)best;
    }
    return ST_OK;
  }
  const float *w = m->p->data;
  const model_offsets *o = &m->off;
  size_t P = head_chain_rows(m->chain_rows, m->chain_first, NULL, chain, B, L);
  layer_gather_forward(m->emis, m->tl, m->chain_rows, P, K);
  head_crf_viterbi(m->chain_tags, NULL, m->crf_work, m->crf_back, m->emis, m->chain_first,
                   w + o->crf_t, w + o->crf_s, w + o->crf_e, B, K);
  for (size_t p = 0; p < P; p++) pred[m->chain_rows[p]] = m->chain_tags[p];
  return ST_OK;
}

const float *bert_mlm_probs(const bert_model *m, size_t *P) {
  *P = m->P;
  return m->logits;
}

static void zero(float *x, size_t n) { memset(x, 0, n * sizeof *x); }

/* Encoder layer l backward: m->dx holds d(layer output) (nkeep rows in the
 * pruned last layer) and leaves with d(layer input), (N, C). Every
 * activation gradient is written before it is read (layers.h, 2): no
 * zeroing. */
static void encoder_backward(bert_model *m, size_t l, const bert_batch *batch) {
  const bert_config *cfg = &m->cfg;
  const float *w = m->p->data;
  float *g = m->p->grad;
  const layer_offsets *lo = &m->loff[l];
  const layer_acts *a = &m->acts[l];
  const float *x = l ? m->acts[l - 1].ln2 : m->x0;
  size_t B = batch->B, L = batch->L, N = B * L, C = cfg->hidden, I = cfg->intermediate;
  size_t NH = cfg->heads;
  float pa = rate(m, cfg->attention_dropout), ph = rate(m, cfg->hidden_dropout);
  int prune = m->pruned && l + 1 == cfg->layers;
  size_t n = prune ? m->nkeep : N;
  const size_t *rows = prune ? m->keep_rows : NULL;

  layer_layernorm_backward(m->dr, g + lo->ln2w, g + lo->ln2b, m->dx, a->r2, w + lo->ln2w, a->mean2,
                           a->rstd2, n, C);
  layer_dropout_mask_backward(m->df, m->dr, a->keep2, n * C, ph);
  layer_linear_backward(m->dgelu, g + lo->fow, g + lo->fob, m->df, a->gelu, w + lo->fow, n, I, C);
  layer_gelu_backward(m->dfc, m->dgelu, a->fc, a->gelu, n * I);
  /* dr, d(ln1) through the residual, also receives the FFN's input gradient. */
  layer_linear_backward_ld(m->dr, 1, g + lo->fcw, g + lo->fcb, m->dfc, I, a->ln1, w + lo->fcw, n,
                           C, I);
  layer_layernorm_backward(m->dx, g + lo->ln1w, g + lo->ln1b, m->dr, a->r1, w + lo->ln1w, a->mean1,
                           a->rstd1, n, C);
  layer_dropout_mask_backward(m->df, m->dx, a->keep1, n * C, ph);
  if (a->ctx_h)
    layer_linear_backward_bf16in(m->dctx, g + lo->aow, g + lo->aob, m->df, a->ctx_h, w + lo->aow,
                                 n, C, C);
  else
    layer_linear_backward(m->dctx, g + lo->aow, g + lo->aob, m->df, a->ctx, w + lo->aow, n, C, C);
  if (!prune) {
    layer_attention_backward(m->dqkv, m->datt, m->dctx, a->qkv, a->att, pa > 0.0f ? a->attd : NULL,
                             pa, B, L, C, NH);
    /* dx, d(x) through the residual, also receives the projection's. */
    layer_linear_backward_ld(m->dx, 1, g + lo->qkvw, g + lo->qkvb, m->dqkv, 3 * C, x,
                             w + lo->qkvw, N, C, 3 * C);
    return;
  }
  /* d(queries) of the kept rows in df (free again); d(keys), d(values) of
   * every row in dqkv's key and value columns. */
  layer_queries qs = {m->keep_first, m->keep_pos};
  float *dq = m->df, *dxq = m->dctx;
  layer_attention_backward_q(dq, m->dqkv + C, m->datt, m->dctx, m->q, C, a->qkv + C, 3 * C, &qs,
                             a->att, pa > 0.0f ? a->attd : NULL, pa, B, L, C, NH);
  /* d(x): the keys' and values' share at every row, then the residual's and
   * the queries' at the kept rows. Built in dr, then moved to dx. */
  layer_linear_backward_ld(m->dr, 0, g + lo->qkvw + C * C, g + lo->qkvb + C, m->dqkv + C, 3 * C,
                           x, w + lo->qkvw + C * C, N, C, 2 * C);
  layer_gather_backward(m->dr, m->dx, rows, n, C);
  layer_linear_backward(dxq, g + lo->qkvw, g + lo->qkvb, dq, m->xq, w + lo->qkvw, n, C, C);
  layer_gather_backward(m->dr, dxq, rows, n, C);
  memcpy(m->dx, m->dr, N * C * sizeof *m->dx);
}

/* The CLASSIFY or TAG head backward, from dloss (see heads.h, 3). CLASSIFY
 * writes d(pooled output) to dpt (B, C); TAG writes d(last layer output) to
 * m->dx (N, C), the only head that reads it. Uses m->dr (N, C) and tp. */
static void task_backward(bert_model *m, const bert_batch *batch, float dloss, float *dpt) {
  const bert_config *cfg = &m->cfg;
  const float *w = m->p->data;
  float *g = m->p->grad;
  const model_offsets *o = &m->off;
  int classify = cfg->task == BERT_TASK_CLASSIFY;
  size_t B = batch->B, L = batch->L, R = classify ? B : B * L, C = cfg->hidden;
  size_t K = cfg->num_labels;
  const int32_t *labels = classify ? batch->class_labels : batch->tag_labels;
  assert(labels && "bert_backward after a forward without labels");
  float *dl = m->tp; /* d(logits) (R, K) */
  if (!cfg->crf) {
    head_softmax_ce_backward(dl, m->tp, labels, R, K, dloss);
  } else {
    /* The chains again: bert_tag_decode may have used the buffers since. */
    size_t P = head_chain_rows(m->chain_rows, m->chain_first, m->chain_tags, labels, B, L);
    layer_gather_forward(m->emis, m->tl, m->chain_rows, P, K);
    head_crf_backward(m->demis, g + o->crf_t, g + o->crf_s, g + o->crf_e, m->crf_work, m->emis,
                      m->chain_tags, m->chain_first, w + o->crf_t, w + o->crf_s, w + o->crf_e, B,
                      K, dloss);
    zero(dl, R * K);
    layer_gather_backward(dl, m->demis, m->chain_rows, P, K);
  }
  float *dhd = classify ? m->dqkv : m->dr; /* dqkv: dpt is dr */
  layer_linear_backward(dhd, g + o->cls_w, g + o->cls_b, dl, m->hd, w + o->cls_w, R, C, K);
  layer_dropout_backward(classify ? dpt : m->dx, dhd, R * C, rate(m, cfg->hidden_dropout),
                         site_key(m, SITE_HEAD));
}

void bert_backward(bert_model *m, const bert_batch *batch, const bert_grad_scale *scale) {
  assert(batch->B == m->batch_B && batch->L == m->L);
  use_precision(m);
  const bert_config *cfg = &m->cfg;
  const float *w = m->p->data;
  float *g = m->p->grad;
  const model_offsets *o = &m->off;
  size_t B = batch->B, L = batch->L, N = B * L, C = cfg->hidden;
  size_t V = cfg->vocab_size, P = m->P;
  /* The cross-entropy backward takes d(mean loss): per-token weight times count. */
  float mlm_dloss = scale ? scale->mlm * (float)P : 1.0f;
  float nsp_dloss = scale ? scale->nsp * (float)B : 1.0f;
  float task_dloss = scale ? scale->task * (float)m->task_count : 1.0f;
  /* The tied word embeddings end the arena (add_params): reported final
   * with the heads, so the lookup must add elsewhere. */
  assert(!m->grad_ready || cfg->task != BERT_TASK_PRETRAIN || m->word_rows);

  /* dx: d(last layer output), over the rows it computed; the heads add
   * into their rows. */
  zero(m->dx, m->nkeep * C);
  if (P > 0) {
    /* Head scratch reuses the (N, C) buffers: P <= N. */
    float *du = m->dr, *dg = m->df, *dt = m->dctx, *dh = m->dqkv;
    layer_crossentropy_backward_inplace(m->logits, m->mlm_targets, P, V, mlm_dloss);
    layer_linear_backward(du, g + o->wte, g + o->mbias, m->logits, m->mu, w + o->wte, P, C, V);
    layer_layernorm_backward(dg, g + o->mln_w, g + o->mln_b, du, m->mg, w + o->mln_w, m->m_mean,
                             m->m_rstd, P, C);
    layer_gelu_backward(dt, dg, m->mt, m->mg, P * C);
    layer_linear_backward(dh, g + o->mt_w, g + o->mt_b, dt, m->mh, w + o->mt_w, P, C, C);
    layer_gather_backward(m->dx, dh, m->mlm_local, P, C);
  }
  /* Free again once the MLM head is done: B <= N. dpt: d(pooled output). */
  float *dpt = m->dr, *dpd = m->df, *dph = m->dctx;
  if (cfg->nsp) {
    layer_crossentropy_backward_inplace(m->nl, batch->nsp_labels, B, 2, nsp_dloss);
    layer_linear_backward(dpt, g + o->nsp_w, g + o->nsp_b, m->nl, m->pt, w + o->nsp_w, B, C, 2);
  }
  if (cfg->task != BERT_TASK_PRETRAIN) task_backward(m, batch, task_dloss, dpt);
  if (cfg->nsp || cfg->task == BERT_TASK_CLASSIFY) {
    layer_tanh_backward(dpd, dpt, m->pt, B * C);
    layer_linear_backward(dph, g + o->pool_w, g + o->pool_b, dpd, m->ph, w + o->pool_w, B, C, C);
    layer_gather_backward(m->dx, dph, m->cls_local, B, C);
  }
  /* The heads (and the pooler) follow the last layer in the arena; so does
   * the tied decoder's weight, the word embeddings, when pretraining. */
  grads_ready_from(m, o->heads);

  for (size_t l = cfg->layers; l-- > 0;) {
    encoder_backward(m, l, batch);
    grads_ready_from(m, m->loff[l].qkvw);
  }

  layer_dropout_backward(m->dr, m->dx, N * C, rate(m, cfg->hidden_dropout), site_key(m, SITE_EMB));
  layer_layernorm_backward(m->df, g + o->eln_w, g + o->eln_b, m->dr, m->emb, w + o->eln_w,
                           m->emb_mean, m->emb_rstd, N, C);
  /* Diverted, the lookup adds at compact rows instead of ids. */
  layer_embeddings_backward(m->word_grad ? m->word_grad : g + o->wte, g + o->wpe, g + o->wtt, m->df,
                            m->word_grad ? m->word_rows : batch->input_ids, batch->segment_ids, B, L, C);
  grads_ready_from(m, 0);
}
