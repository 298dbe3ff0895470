/* The training loop of `ddpt train` and `ddpt finetune` (see train.h):
 * set-up and resume, steps, evaluation, metrics, parameter-hash checks and
 * checkpoints; for fine-tuning also loading by name, frozen entries and
 * learning-rate scales, task scores, RUN_DIR/BEST and report.json. */
#include "trainer/train.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "comm/comm.h"
#include "corpus/corpus.h"
#include "storage/ckpt.h"
#include "trainer/bert.h"
#include "trainer/blas.h"
#include "trainer/heads.h"
#include "trainer/metrics.h"
#include "trainer/optimizer.h"
#include "trainer/params.h"
#include "trainer/run_config.h"
#include "trainer/schedule.h"
#include "trainer/task_metrics.h"
#include "trainer/interchange.h"
#include "util/file.h"
#include "util/log.h"
#include "util/sha256.h"
#include "util/status.h"
#include "util/timer.h"

/* The word-embedding lookup's share of the gradient (bert_set_word_grad_rows),
 * summed over slots and ranks as compact rows, one per distinct token id of
 * the step over all ranks, in id order: every world lays them out alike,
 * so the sum keeps comm.h's order. Pretraining: beside the tied decoder's
 * share, which the arena holds. Fine-tuning with zero = 0: the whole
 * gradient of the word embeddings, which the arena's reducer then skips
 * (each element is summed in the same order as the arena's reducer would:
 * the same bits, a few thousand rows on the wire instead of vocab x
 * hidden, 94 MB at bert-base). zero = 1 shards the whole arena and keeps
 * them in it. */
typedef struct word_grad {
  size_t V, C, cap;  /* vocabulary, hidden, rows at most: min(V, world * A * B * L) */
  uint8_t *seen;     /* (V / 8 rounded up) the step's ids, ORed over ranks */
  int32_t *row_of;   /* (V) each id's row this step */
  int32_t *ids;      /* (cap) each row's id */
  size_t rows;       /* this step's */
  int32_t *tok_rows; /* (A, B * L) each token's row, per micro-batch */
  float *grad;       /* (cap, C) */
  comm_reducer *reducer;
  size_t wte;        /* the word embeddings' arena offset */
} word_grad;

/* The last step's gradient exchange (metrics.h): timer_now() readings. */
typedef struct step_comm {
  double backward_end, grads_final; /* the last slot's backward returned; every sum done */
  double first_start, last_done;    /* 0, 0: nothing exchanged */
  double wait_s;                    /* blocked in the reducers' finish */
} step_comm;

typedef struct trainer {
  const train_request *req;
  int rank, world;
  run_config cfg;
  char *cfg_text;
  /* One reader per slot of this rank (micro-batch a reads the shards s =
   * rank*A + a (mod world*A)) when the corpus has that many shards, else one
   * reader of the rank's shards for all its micro-batches. */
  corpus **data; /* (ndata) */
  size_t ndata;
  corpus_valid *valid;
  const manifest *man;
  char *vocab_text; /* rank 0: the corpus's vocab.txt, recorded in every checkpoint */
  xchg_model init;  /* rank 0, --init: the weights to start from, until copied */
  size_t B, L, A, max_pred;
  corpus_batch **micro; /* (A) */
  corpus_batch *eval_batch;
  bert_model *model;
  params *p;
  comm_reducer *reducer;
  word_grad words; /* the lookup's share of the word-embedding gradient, as rows */
  size_t reduce_lo; /* the arena's reducer sums [reduce_lo, total): past the word
                     * embeddings when fine-tuning keeps their gradient as rows */
  step_comm comm;  /* the last step's gradient exchange, for metrics */
  /* [train] zero = 1: this rank's shard of the arena and its moments
   * (p->m and p->v are not allocated), and the norm's chunk sums. */
  optim_shard shard;
  size_t *shard_lo, *shard_hi;
  double *norm_chunks;
  size_t n_norm_chunks;
  metrics_log *metrics;
  FILE *samples; /* [log] samples: which samples this rank read, per step */
  ckpt_writer *writer;
  ckpt_dir_lock *lock; /* rank 0: RUN_DIR/LOCK, held for the whole run */
  optim_guard guard;
  int grads_clear; /* the last update cleared the gradients */
  uint64_t step, total_steps, tokens_seen;
  /* Resuming: the checkpoint's world and step shape, and whether the user
   * set batch_size or accumulation again (keep_step_on_new_world). */
  size_t ckpt_world, ckpt_B, ckpt_A;
  int step_shape_set;
  double started, interval_start;
  uint64_t interval_tokens;
  int failed_together; /* the failure being returned is every rank's, at the same point */
  int eval_final;      /* fine-tuning with a validation split: evaluate the last step whatever eval_every */
  /* Writing in the background: the checkpoint of this step, and whether
   * BEST is to name it once it is committed. */
  uint64_t writer_step;
  int writer_is_best;
  /* Fine-tuning (cfg.model.task is CLASSIFY or TAG). */
  char *labels_json;        /* the corpus's label names, a JSON array: attribute "labels" */
  task_tagset tagset;       /* TAG: the labels read as chunk tags */
  uint64_t *eval_counts;    /* (n_eval_counts) CLASSIFY: the (K, K) confusion; TAG: the tag counts */
  size_t n_eval_counts;
  int32_t *eval_pred;       /* (B, L) rank 0: predictions of one validation batch */
  int32_t *eval_gold_chain, *eval_pred_chain; /* (B * L) TAG: the labelled positions, compacted */
  size_t *eval_rows, *eval_first;             /* (B * L), (B + 1) TAG: head_chain_rows */
  task_prf *eval_prf;       /* (K or chunk types) the per-class or per-type scores */
  char *last_eval;          /* rank 0: the latest evaluation, a JSON object */
  int has_best;             /* every rank: some evaluation was scored */
  uint64_t best_step;
  double best_value;
  char *best_eval;          /* rank 0: the best evaluation, a JSON object */
} trainer;

/* ---------------------------------------------------- agreed failures */

/* After a step only rank 0 performs: every rank learns whether it failed;
 * rank 0 returns its own status and message, the others that what failed
 * on rank 0. The failure is then every rank's at once: none is left waiting
 * in a collective, so the job can end without being aborted. Collective. */
static int agree_with_rank0(trainer *t, int rc, const char *what, char **err) {
  double failed = rc != ST_OK;
  /* A rank that failed keeps its own message over the reduction's. */
  int crc = comm_allreduce_max_f64(&failed, 1, rc ? NULL : err);
  if (crc && !rc) return crc;
  t->failed_together = crc == ST_OK && failed > 0;
  if (rc) return status_wrap(err, rc, "%s", what);
  if (failed > 0) return status_set(err, ST_COMM, "%s failed on rank 0 (rank 0 says why)", what);
  return ST_OK;
}

/* comm_check_same_digest, whose mismatch every rank returns together. */
static int check_same_digest(trainer *t, const uint8_t d[32], const char *what, char **err) {
  int rc = comm_check_same_digest(d, what, err);
  if (rc == ST_MISMATCH) t->failed_together = 1;
  return rc;
}

/* ------------------------------------------------------------ set-up */

/* Threads per rank: the flag, else the config, else this node's cores shared
 * among the ranks on it (mpirun says how many in OMPI_COMM_WORLD_LOCAL_SIZE). */
static int choose_threads(const trainer *t) {
  if (t->req->threads > 0) return t->req->threads;
  if (t->cfg.threads > 0) return t->cfg.threads;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  long ranks = local ? atol(local) : 1;
  if (cores < 1) cores = 1;
  if (ranks < 1) ranks = 1;
  return cores / ranks > 0 ? (int)(cores / ranks) : 1;
}

/* --init: the model is the init's. A config that sets no [model] size
 * takes it whole; one that does must agree on every size. Dropout rates
 * are the run's to choose either way. */
static int adopt_init_config(trainer *t, const bert_config *init, char **err) {
  bert_config *m = &t->cfg.model;
  /* config.ini then names no preset: the sizes below it are the init's. */
  t->cfg.preset[0] = '\0';
  t->cfg.hf_config[0] = '\0';
  if (!t->cfg.model_given) {
    float hidden = m->hidden_dropout, attention = m->attention_dropout;
    *m = *init;
    if (t->cfg.dropout_given) {
      m->hidden_dropout = hidden;
      m->attention_dropout = attention;
    }
    return ST_OK;
  }
  const struct {
    const char *key;
    size_t mine, theirs;
  } sizes[] = {
      {"vocab_size", m->vocab_size, init->vocab_size},
      {"hidden_size", m->hidden, init->hidden},
      {"num_hidden_layers", m->layers, init->layers},
      {"num_attention_heads", m->heads, init->heads},
      {"intermediate_size", m->intermediate, init->intermediate},
      {"max_position_embeddings", m->max_positions, init->max_positions},
      {"type_vocab_size", m->type_vocab, init->type_vocab},
  };
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    if (sizes[i].mine == sizes[i].theirs || (i == 0 && sizes[i].mine == 0)) continue;
    return status_set(err, ST_MISMATCH,
                      "[model] %s is %zu in the config but %zu in --init %s; the model comes from --init: "
                      "drop [model] from the config or make them agree",
                      sizes[i].key, sizes[i].mine, sizes[i].theirs, t->req->init);
  }
  if (m->ln_eps != init->ln_eps)
    return status_set(err, ST_MISMATCH, "[model] layer_norm_eps is %g in the config but %g in --init %s",
                      (double)m->ln_eps, (double)init->ln_eps, t->req->init);
  m->vocab_size = init->vocab_size;
  return ST_OK;
}

/* "hidden_size 128 in the checkpoint, 64 now; ..." for each [model]
 * setting that differs, and only those: both sides are read from config
 * text here, before the corpus sets nsp and the task, so printing whole
 * descriptions would show values the run does not have. */
static void describe_model_changes(const bert_config *was, const bert_config *now, char *buf, size_t size) {
  const struct {
    const char *key;
    double a, b;
  } keys[] = {
      {"vocab_size", (double)was->vocab_size, (double)now->vocab_size},
      {"hidden_size", (double)was->hidden, (double)now->hidden},
      {"num_hidden_layers", (double)was->layers, (double)now->layers},
      {"num_attention_heads", (double)was->heads, (double)now->heads},
      {"intermediate_size", (double)was->intermediate, (double)now->intermediate},
      {"max_position_embeddings", (double)was->max_positions, (double)now->max_positions},
      {"type_vocab_size", (double)was->type_vocab, (double)now->type_vocab},
      {"hidden_dropout_prob", was->hidden_dropout, now->hidden_dropout},
      {"attention_probs_dropout_prob", was->attention_dropout, now->attention_dropout},
      {"layer_norm_eps", was->ln_eps, now->ln_eps},
      {"nsp", was->nsp, now->nsp},
      {"task", was->task, now->task},
      {"num_labels", (double)was->num_labels, (double)now->num_labels},
      {"crf", was->crf, now->crf},
  };
  size_t at = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < sizeof keys / sizeof *keys && at < size; i++)
    if (keys[i].a != keys[i].b)
      at += (size_t)snprintf(buf + at, size - at, "%s%s %g in the checkpoint, %g now", at ? "; " : "", keys[i].key,
                             keys[i].a, keys[i].b);
  if (at == 0) snprintf(buf, size, "a [model] setting differs from the checkpoint's");
}

/* Reads the config: the file and --set for a fresh run. On resume: the
 * checkpoint's config, then the file's settings (if a file is given) and
 * --set over it, refusing any that changes the model. */
static int load_config(trainer *t, const char *ckpt_config, char **err) {
  const train_request *r = t->req;
  run_config_defaults(&t->cfg);
  if (!ckpt_config) return run_config_load(&t->cfg, r->config_path, r->overrides, r->n_overrides, err);
  int rc = run_config_load_text(&t->cfg, ckpt_config, "the checkpoint's config", NULL, 0, err);
  if (rc) return rc;
  bert_config before = t->cfg.model;
  /* 0 is outside both keys' ranges: still 0 afterwards means not set. */
  t->ckpt_B = t->cfg.batch_size;
  t->ckpt_A = t->cfg.accumulation;
  t->cfg.batch_size = t->cfg.accumulation = 0;
  if ((rc = run_config_load(&t->cfg, r->config_path, r->overrides, r->n_overrides, err))) return rc;
  t->step_shape_set = t->cfg.batch_size || t->cfg.accumulation;
  if (!t->cfg.batch_size) t->cfg.batch_size = t->ckpt_B;
  if (!t->cfg.accumulation) t->cfg.accumulation = t->ckpt_A;
  if (t->cfg.model.vocab_size == 0) t->cfg.model.vocab_size = before.vocab_size;
  if (memcmp(&before, &t->cfg.model, sizeof before) != 0) {
    char changes[512];
    describe_model_changes(&before, &t->cfg.model, changes, sizeof changes);
    return status_set(err, ST_MISMATCH,
                      "%s changes the model (%s); a resumed run keeps its model's shape: start a new run "
                      "directory or drop the change",
                      r->config_path ? r->config_path : "--set", changes);
  }
  return ST_OK;
}

/* --init: rank 0 reads the model and every rank learns its config. */
static int read_init(trainer *t, char **err) {
  int rc = ST_OK;
  if (t->rank == 0) {
    xchg_read_opts o = {.seed = t->cfg.seed};
    rc = xchg_read(t->req->init, &o, &t->init, err);
    /* What the model leaves unused is logged once the model exists
     * (adopt_init_weights): the init's own layout may keep less. */
    if (!rc)
      for (size_t i = 0; i < t->init.report.n_notes; i++) log_info("init: %s", t->init.report.notes[i]);
  }
  if ((rc = agree_with_rank0(t, rc, "reading --init", err))) return rc;
  bert_config cfg = t->init.cfg;
  if ((rc = comm_broadcast(&cfg, sizeof cfg, 0, err))) return rc;
  return adopt_init_config(t, &cfg, err);
}

/* Finds "key = " of section in INI text; returns the value's start (up to
 * the newline) or NULL. */
static const char *ini_value(const char *text, const char *section, const char *key, size_t keylen) {
  const char *sec = strstr(text, section);
  if (!sec) return NULL;
  for (const char *line = sec; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
    if (line != sec && line[0] == '[') return NULL;
    if (strncmp(line, key, keylen) == 0 && strncmp(line + keylen, " = ", 3) == 0) return line + keylen + 3;
  }
  return NULL;
}

/* Logs every setting of after that differs from before: the changes a
 * resumed run applies to its checkpoint's config. */
static void log_config_changes(const char *before, const char *after) {
  char section[64] = "";
  for (const char *line = after; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
    size_t len = strcspn(line, "\n");
    if (line[0] == '[') {
      snprintf(section, sizeof section, "%.*s", (int)len, line);
      continue;
    }
    const char *eq = strstr(line, " = ");
    if (!eq || eq > line + len) continue;
    size_t keylen = (size_t)(eq - line);
    const char *now = eq + 3, *was = ini_value(before, section, line, keylen);
    size_t now_len = len - keylen - 3, was_len = was ? strcspn(was, "\n") : 0;
    if (!was || was_len != now_len || strncmp(was, now, now_len) != 0)
      log_info("resume: %s %.*s changed from %.*s to %.*s", section, (int)keylen, line, (int)was_len,
               was ? was : "", (int)now_len, now);
  }
}

/* Every rank must run the same config on the same corpus. */
static int check_ranks_agree(trainer *t, char **err) {
  uint8_t d[32];
  sha256(t->cfg_text, strlen(t->cfg_text), d);
  int rc = check_same_digest(t, d, "the resolved config", err);
  if (rc) return rc;
  char *path = file_path_join(t->cfg.corpus, MANIFEST_FILE);
  if (!path) return status_set(err, ST_NOMEM, "out of memory");
  rc = sha256_file(path, d, err);
  free(path);
  if (rc) return rc;
  return check_same_digest(t, d, "the corpus manifest", err);
}

/* `ddpt train` pretrains on plain text; `ddpt finetune` trains a task head
 * on labels. Each refuses the other's corpus, naming the right command. */
static int check_corpus_kind(const trainer *t, const manifest *man, char **err) {
  if (t->req->finetune && man->task == MANIFEST_TASK_PRETRAIN)
    return status_set(err, ST_INVALID,
                      "corpus %s is a pretraining corpus (no labels): pretrain on it with `ddpt train`; `ddpt "
                      "finetune` needs a labelled corpus made by `ddpt shard --task classify|tag`",
                      t->cfg.corpus);
  if (!t->req->finetune && man->task != MANIFEST_TASK_PRETRAIN)
    return status_set(err, ST_INVALID,
                      "corpus %s is labelled (task %s, %zu labels): fine-tune on it with `ddpt finetune CONFIG "
                      "--init MODEL`; `ddpt train` pretrains on unlabelled text",
                      t->cfg.corpus, manifest_task_name(man->task), man->num_labels);
  return ST_OK;
}

/* Whether world ranks accumulating A micro-batches sum them in the order of
 * world*A slots on any world (comm_slots_exact) and read each slot's own
 * shards. */
static int slots_exact(size_t world, size_t A, size_t shards) {
  return comm_slots_exact(world, A) && shards >= world * A;
}

/* "1, 2 or 4": the rank counts that can continue the checkpoint's step of
 * V micro-batches exactly (its own world always can). */
static void describe_fitting_worlds(const trainer *t, size_t shards, char *buf, size_t size) {
  size_t V = t->ckpt_world * t->ckpt_A, fits[64], n = 0, at = 0;
  int exact_before = slots_exact(t->ckpt_world, t->ckpt_A, shards);
  for (size_t w = 1; w <= V && n < 64; w++)
    if (w == t->ckpt_world || (exact_before && V % w == 0 && slots_exact(w, V / w, shards))) fits[n++] = w;
  buf[0] = '\0';
  for (size_t i = 0; i < n && at < size; i++)
    at += (size_t)snprintf(buf + at, size - at, "%s%zu", i == 0 ? "" : i + 1 == n ? " or " : ", ", fits[i]);
}

/* Resuming on another number of ranks keeps the checkpoint's step: the
 * same micro-batches of the same size (slots), each rank taking world_was /
 * world times as many, so that the run goes on bit for bit as on the
 * checkpoint's world. Refused when no accumulation does that, unless the
 * user sets batch_size or accumulation (then the step is theirs). */
static int keep_step_on_new_world(trainer *t, size_t shards, char **err) {
  size_t W = (size_t)t->world, W0 = t->ckpt_world, V = W0 * t->ckpt_A;
  if (!t->ckpt_world || W == W0) return ST_OK;
  if (t->step_shape_set) {
    if (t->rank == 0)
      log_info("resume on %zu rank%s: accumulation %zu x batch %zu as set (the checkpoint's: %zu x %zu on %zu); the "
               "run goes on, not bit for bit as on %zu", W, W == 1 ? "" : "s", t->cfg.accumulation, t->cfg.batch_size,
               t->ckpt_A, t->ckpt_B, W0, W0);
    return ST_OK;
  }
  if (V % W == 0 && slots_exact(W, V / W, shards) && slots_exact(W0, t->ckpt_A, shards)) {
    t->cfg.accumulation = V / W;
    if (t->rank == 0 && t->cfg.accumulation != t->ckpt_A)
      log_info("resume on %zu rank%s: accumulation %zu (was %zu on %zu) keeps the step of %zu micro-batches of %zu "
               "sequences, bit for bit", W, W == 1 ? "" : "s", t->cfg.accumulation, t->ckpt_A, W0, V, t->ckpt_B);
    return ST_OK;
  }
  char fits[256];
  describe_fitting_worlds(t, shards, fits, sizeof fits);
  return status_set(err, ST_INVALID,
                    "%zu ranks cannot continue the checkpoint's step of %zu micro-batches of %zu sequences (%zu ranks "
                    "x accumulation %zu) in the same order: resume on %s ranks, or set train.accumulation or "
                    "train.batch_size to go on with another step (not bit for bit)",
                    W, V, t->ckpt_B, W0, t->ckpt_A, fits);
}

/* t->data: a reader per slot when the corpus has a shard for each (then a
 * slot reads the same samples on any world), else the rank's one reader. */
static int open_slot_readers(trainer *t, const corpus_options *opt, size_t shards, char **err) {
  size_t A = t->cfg.accumulation, V = A * (size_t)t->world;
  int rc = ST_OK;
  t->ndata = A > 1 && shards >= V ? A : 1;
  if (A > 1 && t->ndata == 1 && t->rank == 0)
    log_info("corpus %s has %zu shards for %zu micro-batches per step: each rank reads its micro-batches from its "
             "own shards, and a resume on another number of ranks does not go on bit for bit",
             t->cfg.corpus, shards, V);
  if (!(t->data = calloc(t->ndata, sizeof *t->data))) return status_set(err, ST_NOMEM, "out of memory");
  for (size_t a = 0; a < t->ndata && rc == ST_OK; a++)
    rc = t->ndata == 1 ? corpus_open(t->cfg.corpus, t->rank, t->world, opt, &t->data[a], err)
                       : corpus_open(t->cfg.corpus, (int)((size_t)t->rank * A + a), (int)V, opt, &t->data[a], err);
  return rc;
}

static int open_corpus(trainer *t, char **err) {
  if (!t->cfg.corpus[0])
    return status_set(err, ST_INVALID, "no corpus: set [data] corpus = DIR in the config or --set data.corpus=DIR");
  struct stat st;
  if (stat(t->cfg.corpus, &st) != 0)
    return status_set(err, ST_IO, "corpus %s: %s; make one with `ddpt shard` or scripts/shard_corpus.sh",
                      t->cfg.corpus, strerror(errno));
  corpus_options opt;
  corpus_options_default(&opt);
  opt.batch_size = t->cfg.batch_size;
  opt.seed = t->cfg.seed;
  opt.mask_prob = t->cfg.mask_prob;
  opt.whole_word = t->cfg.whole_word_mask;
  /* The masking budget depends on the corpus's seq_len: read the manifest
   * before opening the shards with it. */
  manifest *man = NULL;
  int rc = manifest_read(t->cfg.corpus, &man, err);
  if (rc) return rc;
  t->L = man->seq_len;
  rc = check_corpus_kind(t, man, err);
  size_t shards = man->num_shards;
  if (rc == ST_OK) rc = keep_step_on_new_world(t, shards, err);
  manifest_free(man);
  if (rc) return rc;
  t->max_pred = t->cfg.max_predictions ? t->cfg.max_predictions
                                       : corpus_default_max_predictions(t->cfg.mask_prob, t->L);
  if (t->max_pred > t->L) t->max_pred = t->L;
  opt.max_predictions = t->max_pred;
  if ((rc = open_slot_readers(t, &opt, shards, err))) return rc;
  t->man = corpus_manifest(t->data[0]);
  /* Every rank decides the same way; only rank 0 reads validation data
   * (LevelDB lets one process at a time open a shard). */
  if (t->cfg.eval_every > 0 && t->man->num_valid == 0) {
    if (t->rank == 0)
      log_warn("corpus %s has no validation shards (shard it with --valid-fraction): evaluation is off",
               t->cfg.corpus);
    t->cfg.eval_every = 0;
  }
  /* Fine-tuning scores its final model whenever there is a validation
   * split (report.json, BEST): eval_every = 0 means at the end only. */
  t->eval_final = t->man->task != MANIFEST_TASK_PRETRAIN && t->man->num_valid > 0;
  if ((t->cfg.eval_every > 0 || t->eval_final) && t->rank == 0)
    return corpus_valid_open(t->cfg.corpus, &opt, &t->valid, err);
  return ST_OK;
}

/* Rank 0 keeps the corpus's vocab.txt to record in checkpoints, so that a
 * checkpoint is usable (fill-mask, export, finetune) on its own. With
 * --init, the init's vocab must be the corpus's: the same ids. */
static int read_corpus_vocab(trainer *t, char **err) {
  int rc = ST_OK;
  if (t->rank == 0) {
    char *path = file_path_join(t->cfg.corpus, MANIFEST_VOCAB_FILE);
    size_t len;
    rc = path ? file_read_all(path, (size_t)64 << 20, &t->vocab_text, &len, err)
              : status_set(err, ST_NOMEM, "out of memory");
    if (!rc && t->init.vocab) {
      uint8_t d[32];
      char hex[65];
      sha256(t->init.vocab, strlen(t->init.vocab), d);
      sha256_hex(d, hex);
      if (strcmp(hex, t->man->vocab_sha256) != 0)
        rc = status_set(err, ST_MISMATCH,
                        "corpus %s was sharded with a different vocab than --init %s (sha256 %.12s... vs "
                        "%.12s...): shard the text with the model's vocab.txt",
                        t->cfg.corpus, t->req->init, t->man->vocab_sha256, hex);
    }
    free(path);
  }
  return agree_with_rank0(t, rc, "reading the corpus vocab", err);
}

/* The model's task from the manifest's (the enums are separate so that
 * corpus/ and trainer/ need not include each other). */
static int task_of_corpus(manifest_task task) {
  switch (task) {
  case MANIFEST_TASK_CLASSIFY: return BERT_TASK_CLASSIFY;
  case MANIFEST_TASK_TAG: return BERT_TASK_TAG;
  default: return BERT_TASK_PRETRAIN;
  }
}

/* Whether best_metric is a figure of task: classification's, tagging's,
 * or the loss, which every task has. */
static int metric_fits_task(int metric, int task) {
  if (metric == RUN_BEST_LOSS) return 1;
  if (task == BERT_TASK_CLASSIFY) return metric == RUN_BEST_ACCURACY || metric == RUN_BEST_MACRO_F1;
  return metric == RUN_BEST_TOKEN_ACCURACY || metric == RUN_BEST_ENTITY_F1;
}

/* [finetune]: checked against the task and the model, best_metric resolved.
 * A pretraining run has none of it: settings there would be ignored. */
static int check_finetune_settings(trainer *t, char **err) {
  run_finetune *f = &t->cfg.finetune;
  const bert_config *m = &t->cfg.model;
  if (m->task == BERT_TASK_PRETRAIN) {
    if (f->freeze_embeddings || f->freeze_layers || f->head_lr > 0 || f->layer_lr_decay != 1 || f->crf ||
        f->best_metric != RUN_BEST_AUTO)
      return status_set(err, ST_INVALID, "[finetune] settings are for `ddpt finetune` on a labelled corpus; corpus "
                        "%s is a pretraining one: remove them", t->cfg.corpus);
    return ST_OK;
  }
  if (f->crf && m->task != BERT_TASK_TAG)
    return status_set(err, ST_INVALID, "[finetune] crf = true needs a tag corpus; corpus %s is %s", t->cfg.corpus,
                      bert_task_name(m->task));
  if (f->freeze_layers > m->layers)
    return status_set(err, ST_INVALID, "[finetune] freeze_layers = %zu but the model has %zu layers",
                      f->freeze_layers, m->layers);
  if (f->best_metric == RUN_BEST_AUTO)
    f->best_metric = (int)run_config_best_metric_auto(m->task, (const char *const *)t->man->labels,
                                                       t->man->num_labels);
  if (!metric_fits_task(f->best_metric, m->task))
    return status_set(err, ST_INVALID, "[finetune] best_metric = %s does not score a %s task; use %s or loss",
                      run_config_best_metric_name(f->best_metric), bert_task_name(m->task),
                      m->task == BERT_TASK_CLASSIFY ? "accuracy, macro_f1" : "token_accuracy, entity_f1");
  return ST_OK;
}

/* The model follows the corpus where the corpus decides: vocabulary size,
 * sequence length, whether there is a next-sentence task, and the task and
 * its labels ([finetune] crf adds the CRF to tagging). */
static int fit_model_to_corpus(trainer *t, char **err) {
  bert_config *m = &t->cfg.model;
  if (m->vocab_size == 0) {
    m->vocab_size = (size_t)t->man->vocab_size;
  } else if ((int64_t)m->vocab_size != t->man->vocab_size) {
    return status_set(err, ST_MISMATCH,
                      "model vocab_size is %zu but corpus %s was made with a vocab of %lld tokens; set [model] "
                      "vocab_size = %lld (or 0 to take it from the corpus)",
                      m->vocab_size, t->cfg.corpus, (long long)t->man->vocab_size, (long long)t->man->vocab_size);
  }
  if (t->L > m->max_positions)
    return status_set(err, ST_INVALID, "corpus %s has seq_len %zu but the model has only %zu positions",
                      t->cfg.corpus, t->L, m->max_positions);
  m->nsp = t->man->nsp;
  m->task = task_of_corpus(t->man->task);
  m->num_labels = m->task == BERT_TASK_PRETRAIN ? 0 : t->man->num_labels;
  m->crf = m->task == BERT_TASK_TAG && t->cfg.finetune.crf;
  int rc = check_finetune_settings(t, err);
  return rc ? rc : bert_config_validate(m, err);
}

/* The label names as a JSON array (index = id), recorded in checkpoints;
 * and for tagging the tag set the entity scores read. */
static int read_labels(trainer *t, char **err) {
  if (t->cfg.model.task == BERT_TASK_PRETRAIN) return ST_OK;
  cJSON *a = cJSON_CreateStringArray((const char *const *)t->man->labels, (int)t->man->num_labels);
  t->labels_json = a ? cJSON_PrintUnformatted(a) : NULL;
  cJSON_Delete(a);
  if (!t->labels_json) return status_set(err, ST_NOMEM, "out of memory");
  if (t->cfg.model.task != BERT_TASK_TAG) return ST_OK;
  int rc = task_tagset_init(&t->tagset, (const char *const *)t->man->labels, t->man->num_labels, err);
  return rc ? status_wrap(err, rc, "the labels of corpus %s", t->cfg.corpus) : ST_OK;
}

static void shape_text(char *buf, size_t size, const params_entry *e) {
  size_t at = (size_t)snprintf(buf, size, "[");
  for (int d = 0; d < e->ndim && at < size; d++)
    at += (size_t)snprintf(buf + at, size - at, "%s%zu", d ? ", " : "", e->shape[d]);
  if (at < size) snprintf(buf + at, size - at, "]");
}

static int same_shape(const params_entry *a, const params_entry *b) {
  if (a->ndim != b->ndim) return 0;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d]) return 0;
  return 1;
}

/* Whether interchange initialised name itself because the source lacked it
 * (its report lists "name [shape]"): such a tensor is new, not loaded. */
static int init_made_fresh(const xchg_report *r, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < r->n_fresh; i++)
    if (strncmp(r->fresh[i], name, n) == 0 && r->fresh[i][n] == ' ') return 1;
  return 0;
}

/* "cls.predictions" of "cls.predictions.transform.dense.weight": the
 * first two parts of a name, by which unused tensors are grouped. */
static size_t name_group_len(const char *name) {
  const char *dot = strchr(name, '.');
  if (dot) dot = strchr(dot + 1, '.');
  return dot ? (size_t)(dot - name) : strlen(name);
}

/* Logs the init's tensors the model has no place for, a group ("cls.predictions.*
 * (5 tensors)") where several share their first two name parts. */
static void log_unused(const params *src, const params *model, const xchg_report *r, const char *init) {
  for (size_t i = 0; i < src->count; i++) {
    const char *name = src->entries[i].name;
    if (params_find(model, name) || init_made_fresh(r, name)) continue; /* fresh: never in the init */
    size_t g = name_group_len(name), in_group = 0, seen_before = 0;
    for (size_t j = 0; j < src->count; j++) {
      const char *other = src->entries[j].name;
      if (params_find(model, other) || init_made_fresh(r, other) || strncmp(other, name, g) != 0 || (other[g] != '.' && other[g])) continue;
      in_group++;
      seen_before += j < i;
    }
    if (seen_before) continue;
    if (in_group > 1) log_info("init: unused: %.*s.* (%zu tensors of %s)", (int)g, name, in_group, init);
    else log_info("init: unused: %s", name);
  }
}

/* --init, rank 0: PyTorch's load_state_dict(strict=False). Every tensor of
 * the model that the init has is copied by name; the others (a new head)
 * keep their seeded values. Logs what was loaded, what is new, with its
 * shape, and what of the init is unused. A tensor both have with different
 * shapes fails naming it and both shapes. */
static int adopt_init_weights(trainer *t, char **err) {
  const params *src = t->init.p;
  size_t loaded = 0, fresh = 0;
  for (size_t i = 0; i < t->p->count; i++) {
    const params_entry *e = &t->p->entries[i];
    const params_entry *s = params_find(src, e->name);
    const float *from = src->data;
    if (!s && t->init.extra && (s = params_find(t->init.extra, e->name))) from = t->init.extra->data;
    char mine[96], theirs[96];
    shape_text(mine, sizeof mine, e);
    if (!s || init_made_fresh(&t->init.report, e->name)) {
      log_info("init: new: %s %s", e->name, mine);
      fresh++;
      continue;
    }
    if (!same_shape(e, s)) {
      shape_text(theirs, sizeof theirs, s);
      return status_set(err, ST_MISMATCH,
                        "%s is %s in %s but this model needs %s; a tensor cannot change shape (a head for "
                        "another label set: start from the pretrained model instead)",
                        e->name, theirs, t->req->init, mine);
    }
    memcpy(t->p->data + e->offset, from + s->offset, e->count * sizeof(float));
    loaded++;
  }
  log_unused(src, t->p, &t->init.report, t->req->init);
  if (t->init.extra) log_unused(t->init.extra, t->p, &t->init.report, t->req->init);
  log_info("init: %zu of %zu tensors loaded from %s, %zu new; fresh optimizer and data position", loaded,
           t->p->count, t->req->init, fresh);
  xchg_model_clear(&t->init);
  return ST_OK;
}

/* Where an entry sits for [finetune]: -1 the embeddings, i encoder layer i,
 * layers for everything after the encoder (pooler and heads). */
static long entry_depth(const char *name, size_t layers) {
  if (strncmp(name, "bert.embeddings.", 16) == 0) return -1;
  unsigned long i;
  if (sscanf(name, "bert.encoder.layer.%lu.", &i) == 1 && i < layers) return (long)i;
  return (long)layers;
}

/* [finetune]: frozen entries lose PARAMS_TRAINABLE (the optimizer leaves
 * them, and their gradients count in no norm); every other entry's
 * lr_scale is head_lr / lr for the pooler and heads, and with layer-wise
 * decay d, d^(N - i) for layer i of N and d^(N + 1) for the embeddings
 * (ELECTRA's and HuggingFace's recipes). The same on every rank. */
static void set_finetune_rates(trainer *t) {
  const run_finetune *f = &t->cfg.finetune;
  long N = (long)t->cfg.model.layers;
  size_t trainable = 0;
  for (size_t i = 0; i < t->p->count; i++) {
    params_entry *e = &t->p->entries[i];
    long depth = entry_depth(e->name, (size_t)N);
    if ((depth == -1 && f->freeze_embeddings) || (depth >= 0 && depth < (long)f->freeze_layers))
      e->flags &= ~(unsigned)PARAMS_TRAINABLE;
    if (depth == N) e->lr_scale = f->head_lr > 0 ? (float)(f->head_lr / t->cfg.lr) : 1.0f;
    else e->lr_scale = (float)pow(f->layer_lr_decay, (double)(N - depth));
    if (e->flags & PARAMS_TRAINABLE) trainable += e->count;
  }
  if (t->rank == 0)
    log_info("finetune: %zu of %zu parameters trainable (embeddings %s, %zu of %ld layers frozen); head lr %g, "
             "layer lr decay %g",
             trainable, t->p->total, f->freeze_embeddings ? "frozen" : "trained", f->freeze_layers, N,
             f->head_lr > 0 ? f->head_lr : t->cfg.lr, f->layer_lr_decay);
}

/* Rank 0's evaluation buffers for a fine-tuning task: the summable counts
 * and one batch's predictions and chains. */
static int alloc_task_eval(trainer *t, char **err) {
  size_t K = t->cfg.model.num_labels, BL = t->B * t->L;
  t->n_eval_counts = t->cfg.model.task == BERT_TASK_CLASSIFY ? K * K : task_tag_counts_len(&t->tagset);
  t->eval_counts = calloc(t->n_eval_counts, sizeof *t->eval_counts);
  t->eval_pred = malloc(BL * sizeof *t->eval_pred);
  t->eval_gold_chain = malloc(BL * sizeof *t->eval_gold_chain);
  t->eval_pred_chain = malloc(BL * sizeof *t->eval_pred_chain);
  t->eval_rows = malloc(BL * sizeof *t->eval_rows);
  t->eval_first = malloc((t->B + 1) * sizeof *t->eval_first);
  t->eval_prf = calloc(K + t->tagset.n_types, sizeof *t->eval_prf);
  if (!t->eval_counts || !t->eval_pred || !t->eval_gold_chain || !t->eval_pred_chain || !t->eval_rows ||
      !t->eval_first || !t->eval_prf)
    return status_set(err, ST_NOMEM, "out of memory for evaluation buffers");
  return ST_OK;
}

/* ZeRO-1: a sharded reducer cut at the optimizer's chunks, this rank's
 * shard, its compact moments in place of the full ones. */
static int set_up_zero(trainer *t, size_t bucket, char **err) {
  size_t *cuts = NULL, ncuts = optim_chunk_cuts(t->p, &cuts, err);
  if (!cuts) return ST_NOMEM;
  int rc = comm_reducer_create_sharded(t->p->grad, t->p->total, bucket, t->A, cuts, ncuts, &t->reducer, err);
  free(cuts);
  if (rc) return rc;
  size_t n = comm_reducer_shards(t->reducer), floats = comm_reducer_shard_floats(t->reducer);
  t->n_norm_chunks = optim_norm_chunks(t->p);
  t->shard_lo = malloc((n ? n : 1) * sizeof *t->shard_lo);
  t->shard_hi = malloc((n ? n : 1) * sizeof *t->shard_hi);
  t->norm_chunks = malloc((t->n_norm_chunks ? t->n_norm_chunks : 1) * sizeof *t->norm_chunks);
  float *m = calloc(floats ? floats : 1, sizeof *m), *v = calloc(floats ? floats : 1, sizeof *v);
  t->shard = (optim_shard){.n = n, .lo = t->shard_lo, .hi = t->shard_hi, .m = m, .v = v};
  if (!t->shard_lo || !t->shard_hi || !t->norm_chunks || !m || !v)
    return status_set(err, ST_NOMEM, "rank %d: out of memory for the optimizer shard (%zu floats)", t->rank,
                      floats);
  for (size_t k = 0; k < n; k++) comm_reducer_shard(t->reducer, k, &t->shard_lo[k], &t->shard_hi[k]);
  free(t->p->m);
  free(t->p->v);
  t->p->m = t->p->v = NULL;
  return ST_OK;
}

static void free_zero(trainer *t) {
  free(t->shard_lo);
  free(t->shard_hi);
  free(t->norm_chunks);
  free(t->shard.m);
  free(t->shard.v);
}

/* The entry of p holding arena offset at (entries are back to back in
 * offset order: params.h). */
static size_t entry_at(const params *p, size_t at) {
  size_t lo = 0, hi = p->count;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (p->entries[mid].offset <= at) lo = mid;
    else hi = mid;
  }
  return lo;
}

/* A piece of an arena range inside one entry: the entry, the offset in
 * its flat data, the count, and where the piece starts in the range. */
typedef int (*entry_piece_fn)(void *ctx, size_t entry, size_t offset, size_t count, size_t at, char **err);

/* Calls fn for each entry's piece of arena range [lo, lo + n), in order. */
static int for_each_entry_piece(const params *p, size_t lo, size_t n, entry_piece_fn fn, void *ctx, char **err) {
  for (size_t e = entry_at(p, lo), at = 0; at < n; e++) {
    const params_entry *x = &p->entries[e];
    size_t off = lo + at - x->offset, k = x->count - off < n - at ? x->count - off : n - at;
    int rc = fn(ctx, e, off, k, at, err);
    if (rc) return rc;
    at += k;
  }
  return ST_OK;
}

/* ------------------------------------------- word-embedding lookup rows */

/* Sized for the most rows a step can have, so that a step never allocates. */
/* The most rows a step can have: one per token over every rank, or the
 * whole vocabulary. */
static size_t word_rows_cap(size_t V, size_t world, size_t A, size_t B, size_t L) {
  size_t tokens = world * A * B * L;
  return tokens < V ? tokens : V;
}

static int word_grad_create(trainer *t, size_t bucket, char **err) {
  word_grad *w = &t->words;
  const params_entry *e = params_find(t->p, "bert.embeddings.word_embeddings.weight");
  assert(e);
  w->V = t->cfg.model.vocab_size;
  w->C = t->cfg.model.hidden;
  w->cap = word_rows_cap(w->V, (size_t)t->world, t->A, t->B, t->L);
  w->wte = e->offset;
  w->seen = malloc((w->V + 7) / 8);
  w->row_of = malloc(w->V * sizeof *w->row_of);
  w->ids = malloc(w->cap * sizeof *w->ids);
  w->tok_rows = malloc(t->A * t->B * t->L * sizeof *w->tok_rows);
  w->grad = calloc(w->cap * w->C, sizeof *w->grad);
  if (!w->seen || !w->row_of || !w->ids || !w->tok_rows || !w->grad)
    return status_set(err, ST_NOMEM, "rank %d: out of memory for the word-embedding lookup rows (%zu x %zu floats)",
                      t->rank, w->cap, w->C);
  return comm_reducer_create(w->grad, w->cap * w->C, bucket, t->A, &w->reducer, err);
}

/* Whether the lookup's share of the word-embedding gradient is kept as
 * rows (word_grad), and whether the arena's reducer then skips the word
 * embeddings (fine-tuning: the rows are their whole gradient). */
static int lookup_as_rows(int task, int zero) { return task == BERT_TASK_PRETRAIN || !zero; }
static int reducer_skips_wte(int task, int zero) { return task != BERT_TASK_PRETRAIN && !zero; }

/* [train] bucket_mb in floats, at least one. */
static size_t bucket_floats(double bucket_mb) {
  size_t n = (size_t)(bucket_mb * 1024 * 1024 / sizeof(float));
  return n ? n : 1;
}

train_exchange_memory train_exchange_estimate(size_t param_floats, int task, int zero, size_t vocab, size_t hidden,
                                              size_t B, size_t L, size_t A, size_t world, double bucket_mb) {
  size_t arena = param_floats - (reducer_skips_wte(task, zero) ? vocab * hidden : 0);
  size_t bucket = bucket_floats(bucket_mb);
  train_exchange_memory m = {comm_reducer_bytes(arena, bucket, A, world), 0};
  if (lookup_as_rows(task, zero)) {
    /* word_grad_create's buffers, and its reducer's. */
    size_t cap = word_rows_cap(vocab, world, A, B, L);
    m.lookup = cap * hidden * sizeof(float) + comm_reducer_bytes(cap * hidden, bucket, A, world) +
               (vocab + 7) / 8 + vocab * sizeof(int32_t) + cap * sizeof(int32_t) + A * B * L * sizeof(int32_t);
  }
  return m;
}

static void word_grad_free(word_grad *w) {
  comm_reducer_free(w->reducer);
  free(w->seen);
  free(w->row_of);
  free(w->ids);
  free(w->tok_rows);
  free(w->grad);
}

/* The step's rows: this rank's ids, ORed with every rank's, numbered in id
 * order; then each token's row. Collective. */
static int word_grad_plan(trainer *t, char **err) {
  word_grad *w = &t->words;
  size_t N = t->B * t->L;
  memset(w->seen, 0, (w->V + 7) / 8);
  /* An id outside the vocabulary gets no row: bert_forward refuses it
   * with its own message before any backward reads the rows. */
  for (size_t a = 0; a < t->A; a++)
    for (size_t i = 0; i < N; i++) {
      int32_t id = t->micro[a]->input_ids[i];
      if (id >= 0 && (size_t)id < w->V) w->seen[id / 8] |= (uint8_t)(1u << (id % 8));
    }
  int rc = comm_allreduce_or_u8(w->seen, (w->V + 7) / 8, err);
  if (rc) return rc;
  w->rows = 0;
  for (size_t id = 0; id < w->V; id++)
    if (w->seen[id / 8] & (1u << (id % 8))) {
      w->ids[w->rows] = (int32_t)id;
      w->row_of[id] = (int32_t)w->rows++;
    }
  for (size_t a = 0; a < t->A; a++)
    for (size_t i = 0; i < N; i++) {
      int32_t id = t->micro[a]->input_ids[i];
      w->tok_rows[a * N + i] = id >= 0 && (size_t)id < w->V ? w->row_of[id] : 0;
    }
  return ST_OK;
}

/* The summed rows into the arena's word embeddings (which hold the tied
 * decoder's summed share): R(decoder) + R(lookup), both in comm.h's order. */
static void word_grad_add_rows(trainer *t) {
  const word_grad *w = &t->words;
  float *g = t->p->grad + w->wte;
  for (size_t r = 0; r < w->rows; r++) {
    float *dst = g + (size_t)w->ids[r] * w->C;
    const float *src = w->grad + r * w->C;
    for (size_t c = 0; c < w->C; c++) dst[c] += src[c];
  }
}

static int create_model(trainer *t, char **err) {
  t->B = t->cfg.batch_size;
  t->A = t->cfg.accumulation;
  int rc = bert_model_create(&t->model, &t->cfg.model, t->B, t->L, t->max_pred, err);
  if (rc) return rc;
  /* Every rank checks its own CPU: one without bf16 stops the job. */
  rc = bert_set_precision(t->model, t->cfg.precision, err);
  if ((rc = agree_with_rank0(t, rc, "[train] precision", err))) return rc;
  t->p = bert_model_params(t->model);
  params_init(t->p, t->cfg.seed);
  if (t->cfg.model.task != BERT_TASK_PRETRAIN) set_finetune_rates(t);
  rc = t->init.p ? adopt_init_weights(t, err) : ST_OK;
  if ((rc = agree_with_rank0(t, rc, "loading --init", err))) return rc;
  /* Initialisation depends only on (seed, name), so ranks agree already;
   * the broadcast makes it so whatever a future initialiser does, and
   * carries --init's weights from rank 0. */
  if ((rc = comm_broadcast(t->p->data, params_bytes(t->p), 0, err))) return rc;
  t->micro = calloc(t->A, sizeof *t->micro);
  if (!t->micro) return status_set(err, ST_NOMEM, "out of memory");
  for (size_t a = 0; a < t->A; a++)
    if ((rc = corpus_batch_alloc(t->B, t->L, &t->micro[a], err))) return rc;
  if (t->valid && (rc = corpus_batch_alloc(t->B, t->L, &t->eval_batch, err))) return rc;
  if (t->cfg.model.task != BERT_TASK_PRETRAIN && (rc = alloc_task_eval(t, err))) return rc;
  size_t bucket = bucket_floats(t->cfg.bucket_mb);
  int task = t->cfg.model.task;
  if (reducer_skips_wte(task, t->cfg.zero)) {
    /* Fine-tuning's word embeddings open the arena (bert.c's add_params). */
    const params_entry *e = params_find(t->p, "bert.embeddings.word_embeddings.weight");
    assert(e && e->offset == 0);
    t->reduce_lo = e->count;
  }
  rc = t->cfg.zero ? set_up_zero(t, bucket, err)
                   : comm_reducer_create(t->p->grad + t->reduce_lo, t->p->total - t->reduce_lo, bucket, t->A,
                                         &t->reducer, err);
  if (rc == ST_OK && lookup_as_rows(task, t->cfg.zero)) rc = word_grad_create(t, bucket, err);
  return rc;
}

/* ------------------------------------------------------- checkpoints */

/* The data position of the whole job: each shard's cursor as its owner
 * has it (the others hold zeros, so a sum collects them). */
static int gather_cursors(trainer *t, int64_t **rows, char **err) {
  size_t n = corpus_num_shards(t->data[0]);
  corpus_cursor *cur = calloc(n, sizeof *cur);
  double *v = calloc(3 * n, sizeof *v);
  int64_t *out = calloc(3 * n, sizeof *out);
  int rc = ST_OK;
  if (!cur || !v || !out) {
    rc = status_set(err, ST_NOMEM, "out of memory");
    goto done;
  }
  for (size_t a = 0; a < t->ndata; a++) {
    corpus_state_get(t->data[a], cur);
    for (size_t s = 0; s < n; s++)
      if (corpus_owns_shard(t->data[a], s)) {
        v[3 * s + 1] = cur[s].epoch;
        v[3 * s + 2] = (double)cur[s].position;
      }
  }
  if ((rc = comm_allreduce_sum_f64(v, 3 * n, err))) goto done;
  for (size_t s = 0; s < n; s++) {
    out[3 * s] = (int64_t)s;
    out[3 * s + 1] = (int64_t)v[3 * s + 1];
    out[3 * s + 2] = (int64_t)v[3 * s + 2];
  }
  *rows = out;
  out = NULL;
done:
  free(cur);
  free(v);
  free(out);
  return rc;
}

/* The best evaluation so far as the checkpoint attribute "best":
 * {"metric", "step", "value", "evaluation"}; a resumed run reads it back
 * (restore_best). NULL when there is none, or out of memory (*oom). */
static char *best_attr(const trainer *t, int *oom) {
  *oom = 0;
  if (!t->has_best || !t->best_eval) return NULL;
  cJSON *o = cJSON_CreateObject();
  int ok = o && cJSON_AddStringToObject(o, "metric", run_config_best_metric_name(t->cfg.finetune.best_metric)) &&
           cJSON_AddNumberToObject(o, "step", (double)t->best_step) &&
           cJSON_AddNumberToObject(o, "value", t->best_value) &&
           cJSON_AddRawToObject(o, "evaluation", t->best_eval);
  char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  *oom = !text;
  return text;
}

/* Waits for the checkpoint being written (rank 0); once it is committed,
 * BEST names it if its step was the best. *written: its path (malloc'd),
 * or NULL. */
static int wait_for_writer(trainer *t, char **written, char **err) {
  *written = NULL;
  if (!t->writer) return ST_OK;
  int rc = ckpt_writer_wait(t->writer, written, err);
  ckpt_writer_free(t->writer);
  t->writer = NULL;
  if (rc)
    return status_wrap(err, rc, "checkpoint of step %llu not written (LATEST still names the last good one; "
                       "free space or fix %s, then --resume it)", (unsigned long long)t->writer_step,
                       t->req->run_dir);
  if (t->writer_is_best) {
    const char *slash = strrchr(*written, '/');
    rc = ckpt_dir_set_best(t->req->run_dir, slash ? slash + 1 : *written, err);
  }
  return rc;
}

/* What a checkpoint of this step holds besides its tensors: the root
 * attributes, the data position and the RNG state (rank 0). c points into
 * the record, which must stay where it is; step_record_clear frees it. */
typedef struct step_record {
  ckpt_attr attrs[5];
  ckpt_array arrays[2];
  int64_t rng[2];
  char seq_len[32];
  char *best;
  ckpt_content c;
} step_record;

static int step_record_init(const trainer *t, const int64_t *rows, step_record *s, char **err) {
  memset(s, 0, sizeof *s);
  s->rng[0] = (int64_t)t->cfg.seed;
  s->rng[1] = (int64_t)t->step;
  s->arrays[0] = (ckpt_array){.path = "data/cursor", .ndim = 2, .shape = {corpus_num_shards(t->data[0]), 3},
                              .data = rows};
  s->arrays[1] = (ckpt_array){.path = "rng/seed_step", .ndim = 1, .shape = {2}, .data = s->rng};
  /* vocab and its casing first: a checkpoint without a vocab has none of
   * the others either. */
  int oom;
  s->best = best_attr(t, &oom);
  s->attrs[0] = (ckpt_attr){"vocab", t->vocab_text};
  s->attrs[1] = (ckpt_attr){"vocab_lowercase", t->man->lowercase ? "1" : "0"};
  size_t n_attrs = t->vocab_text ? 2 : 0;
  /* The corpus's sequence length: ddpt predict cuts its inputs to it, as
   * the shard cut the training examples. */
  snprintf(s->seq_len, sizeof s->seq_len, "%zu", t->L);
  if (n_attrs && t->labels_json) s->attrs[n_attrs++] = (ckpt_attr){"labels", t->labels_json};
  if (n_attrs && t->labels_json) s->attrs[n_attrs++] = (ckpt_attr){"seq_len", s->seq_len};
  if (n_attrs && s->best) s->attrs[n_attrs++] = (ckpt_attr){"best", s->best};
  s->c = (ckpt_content){
      .meta = {.step = (int64_t)t->step, .tokens_seen = (int64_t)t->tokens_seen, .world_size = t->world,
               .seed = t->cfg.seed, .model_type = "bert", .config = t->cfg_text, .attrs = s->attrs,
               .n_attrs = n_attrs},
      .n_params = t->p->count, .n_optim_m = t->p->count, .n_optim_v = t->p->count,
      .arrays = s->arrays, .n_arrays = 2,
  };
  return oom ? status_set(err, ST_NOMEM, "out of memory") : ST_OK;
}

static void step_record_clear(step_record *s) { free(s->best); }

/* zero = 0 (rank 0): the writer copies parameters and moments and writes
 * them in the background while training goes on. */
static int checkpoint_whole(trainer *t, step_record *s, char **err) {
  ckpt_tensor *pt = params_ckpt_tensors(t->p, t->p->data);
  ckpt_tensor *mt = params_ckpt_tensors(t->p, t->p->m);
  ckpt_tensor *vt = params_ckpt_tensors(t->p, t->p->v);
  s->c.params = pt;
  s->c.optim_m = mt;
  s->c.optim_v = vt;
  int rc = !pt || !mt || !vt ? status_set(err, ST_NOMEM, "out of memory")
                             : ckpt_writer_begin(t->req->run_dir, &s->c, (int)t->cfg.ckpt_keep, &t->writer, err);
  free(pt);
  free(mt);
  free(vt);
  return rc;
}

/* zero = 1, rank 0: where the optimizer state stream's pieces go. */
typedef struct moment_sink {
  const params *p;
  ckpt_commit *commit;
  const char *group; /* "optim/m" or "optim/v" */
  const float *data; /* the piece being written */
} moment_sink;

static int put_entry_piece(void *ctx, size_t entry, size_t offset, size_t count, size_t at, char **err) {
  moment_sink *s = ctx;
  return ckpt_commit_put(s->commit, s->group, s->p->entries[entry].name, offset, count, s->data + at, err);
}

static int put_moment_piece(void *ctx, size_t offset, size_t count, const float *data, char **err) {
  moment_sink *s = ctx;
  s->data = data;
  return for_each_entry_piece(s->p, offset, count, put_entry_piece, s, err);
}

/* zero = 1: rank 0 writes the parameters and creates the moments, then
 * every rank's shard of m and of v streams into them a piece at a time,
 * so that no rank ever holds more of the moments than its shard and one
 * piece (docs/distributed.md); the fsync and commit run in the background.
 * Collective. */
static int checkpoint_sharded(trainer *t, step_record *s, char **err) {
  ckpt_commit *cm = NULL;
  ckpt_tensor *pt = NULL, *names = NULL;
  float *piece = NULL;
  int rc = ST_OK;
  if (t->rank == 0) {
    pt = params_ckpt_tensors(t->p, t->p->data);
    names = params_ckpt_tensors(t->p, NULL);
    piece = malloc(TRAIN_CKPT_PIECE_FLOATS * sizeof *piece);
    s->c.params = pt;
    s->c.optim_m = s->c.optim_v = names;
    rc = !pt || !names || !piece ? status_set(err, ST_NOMEM, "out of memory")
                                 : ckpt_commit_begin(t->req->run_dir, &s->c, &cm, err);
  }
  if ((rc = agree_with_rank0(t, rc, "starting the checkpoint", err))) goto done;
  moment_sink m = {t->p, cm, "optim/m", NULL}, v = {t->p, cm, "optim/v", NULL};
  rc = comm_reducer_stream_shards(t->reducer, t->shard.m, piece, TRAIN_CKPT_PIECE_FLOATS, put_moment_piece, &m,
                                  err);
  if (rc == ST_OK)
    rc = comm_reducer_stream_shards(t->reducer, t->shard.v, piece, TRAIN_CKPT_PIECE_FLOATS, put_moment_piece,
                                    &v, err);
  if ((rc = agree_with_rank0(t, rc, "writing the optimizer state", err))) goto done;
  if (t->rank == 0) rc = ckpt_writer_end_commit(cm, (int)t->cfg.ckpt_keep, &t->writer, err);
  cm = NULL;
done:
  ckpt_commit_abort(cm);
  free(piece);
  free(names);
  free(pt);
  return rc;
}

/* Starts writing a checkpoint of the current step (rank 0; its fsync and
 * commit, and with zero = 0 all of it, in the background), after the
 * previous write has finished. Collective: every rank calls. */
static int checkpoint(trainer *t, char **err) {
  int64_t *rows = NULL;
  step_record s = {0};
  int rc = gather_cursors(t, &rows, err);
  if (rc == ST_OK && t->rank == 0) {
    char *written = NULL;
    rc = wait_for_writer(t, &written, err);
    free(written);
    if (rc == ST_OK) rc = step_record_init(t, rows, &s, err);
  }
  if (t->cfg.zero) rc = rc ? agree_with_rank0(t, rc, "checkpoint", err) : checkpoint_sharded(t, &s, err);
  else if (rc == ST_OK && t->rank == 0) rc = checkpoint_whole(t, &s, err);
  if (t->rank == 0) {
    t->writer_step = t->step;
    t->writer_is_best = t->has_best && t->best_step == t->step;
  }
  step_record_clear(&s);
  free(rows);
  return rc;
}

static int finish_checkpoints(trainer *t, char **err) {
  char *written = NULL;
  int rc = wait_for_writer(t, &written, err);
  if (!rc && written) log_info("checkpoint %s", written);
  free(written);
  return rc;
}

/* zero = 1: the ranges of optim/m and optim/v that this rank's shard
 * covers, read into it (no rank reads the full moments). */
typedef struct shard_ranges {
  ckpt_range *r;
  size_t n, cap;
  float *base; /* the compact shard the range being listed starts at */
} shard_ranges;

static int add_shard_range(void *ctx, size_t entry, size_t offset, size_t count, size_t at, char **err) {
  shard_ranges *s = ctx;
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 256;
    ckpt_range *r = realloc(s->r, cap * sizeof *r);
    if (!r) return status_set(err, ST_NOMEM, "out of memory");
    s->r = r;
    s->cap = cap;
  }
  s->r[s->n++] = (ckpt_range){.tensor = entry, .offset = offset, .count = count, .data = s->base + at};
  return ST_OK;
}

static int restore_shard(trainer *t, ckpt_file *f, char **err) {
  ckpt_tensor *names = params_ckpt_tensors(t->p, NULL);
  shard_ranges s = {0};
  int rc = names ? ST_OK : status_set(err, ST_NOMEM, "out of memory");
  for (size_t k = 0, at = 0; k < t->shard.n && rc == ST_OK; at += t->shard_hi[k] - t->shard_lo[k], k++) {
    s.base = t->shard.m + at;
    rc = for_each_entry_piece(t->p, t->shard_lo[k], t->shard_hi[k] - t->shard_lo[k], add_shard_range, &s, err);
  }
  if (rc == ST_OK) rc = ckpt_file_load_ranges(f, "optim/m", names, t->p->count, s.r, s.n, err);
  for (size_t i = 0; i < s.n; i++) s.r[i].data = t->shard.v + (s.r[i].data - t->shard.m);
  if (rc == ST_OK) rc = ckpt_file_load_ranges(f, "optim/v", names, t->p->count, s.r, s.n, err);
  free(s.r);
  free(names);
  return rc;
}

/* Restores parameters, moments, step, tokens and data cursors from f. */
static int restore(trainer *t, ckpt_file *f, const ckpt_header *h, char **err) {
  ckpt_tensor *pt = params_ckpt_tensors(t->p, t->p->data);
  ckpt_tensor *mt = t->cfg.zero ? NULL : params_ckpt_tensors(t->p, t->p->m);
  ckpt_tensor *vt = t->cfg.zero ? NULL : params_ckpt_tensors(t->p, t->p->v);
  size_t n = corpus_num_shards(t->data[0]);
  int64_t *rows = malloc(3 * n * sizeof *rows);
  corpus_cursor *cur = malloc(n * sizeof *cur);
  int rc = ST_OK;
  if (!pt || (!t->cfg.zero && (!mt || !vt)) || !rows || !cur) {
    rc = status_set(err, ST_NOMEM, "out of memory");
    goto done;
  }
  if ((rc = ckpt_file_load(f, "params", pt, t->p->count, 1, NULL, err))) goto done;
  if (t->cfg.zero) rc = restore_shard(t, f, err);
  else if (!(rc = ckpt_file_load(f, "optim/m", mt, t->p->count, 1, NULL, err)))
    rc = ckpt_file_load(f, "optim/v", vt, t->p->count, 1, NULL, err);
  if (rc) goto done;
  bert_weights_changed(t->model);
  if ((rc = ckpt_file_read_int64(f, "data/cursor", rows, 3 * n, err))) {
    status_wrap(err, rc, "the checkpoint's data position does not fit corpus %s (%zu shards)", t->cfg.corpus, n);
    goto done;
  }
  for (size_t s = 0; s < n; s++) {
    cur[s].shard = (uint32_t)rows[3 * s];
    cur[s].epoch = (uint32_t)rows[3 * s + 1];
    cur[s].position = (uint64_t)rows[3 * s + 2];
  }
  for (size_t a = 0; a < t->ndata && rc == ST_OK; a++) rc = corpus_state_set(t->data[a], cur, n, err);
  if (rc) goto done;
  t->step = (uint64_t)h->step;
  t->tokens_seen = (uint64_t)h->tokens_seen;
done:
  free(pt);
  free(mt);
  free(vt);
  free(rows);
  free(cur);
  return rc;
}

/* [log] samples: RUN_DIR/samples/rank-R.txt gets, per step, the samples
 * this rank read as "step S: shard:index@epoch ...", the same record `ddpt
 * corpus sample` prints; joined over ranks and resumed runs it shows which
 * samples a run saw (the resume tests check exactly-once over an epoch). */
/* Keeps the sample-log lines of steps up to *(uint64_t *)through: a resumed
 * run repeats the steps after its checkpoint, so the lines the stopped run
 * wrote for them must go. */
static int sample_line_through(const char *line, void *through) {
  unsigned long long step;
  return sscanf(line, "step %llu:", &step) == 1 && step <= *(const uint64_t *)through;
}

static int open_sample_log(trainer *t, char **err) {
  size_t n = strlen(t->req->run_dir) + 64;
  char *path = malloc(n);
  if (!path) return status_set(err, ST_NOMEM, "out of memory");
  snprintf(path, n, "%s/samples", t->req->run_dir);
  int rc = ST_OK;
  if (t->rank == 0) {
    DIR *d = NULL;
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
      rc = status_set(err, ST_IO, "cannot create %s: %s", path, strerror(errno));
    } else if (t->req->resume && (d = opendir(path))) {
      /* Every rank's file of the stopped run, whatever its world size. */
      for (struct dirent *e; rc == ST_OK && (e = readdir(d));) {
        if (strncmp(e->d_name, "rank-", 5) != 0) continue;
        char *file = file_path_join(path, e->d_name);
        if (!file) {
          rc = status_set(err, ST_NOMEM, "out of memory");
          break;
        }
        rc = file_filter_lines(file, sample_line_through, &t->step, err);
        free(file);
      }
      closedir(d);
    }
  }
  /* Every rank learns whether rank 0 got the directory ready. */
  rc = agree_with_rank0(t, rc, "preparing the sample logs", err);
  if (rc == ST_OK) {
    snprintf(path, n, "%s/samples/rank-%d.txt", t->req->run_dir, t->rank);
    t->samples = fopen(path, t->req->resume ? "a" : "w");
    if (!t->samples) rc = status_set(err, ST_IO, "cannot write %s: %s", path, strerror(errno));
  }
  free(path);
  return rc;
}

static void log_samples(trainer *t, uint64_t step) {
  fprintf(t->samples, "step %llu:", (unsigned long long)step);
  for (size_t a = 0; a < t->A; a++) {
    const corpus_batch *b = t->micro[a];
    for (size_t i = 0; i < b->count; i++)
      fprintf(t->samples, " %u:%llu@%u", b->samples[i].shard, (unsigned long long)b->samples[i].index,
              b->samples[i].epoch);
  }
  fputc('\n', t->samples);
  fflush(t->samples);
}

/* ------------------------------------------------------------ steps */

static void on_grads_ready(void *ctx, size_t lo) {
  trainer *t = ctx;
  char *err = NULL;
  /* The reducer's offsets start at reduce_lo. A failure here is seen
   * again, with its message, by comm_reducer_finish. */
  lo = lo > t->reduce_lo ? lo - t->reduce_lo : 0;
  if (comm_reducer_ready(t->reducer, lo, &err) == ST_OK) comm_reducer_poll(t->reducer, &err);
  free(err);
}

/* The batch the model reads: the labels of its task only. */
static bert_batch as_bert_batch(const corpus_batch *b, int task) {
  bert_batch x = {
      .B = b->batch_size, .L = b->seq_len, .input_ids = b->input_ids, .segment_ids = b->segment_ids,
      .attention_mask = b->attention_mask,
  };
  if (task == BERT_TASK_PRETRAIN) {
    x.mlm_labels = b->mlm_labels;
    x.nsp_labels = b->nsp_labels;
  } else if (task == BERT_TASK_CLASSIFY) {
    x.class_labels = b->class_labels;
  } else {
    x.tag_labels = b->tag_labels;
  }
  return x;
}

typedef struct step_result {
  double loss, mlm, nsp, task, grad_norm, lr;
  uint64_t tokens;
  int applied;
} step_result;

/* What the task's loss is a mean over in batch b (bert_loss.task_count):
 * labelled sequences (classify), labelled tokens (tag), sequences with a
 * labelled token (tag with the CRF). */
static double task_units(const trainer *t, const corpus_batch *b) {
  const bert_config *m = &t->cfg.model;
  double n = 0;
  if (m->task == BERT_TASK_CLASSIFY) {
    for (size_t i = 0; i < t->B; i++) n += b->class_labels[i] != CORPUS_IGNORE_LABEL;
  } else if (m->task == BERT_TASK_TAG) {
    for (size_t i = 0; i < t->B; i++) {
      size_t labelled = 0;
      for (size_t j = 0; j < t->L; j++) labelled += b->tag_labels[i * t->L + j] != CORPUS_IGNORE_LABEL;
      n += m->crf ? labelled > 0 : (double)labelled;
    }
  }
  return n;
}

/* Reads this rank's A micro-batches; counts (predicted tokens, NSP
 * sequences, tokens, task units) become the step's totals over all ranks. */
static int read_micro_batches(trainer *t, double counts[4], char **err) {
  for (size_t a = 0; a < t->A; a++) {
    corpus_batch *b = t->micro[a];
    int rc = corpus_next_batch(t->data[t->ndata == 1 ? 0 : a], b, err);
    if (rc) return rc;
    for (size_t i = 0; i < t->B * t->L; i++) {
      counts[0] += b->mlm_labels[i] >= 0;
      counts[2] += b->attention_mask[i] != 0;
    }
    if (t->cfg.model.nsp)
      for (size_t i = 0; i < t->B; i++) counts[1] += b->nsp_labels[i] >= 0;
    counts[3] += task_units(t, b);
  }
  int rc = comm_allreduce_sum_f64(counts, 4, err);
  if (rc == ST_OK && t->samples) log_samples(t, t->step + 1);
  return rc;
}

/* After the last backward: both sums finished (the lookup rows, short,
 * first; the arena's last buckets start before), then the rows added (not
 * sooner: the arena's buckets are sent from and received into it until
 * its finish), and what the exchange cost recorded in t->comm. */
static int finish_sums(trainer *t, char **err) {
  word_grad *w = &t->words;
  int rc = comm_reducer_ready(t->reducer, 0, err);
  if (rc == ST_OK && w->reducer) rc = comm_reducer_finish(w->reducer, 1.0f, err);
  if (rc == ST_OK) rc = comm_reducer_finish(t->reducer, 1.0f, err);
  if (rc) return rc;
  if (w->reducer) word_grad_add_rows(t);
  step_comm *c = &t->comm;
  c->grads_final = timer_now();
  comm_reducer_stats d = comm_reducer_get_stats(t->reducer);
  c->first_start = d.first_start;
  c->last_done = d.last_done;
  c->wait_s = d.wait_seconds;
  if (w->reducer) {
    comm_reducer_stats l = comm_reducer_get_stats(w->reducer);
    c->wait_s += l.wait_seconds;
    if (l.first_start > 0 && (c->first_start == 0 || l.first_start < c->first_start)) c->first_start = l.first_start;
    if (l.last_done > c->last_done) c->last_done = l.last_done;
  }
  return ST_OK;
}

/* Forward and backward over the micro-batches, the gradients summed over
 * ranks; means: the step's MLM, NSP and task losses over the global batch. */
static int forward_backward(trainer *t, const double counts[4], double means[3], char **err) {
  /* An applied update left the gradients at zero (OPTIM_ZERO_GRAD). */
  if (!t->grads_clear) params_zero_grad(t->p);
  t->grads_clear = 0;
  comm_reducer_begin(t->reducer);
  word_grad *w = &t->words;
  if (w->reducer) {
    comm_reducer_begin_n(w->reducer, w->rows * w->C);
    memset(w->grad, 0, w->rows * w->C * sizeof *w->grad);
  }
  /* Each token's (sequence's) loss weighs 1 / its count over all ranks and
   * micro-batches: the sum over ranks is the mean over the global batch. */
  bert_grad_scale scale = {.mlm = counts[0] > 0 ? (float)(1.0 / counts[0]) : 0.0f,
                           .nsp = counts[1] > 0 ? (float)(1.0 / counts[1]) : 0.0f,
                           .task = counts[3] > 0 ? (float)(1.0 / counts[3]) : 0.0f};
  for (size_t a = 0; a < t->A; a++) {
    bert_batch x = as_bert_batch(t->micro[a], t->cfg.model.task);
    bert_dropout drop = {.seed = t->cfg.seed, .step = (uint32_t)t->step,
                         .micro = (uint32_t)((size_t)t->rank * t->A + a)};
    bert_loss loss;
    int rc = bert_forward(t->model, &x, &drop, &loss, err);
    if (rc) return rc;
    if (counts[0] > 0) means[0] += loss.mlm * (double)loss.predicted / counts[0];
    if (counts[1] > 0) means[1] += loss.nsp * (double)loss.nsp_count / counts[1];
    if (counts[3] > 0) means[2] += loss.task * (double)loss.task_count / counts[3];
    /* Each micro-batch's gradient starts from zero and is folded into the
     * others by the reducer (the slots' fixed order); the last one's
     * buckets are reduced while its backward runs. */
    int last = a + 1 == t->A;
    bert_set_grad_ready(t->model, last ? on_grads_ready : NULL, t);
    if (w->reducer) bert_set_word_grad_rows(t->model, w->grad, w->tok_rows + a * t->B * t->L);
    bert_backward(t->model, &x, &scale);
    if (!last) comm_reducer_next_slot(t->reducer);
    if (!last && w->reducer) comm_reducer_next_slot(w->reducer);
  }
  t->comm.backward_end = timer_now();
  bert_set_grad_ready(t->model, NULL, NULL);
  bert_set_word_grad_rows(t->model, NULL, NULL);
  int rc = finish_sums(t, err);
  return rc ? rc : comm_allreduce_sum_f64(means, 3, err);
}

/* Clipping, the non-finite guard and the optimizer step at the schedule's
 * learning rate. */
/* The global gradient norm. zero = 1: each rank's chunk sums of its shard,
 * summed over ranks (one non-zero term each: exact), then added in arena
 * order as optim_grad_norm adds them: the same bits. Collective. */
static int grad_norm(trainer *t, double *norm, char **err) {
  if (!t->cfg.zero) {
    *norm = optim_grad_norm(t->p);
    return ST_OK;
  }
  optim_shard_chunk_sums(t->p, &t->shard, t->norm_chunks);
  int rc = comm_allreduce_sum_f64(t->norm_chunks, t->n_norm_chunks, err);
  if (!rc) *norm = optim_norm_of_chunks(t->norm_chunks, t->n_norm_chunks);
  return rc;
}

/* zero = 1: the update of this rank's shard, then every rank's updated
 * shard copied to all. Collective. */
static int apply_update(trainer *t, const step_result *r, char **err) {
  if (!t->cfg.zero) {
    optim_step(&t->cfg.optim, t->p, (float)r->lr, t->step + 1, r->grad_norm, OPTIM_ZERO_GRAD);
    return ST_OK;
  }
  optim_step_shard(&t->cfg.optim, t->p, &t->shard, (float)r->lr, t->step + 1, r->grad_norm, OPTIM_ZERO_GRAD);
  int rc = comm_reducer_allgather(t->reducer, t->p->data, err);
  /* bf16: the copy of the other ranks' shards (optimizer.h, 4). */
  if (rc == ST_OK) optim_shard_bf16_rest(t->p, &t->shard);
  return rc;
}

static int update(trainer *t, step_result *r, char **err) {
  int rc = grad_norm(t, &r->grad_norm, err);
  if (rc) return rc;
  r->lr = t->cfg.lr * schedule_multiplier(&t->cfg.sched, t->step + 1);
  optim_guard_verdict v = optim_guard_check(&t->guard, r->loss, r->grad_norm);
  /* The loss and the norm are the same on every rank: all stop together. */
  t->failed_together = v == GUARD_STOP;
  if (v == GUARD_STOP)
    return status_set(err, ST_INVALID,
                      "%u steps in a row had a non-finite loss or gradient norm (last: step %llu, loss %g, norm %g); "
                      "lower [optim] lr or check the corpus",
                      t->guard.consecutive, (unsigned long long)t->step + 1, r->loss, r->grad_norm);
  r->applied = v == GUARD_APPLY;
  if (r->applied) {
    /* The update writes the weights' bf16 copy too: no
     * bert_weights_changed. */
    if ((rc = apply_update(t, r, err))) return rc;
    t->grads_clear = 1;
  } else log_warn("step %llu: non-finite loss (%g) or gradient norm (%g): update skipped (%llu so far)",
                (unsigned long long)t->step + 1, r->loss, r->grad_norm, (unsigned long long)t->guard.skipped);
  return ST_OK;
}

static int train_step(trainer *t, step_result *r, char **err) {
  double counts[4] = {0, 0, 0, 0}; /* predicted tokens, NSP sequences, tokens, task units */
  double means[3] = {0, 0, 0};     /* MLM, NSP and task loss */
  comm_watchdog_phase(t->step + 1, "reading batches and counting tokens", 1);
  int rc = read_micro_batches(t, counts, err);
  if (rc == ST_OK && t->words.reducer) rc = word_grad_plan(t, err);
  if (rc) return rc;
  comm_watchdog_phase(t->step + 1, "forward, backward and gradient allreduce", 1);
  if ((rc = forward_backward(t, counts, means, err))) return rc;
  comm_watchdog_phase(t->step + 1, "optimizer update", 1);
  r->mlm = means[0];
  r->nsp = means[1];
  r->task = means[2];
  r->loss = means[0] + means[1] + means[2];
  r->tokens = (uint64_t)counts[2];
  return update(t, r, err);
}

/* Adds the batch's MLM labels into counts (vocab_size): how often each id
 * is a target. */
static void count_mlm_labels(uint64_t *counts, const bert_batch *x) {
  for (size_t i = 0; i < x->B * x->L; i++)
    if (x->mlm_labels[i] >= 0) counts[x->mlm_labels[i]]++;
}

/* The most frequent id's count. */
static uint64_t max_count(const uint64_t *counts, size_t n) {
  uint64_t best = 0;
  for (size_t i = 0; i < n; i++)
    if (counts[i] > best) best = counts[i];
  return best;
}

/* Rank 0's evaluation on the validation shards (a fixed set of sequences
 * with fixed masks, no dropout): sums[6] = loss sum, predicted tokens,
 * correct predictions, correct NSP labels, NSP sequences, and how many
 * predicted tokens are the most frequent target id (the accuracy of a model
 * that always answers it: what a model stuck at the unigram plateau scores). */
static int evaluate_on_rank0(trainer *t, double sums[6], char **err) {
  uint64_t n = corpus_valid_size(t->valid);
  uint64_t limit = t->cfg.eval_batches * t->B;
  if (limit && limit < n) n = limit;
  size_t V = t->cfg.model.vocab_size;
  uint64_t *counts = calloc(V, sizeof *counts); /* (V) */
  if (!counts) return status_set(err, ST_NOMEM, "out of memory for the evaluation's label counts");
  int rc = ST_OK;
  for (uint64_t start = 0; start < n && rc == ST_OK; start += t->B) {
    if ((rc = corpus_valid_batch(t->valid, start, t->eval_batch, err))) break;
    bert_batch x = as_bert_batch(t->eval_batch, BERT_TASK_PRETRAIN);
    x.B = t->eval_batch->count; /* the last batch may be short */
    bert_loss loss;
    if ((rc = bert_forward(t->model, &x, NULL, &loss, err))) {
      status_wrap(err, rc, "validation sequences %llu-%llu of corpus %s", (unsigned long long)start,
                  (unsigned long long)(start + x.B - 1), t->cfg.corpus);
      break;
    }
    count_mlm_labels(counts, &x);
    sums[0] += loss.mlm * (double)loss.predicted;
    sums[1] += (double)loss.predicted;
    sums[2] += (double)loss.mlm_correct;
    sums[3] += (double)loss.nsp_correct;
    sums[4] += (double)loss.nsp_count;
  }
  sums[5] = (double)max_count(counts, V);
  free(counts);
  return rc;
}

/* Adds one validation batch's predictions into the task counts: the
 * argmax class (the lowest among equals), or the tags bert_tag_decode gives
 * (Viterbi with the CRF) at the labelled positions. */
static int count_task_batch(trainer *t, const bert_batch *x, char **err) {
  size_t K = t->cfg.model.num_labels;
  if (t->cfg.model.task == BERT_TASK_CLASSIFY) {
    size_t rows, k;
    const float *logits = bert_task_logits(t->model, &rows, &k);
    for (size_t i = 0; i < x->B; i++) {
      const float *row = logits + i * K; /* (K) */
      int32_t best = 0;
      for (size_t j = 1; j < K; j++)
        if (row[j] > row[best]) best = (int32_t)j;
      t->eval_pred[i] = best;
    }
    task_confusion_add(t->eval_counts, x->class_labels, t->eval_pred, x->B, K);
    return ST_OK;
  }
  int rc = bert_tag_decode(t->model, x->tag_labels, t->eval_pred, err);
  if (rc) return rc;
  size_t P = head_chain_rows(t->eval_rows, t->eval_first, t->eval_gold_chain, x->tag_labels, x->B, x->L);
  for (size_t p = 0; p < P; p++) t->eval_pred_chain[p] = t->eval_pred[t->eval_rows[p]];
  task_tag_count(t->eval_counts, &t->tagset, t->eval_gold_chain, t->eval_pred_chain, t->eval_first, x->B);
  return ST_OK;
}

/* The scores of t->eval_counts into m (eval_accuracy and the F1 figures),
 * and the value of [finetune] best_metric. */
static double task_scores(trainer *t, metrics_step *m) {
  if (t->cfg.model.task == BERT_TASK_CLASSIFY) {
    task_class_scores cs;
    task_class_scores_compute(&cs, t->eval_prf, t->eval_counts, t->cfg.model.num_labels);
    m->eval_accuracy = cs.accuracy;
    m->eval_macro_f1 = cs.macro_f1;
  } else {
    task_tag_scores ts;
    task_tag_scores_compute(&ts, t->eval_prf, t->eval_counts, &t->tagset);
    m->eval_accuracy = ts.token_accuracy;
    m->eval_precision = ts.overall.precision;
    m->eval_recall = ts.overall.recall;
    m->eval_f1 = ts.overall.f1;
  }
  switch (t->cfg.finetune.best_metric) {
  case RUN_BEST_MACRO_F1: return m->eval_macro_f1;
  case RUN_BEST_ENTITY_F1: return m->eval_f1;
  case RUN_BEST_LOSS: return m->eval_loss;
  default: return m->eval_accuracy; /* accuracy, token_accuracy */
  }
}

/* Whether an evaluation scoring value beats the best so far (the first
 * finite one does; a tie keeps the earlier step). */
static int is_new_best(const trainer *t, double value) {
  if (!isfinite(value)) return 0;
  if (!t->has_best) return 1;
  return t->cfg.finetune.best_metric == RUN_BEST_LOSS ? value < t->best_value : value > t->best_value;
}

/* An evaluation as one JSON object: step, loss, then task_metrics' report
 * (per-class or per-type tables, the confusion matrix). */
static int evaluation_json(const trainer *t, double loss, char **out, char **err) {
  char *text = NULL;
  int rc = t->cfg.model.task == BERT_TASK_CLASSIFY
               ? task_class_json(&text, t->eval_counts, (const char *const *)t->man->labels,
                                 t->cfg.model.num_labels, err)
               : task_tag_json(&text, t->eval_counts, &t->tagset, err);
  if (rc) return rc;
  cJSON *report = cJSON_Parse(text), *o = cJSON_CreateObject();
  free(text);
  int ok = report && o && cJSON_AddNumberToObject(o, "step", (double)t->step) &&
           (isfinite(loss) ? cJSON_AddNumberToObject(o, "loss", loss) != NULL
                           : cJSON_AddNullToObject(o, "loss") != NULL);
  for (cJSON *item = report ? report->child : NULL; ok && item;) {
    cJSON *next = item->next;
    ok = cJSON_AddItemToObject(o, item->string, cJSON_DetachItemViaPointer(report, item));
    item = next;
  }
  *out = ok ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(report);
  cJSON_Delete(o);
  return *out ? ST_OK : status_set(err, ST_NOMEM, "out of memory");
}

/* Rank 0's part of evaluate_task: the whole validation split (every
 * sequence, whatever eval_batches says) into sums (loss sum, task units)
 * and t->eval_counts; the evaluation's JSON into *json, and a copy into
 * *best_json when it is the best so far. */
static int evaluate_task_on_rank0(trainer *t, double sums[2], char **json, char **best_json, char **err) {
  uint64_t n = corpus_valid_size(t->valid);
  for (uint64_t start = 0; start < n; start += t->B) {
    int rc = corpus_valid_batch(t->valid, start, t->eval_batch, err);
    if (rc) return rc;
    bert_batch x = as_bert_batch(t->eval_batch, t->cfg.model.task);
    x.B = t->eval_batch->count; /* the last batch may be short */
    bert_loss loss;
    if ((rc = bert_forward(t->model, &x, NULL, &loss, err)) || (rc = count_task_batch(t, &x, err)))
      return status_wrap(err, rc, "validation sequences %llu-%llu of corpus %s", (unsigned long long)start,
                         (unsigned long long)(start + x.B - 1), t->cfg.corpus);
    sums[0] += loss.task * (double)loss.task_count;
    sums[1] += (double)loss.task_count;
  }
  metrics_step m = {.eval_loss = sums[1] > 0 ? sums[0] / sums[1] : NAN};
  double value = task_scores(t, &m);
  int rc = evaluation_json(t, m.eval_loss, json, err);
  if (rc == ST_OK && is_new_best(t, value) && !(*best_json = strdup(*json)))
    rc = status_set(err, ST_NOMEM, "out of memory");
  return rc;
}

/* A fine-tuning evaluation: rank 0 scores the validation split, every rank
 * receives the counts (or rank 0's failure) and computes the same scores
 * and the same best. Collective. */
static int evaluate_task(trainer *t, metrics_step *m, char **err) {
  double sums[2] = {0, 0};
  char *json = NULL, *best_json = NULL;
  memset(t->eval_counts, 0, t->n_eval_counts * sizeof *t->eval_counts);
  int rc = t->rank == 0 ? evaluate_task_on_rank0(t, sums, &json, &best_json, err) : ST_OK;
  char what[64];
  snprintf(what, sizeof what, "evaluation after step %llu", (unsigned long long)t->step);
  if ((rc = agree_with_rank0(t, rc, what, err)) || (rc = comm_broadcast(sums, sizeof sums, 0, err)) ||
      (rc = comm_broadcast(t->eval_counts, t->n_eval_counts * sizeof *t->eval_counts, 0, err))) {
    free(json);
    free(best_json);
    return rc;
  }
  m->has_eval = 1;
  m->eval_loss = sums[1] > 0 ? sums[0] / sums[1] : NAN;
  double value = task_scores(t, m);
  m->eval_best = is_new_best(t, value);
  if (m->eval_best) {
    t->has_best = 1;
    t->best_step = t->step;
    t->best_value = value;
  }
  if (t->rank == 0) {
    free(t->last_eval);
    t->last_eval = json;
    if (best_json) {
      free(t->best_eval);
      t->best_eval = best_json;
    }
  }
  return ST_OK;
}

/* Every rank receives rank 0's figures, or its failure: a failed evaluation
 * never reaches the metrics. Collective. */
static int evaluate(trainer *t, metrics_step *m, char **err) {
  if (t->cfg.model.task != BERT_TASK_PRETRAIN) return evaluate_task(t, m, err);
  double sums[6] = {0, 0, 0, 0, 0, 0};
  int rc = t->rank == 0 ? evaluate_on_rank0(t, sums, err) : ST_OK;
  char what[64];
  snprintf(what, sizeof what, "evaluation after step %llu", (unsigned long long)t->step);
  if ((rc = agree_with_rank0(t, rc, what, err)) || (rc = comm_broadcast(sums, sizeof sums, 0, err))) return rc;
  m->has_eval = sums[1] > 0;
  m->eval_loss = sums[1] > 0 ? sums[0] / sums[1] : NAN;
  m->eval_accuracy = sums[1] > 0 ? sums[2] / sums[1] : NAN;
  m->eval_perplexity = exp(m->eval_loss);
  m->eval_majority_accuracy = sums[1] > 0 ? sums[5] / sums[1] : NAN;
  m->has_eval_nsp = sums[4] > 0;
  m->eval_nsp_accuracy = sums[4] > 0 ? sums[3] / sums[4] : NAN;
  return ST_OK;
}

static int check_parameter_hashes(trainer *t, char **err) {
  uint8_t d[32];
  sha256(t->p->data, params_bytes(t->p), d);
  char what[96];
  snprintf(what, sizeof what, "the parameters after step %llu", (unsigned long long)t->step);
  int rc = check_same_digest(t, d, what, err);
  if (rc == ST_MISMATCH) status_wrap(err, rc, "ranks diverged");
  return rc;
}

/* Between steps: whether some rank was asked to stop, and whether rank
 * 0's background checkpoint write has failed. A failed write is reported
 * at the first step after it ends, never a checkpoint interval later, and
 * every rank stops with it together. One reduction for both. Collective. */
static int stop_requested_anywhere(trainer *t, int *stop, char **err) {
  int wrc = ST_OK;
  if (t->rank == 0 && t->writer && ckpt_writer_done(t->writer)) {
    char *written = NULL;
    wrc = wait_for_writer(t, &written, err);
    free(written);
  }
  double flags[2] = {t->req->stop_requested && *t->req->stop_requested, wrc != ST_OK};
  int rc = comm_allreduce_max_f64(flags, 2, wrc ? NULL : err);
  *stop = flags[0] > 0;
  if (rc && !wrc) return rc;
  t->failed_together = rc == ST_OK && flags[1] > 0;
  if (wrc) return wrc;
  if (flags[1] > 0) return status_set(err, ST_IO, "writing a checkpoint failed on rank 0 (rank 0 says why)");
  return ST_OK;
}

/* ------------------------------------------------------------- the run */

/* The checkpoint a resumed run starts from. */
typedef struct resume_point {
  char *path; /* NULL: a fresh run */
  ckpt_file *file;
  ckpt_header header;
} resume_point;

static void resume_point_clear(resume_point *rp) {
  ckpt_header_clear(&rp->header);
  ckpt_file_close(rp->file);
  free(rp->path);
}

/* --resume: RUN_DIR's newest valid checkpoint, opened, its header read. */
static int open_resume_point(trainer *t, resume_point *rp, char **err) {
  const char *dir = t->req->run_dir;
  char *note = NULL;
  int rc = ckpt_dir_find_latest_valid(dir, &rp->path, &note, err);
  if (rc) return rc;
  if (!rp->path)
    return status_set(err, ST_INVALID, "nothing to resume in %s: no checkpoint there; start without --resume", dir);
  if (note && t->rank == 0) log_warn("%s", note);
  free(note);
  if ((rc = ckpt_file_open(rp->path, &rp->file, err))) return rc;
  return ckpt_file_read_header(rp->file, &rp->header, err);
}

/* A fresh run never overwrites another run's checkpoints. */
static int refuse_used_run_dir(const train_request *req, char **err) {
  if (!req->config_path) return status_set(err, ST_INVALID, "no config: give CONFIG (see configs/) or --resume RUN_DIR");
  struct stat st;
  if (stat(req->run_dir, &st) != 0) return ST_OK;
  char *path = NULL, *note = NULL;
  int rc = ckpt_dir_find_latest_valid(req->run_dir, &path, &note, err);
  if (rc == ST_OK && path)
    rc = status_set(err, ST_INVALID, "%s already holds checkpoints (%s): continue it with --resume %s, or "
                    "choose another --run-dir", req->run_dir, path, req->run_dir);
  else if (rc == ST_CORRUPT)
    rc = status_set(err, ST_INVALID, "%s holds damaged checkpoints only: choose another --run-dir", req->run_dir);
  free(note);
  free(path);
  return rc;
}

/* The run's length, and the schedule and guard that depend on it. */
static int plan_steps(trainer *t, char **err) {
  /* From the config: t->B and t->A are set only with the model. */
  uint64_t seqs_per_step = (uint64_t)t->cfg.batch_size * t->cfg.accumulation * (uint64_t)t->world;
  t->total_steps = t->cfg.steps ? t->cfg.steps
                                : (t->cfg.tokens + seqs_per_step * t->L - 1) / (seqs_per_step * t->L);
  if (t->total_steps == 0) return status_set(err, ST_INVALID, "nothing to train: set [train] steps or tokens");
  t->cfg.sched.total = t->total_steps;
  if (t->cfg.sched.warmup == 0) t->cfg.sched.warmup = (uint64_t)llround(t->cfg.warmup_ratio * (double)t->total_steps);
  t->guard.max_consecutive = t->cfg.max_nonfinite;
  return ST_OK;
}

/* Resuming a fine-tuning run: the corpus must have the labels its
 * checkpoint was trained on (attribute "labels"), names and order. */
static int check_resume_labels(trainer *t, const resume_point *rp, char **err) {
  char *recorded = NULL;
  int rc = ckpt_file_read_attr(rp->file, "labels", &recorded, err);
  if (rc) return rc;
  if (!t->labels_json && !recorded) rc = ST_OK;
  else if (!recorded || !t->labels_json)
    rc = status_set(err, ST_MISMATCH, "%s was trained on %s but corpus %s is %s: resume with the corpus it was "
                    "trained on", rp->path, recorded ? "a labelled corpus" : "a pretraining corpus",
                    t->cfg.corpus, t->labels_json ? "labelled" : "a pretraining one");
  else if (strcmp(recorded, t->labels_json) != 0)
    rc = status_set(err, ST_MISMATCH, "%s was fine-tuned on labels %s but corpus %s has %zu labels %s: resume with "
                    "the corpus it was trained on, or start a new run from it with --init",
                    rp->path, recorded, t->cfg.corpus, t->man->num_labels, t->labels_json);
  free(recorded);
  return rc;
}

/* Resuming: the best evaluation so far, from the checkpoint's attribute
 * "best" (unless best_metric has changed since), and RUN_DIR/BEST set to
 * its checkpoint again, should the stopped run have died before writing
 * it. */
static int restore_best(trainer *t, const resume_point *rp, char **err) {
  char *text = NULL;
  int rc = ckpt_file_read_attr(rp->file, "best", &text, err);
  if (rc || !text) return rc;
  cJSON *o = cJSON_Parse(text);
  free(text);
  const cJSON *metric = cJSON_GetObjectItemCaseSensitive(o, "metric");
  const cJSON *step = cJSON_GetObjectItemCaseSensitive(o, "step");
  const cJSON *value = cJSON_GetObjectItemCaseSensitive(o, "value");
  const cJSON *eval = cJSON_GetObjectItemCaseSensitive(o, "evaluation");
  const char *now = run_config_best_metric_name(t->cfg.finetune.best_metric);
  if (!cJSON_IsString(metric) || !cJSON_IsNumber(step) || !cJSON_IsNumber(value) || !cJSON_IsObject(eval)) {
    rc = status_set(err, ST_CORRUPT, "%s: attribute \"best\" is not {metric, step, value, evaluation}", rp->path);
  } else if (strcmp(metric->valuestring, now) != 0) {
    if (t->rank == 0)
      log_info("resume: best_metric is now %s (was %s): the best checkpoint is chosen anew", now,
               metric->valuestring);
  } else {
    t->has_best = 1;
    t->best_step = (uint64_t)step->valuedouble;
    t->best_value = value->valuedouble;
    if (t->rank == 0 && !(t->best_eval = cJSON_PrintUnformatted(eval)))
      rc = status_set(err, ST_NOMEM, "out of memory");
  }
  cJSON_Delete(o);
  if (rc || !t->has_best || t->rank != 0) return rc;
  char name[64], *note = NULL;
  snprintf(name, sizeof name, "ckpt-%08llu.h5", (unsigned long long)t->best_step);
  if (ckpt_dir_set_best(t->req->run_dir, name, &note) != ST_OK) log_warn("resume: %s", note);
  free(note);
  return ST_OK;
}

/* Config, corpus, length, model and, on resume, the state to continue
 * from: everything before the run directory is touched. */
static int set_up(trainer *t, const resume_point *rp, char **err) {
  int rc = load_config(t, rp->path ? rp->header.config : NULL, err);
  if (rc) return rc;
  if (rp->path) t->ckpt_world = (size_t)rp->header.world_size;
  if (!getenv("DDPT_LOG")) log_set_level((log_level)t->cfg.log_level);
  blas_set_threads(choose_threads(t));
  /* The corpus first: the wrong kind for the command is the cheapest
   * mistake to report, before a large --init is read. */
  if ((rc = open_corpus(t, err))) return rc;
  if (t->req->init && (rc = read_init(t, err))) return rc;
  if ((rc = read_corpus_vocab(t, err)) || (rc = fit_model_to_corpus(t, err)) || (rc = read_labels(t, err)) ||
      (rc = plan_steps(t, err)))
    return rc;
  if (rp->path && (rc = check_resume_labels(t, rp, err))) return rc;
  if (!(t->cfg_text = run_config_format(&t->cfg))) return status_set(err, ST_NOMEM, "out of memory");
  if ((rc = check_ranks_agree(t, err)) || (rc = create_model(t, err))) return rc;
  if (!rp->path) return ST_OK;
  if (t->rank == 0) log_config_changes(rp->header.config, t->cfg_text);
  if ((rc = restore(t, rp->file, &rp->header, err)) || (rc = restore_best(t, rp, err))) return rc;
  if (t->rank == 0) log_info("resumed from %s at step %llu", rp->path, (unsigned long long)t->step);
  return ST_OK;
}

/* Rank 0's part of prepare_run_dir. */
static int write_run_dir(trainer *t, char **err) {
  const char *dir = t->req->run_dir;
  if (file_mkdirs(dir) != 0)
    return status_set(err, ST_IO, "cannot create run directory %s: %s", dir, strerror(errno));
  char *path = file_path_join(dir, "config.ini");
  if (!path) return status_set(err, ST_NOMEM, "out of memory");
  int rc = file_write_atomic(path, t->cfg_text, strlen(t->cfg_text), err);
  free(path);
  if (rc) return rc;
  return metrics_log_open(dir, 1, t->step, &t->metrics, err);
}

/* Rank 0 creates RUN_DIR, writes config.ini and opens metrics.jsonl there;
 * every rank learns whether it could. Collective. */
static int prepare_run_dir(trainer *t, char **err) {
  int rc = t->rank == 0 ? write_run_dir(t, err) : ST_OK;
  return agree_with_rank0(t, rc, "preparing the run directory", err);
}

/* Rank 0 tells the observer what the run is about to do. */
static void announce_plan(const trainer *t) {
  const train_observer *o = &t->req->observer;
  if (t->rank != 0 || !o->planned) return;
  train_plan plan = {.run_dir = t->req->run_dir, .config_text = t->cfg_text, .param_count = t->p->total,
                     .world = t->world, .threads = choose_threads(t), .accumulation = t->A,
                     .batch_size = t->B, .seq_len = t->L};
  bert_config_describe(&t->cfg.model, plan.model, sizeof plan.model);
  o->planned(o->ctx, &plan);
}

/* Timing, metrics.jsonl and the observer for the step just taken (rank 0
 * writes and shows; every rank keeps the logging interval). final: no step
 * follows. */
static int report_step(trainer *t, metrics_step *m, uint64_t first_step, int final, char **err) {
  double now = timer_now();
  m->elapsed_s = now - t->started;
  m->eta_s = m->elapsed_s / (double)(t->step - first_step) * (double)(t->total_steps - t->step);
  /* The first step is always logged: its loss (about ln V for a new model)
   * is where the curve starts. */
  int logged = t->step % t->cfg.log_every == 0 || t->step == first_step + 1 || final || m->has_eval;
  if (t->rank == 0) {
    const step_comm *c = &t->comm;
    m->comm_wait_s = c->wait_s;
    m->comm_s = c->last_done - c->first_start;
    m->post_backward_wait_s = c->grads_final - c->backward_end;
    m->comm_hidden_frac = metrics_hidden_fraction(m->comm_s, m->post_backward_wait_s);
    m->tokens_per_s = (double)t->interval_tokens / (now - t->interval_start);
    int rc = logged ? metrics_log_write(t->metrics, m, err) : ST_OK;
    if (rc) return rc;
    const train_observer *o = &t->req->observer;
    if (o->stepped) o->stepped(o->ctx, m, logged, final);
  }
  if (logged) {
    t->interval_start = now;
    t->interval_tokens = 0;
  }
  return ST_OK;
}

/* One step and what follows it: parameter-hash check, evaluation, report,
 * checkpoint. *stop: some rank was asked to stop (this step is then
 * checkpointed and is the last). */
static int step_once(trainer *t, uint64_t first_step, int *stop, char **err) {
  step_result r;
  int rc = train_step(t, &r, err);
  if (rc) return rc;
  t->step++;
  t->tokens_seen += r.tokens;
  t->interval_tokens += r.tokens;
  int last = t->step == t->total_steps;
  comm_watchdog_phase(t->step, "parameter-hash check", 1);
  if (t->cfg.hash_every && t->step % t->cfg.hash_every == 0 && (rc = check_parameter_hashes(t, err))) return rc;
  comm_watchdog_phase(t->step, "stop and checkpoint-write check", 1);
  if ((rc = stop_requested_anywhere(t, stop, err))) return rc;
  metrics_step m = {.step = t->step, .total_steps = t->total_steps, .tokens = t->tokens_seen, .loss = r.loss,
                    .mlm_loss = r.mlm, .nsp_loss = r.nsp, .lr = r.lr, .grad_norm = r.grad_norm,
                    .skipped = t->guard.skipped, .task = t->cfg.model.task};
  int eval_now = (t->cfg.eval_every && (t->step % t->cfg.eval_every == 0 || last)) || (t->eval_final && last);
  /* Unwatched: the other ranks wait for rank 0's evaluation, which may
   * rightly take longer than any step. */
  comm_watchdog_phase(t->step, "evaluation on rank 0", 0);
  if (eval_now && (rc = evaluate(t, &m, err))) return rc;
  comm_watchdog_phase(t->step, "metrics", 1);
  if ((rc = report_step(t, &m, first_step, last || *stop, err))) return rc;
  /* Fine-tuning checkpoints every evaluation: BEST can name any of them. */
  int evaluated = m.has_eval && t->cfg.model.task != BERT_TASK_PRETRAIN;
  if ((t->cfg.ckpt_every && t->step % t->cfg.ckpt_every == 0) || last || *stop || evaluated) {
    comm_watchdog_phase(t->step, "checkpoint", 1);
    if (t->cfg.hash_every && (rc = check_parameter_hashes(t, err))) return rc;
    rc = checkpoint(t, err);
  }
  return rc;
}

/* The steps run under the hang watchdog (comm.h), started and stopped
 * here on every rank together. */
static int run_steps(trainer *t, int *stop, char **err) {
  t->started = t->interval_start = timer_now();
  uint64_t first_step = t->step;
  *stop = 0;
  int rc = comm_watchdog_start(t->cfg.watchdog_s, err);
  while (rc == ST_OK && !*stop && t->step < t->total_steps) rc = step_once(t, first_step, stop, err);
  comm_watchdog_stop();
  return rc;
}

/* RUN_DIR/report.json (rank 0, atomically) at the end of a fine-tuning
 * run: the task and labels, the best step and its evaluation, the final
 * evaluation, steps, tokens and this process's seconds of training. */
static int write_report(trainer *t, char **err) {
  cJSON *o = cJSON_CreateObject();
  int ok = o && cJSON_AddStringToObject(o, "task", bert_task_name(t->cfg.model.task)) &&
           cJSON_AddRawToObject(o, "labels", t->labels_json) &&
           cJSON_AddStringToObject(o, "best_metric", run_config_best_metric_name(t->cfg.finetune.best_metric));
  if (ok && t->has_best && t->best_eval) {
    char name[64];
    snprintf(name, sizeof name, "ckpt-%08llu.h5", (unsigned long long)t->best_step);
    cJSON *b = cJSON_AddObjectToObject(o, "best");
    ok = b && cJSON_AddNumberToObject(b, "step", (double)t->best_step) &&
         cJSON_AddNumberToObject(b, "value", t->best_value) && cJSON_AddStringToObject(b, "checkpoint", name) &&
         cJSON_AddRawToObject(b, "evaluation", t->best_eval);
  } else if (ok) {
    ok = cJSON_AddNullToObject(o, "best") != NULL;
  }
  if (ok) ok = (t->last_eval ? cJSON_AddRawToObject(o, "final", t->last_eval) : cJSON_AddNullToObject(o, "final")) != NULL;
  ok = ok && cJSON_AddNumberToObject(o, "steps", (double)t->step) &&
       cJSON_AddNumberToObject(o, "tokens", (double)t->tokens_seen) &&
       cJSON_AddNumberToObject(o, "seconds", timer_now() - t->started);
  char *text = ok ? cJSON_Print(o) : NULL;
  cJSON_Delete(o);
  if (!text) return status_set(err, ST_NOMEM, "out of memory");
  char *path = file_path_join(t->req->run_dir, "report.json");
  int rc = path ? file_write_atomic(path, text, strlen(text), err) : status_set(err, ST_NOMEM, "out of memory");
  free(path);
  free(text);
  return rc;
}

/* Rank 0 locks RUN_DIR before anything reads or writes there, so that a
 * second run into it fails at once naming the holder; every rank learns
 * whether it could. A resume of a directory that does not exist takes no
 * lock (and creates nothing): it fails next, naming the directory.
 * Collective. */
static int lock_run_dir(trainer *t, char **err) {
  int rc = ST_OK;
  struct stat st;
  if (t->rank == 0 && (!t->req->resume || stat(t->req->run_dir, &st) == 0))
    rc = ckpt_dir_lock_take(t->req->run_dir, &t->lock, err);
  return agree_with_rank0(t, rc, "locking the run directory", err);
}

/* RUN_DIR/STATUS (rank 0, while it holds the lock; atomically): one line
 * saying how far this run is, for whoever cannot see ddpt's exit status
 * (mpirun reports its own: docs/distributed.md). "running pid P" while it
 * trains; at the end "done step=N", "stopped step=N" (a clean stop on a
 * signal, checkpoint written) or "failed step=N: <message>". A run killed
 * outright leaves "running" behind a LOCK that no process holds. Best
 * effort: a full disk must not hide the run's own message. */
static void write_status(const trainer *t, const char *line) {
  if (!t->lock) return;
  char *path = file_path_join(t->req->run_dir, "STATUS"), *err = NULL;
  if (!path || file_write_atomic(path, line, strlen(line), &err) != ST_OK)
    log_warn("%s", err ? err : "out of memory writing STATUS");
  free(err);
  free(path);
}

static void write_final_status(const trainer *t, int rc, const char *msg) {
  const char *state = rc == ST_OK ? "done" : rc == ST_INTERRUPTED ? "stopped" : "failed";
  size_t n = strlen(msg ? msg : "") + 96;
  char *line = malloc(n);
  if (!line) return;
  int at = snprintf(line, n, "%s step=%llu", state, (unsigned long long)t->step);
  snprintf(line + at, n - (size_t)at, "%s%s\n", rc != ST_OK && rc != ST_INTERRUPTED && msg ? ": " : "",
           rc != ST_OK && rc != ST_INTERRUPTED && msg ? msg : "");
  write_status(t, line);
  free(line);
}

/* On failure a checkpoint still being written is left to finish: train_run
 * frees the writer, which waits for it. */
static int run(trainer *t, char **err) {
  const train_request *req = t->req;
  resume_point rp = {0};
  int stop = 0;
  if (req->finetune && !req->resume && !req->init)
    return status_set(err, ST_INVALID, "ddpt finetune starts from a trained model: give --init MODEL (a ddpt "
                      "checkpoint, a HuggingFace directory or a TF checkpoint), or --resume RUN_DIR");
  int rc = lock_run_dir(t, err);
  if (rc == ST_OK) {
    char line[64];
    snprintf(line, sizeof line, "running pid %ld\n", (long)getpid());
    write_status(t, line);
    rc = req->resume ? open_resume_point(t, &rp, err) : refuse_used_run_dir(req, err);
  }
  if (rc == ST_OK) rc = set_up(t, &rp, err);
  if (rc == ST_OK) rc = prepare_run_dir(t, err);
  if (rc == ST_OK) announce_plan(t);
  if (rc == ST_OK && t->cfg.log_samples) rc = open_sample_log(t, err);
  if (rc == ST_OK) rc = run_steps(t, &stop, err);
  if (rc == ST_OK) rc = finish_checkpoints(t, err);
  if (rc == ST_OK && !stop && t->cfg.model.task != BERT_TASK_PRETRAIN)
    rc = agree_with_rank0(t, t->rank == 0 ? write_report(t, err) : ST_OK, "writing report.json", err);
  if (rc == ST_OK && stop)
    rc = status_set(err, ST_INTERRUPTED, "stopped on request after step %llu; checkpoint written; continue with "
                    "--resume %s", (unsigned long long)t->step, req->run_dir);
  resume_point_clear(&rp);
  return rc;
}

int train_run(const train_request *req, train_summary *summary, char **err) {
  trainer t = {.req = req, .rank = comm_rank(), .world = comm_world_size()};
  int rc = run(&t, err);
  /* The writer first: STATUS says done only once the last checkpoint is. */
  ckpt_writer_free(t.writer);
  t.writer = NULL;
  write_final_status(&t, rc, rc ? *err : NULL);
  *summary = (train_summary){.steps = t.step, .tokens = t.tokens_seen, .skipped = t.guard.skipped,
                             .seconds = t.started > 0 ? timer_now() - t.started : 0,
                             .failed_together = rc != ST_OK && t.failed_together, .has_best = t.has_best,
                             .best_step = t.best_step, .best_value = t.best_value,
                             .best_metric = run_config_best_metric_name(t.cfg.finetune.best_metric)};
  if (t.reducer) {
    summary->comm_wait_s = t.comm.wait_s;
    summary->buckets = comm_reducer_get_stats(t.reducer).buckets;
  }
  ckpt_writer_free(t.writer);
  metrics_log_close(t.metrics);
  if (t.samples) fclose(t.samples);
  if (t.micro)
    for (size_t a = 0; a < t.A; a++) corpus_batch_free(t.micro[a]);
  free(t.micro);
  corpus_batch_free(t.eval_batch);
  comm_reducer_free(t.reducer);
  word_grad_free(&t.words);
  free_zero(&t);
  bert_model_free(t.model);
  corpus_valid_close(t.valid);
  for (size_t a = 0; a < t.ndata; a++) corpus_close(t.data[a]);
  free(t.data);
  xchg_model_clear(&t.init);
  task_tagset_free(&t.tagset);
  free(t.labels_json);
  free(t.eval_counts);
  free(t.eval_pred);
  free(t.eval_gold_chain);
  free(t.eval_pred_chain);
  free(t.eval_rows);
  free(t.eval_first);
  free(t.eval_prf);
  free(t.last_eval);
  free(t.best_eval);
  free(t.vocab_text);
  free(t.cfg_text);
  ckpt_dir_lock_release(t.lock);
  return rc;
}
