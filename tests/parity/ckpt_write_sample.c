/* Writes the checkpoint that tests/parity/ckpt_h5py_check.py reads with
 * h5py: ddpt_ckpt_write_sample RUN_DIR commits step 1500 into RUN_DIR. The
 * values follow a closed formula the Python side computes on its own. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "storage/ckpt.h"

static float value(unsigned k, size_t i) {
  uint32_t h = (uint32_t)i * 2654435761u + k * 97u;
  return (float)((int32_t)(h % 20011u) - 10005) / 1024.0f;
}

enum { NT = 5 };

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: ddpt_ckpt_write_sample RUN_DIR\n");
    return 2;
  }
  static const char *const names[NT] = {
      "bert.embeddings.word_embeddings.weight",
      "bert.encoder.layer.0.attention.self.query.weight",
      "bert.encoder.layer.0.attention.self.query.bias",
      "cls.predictions.transform.LayerNorm.weight",
      "bert.encoder.layer.0.intermediate.dense.weight",
  };
  static const int ndims[NT] = {2, 2, 1, 1, 2};
  static const size_t shapes[NT][2] = {{1000, 64}, {64, 64}, {64}, {64}, {4096, 256}};
  ckpt_tensor t[3][NT];
  for (unsigned g = 0; g < 3; g++)
    for (unsigned k = 0; k < NT; k++) {
      size_t n = 1;
      t[g][k] = (ckpt_tensor){names[k], ndims[k], {0}, NULL};
      for (int d = 0; d < ndims[k]; d++) n *= t[g][k].shape[d] = shapes[k][d];
      t[g][k].data = malloc(n * sizeof(float));
      for (size_t i = 0; i < n; i++) t[g][k].data[i] = value(k + 10 * g, i);
    }
  int64_t cursor[4 * 3], dropout[2] = {42, 7};
  for (int s = 0; s < 4; s++) {
    cursor[3 * s] = s;
    cursor[3 * s + 1] = 3;
    cursor[3 * s + 2] = 100 + s;
  }
  ckpt_array arrays[2] = {{"data/cursor", 2, {4, 3}, cursor}, {"rng/dropout", 1, {2}, dropout}};
  ckpt_content c = {.meta = {.step = 1500, .tokens_seen = 123456, .world_size = 2, .seed = 2024,
                             .model_type = "bert", .config = "[model]\nhidden = 64\n"},
                    .params = t[0], .n_params = NT, .optim_m = t[1], .n_optim_m = NT,
                    .optim_v = t[2], .n_optim_v = NT, .arrays = arrays, .n_arrays = 2};
  char *err = NULL;
  int rc = ckpt_dir_commit(argv[1], &c, 0, NULL, &err);
  if (rc) fprintf(stderr, "ddpt_ckpt_write_sample: %s\n", err);
  free(err);
  for (unsigned g = 0; g < 3; g++)
    for (unsigned k = 0; k < NT; k++) free(t[g][k].data);
  return rc ? 1 : 0;
}
