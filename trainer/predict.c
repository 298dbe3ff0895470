/* Prediction from a checkpoint (see predict.h): config, heads and label
 * names from the file, the vocab checked against it, a model sized for each
 * batch, then the top K of the MLM softmax at each [MASK] (fill-mask), or a
 * class and its softmax for each text, or a tag for each word (predict). */
#include "trainer/predict.h"

#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "corpus/labelled.h"
#include "corpus/record.h"
#include "corpus/tokenizer.h"
#include "corpus/vocab.h"
#include "storage/ckpt.h"
#include "trainer/gemm.h"
#include "trainer/heads.h"
#include "trainer/run_config.h"
#include "util/status.h"

#define MASK_TEXT "[MASK]"

/* A parameter only a checkpoint with the next-sentence head has. */
#define NSP_PROBE "params/bert.pooler.dense.weight"
/* A parameter only a checkpoint with a task head has. */
#define TASK_PROBE "params/classifier.weight"

/* The shortest seq_len the shard takes (`ddpt shard --seq-len`). */
#define MIN_SEQ_LEN 8

struct predict_model {
  char *path;
  ckpt_file *file;
  bert_config cfg;
  int has_task_head; /* /params holds classifier.weight */
  tok_vocab *vocab;
  tokenizer *tok;
  int32_t cls_id, sep_id, mask_id, unk_id;
  char **labels;     /* (num_labels) CLASSIFY, TAG */
  task_tagset tagset; /* TAG */
  size_t seq_len;    /* inputs are cut to this many ids */
  bert_model *model; /* for batches of up to B x L; NULL until the first prediction */
  size_t B, L;
  int precision;     /* a gemm_precision, for every model made */
  tok_ids a, b;      /* a classify example's two texts, reused */
};

/* The model's config from the checkpoint's `config` attribute; the NSP head
 * from whether the file holds the pooler, the task head from whether it
 * holds classifier.weight. */
static int read_config(predict_model *pm, char **err) {
  const char *path = pm->path;
  ckpt_header h = {0};
  ckpt_entry *e = NULL;
  size_t n = 0;
  int rc = ckpt_file_read_header(pm->file, &h, err);
  if (rc) return rc;
  if (strcmp(h.model_type, "bert") != 0) {
    rc = status_set(err, ST_INVALID, "%s holds a '%s' model; prediction needs a BERT checkpoint", path,
                    h.model_type);
    goto done;
  }
  run_config rcfg;
  run_config_defaults(&rcfg);
  if ((rc = run_config_load_text(&rcfg, h.config, "config", NULL, 0, err))) {
    status_wrap(err, rc, "%s: the config attribute", path);
    goto done;
  }
  pm->cfg = rcfg.model;
  /* Prediction never drops out; without attention dropout the model also
   * allocates no buffer for its masks. */
  pm->cfg.hidden_dropout = 0.0f;
  pm->cfg.attention_dropout = 0.0f;
  if ((rc = ckpt_file_list(pm->file, &e, &n, err))) goto done;
  int pooler = 0;
  for (size_t i = 0; i < n; i++) {
    pooler |= strcmp(e[i].path, NSP_PROBE) == 0;
    pm->has_task_head |= strcmp(e[i].path, TASK_PROBE) == 0;
  }
  /* The pooler is the NSP head's only in pretraining; classification has
   * its own. */
  pm->cfg.nsp = pm->cfg.task == BERT_TASK_PRETRAIN && pooler;
  if (pm->has_task_head != (pm->cfg.task != BERT_TASK_PRETRAIN)) {
    rc = pm->has_task_head
             ? status_set(err, ST_INVALID, "%s holds classifier.weight but its config sets no [model] task: "
                          "the file was not written by ddpt finetune; set task in its config", path)
             : status_set(err, ST_INVALID, "%s: the config sets task = %s but /params has no "
                          "classifier.weight: the file is incomplete", path, bert_task_name(pm->cfg.task));
    goto done;
  }
  if ((rc = bert_config_validate(&pm->cfg, err))) {
    status_wrap(err, rc, "%s: the config attribute", path);
    goto done;
  }
  /* Inputs are cut as training's were: to the fine-tuning corpus's
   * seq_len, which ddpt finetune records; else to the model's positions. */
  pm->seq_len = pm->cfg.max_positions;
  char *recorded = NULL;
  if ((rc = ckpt_file_read_attr(pm->file, "seq_len", &recorded, err))) goto done;
  unsigned long long L = recorded ? strtoull(recorded, NULL, 10) : 0;
  if (L >= MIN_SEQ_LEN && L <= pm->cfg.max_positions) pm->seq_len = (size_t)L;
  free(recorded);
done:
  ckpt_entries_free(e, n);
  ckpt_header_clear(&h);
  return rc;
}

/* The vocab: the one the checkpoint records, or vocab_path; when both, they
 * must be the same tokens (a different vocab gives different ids). */
static int read_vocab(predict_model *pm, const char *path, int *lowercase, char **err) {
  const char *ckpt_path = pm->path;
  char *recorded = NULL, *lower = NULL;
  int rc = ckpt_file_read_attr(pm->file, "vocab", &recorded, err);
  if (!rc) rc = ckpt_file_read_attr(pm->file, "vocab_lowercase", &lower, err);
  if (rc) goto done;
  if (lower && *lowercase < 0) *lowercase = strcmp(lower, "0") != 0;
  if (*lowercase < 0) *lowercase = 1;
  if (path) {
    if ((rc = tok_vocab_load(path, &pm->vocab, err))) goto done;
    if (recorded) {
      tok_vocab *own = NULL;
      if ((rc = tok_vocab_parse(ckpt_path, recorded, strlen(recorded), &own, err))) goto done;
      if (strcmp(tok_vocab_sha256_hex(own), tok_vocab_sha256_hex(pm->vocab)) != 0)
        rc = status_set(err, ST_MISMATCH,
                        "vocab %s (sha256 %.12s...) is not the vocab checkpoint %s was trained with (sha256 "
                        "%.12s...): drop --vocab to use the recorded one",
                        path, tok_vocab_sha256_hex(pm->vocab), ckpt_path, tok_vocab_sha256_hex(own));
      tok_vocab_free(own);
    }
  } else if (recorded) {
    rc = tok_vocab_parse(ckpt_path, recorded, strlen(recorded), &pm->vocab, err);
  } else {
    rc = status_set(err, ST_INVALID,
                    "checkpoint %s records no vocab (written before ddpt recorded it): give --vocab FILE, "
                    "the vocab.txt of its corpus",
                    ckpt_path);
  }
done:
  free(lower);
  free(recorded);
  return rc;
}

static int open_vocab(predict_model *pm, const char *path, int lowercase, char **err) {
  int rc = read_vocab(pm, path, &lowercase, err);
  if (rc) return rc;
  size_t size = tok_vocab_size(pm->vocab);
  if (size != pm->cfg.vocab_size)
    return status_set(err, ST_MISMATCH,
                      "vocab %s has %zu tokens but checkpoint %s was trained with vocab_size %zu: use the "
                      "vocab.txt of the corpus the run trained on",
                      path ? path : "(recorded)", size, pm->path, pm->cfg.vocab_size);
  const char *vname = path ? path : pm->path;
  if ((rc = tok_vocab_special(pm->vocab, vname, "[CLS]", &pm->cls_id, err)) ||
      (rc = tok_vocab_special(pm->vocab, vname, "[SEP]", &pm->sep_id, err)) ||
      (rc = tok_vocab_special(pm->vocab, vname, "[UNK]", &pm->unk_id, err)) ||
      (pm->cfg.task == BERT_TASK_PRETRAIN &&
       (rc = tok_vocab_special(pm->vocab, vname, MASK_TEXT, &pm->mask_id, err))))
    return rc;
  return tok_create(pm->vocab, lowercase, &pm->tok, err);
}

/* The label names: the root attribute `labels` (a JSON array of strings,
 * index = id), or the ids in decimal when the file records none. */
static int read_labels(predict_model *pm, char **err) {
  size_t K = pm->cfg.num_labels;
  char *text = NULL;
  cJSON *root = NULL;
  int rc = ckpt_file_read_attr(pm->file, "labels", &text, err);
  if (rc) return rc;
  if (!(pm->labels = calloc(K, sizeof *pm->labels))) {
    rc = status_set(err, ST_NOMEM, "out of memory");
    goto done;
  }
  if (text) {
    root = cJSON_Parse(text);
    if (!cJSON_IsArray(root)) {
      rc = status_set(err, ST_CORRUPT, "%s: the labels attribute is not a JSON array of label names", pm->path);
      goto done;
    }
    if ((size_t)cJSON_GetArraySize(root) != K) {
      rc = status_set(err, ST_MISMATCH, "%s: the labels attribute names %d labels but the config has "
                      "num_labels = %zu", pm->path, cJSON_GetArraySize(root), K);
      goto done;
    }
  }
  for (size_t k = 0; k < K; k++) {
    char id[24];
    const char *name = id;
    snprintf(id, sizeof id, "%zu", k);
    if (root) {
      const cJSON *item = cJSON_GetArrayItem(root, (int)k);
      if (!cJSON_IsString(item)) {
        rc = status_set(err, ST_CORRUPT, "%s: label %zu in the labels attribute is not a string", pm->path, k);
        goto done;
      }
      name = item->valuestring;
    }
    if (!(pm->labels[k] = strdup(name))) {
      rc = status_set(err, ST_NOMEM, "out of memory");
      goto done;
    }
  }
  if (pm->cfg.task == BERT_TASK_TAG &&
      (rc = task_tagset_init(&pm->tagset, (const char *const *)pm->labels, K, err)))
    status_wrap(err, rc, "%s: the labels attribute", pm->path);
done:
  cJSON_Delete(root);
  free(text);
  return rc;
}

int predict_model_open(const char *ckpt_path, const char *vocab_path, int lowercase,
                       predict_model **out, char **err) {
  predict_model *pm = calloc(1, sizeof *pm);
  if (!pm || !(pm->path = strdup(ckpt_path))) {
    free(pm);
    return status_set(err, ST_NOMEM, "out of memory");
  }
  int rc = ckpt_file_open(ckpt_path, &pm->file, err);
  if (!rc) rc = read_config(pm, err);
  if (!rc) rc = open_vocab(pm, vocab_path, lowercase, err);
  if (!rc && pm->cfg.task != BERT_TASK_PRETRAIN) rc = read_labels(pm, err);
  if (rc) {
    predict_model_close(pm);
    return rc;
  }
  *out = pm;
  return ST_OK;
}

void predict_model_close(predict_model *pm) {
  if (!pm) return;
  tok_ids_free(&pm->a);
  tok_ids_free(&pm->b);
  bert_model_free(pm->model);
  task_tagset_free(&pm->tagset);
  for (size_t k = 0; pm->labels && k < pm->cfg.num_labels; k++) free(pm->labels[k]);
  free(pm->labels);
  tok_free(pm->tok);
  tok_vocab_free(pm->vocab);
  ckpt_file_close(pm->file);
  free(pm->path);
  free(pm);
}

int predict_model_check_task(const predict_model *pm, char **err) {
  if (pm->cfg.task != BERT_TASK_PRETRAIN) return ST_OK;
  return status_set(err, ST_INVALID,
                    "%s has no task head (classifier.weight): it is a pretraining checkpoint; use ddpt "
                    "fill-mask, or fine-tune it with ddpt finetune",
                    pm->path);
}

const bert_config *predict_model_config(const predict_model *pm) { return &pm->cfg; }

const char *predict_model_token(const predict_model *pm, int32_t id) {
  return tok_vocab_token(pm->vocab, id);
}

const char *predict_model_label(const predict_model *pm, int32_t id) {
  assert(id >= 0 && (size_t)id < pm->cfg.num_labels);
  return pm->labels[id];
}

const task_tagset *predict_model_tagset(const predict_model *pm) {
  assert(pm->cfg.task == BERT_TASK_TAG);
  return &pm->tagset;
}

int predict_model_set_seq_len(predict_model *pm, size_t seq_len, char **err) {
  if (seq_len < MIN_SEQ_LEN || seq_len > pm->cfg.max_positions)
    return status_set(err, ST_INVALID, "seq_len %zu is outside %d..%zu (the model's max_position_embeddings)",
                      seq_len, MIN_SEQ_LEN, pm->cfg.max_positions);
  pm->seq_len = seq_len;
  return ST_OK;
}

/* Reads /params into p by name, strictly: every parameter of the model and
 * nothing else. */
static int load_params(predict_model *pm, params *p, char **err) {
  ckpt_tensor *ts = params_ckpt_tensors(p, p->data);
  if (!ts) return status_set(err, ST_NOMEM, "out of memory");
  int rc = ckpt_file_load(pm->file, "params", ts, p->count, 1, NULL, err);
  free(ts);
  size_t at;
  const params_entry *bad = rc ? NULL : params_first_nonfinite(p, &at);
  if (bad)
    rc = status_set(err, ST_CORRUPT,
                    "checkpoint params/%s holds a non-finite value (%g at element %zu): the run diverged or the "
                    "file was altered; use an earlier checkpoint",
                    bad->name, (double)p->data[bad->offset + at], at);
  return rc;
}

/* A model for batches of up to B sequences of *L tokens (fill-mask: every
 * token may be predicted). The first one reads the parameters from the
 * file; a new shape copies them from the last. A model takes batches of
 * exactly its L, and making one costs more than a forward pass of a small
 * batch (its four parameter arenas are allocated and cleared), so task
 * prediction pads a batch to the current model's length when that wastes
 * at most a quarter (plus 8 positions), and otherwise makes the new model
 * a multiple of 8 long: batches of similar lengths share one model. *L
 * receives the length to pad to. */
int predict_model_set_precision(predict_model *pm, int precision, char **err) {
  int rc = gemm_set_precision((gemm_precision)precision, err);
  if (rc == ST_OK) pm->precision = precision;
  return rc;
}

static int fit_model(predict_model *pm, size_t B, size_t *L, char **err) {
  int task = pm->cfg.task != BERT_TASK_PRETRAIN;
  size_t want = *L;
  if (pm->model && pm->B >= B && (pm->L == want || (task && pm->L > want && pm->L <= want + want / 4 + 8))) {
    *L = pm->L;
    return ST_OK;
  }
  if (task) want = (want + 7) / 8 * 8 < pm->seq_len ? (want + 7) / 8 * 8 : pm->seq_len;
  if (pm->model && pm->B > B) B = pm->B;
  bert_model *m = NULL;
  size_t max_pred = task ? 1 : want;
  int rc = bert_model_create(&m, &pm->cfg, B, want, max_pred, err);
  if (rc) return rc;
  if ((rc = bert_set_precision(m, pm->precision, err))) {
    bert_model_free(m);
    return rc;
  }
  params *p = bert_model_params(m);
  if (pm->model) {
    memcpy(p->data, bert_model_params(pm->model)->data, params_bytes(p));
  } else if ((rc = load_params(pm, p, err))) {
    bert_model_free(m);
    return rc;
  }
  bert_model_free(pm->model);
  pm->model = m;
  pm->B = B;
  pm->L = *L = want;
  return ST_OK;
}

static int push_id(tok_ids *ids, int32_t id, char **err) {
  if (ids->len == ids->cap) {
    size_t cap = ids->cap ? 2 * ids->cap : 64;
    int32_t *grown = realloc(ids->ids, cap * sizeof *grown);
    if (!grown) return status_set(err, ST_NOMEM, "out of memory");
    ids->ids = grown;
    ids->cap = cap;
  }
  ids->ids[ids->len++] = id;
  return ST_OK;
}

/* [CLS] pieces [SEP], where the literal [MASK] between pieces is the mask id. */
static int encode(predict_model *pm, const char *text, tok_ids *ids, size_t *n_masks, char **err) {
  int rc = push_id(ids, pm->cls_id, err);
  *n_masks = 0;
  for (const char *at = text; !rc;) {
    const char *mask = strstr(at, MASK_TEXT);
    size_t len = mask ? (size_t)(mask - at) : strlen(at);
    if ((rc = tok_encode(pm->tok, at, len, ids, NULL, err))) break;
    if (!mask) break;
    rc = push_id(ids, pm->mask_id, err);
    ++*n_masks;
    at = mask + strlen(MASK_TEXT);
  }
  return rc ? rc : push_id(ids, pm->sep_id, err);
}

/* Most probable first; equal probabilities in id order, so results never
 * depend on the sort. */
static int by_prob(const void *a, const void *b) {
  const predict_token *x = a, *y = b;
  if (x->prob != y->prob) return x->prob > y->prob ? -1 : 1;
  return (x->id > y->id) - (x->id < y->id);
}

static int top_k(predict_model *pm, const float *probs, size_t k, predict_mask *mask, predict_token *all,
                 char **err) {
  size_t V = pm->cfg.vocab_size;
  for (size_t v = 0; v < V; v++) all[v] = (predict_token){.id = (int32_t)v, .prob = probs[v]};
  qsort(all, V, sizeof *all, by_prob);
  mask->top = malloc(k * sizeof *mask->top);
  if (!mask->top) return status_set(err, ST_NOMEM, "out of memory");
  for (size_t i = 0; i < k; i++) {
    mask->top[i] = all[i];
    mask->top[i].token = tok_vocab_token(pm->vocab, all[i].id);
  }
  mask->k = k;
  return ST_OK;
}

int predict_fill_mask(predict_model *pm, const char *text, size_t k, predict_result *out, char **err) {
  assert(k >= 1);
  *out = (predict_result){0};
  if (pm->cfg.task != BERT_TASK_PRETRAIN)
    return status_set(err, ST_INVALID, "%s is fine-tuned for task %s and has no MLM head: use ddpt predict",
                      pm->path, bert_task_name(pm->cfg.task));
  tok_ids ids = {0};
  size_t n_masks = 0;
  int32_t *batch_buf = NULL;
  predict_token *all = NULL;
  int rc = encode(pm, text, &ids, &n_masks, err);
  if (rc) goto fail;
  if (n_masks == 0) {
    rc = status_set(err, ST_INVALID, "the text has no " MASK_TEXT ": write " MASK_TEXT
                                     " where a token is to be predicted");
    goto fail;
  }
  size_t L = ids.len;
  if (L > pm->cfg.max_positions) {
    rc = status_set(err, ST_INVALID,
                    "the text is %zu tokens with [CLS] and [SEP] but the model takes at most %zu "
                    "(max_position_embeddings): shorten it",
                    L, pm->cfg.max_positions);
    goto fail;
  }
  if ((rc = fit_model(pm, 1, &L, err))) goto fail;

  batch_buf = malloc(3 * L * sizeof *batch_buf);
  all = malloc(pm->cfg.vocab_size * sizeof *all);
  out->masks = calloc(n_masks, sizeof *out->masks);
  if (!batch_buf || !all || !out->masks) {
    rc = status_set(err, ST_NOMEM, "out of memory");
    goto fail;
  }
  int32_t *segments = batch_buf, *attention = batch_buf + L, *labels = batch_buf + 2 * L;
  int32_t nsp_label = 0;
  for (size_t i = 0; i < L; i++) {
    segments[i] = 0;
    attention[i] = 1;
    /* Any id in range: the loss bert_forward computes is not used. */
    labels[i] = ids.ids[i] == pm->mask_id ? pm->mask_id : -1;
  }
  bert_batch batch = {.B = 1, .L = L, .input_ids = ids.ids, .segment_ids = segments,
                      .attention_mask = attention, .mlm_labels = labels, .nsp_labels = &nsp_label};
  bert_loss loss;
  if ((rc = bert_forward(pm->model, &batch, NULL, &loss, err))) goto fail;
  size_t P;
  const float *probs = bert_mlm_probs(pm->model, &P);
  assert(P == n_masks);
  if (k > pm->cfg.vocab_size) k = pm->cfg.vocab_size;
  for (size_t i = 0, m = 0; i < L; i++) {
    if (labels[i] < 0) continue;
    out->masks[m].position = i;
    out->n_masks = m + 1;
    if ((rc = top_k(pm, probs + m * pm->cfg.vocab_size, k, &out->masks[m], all, err))) goto fail;
    m++;
  }
  free(all);
  free(batch_buf);
  out->ids = ids.ids;
  out->n_ids = ids.len;
  return ST_OK;
fail:
  free(all);
  free(batch_buf);
  tok_ids_free(&ids);
  predict_result_clear(out);
  return rc;
}

void predict_result_clear(predict_result *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n_masks; i++) free(r->masks[i].top);
  free(r->masks);
  free(r->ids);
  *r = (predict_result){0};
}

/* ---------------------------------------------------- task prediction */

/* How `ddpt shard` builds a training sequence, at this model's limit. */
static lab_seq_config seq_config(const predict_model *pm) {
  return (lab_seq_config){.seq_len = pm->seq_len, .truncate = 1, .label_all_pieces = 0,
                          .cls_id = pm->cls_id, .sep_id = pm->sep_id, .unk_id = pm->unk_id};
}

static size_t line_len(const char *line) {
  size_t len = strlen(line);
  return len && line[len - 1] == '\r' ? len - 1 : len;
}

/* The pieces of one text of a classify example, as the shard's pass 2
 * encodes it. */
static int encode_text(predict_model *pm, const char *text, size_t len, tok_ids *out, const char *what,
                       char **err) {
  out->len = 0;
  if (lab_is_blank(text, len)) return status_set(err, ST_INVALID, "empty %s", what);
  int rc = tok_encode(pm->tok, text, len, out, NULL, err);
  if (!rc && out->len == 0)
    rc = status_set(err, ST_INVALID, "%s gives no word piece (only control characters or invalid UTF-8)",
                    what);
  return rc;
}

/* "text" or "text_a<TAB>text_b" into seq (room for seq_len): *n ids, the
 * first *split of them in segment 0. */
static int encode_example(predict_model *pm, const char *line, int32_t *seq, size_t *n, size_t *split,
                          int *truncated, char **err) {
  size_t len = line_len(line);
  const char *tab = memchr(line, '\t', len);
  if (tab && memchr(tab + 1, '\t', (size_t)(line + len - tab - 1)))
    return status_set(err, ST_INVALID, "more than one TAB: expected text or text_a<TAB>text_b");
  size_t na = tab ? (size_t)(tab - line) : len;
  int rc = encode_text(pm, line, na, &pm->a, tab ? "text_a" : "text", err);
  if (!rc && tab) rc = encode_text(pm, tab + 1, len - na - 1, &pm->b, "text_b", err);
  if (rc) return rc;
  lab_seq_config c = seq_config(pm);
  return lab_build_example(&c, pm->a.ids, pm->a.len, pm->b.ids, tab ? pm->b.len : 0, tab != NULL, seq, n,
                           split, truncated, err);
}

/* One forward pass over n sequences (seq row i at i * pm->seq_len, len[i]
 * ids, segment 1 from split[i] on) padded to *L_out >= the longest; the
 * task logits are then the model's. */
static int forward_batch(predict_model *pm, const int32_t *seq, const size_t *len, const size_t *split,
                         size_t n, size_t *L_out, char **err) {
  size_t L = 0, S = pm->seq_len;
  for (size_t i = 0; i < n; i++)
    if (len[i] > L) L = len[i];
  int rc = fit_model(pm, n, &L, err);
  if (rc) return rc;
  int32_t *buf = malloc(3 * n * L * sizeof *buf);
  if (!buf) return status_set(err, ST_NOMEM, "out of memory");
  int32_t *ids = buf, *segments = buf + n * L, *attention = buf + 2 * n * L;
  for (size_t i = 0; i < n; i++)
    for (size_t t = 0; t < L; t++) {
      int real = t < len[i];
      /* Padding: any valid id, masked out of attention. */
      ids[i * L + t] = real ? seq[i * S + t] : 0;
      segments[i * L + t] = real && t >= split[i];
      attention[i * L + t] = real;
    }
  bert_batch batch = {.B = n, .L = L, .input_ids = ids, .segment_ids = segments, .attention_mask = attention};
  bert_loss loss;
  rc = bert_forward(pm->model, &batch, NULL, &loss, err);
  free(buf);
  *L_out = L;
  return rc;
}

int predict_classify(int32_t *label, float *probs, int *truncated, size_t *bad, predict_model *pm,
                     const char *const *texts, size_t n, char **err) {
  assert(pm->cfg.task == BERT_TASK_CLASSIFY && n >= 1);
  size_t S = pm->seq_len, K = pm->cfg.num_labels, L;
  *bad = n;
  int32_t *seq = calloc(n * S, sizeof *seq);
  size_t *len = calloc(2 * n, sizeof *len);
  int rc = ST_OK;
  if (!seq || !len) {
    rc = status_set(err, ST_NOMEM, "out of memory");
    goto done;
  }
  size_t *split = len + n;
  for (size_t i = 0; i < n; i++)
    if ((rc = encode_example(pm, texts[i], seq + i * S, &len[i], &split[i], &truncated[i], err))) {
      if (rc == ST_INVALID) *bad = i;
      goto done;
    }
  if ((rc = forward_batch(pm, seq, len, split, n, &L, err))) goto done;
  size_t rows, k_out;
  const float *logits = bert_task_logits(pm->model, &rows, &k_out);
  assert(logits && rows >= n && k_out == K);
  head_softmax_rows(probs, label, logits, n, K); /* as training's loss reads them */
done:
  free(len);
  free(seq);
  return rc;
}

/* The code point at s (len >= 1 bytes) into *c and its length; a byte that
 * does not start valid UTF-8 is one character of its own (U+FFFD). */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *c) {
  size_t k = s[0] < 0x80 ? 1 : (s[0] >> 5) == 6 ? 2 : (s[0] >> 4) == 14 ? 3 : (s[0] >> 3) == 30 ? 4 : 0;
  if (k == 0 || k > len) k = 0;
  uint32_t v = k == 1 ? s[0] : k == 2 ? s[0] & 0x1F : k == 3 ? s[0] & 0x0F : s[0] & 0x07;
  for (size_t i = 1; i < k; i++) {
    if ((s[i] & 0xC0) != 0x80) k = 0;
    v = (v << 6) | (s[i] & 0x3F);
  }
  *c = k ? v : 0xFFFD;
  return k ? k : 1;
}

/* Whitespace between words: ASCII's and Unicode's space separators (Zs)
 * and line/paragraph separators, which BERT's tokenizer also splits at. */
static int is_space_char(uint32_t c) {
  return (c < 0x80 && lab_is_space((char)c)) || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* The words of a line (see predict_tagged) into t->begin, t->end. */
static int split_words(predict_tagged *t, const char *line, size_t len, char **err) {
  size_t cap = 0, open = SIZE_MAX;
  for (size_t i = 0; i <= len;) {
    uint32_t c = 0;
    size_t k = i < len ? utf8_next((const unsigned char *)line + i, len - i, &c) : 1;
    int space = i == len || is_space_char(c), cjk = i < len && tok_char_is_cjk(c);
    /* Each iteration closes at most one word and opens at most one more. */
    if (t->words_in_line + 2 > cap) {
      cap = cap ? 2 * cap : 16;
      size_t *b = realloc(t->begin, cap * sizeof *b);
      if (b) t->begin = b;
      size_t *e = b ? realloc(t->end, cap * sizeof *e) : NULL;
      if (!e) return status_set(err, ST_NOMEM, "out of memory");
      t->end = e;
    }
    if ((space || cjk) && open != SIZE_MAX) {
      t->begin[t->words_in_line] = open;
      t->end[t->words_in_line++] = i;
      open = SIZE_MAX;
    }
    if (cjk) {
      t->begin[t->words_in_line] = i;
      t->end[t->words_in_line++] = i + k;
    } else if (!space && open == SIZE_MAX) {
      open = i;
    }
    i += k;
  }
  return ST_OK;
}

/* One line's words into [CLS] pieces [SEP] in seq, and in chain the first
 * piece of each word (0) and -100 elsewhere, as the shard writes tags. */
static int encode_line(predict_model *pm, predict_tagged *t, const char *line, int32_t *seq, int32_t *chain,
                       size_t *n, char **err) {
  size_t len = line_len(line);
  int rc = split_words(t, line, len, err);
  if (rc) return rc;
  if (t->words_in_line == 0) return status_set(err, ST_INVALID, "blank line: no word to tag");
  lab_seq_config c = seq_config(pm);
  lab_sentence s = {0};
  for (size_t w = 0; w < t->words_in_line && !rc; w++)
    rc = lab_sentence_add_word(&s, &c, pm->tok, line + t->begin[w], t->end[w] - t->begin[w], 0, NULL, err);
  int truncated;
  if (!rc) rc = lab_sentence_finish(&s, &c, seq, chain, n, &truncated, err);
  lab_sentence_free(&s);
  if (rc) return rc;
  for (size_t i = 0; i < *n; i++) t->n_words += chain[i] != RECORD_IGNORE_LABEL;
  return ST_OK;
}

int predict_tag(predict_tagged *out, size_t *bad, predict_model *pm, const char *const *lines, size_t n,
                char **err) {
  assert(pm->cfg.task == BERT_TASK_TAG && n >= 1);
  size_t S = pm->seq_len, L;
  *bad = n;
  memset(out, 0, n * sizeof *out);
  int32_t *seq = calloc(2 * n * S, sizeof *seq), *chain = NULL, *pred = NULL;
  size_t *len = calloc(2 * n, sizeof *len);
  int rc = ST_OK;
  if (!seq || !len) {
    rc = status_set(err, ST_NOMEM, "out of memory");
    goto fail;
  }
  int32_t *tags = seq + n * S;
  size_t *split = len + n;
  for (size_t i = 0; i < n; i++) {
    if ((rc = encode_line(pm, &out[i], lines[i], seq + i * S, tags + i * S, &len[i], err))) {
      if (rc == ST_INVALID) *bad = i;
      goto fail;
    }
    split[i] = len[i];
  }
  if ((rc = forward_batch(pm, seq, len, split, n, &L, err))) goto fail;
  chain = malloc(2 * n * L * sizeof *chain);
  if (!chain) {
    rc = status_set(err, ST_NOMEM, "out of memory");
    goto fail;
  }
  pred = chain + n * L;
  for (size_t i = 0; i < n; i++)
    for (size_t t = 0; t < L; t++) chain[i * L + t] = t < len[i] ? tags[i * S + t] : RECORD_IGNORE_LABEL;
  if ((rc = bert_tag_decode(pm->model, chain, pred, err))) goto fail;
  for (size_t i = 0; i < n; i++) {
    predict_tagged *t = &out[i];
    t->tags = malloc(t->n_words * sizeof *t->tags);
    t->spans = malloc(t->n_words * sizeof *t->spans);
    if (!t->tags || !t->spans) {
      rc = status_set(err, ST_NOMEM, "out of memory");
      goto fail;
    }
    for (size_t p = 0, w = 0; p < L; p++)
      if (chain[i * L + p] != RECORD_IGNORE_LABEL) t->tags[w++] = pred[i * L + p];
    t->n_spans = task_tag_chunks(t->spans, &pm->tagset, t->tags, t->n_words);
  }
  free(chain);
  free(len);
  free(seq);
  return ST_OK;
fail:
  for (size_t i = 0; i < n; i++) predict_tagged_clear(&out[i]);
  free(chain);
  free(len);
  free(seq);
  return rc;
}

void predict_tagged_clear(predict_tagged *t) {
  if (!t) return;
  free(t->begin);
  free(t->end);
  free(t->tags);
  free(t->spans);
  *t = (predict_tagged){0};
}
