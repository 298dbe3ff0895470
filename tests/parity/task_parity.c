/* Test-only program for the fine-tuning parity test (task_parity.py):
 * exchanges weights, a labelled batch, logits, decoded tags and gradients
 * with the reference as raw float32/int32 files plus a text index of names
 * and shapes.
 *
 *   task_parity index DIR TASK K  writes DIR/index.txt for DIR/config.json
 *   task_parity run DIR TASK K    reads DIR/params.f32 and DIR/batch.i32,
 *                                 runs forward and backward without dropout,
 *                                 writes DIR/loss.txt, DIR/logits.f32,
 *                                 DIR/grads.f32 and (tag) DIR/decode.i32
 *
 * TASK is classify, tag or crf (tag with the CRF head); K the labels.
 * batch.i32: B, L, then input ids, segment ids, attention mask (B * L
 * each), then the labels: B (classify) or B * L (tag, crf). The tags are
 * decoded over the labelled positions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/bert.h"
#include "util/status.h"

static int fail(char *err) {
  fprintf(stderr, "task_parity: %s\n", err ? err : "failed");
  free(err);
  return 1;
}

static int read_exact(const char *path, void *buf, size_t bytes) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  size_t got = fread(buf, 1, bytes, f);
  int extra = fgetc(f) != EOF;
  fclose(f);
  return got == bytes && !extra ? 0 : -1;
}

static int write_all(const char *dir, const char *name, const void *buf, size_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int ok = fwrite(buf, 1, bytes, f) == bytes;
  return fclose(f) == 0 && ok ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc != 5 || (strcmp(argv[1], "index") && strcmp(argv[1], "run"))) {
    fprintf(stderr, "usage: task_parity index|run DIR classify|tag|crf K\n");
    return 2;
  }
  const char *dir = argv[2];
  char path[4096], *err = NULL;
  bert_config cfg;
  bert_config_preset(&cfg, "bert-tiny", NULL);
  snprintf(path, sizeof path, "%s/config.json", dir);
  int crf = strcmp(argv[3], "crf") == 0;
  if (bert_config_read_json(&cfg, path, &err) != ST_OK ||
      bert_config_set(&cfg, "task", crf ? "tag" : argv[3], &err) != ST_OK ||
      bert_config_set(&cfg, "num_labels", argv[4], &err) != ST_OK ||
      bert_config_set(&cfg, "crf", crf ? "true" : "false", &err) != ST_OK ||
      bert_config_validate(&cfg, &err) != ST_OK)
    return fail(err);

  if (strcmp(argv[1], "index") == 0) {
    params *p = params_create();
    if (bert_params_add(p, &cfg, &err) != ST_OK) return fail(err);
    snprintf(path, sizeof path, "%s/index.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f) return fail(strdup("cannot write index.txt"));
    for (size_t i = 0; i < p->count; i++) {
      const params_entry *e = &p->entries[i];
      fprintf(f, "%s %zu %d", e->name, e->offset, e->ndim);
      for (int d = 0; d < e->ndim; d++) fprintf(f, " %zu", e->shape[d]);
      fputc('\n', f);
    }
    fclose(f);
    params_free(p);
    return 0;
  }

  int classify = cfg.task == BERT_TASK_CLASSIFY;
  int32_t dims[2];
  snprintf(path, sizeof path, "%s/batch.i32", dir);
  FILE *f = fopen(path, "rb");
  if (!f || fread(dims, sizeof(int32_t), 2, f) != 2) return fail(strdup("cannot read batch.i32"));
  size_t B = (size_t)dims[0], L = (size_t)dims[1], N = B * L, nlab = classify ? B : N;
  int32_t *arr = malloc((3 * N + nlab) * sizeof(int32_t));
  int32_t *decoded = malloc(N * sizeof(int32_t));
  if (!arr || !decoded) return fail(strdup("out of memory"));
  if (fread(arr, sizeof(int32_t), 3 * N + nlab, f) != 3 * N + nlab)
    return fail(strdup("short batch.i32"));
  fclose(f);
  bert_batch batch = {.B = B, .L = L, .input_ids = arr, .segment_ids = arr + N,
                      .attention_mask = arr + 2 * N};
  if (classify)
    batch.class_labels = arr + 3 * N;
  else
    batch.tag_labels = arr + 3 * N;

  bert_model *m;
  if (bert_model_create(&m, &cfg, B, L, 0, &err) != ST_OK) return fail(err);
  params *p = bert_model_params(m);
  snprintf(path, sizeof path, "%s/params.f32", dir);
  if (read_exact(path, p->data, p->total * sizeof(float)) != 0)
    return fail(strdup("params.f32 does not hold exactly the model's parameters"));
  params_zero_grad(p);
  bert_loss loss;
  if (bert_forward(m, &batch, NULL, &loss, &err) != ST_OK) return fail(err);
  size_t rows, K;
  const float *logits = bert_task_logits(m, &rows, &K);
  if (write_all(dir, "logits.f32", logits, rows * K * sizeof(float)) != 0)
    return fail(strdup("cannot write logits.f32"));
  if (!classify) {
    if (bert_tag_decode(m, batch.tag_labels, decoded, &err) != ST_OK) return fail(err);
    if (write_all(dir, "decode.i32", decoded, N * sizeof(int32_t)) != 0)
      return fail(strdup("cannot write decode.i32"));
  }
  bert_backward(m, &batch, NULL);

  snprintf(path, sizeof path, "%s/loss.txt", dir);
  f = fopen(path, "w");
  if (!f) return fail(strdup("cannot write loss.txt"));
  fprintf(f, "%.17g %.17g %zu\n", loss.total, loss.task, loss.task_count);
  fclose(f);
  if (write_all(dir, "grads.f32", p->grad, p->total * sizeof(float)) != 0)
    return fail(strdup("cannot write grads.f32"));
  bert_model_free(m);
  free(arr);
  free(decoded);
  return 0;
}
