/* Masked-token prediction from a checkpoint (see predict.h): config and head
 * layout from the file, the vocab checked against it, a model sized for each
 * input length, and the top K of the MLM softmax at each [MASK]. */
#include "trainer/predict.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "corpus/tokenizer.h"
#include "corpus/vocab.h"
#include "storage/ckpt.h"
#include "trainer/run_config.h"
#include "util/status.h"

#define MASK_TEXT "[MASK]"

/* A parameter only a checkpoint with the next-sentence head has. */
#define NSP_PROBE "params/bert.pooler.dense.weight"

struct predict_model {
  ckpt_file *file;
  bert_config cfg;
  tok_vocab *vocab;
  tokenizer *tok;
  int32_t cls_id, sep_id, mask_id;
  bert_model *model; /* for inputs of L tokens; NULL until the first fill */
  size_t L;
};

/* The model's config from the checkpoint's `config` attribute; the NSP head
 * from whether the file holds the pooler. */
static int read_config(predict_model *pm, const char *path, char **err) {
  ckpt_header h = {0};
  ckpt_entry *e = NULL;
  size_t n = 0;
  int rc = ckpt_file_read_header(pm->file, &h, err);
  if (rc) return rc;
  if (strcmp(h.model_type, "bert") != 0) {
    rc = status_set(err, ST_INVALID, "%s holds a '%s' model; fill-mask needs a BERT checkpoint", path,
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
  pm->cfg.nsp = 0;
  for (size_t i = 0; i < n; i++)
    if (strcmp(e[i].path, NSP_PROBE) == 0) pm->cfg.nsp = 1;
  if ((rc = bert_config_validate(&pm->cfg, err))) status_wrap(err, rc, "%s: the config attribute", path);
done:
  ckpt_entries_free(e, n);
  ckpt_header_clear(&h);
  return rc;
}

/* The vocab: the one the checkpoint records, or vocab_path; when both, they
 * must be the same tokens (a different vocab gives different ids). */
static int read_vocab(predict_model *pm, const char *ckpt_path, const char *path, int *lowercase,
                      char **err) {
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

static int open_vocab(predict_model *pm, const char *ckpt_path, const char *path, int lowercase, char **err) {
  int rc = read_vocab(pm, ckpt_path, path, &lowercase, err);
  if (rc) return rc;
  size_t size = tok_vocab_size(pm->vocab);
  if (size != pm->cfg.vocab_size)
    return status_set(err, ST_MISMATCH,
                      "vocab %s has %zu tokens but checkpoint %s was trained with vocab_size %zu: use the "
                      "vocab.txt of the corpus the run trained on",
                      path ? path : "(recorded)", size, ckpt_path, pm->cfg.vocab_size);
  const char *vname = path ? path : ckpt_path;
  if ((rc = tok_vocab_special(pm->vocab, vname, "[CLS]", &pm->cls_id, err)) ||
      (rc = tok_vocab_special(pm->vocab, vname, "[SEP]", &pm->sep_id, err)) ||
      (rc = tok_vocab_special(pm->vocab, vname, MASK_TEXT, &pm->mask_id, err)))
    return rc;
  return tok_create(pm->vocab, lowercase, &pm->tok, err);
}

int predict_model_open(const char *ckpt_path, const char *vocab_path, int lowercase,
                       predict_model **out, char **err) {
  predict_model *pm = calloc(1, sizeof *pm);
  if (!pm) return status_set(err, ST_NOMEM, "out of memory");
  int rc = ckpt_file_open(ckpt_path, &pm->file, err);
  if (!rc) rc = read_config(pm, ckpt_path, err);
  if (!rc) rc = open_vocab(pm, ckpt_path, vocab_path, lowercase, err);
  if (rc) {
    predict_model_close(pm);
    return rc;
  }
  *out = pm;
  return ST_OK;
}

void predict_model_close(predict_model *pm) {
  if (!pm) return;
  bert_model_free(pm->model);
  tok_free(pm->tok);
  tok_vocab_free(pm->vocab);
  ckpt_file_close(pm->file);
  free(pm);
}

const bert_config *predict_model_config(const predict_model *pm) { return &pm->cfg; }

const char *predict_model_token(const predict_model *pm, int32_t id) {
  return tok_vocab_token(pm->vocab, id);
}

/* Reads /params into p by name, strictly: every parameter of the model and
 * nothing else. */
static int load_params(predict_model *pm, params *p, char **err) {
  ckpt_tensor *ts = params_ckpt_tensors(p, p->data);
  if (!ts) return status_set(err, ST_NOMEM, "out of memory");
  int rc = ckpt_file_load(pm->file, "params", ts, p->count, 1, NULL, err);
  free(ts);
  return rc;
}

/* A model whose batches are one sequence of L tokens. The first one reads
 * the parameters from the file; a new length copies them from the last. */
static int fit_model(predict_model *pm, size_t L, char **err) {
  if (pm->model && pm->L == L) return ST_OK;
  bert_model *m = NULL;
  int rc = bert_model_create(&m, &pm->cfg, 1, L, L, err);
  if (rc) return rc;
  params *p = bert_model_params(m);
  if (pm->model) {
    memcpy(p->data, bert_model_params(pm->model)->data, params_bytes(p));
  } else if ((rc = load_params(pm, p, err))) {
    bert_model_free(m);
    return rc;
  }
  bert_model_free(pm->model);
  pm->model = m;
  pm->L = L;
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
  if ((rc = fit_model(pm, L, err))) goto fail;

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
