/* metrics.jsonl lines (cJSON) and the progress line (see metrics.h). */
#include "trainer/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "trainer/bert.h"
#include "util/file.h"
#include "util/status.h"

struct metrics_log {
  FILE *f;
  char *path;
};

/* Keeps the metrics lines whose "step" is <= *(uint64_t *)through: a resumed
 * run continues right after its checkpoint, so later lines (logged after the
 * checkpoint by the run that stopped) would otherwise appear twice. */
static int metrics_line_through(const char *line, void *through) {
  cJSON *o = cJSON_Parse(line);
  const cJSON *step = cJSON_GetObjectItemCaseSensitive(o, "step");
  int keep = cJSON_IsNumber(step) && step->valuedouble <= (double)*(const uint64_t *)through;
  cJSON_Delete(o);
  return keep;
}

int metrics_log_open(const char *run_dir, int truncate, uint64_t keep_through, metrics_log **out, char **err) {
  char *path = file_path_join(run_dir, "metrics.jsonl");
  if (!path) return status_set(err, ST_NOMEM, "out of memory");
  int rc;
  if (truncate && keep_through > 0 && (rc = file_filter_lines(path, metrics_line_through, &keep_through, err))) {
    free(path);
    return rc;
  }
  FILE *f = fopen(path, truncate && keep_through == 0 ? "w" : "a");
  if (!f) {
    rc = status_set(err, ST_IO, "cannot write %s: %s", path, strerror(errno));
    free(path);
    return rc;
  }
  metrics_log *m = malloc(sizeof *m);
  if (!m) {
    fclose(f);
    free(path);
    return status_set(err, ST_NOMEM, "out of memory");
  }
  m->f = f;
  m->path = path;
  *out = m;
  return ST_OK;
}

void metrics_log_close(metrics_log *m) {
  if (!m) return;
  fclose(m->f);
  free(m->path);
  free(m);
}

/* JSON has no NaN or Infinity: a non-finite figure is written as null. */
static void add_number(cJSON *o, const char *key, double v) {
  if (isfinite(v)) cJSON_AddNumberToObject(o, key, v);
  else cJSON_AddNullToObject(o, key);
}

/* A fine-tuning evaluation's fields. */
static void add_eval_task(cJSON *o, const metrics_step *s) {
  add_number(o, "eval_loss", s->eval_loss);
  if (s->task == BERT_TASK_CLASSIFY) {
    add_number(o, "eval_accuracy", s->eval_accuracy);
    add_number(o, "eval_macro_f1", s->eval_macro_f1);
  } else {
    add_number(o, "eval_token_accuracy", s->eval_accuracy);
    add_number(o, "eval_entity_precision", s->eval_precision);
    add_number(o, "eval_entity_recall", s->eval_recall);
    add_number(o, "eval_entity_f1", s->eval_f1);
  }
  cJSON_AddBoolToObject(o, "eval_best", s->eval_best);
}

int metrics_log_write(metrics_log *m, const metrics_step *s, char **err) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return status_set(err, ST_NOMEM, "out of memory");
  add_number(o, "step", (double)s->step);
  add_number(o, "tokens", (double)s->tokens);
  add_number(o, "loss", s->loss);
  if (s->task == BERT_TASK_PRETRAIN) {
    add_number(o, "mlm_loss", s->mlm_loss);
    add_number(o, "nsp_loss", s->nsp_loss);
  }
  add_number(o, "lr", s->lr);
  add_number(o, "grad_norm", s->grad_norm);
  add_number(o, "skipped", (double)s->skipped);
  if (s->has_eval && s->task != BERT_TASK_PRETRAIN) {
    add_eval_task(o, s);
  } else if (s->has_eval) {
    add_number(o, "eval_loss", s->eval_loss);
    add_number(o, "eval_accuracy", s->eval_accuracy);
    add_number(o, "eval_perplexity", s->eval_perplexity);
    add_number(o, "eval_majority_accuracy", s->eval_majority_accuracy);
    if (s->has_eval_nsp) add_number(o, "eval_nsp_accuracy", s->eval_nsp_accuracy);
  }
  add_number(o, "tokens_per_s", s->tokens_per_s);
  add_number(o, "elapsed_s", s->elapsed_s);
  add_number(o, "comm_wait_s", s->comm_wait_s);
  add_number(o, "comm_s", s->comm_s);
  add_number(o, "post_backward_wait_s", s->post_backward_wait_s);
  add_number(o, "comm_hidden_frac", s->comm_hidden_frac);
  char *text = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!text) return status_set(err, ST_NOMEM, "out of memory");
  int bad = fprintf(m->f, "%s\n", text) < 0 || fflush(m->f) != 0;
  free(text);
  if (bad) return status_set(err, ST_IO, "cannot write %s: %s", m->path, strerror(errno));
  return ST_OK;
}

double metrics_hidden_fraction(double comm_s, double exposed_s) {
  if (!(comm_s > 0)) return NAN;
  double f = 1.0 - exposed_s / comm_s;
  return f < 0 ? 0 : f > 1 ? 1 : f;
}

static void format_duration(char *buf, size_t size, double s) {
  if (!isfinite(s) || s < 0) {
    snprintf(buf, size, "--:--:--");
    return;
  }
  unsigned long t = (unsigned long)(s + 0.5);
  snprintf(buf, size, "%02lu:%02lu:%02lu", t / 3600, (t / 60) % 60, t % 60);
}

void metrics_progress(FILE *out, int live, const metrics_step *s) {
  char elapsed[32], eta[32];
  format_duration(elapsed, sizeof elapsed, s->elapsed_s);
  format_duration(eta, sizeof eta, s->eta_s);
  fprintf(out, "%sstep %llu/%llu  loss %.4f  lr %.3g  %.0f tok/s  elapsed %s  ETA %s",
          live ? "\r\033[K" : "", (unsigned long long)s->step, (unsigned long long)s->total_steps, s->loss,
          s->lr, s->tokens_per_s, elapsed, eta);
  if (s->skipped) fprintf(out, "  skipped %llu", (unsigned long long)s->skipped);
  if (s->has_eval && !live && s->task != BERT_TASK_PRETRAIN)
    fprintf(out, "  eval loss %.4f acc %.3f f1 %.3f%s", s->eval_loss, s->eval_accuracy,
            s->task == BERT_TASK_CLASSIFY ? s->eval_macro_f1 : s->eval_f1, s->eval_best ? " (best)" : "");
  else if (s->has_eval && !live)
    fprintf(out, "  eval loss %.4f acc %.4f (most frequent token %.4f) ppl %.2f", s->eval_loss, s->eval_accuracy,
            s->eval_majority_accuracy, s->eval_perplexity);
  if (!live) fputc('\n', out);
  fflush(out);
}

void metrics_progress_end(FILE *out, int live) {
  if (live) {
    fputc('\n', out);
    fflush(out);
  }
}
