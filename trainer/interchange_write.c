/* Writing a model out (interchange.h): as a weights-only ddpt checkpoint, or
 * as the HuggingFace directory save_pretrained would have written. */
#define _GNU_SOURCE /* asprintf, vasprintf, strndup */
#include "trainer/interchange.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "storage/ckpt.h"
#include "storage/safetensors.h"
#include "trainer/run_config.h"
#include "util/file.h"
#include "util/status.h"

static const char *const k_arch_names[] = {
    [XCHG_ARCH_AUTO] = "auto",
    [XCHG_ARCH_PRETRAINING] = "BertForPreTraining",
    [XCHG_ARCH_MASKED_LM] = "BertForMaskedLM",
    [XCHG_ARCH_SEQ_CLASS] = "BertForSequenceClassification",
    [XCHG_ARCH_TOKEN_CLASS] = "BertForTokenClassification",
};

int xchg_arch_parse(const char *name) {
  for (size_t i = 0; i < sizeof k_arch_names / sizeof *k_arch_names; i++)
    if (strcmp(name, k_arch_names[i]) == 0) return (int)i;
  return -1;
}

const char *xchg_arch_name(xchg_arch a) { return k_arch_names[a]; }

/* ------------------------------------------------------------- ddpt */

int xchg_write_ckpt(const xchg_model *m, const char *src, const char *path, char **err) {
  assert(m && m->p && path);
  struct stat st;
  if (lstat(path, &st) == 0)
    return status_set(err, ST_INVALID, "%s exists; remove it or choose another --out", path);
  run_config rcfg;
  run_config_defaults(&rcfg);
  rcfg.model = m->cfg;
  char *text = run_config_format(&rcfg);
  ckpt_tensor *ts = params_ckpt_tensors(m->p, m->p->data);
  ckpt_tensor *ms = m->has_optim ? params_ckpt_tensors(m->p, m->p->m) : NULL;
  ckpt_tensor *vs = m->has_optim ? params_ckpt_tensors(m->p, m->p->v) : NULL;
  char *dir = NULL, *tmp = NULL;
  int rc = ST_OK;
  const char *slash = strrchr(path, '/');
  if (!text || !ts || (m->has_optim && (!ms || !vs)) || asprintf(&tmp, "%.*s.%s.tmp-%ld", slash ? (int)(slash - path + 1) : 0, path,
                               slash ? slash + 1 : path, (long)getpid()) < 0) {
    tmp = NULL;
    rc = status_set(err, ST_NOMEM, "out of memory");
    goto done;
  }
  ckpt_attr attrs[4] = {{"vocab_lowercase", m->lowercase ? "1" : "0"}, {"imported_from", src}};
  size_t n_attrs = 2;
  if (m->vocab) attrs[n_attrs++] = (ckpt_attr){"vocab", m->vocab};
  if (m->labels) attrs[n_attrs++] = (ckpt_attr){"labels", m->labels};
  ckpt_content c = {
      .meta = {.model_type = "bert", .config = text, .world_size = 1, .attrs = attrs, .n_attrs = n_attrs},
      .params = ts,
      .n_params = m->p->count,
      .optim_m = ms,
      .optim_v = vs,
      .n_optim_m = ms ? m->p->count : 0,
      .n_optim_v = vs ? m->p->count : 0,
  };
  unlink(tmp);
  if ((rc = ckpt_file_write(tmp, &c, err))) goto done;
  if (rename(tmp, path) != 0) {
    rc = status_set(err, ST_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    unlink(tmp);
    goto done;
  }
  dir = slash ? strndup(path, (size_t)(slash - path + 1)) : strdup(".");
  if (!dir) rc = status_set(err, ST_NOMEM, "out of memory");
  else rc = file_fsync_dir(dir, err);
done:
  free(dir);
  free(tmp);
  free(vs);
  free(ms);
  free(ts);
  free(text);
  return rc;
}

/* ------------------------------------------------------------- HuggingFace */

static int has_entry(const xchg_model *m, const char *name) { return params_find(m->p, name) != NULL; }

/* Which of the model's tensors the architecture has: BertForMaskedLM and
 * BertForTokenClassification have no pooler, only BertForPreTraining has
 * the NSP head, the classification models no MLM head. */
static int arch_keeps(xchg_arch a, const char *name) {
  if (strncmp(name, "crf.", 4) == 0) return 0; /* no HF class has one: crf.safetensors */
  int pooler = strncmp(name, "bert.pooler.", 12) == 0;
  int nsp = strncmp(name, "cls.seq_relationship.", 21) == 0;
  int mlm = strncmp(name, "cls.predictions.", 16) == 0;
  int cls = strncmp(name, "classifier.", 11) == 0;
  switch (a) {
    case XCHG_ARCH_PRETRAINING: return !cls;
    case XCHG_ARCH_MASKED_LM: return !pooler && !nsp && !cls;
    case XCHG_ARCH_SEQ_CLASS: return !nsp && !mlm;
    case XCHG_ARCH_TOKEN_CLASS: return !pooler && !nsp && !mlm;
    case XCHG_ARCH_AUTO: break;
  }
  return 0;
}

static int resolve_arch(const xchg_model *m, xchg_arch want, xchg_arch *out, char **err) {
  int has_cls = has_entry(m, "classifier.weight");
  xchg_arch natural = m->cfg.task == BERT_TASK_CLASSIFY ? XCHG_ARCH_SEQ_CLASS
                      : m->cfg.task == BERT_TASK_TAG    ? XCHG_ARCH_TOKEN_CLASS
                      : m->cfg.nsp                      ? XCHG_ARCH_PRETRAINING
                                                        : XCHG_ARCH_MASKED_LM;
  if (want == XCHG_ARCH_AUTO) want = natural;
  if ((want == XCHG_ARCH_PRETRAINING || want == XCHG_ARCH_MASKED_LM) && m->cfg.task != BERT_TASK_PRETRAIN)
    return status_set(err, ST_INVALID, "%s needs the MLM head, which a fine-tuned %s model does not have; export it as %s",
                      k_arch_names[want], bert_task_name(m->cfg.task), k_arch_names[natural]);
  if (want != natural && (want == XCHG_ARCH_SEQ_CLASS || want == XCHG_ARCH_TOKEN_CLASS) && has_cls)
    return status_set(err, ST_INVALID, "this model's classifier is a %s head; export it as %s", bert_task_name(m->cfg.task),
                      k_arch_names[natural]);
  if (want == XCHG_ARCH_PRETRAINING && !m->cfg.nsp)
    return status_set(err, ST_INVALID,
                      "BertForPreTraining needs the next-sentence head, which this model does not have "
                      "(its corpus had no sentence pairs); export it as BertForMaskedLM");
  if ((want == XCHG_ARCH_SEQ_CLASS || want == XCHG_ARCH_TOKEN_CLASS) && !has_cls)
    return status_set(err, ST_INVALID,
                      "%s needs a classifier head (classifier.weight), which this model does not have; "
                      "export it as %s",
                      k_arch_names[want], m->cfg.nsp ? "BertForPreTraining" : "BertForMaskedLM");
  *out = want;
  return ST_OK;
}

/* Floats as people write them in config.json: 1e-12, 0.1 (not the double
 * nearest the float, 9.99999996e-13). */
static double short_float(float x) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.7g", (double)x);
  return strtod(buf, NULL);
}

static const char *torch_dtype(int dtype) {
  return dtype == SAFET_BF16 ? "bfloat16" : dtype == SAFET_F16 ? "float16" : "float32";
}

/* id2label {"0": name, ...} and label2id {name: 0, ...}, as HF writes
 * them; names from the model's labels, else HF's LABEL_i. */
static int add_labels(cJSON *root, const xchg_model *m) {
  cJSON *names = m->labels ? cJSON_Parse(m->labels) : NULL;
  cJSON *id2 = cJSON_AddObjectToObject(root, "id2label"), *to_id = cJSON_AddObjectToObject(root, "label2id");
  int ok = id2 && to_id;
  for (size_t i = 0; ok && i < m->cfg.num_labels; i++) {
    char key[32], fallback[40];
    snprintf(key, sizeof key, "%zu", i);
    snprintf(fallback, sizeof fallback, "LABEL_%zu", i);
    const cJSON *name = cJSON_GetArrayItem(names, (int)i);
    const char *label = cJSON_IsString(name) ? name->valuestring : fallback;
    ok = cJSON_AddStringToObject(id2, key, label) && cJSON_AddNumberToObject(to_id, label, (double)i);
  }
  cJSON_Delete(names);
  return ok;
}

static char *config_json(const xchg_model *m, xchg_arch a, int dtype) {
  const bert_config *c = &m->cfg;
  cJSON *root = cJSON_CreateObject(), *archs = cJSON_CreateArray();
  if (!root || !archs) goto fail;
  cJSON_AddItemToArray(archs, cJSON_CreateString(k_arch_names[a]));
  cJSON_AddItemToObject(root, "architectures", archs);
  cJSON_AddNumberToObject(root, "attention_probs_dropout_prob", short_float(c->attention_dropout));
  cJSON_AddStringToObject(root, "hidden_act", "gelu");
  cJSON_AddNumberToObject(root, "hidden_dropout_prob", short_float(c->hidden_dropout));
  cJSON_AddNumberToObject(root, "hidden_size", (double)c->hidden);
  if (c->task != BERT_TASK_PRETRAIN && !add_labels(root, m)) goto fail;
  cJSON_AddNumberToObject(root, "initializer_range", 0.02);
  cJSON_AddNumberToObject(root, "intermediate_size", (double)c->intermediate);
  cJSON_AddNumberToObject(root, "layer_norm_eps", short_float(c->ln_eps));
  cJSON_AddNumberToObject(root, "max_position_embeddings", (double)c->max_positions);
  cJSON_AddStringToObject(root, "model_type", "bert");
  cJSON_AddNumberToObject(root, "num_attention_heads", (double)c->heads);
  cJSON_AddNumberToObject(root, "num_hidden_layers", (double)c->layers);
  cJSON_AddNumberToObject(root, "pad_token_id", 0);
  cJSON_AddStringToObject(root, "position_embedding_type", "absolute");
  cJSON_AddStringToObject(root, "torch_dtype", torch_dtype(dtype));
  cJSON_AddNumberToObject(root, "type_vocab_size", (double)c->type_vocab);
  cJSON_AddBoolToObject(root, "use_cache", 1);
  cJSON_AddNumberToObject(root, "vocab_size", (double)c->vocab_size);
  char *text = cJSON_Print(root);
  cJSON_Delete(root);
  return text;
fail:
  cJSON_Delete(root);
  cJSON_Delete(archs);
  return NULL;
}

static int write_text(const char *dir, const char *name, const char *text, char **err) {
  char *path = file_path_join(dir, name);
  if (!path) return status_set(err, ST_NOMEM, "out of memory");
  int rc = file_write_atomic(path, text, strlen(text), err);
  free(path);
  return rc;
}

static int write_safetensors(const xchg_model *m, xchg_arch a, const char *dir, int dtype, char **err) {
  safet_tensor *ts = calloc(m->p->count, sizeof *ts);
  char *path = file_path_join(dir, "model.safetensors");
  int rc = ST_OK;
  if (!ts || !path) {
    rc = status_set(err, ST_NOMEM, "out of memory");
    goto done;
  }
  size_t n = 0;
  for (size_t i = 0; i < m->p->count; i++) {
    const params_entry *e = &m->p->entries[i];
    if (!arch_keeps(a, e->name)) continue;
    safet_tensor *t = &ts[n++];
    t->name = e->name;
    t->ndim = e->ndim;
    memcpy(t->shape, e->shape, sizeof e->shape);
    t->data = m->p->data + e->offset;
  }
  rc = safet_write(path, ts, n, (safet_dtype)dtype, err);
  if (rc || !m->cfg.crf) goto done;
  /* The CRF travels beside the model: from_pretrained ignores the file,
   * and a user's CRF layer (pytorch-crf's names) loads it by name. */
  free(path);
  n = 0;
  for (size_t i = 0; i < m->p->count; i++) {
    const params_entry *e = &m->p->entries[i];
    if (strncmp(e->name, "crf.", 4) != 0) continue;
    safet_tensor *t = &ts[n++];
    *t = (safet_tensor){.name = e->name, .ndim = e->ndim, .data = m->p->data + e->offset};
    memcpy(t->shape, e->shape, sizeof e->shape);
  }
  if (!(path = file_path_join(dir, "crf.safetensors"))) rc = status_set(err, ST_NOMEM, "out of memory");
  else rc = safet_write(path, ts, n, SAFET_F32, err);
done:
  free(path);
  free(ts);
  return rc;
}

/* Removes a directory ddpt wrote: its regular files, then itself. */
static int remove_dir(const char *dir, char **err) {
  DIR *d = opendir(dir);
  if (!d) return status_set(err, ST_IO, "cannot open %s: %s", dir, strerror(errno));
  int rc = ST_OK;
  struct dirent *de;
  while (!rc && (de = readdir(d))) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    char *p = file_path_join(dir, de->d_name);
    if (!p || unlink(p) != 0)
      rc = status_set(err, ST_IO, "cannot remove %s/%s: %s (a directory inside?)", dir, de->d_name,
                      p ? strerror(errno) : "out of memory");
    free(p);
  }
  closedir(d);
  if (!rc && rmdir(dir) != 0) rc = status_set(err, ST_IO, "cannot remove %s: %s", dir, strerror(errno));
  return rc;
}

/* 1 when dir exists and holds something, 0 when missing or empty. */
static int dir_nonempty(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int found = 0;
  struct dirent *de;
  while (!found && (de = readdir(d))) found = strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
  closedir(d);
  return found;
}

static int write_hf_files(const xchg_model *m, xchg_arch a, const char *dir, int dtype, char **err) {
  char *config = config_json(m, a, dtype), *tokcfg = NULL;
  int rc = ST_OK;
  if (!config || asprintf(&tokcfg,
                          "{\n  \"do_lower_case\": %s,\n  \"model_max_length\": %zu,\n"
                          "  \"tokenizer_class\": \"BertTokenizer\",\n  \"tokenize_chinese_chars\": true,\n"
                          "  \"strip_accents\": null\n}\n",
                          m->lowercase ? "true" : "false", m->cfg.max_positions) < 0) {
    tokcfg = NULL;
    rc = status_set(err, ST_NOMEM, "out of memory");
    goto done;
  }
  static const char special[] =
      "{\n  \"cls_token\": \"[CLS]\",\n  \"mask_token\": \"[MASK]\",\n  \"pad_token\": \"[PAD]\",\n"
      "  \"sep_token\": \"[SEP]\",\n  \"unk_token\": \"[UNK]\"\n}\n";
  if ((rc = write_safetensors(m, a, dir, dtype, err)) || (rc = write_text(dir, "config.json", config, err)) ||
      (rc = write_text(dir, "vocab.txt", m->vocab, err)) ||
      (rc = write_text(dir, "tokenizer_config.json", tokcfg, err)))
    goto done;
  rc = write_text(dir, "special_tokens_map.json", special, err);
done:
  free(tokcfg);
  free(config);
  return rc;
}

/* Puts the complete directory tmp where out_dir is: an old non-empty one
 * is moved aside first (and back if the rename fails), then removed. */
static int install_dir(const char *tmp, const char *old, const char *parent, const char *out_dir, char **err) {
  struct stat st;
  int had_old = dir_nonempty(out_dir), rc = ST_OK;
  if (had_old && rename(out_dir, old) != 0) {
    rc = status_set(err, ST_IO, "cannot move the old %s aside: %s", out_dir, strerror(errno));
  } else if (!had_old && lstat(out_dir, &st) == 0 && rmdir(out_dir) != 0) {
    rc = status_set(err, ST_IO, "cannot replace the empty %s: %s", out_dir, strerror(errno));
  } else if (rename(tmp, out_dir) != 0) {
    rc = status_set(err, ST_IO, "cannot rename %s to %s: %s", tmp, out_dir, strerror(errno));
    if (had_old) rename(old, out_dir); /* put the old one back */
  }
  if (rc) return rc;
  if ((rc = file_fsync_dir(parent, err))) return rc;
  return had_old ? remove_dir(old, err) : ST_OK;
}

int xchg_check_out_dir(const char *out_dir, int overwrite, char **err) {
  if (dir_nonempty(out_dir) && !overwrite)
    return status_set(err, ST_INVALID, "%s exists and is not empty; choose another --out or add --overwrite",
                      out_dir);
  struct stat st;
  if (lstat(out_dir, &st) == 0 && !S_ISDIR(st.st_mode))
    return status_set(err, ST_INVALID, "%s exists and is not a directory", out_dir);
  return ST_OK;
}

int xchg_write_hf(const xchg_model *m, const char *out_dir, const xchg_export_opts *o, xchg_arch *arch_out,
                  char **err) {
  assert(m && m->p && out_dir && o);
  xchg_arch a = XCHG_ARCH_AUTO;
  int rc = resolve_arch(m, o->arch, &a, err);
  if (rc) return rc;
  if (!m->vocab)
    return status_set(err, ST_INVALID,
                      "the model records no vocab (a checkpoint from before ddpt recorded it): give --vocab "
                      "FILE, the vocab.txt of its corpus");
  if ((rc = xchg_check_out_dir(out_dir, o->overwrite, err))) return rc;
  /* Built beside out_dir, then renamed into place: a reader sees the old
   * directory or the complete new one. */
  size_t len = strlen(out_dir);
  while (len > 1 && out_dir[len - 1] == '/') len--;
  const char *base = out_dir + len;
  while (base > out_dir && base[-1] != '/') base--;
  char *tmp = NULL, *old = NULL, *parent = NULL;
  int prefix = (int)(base - out_dir), blen = (int)(out_dir + len - base);
  if (asprintf(&tmp, "%.*s.%.*s.tmp-%ld", prefix, out_dir, blen, base, (long)getpid()) < 0) tmp = NULL;
  if (asprintf(&old, "%.*s.%.*s.old-%ld", prefix, out_dir, blen, base, (long)getpid()) < 0) old = NULL;
  parent = prefix ? strndup(out_dir, (size_t)prefix) : strdup(".");
  if (!tmp || !old || !parent) {
    rc = status_set(err, ST_NOMEM, "out of memory");
  } else if (mkdir(tmp, 0755) != 0) {
    rc = status_set(err, ST_IO, "cannot create %s: %s", tmp, strerror(errno));
  } else if ((rc = write_hf_files(m, a, tmp, o->dtype, err)) || (rc = install_dir(tmp, old, parent, out_dir, err))) {
    char *ignored = NULL;
    remove_dir(tmp, &ignored); /* when the rename failed: tmp is still there */
    free(ignored);
  } else if (arch_out) {
    *arch_out = a;
  }
  free(parent);
  free(old);
  free(tmp);
  return rc;
}
