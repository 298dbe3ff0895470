/* Test-only program for the PyTorch parity test (model_parity.py): exchanges
 * weights, a batch and gradients with the reference as raw float32/int32
 * files plus a text index of names and shapes.
 *
 *   model_parity index DIR nsp|mlm  writes DIR/index.txt for DIR/config.json
 *   model_parity run DIR nsp|mlm    reads DIR/params.f32 and DIR/batch.i32,
 *                                   runs forward and backward without dropout,
 *                                   writes DIR/loss.txt and DIR/grads.f32
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/bert.h"
#include "util/status.h"

static int fail(char *err) {
  fprintf(stderr, "model_parity: %s\n", err ? err : "failed");
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

int main(int argc, char **argv) {
  if (argc != 4 || (strcmp(argv[1], "index") && strcmp(argv[1], "run"))) {
    fprintf(stderr, "usage: model_parity index|run DIR nsp|mlm\n");
    return 2;
  }
  const char *dir = argv[2];
  char path[4096], *err = NULL;
  bert_config cfg;
  bert_config_preset(&cfg, "bert-tiny", NULL);
  snprintf(path, sizeof path, "%s/config.json", dir);
  if (bert_config_read_json(&cfg, path, &err) != ST_OK) return fail(err);
  cfg.nsp = strcmp(argv[3], "nsp") == 0;

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

  int32_t dims[2];
  snprintf(path, sizeof path, "%s/batch.i32", dir);
  FILE *f = fopen(path, "rb");
  if (!f || fread(dims, sizeof(int32_t), 2, f) != 2) return fail(strdup("cannot read batch.i32"));
  size_t B = (size_t)dims[0], L = (size_t)dims[1], N = B * L;
  int32_t *arr = malloc((4 * N + B) * sizeof(int32_t));
  if (fread(arr, sizeof(int32_t), 4 * N + B, f) != 4 * N + B) return fail(strdup("short batch.i32"));
  fclose(f);
  bert_batch batch = {.B = B, .L = L, .input_ids = arr, .segment_ids = arr + N,
                      .attention_mask = arr + 2 * N, .mlm_labels = arr + 3 * N,
                      .nsp_labels = cfg.nsp ? arr + 4 * N : NULL};

  bert_model *m;
  if (bert_model_create(&m, &cfg, B, L, L, &err) != ST_OK) return fail(err);
  params *p = bert_model_params(m);
  snprintf(path, sizeof path, "%s/params.f32", dir);
  if (read_exact(path, p->data, p->total * sizeof(float)) != 0)
    return fail(strdup("params.f32 does not hold exactly the model's parameters"));
  params_zero_grad(p);
  bert_loss loss;
  if (bert_forward(m, &batch, NULL, &loss, &err) != ST_OK) return fail(err);
  bert_backward(m, &batch, NULL);

  snprintf(path, sizeof path, "%s/loss.txt", dir);
  f = fopen(path, "w");
  fprintf(f, "%.17g %.17g %.17g %zu\n", loss.total, loss.mlm, loss.nsp, loss.predicted);
  fclose(f);
  snprintf(path, sizeof path, "%s/grads.f32", dir);
  f = fopen(path, "wb");
  if (!f || fwrite(p->grad, sizeof(float), p->total, f) != p->total) return fail(strdup("cannot write grads.f32"));
  fclose(f);
  bert_model_free(m);
  free(arr);
  return 0;
}
