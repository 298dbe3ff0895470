/* Writes the seeds of tests/fuzz/fuzz_ckpt.c with ckpt_file_write, as ddpt
 * writes checkpoints (README). Not built by CMake; from the repository root,
 * after building build/:
 *   cc -I. -Ibuild/generated tests/fuzz/seeds/ckpt/make_seeds.c build/libddpt.a \
 *      $(pkg-config --libs hdf5) -o /tmp/make_seeds && /tmp/make_seeds tests/fuzz/seeds/ckpt
 * The seeds record the git revision they were written at (ddpt_version). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/ckpt.h"

static int write_seed(const char *dir, const char *name, const ckpt_content *c) {
  char path[4096], *err = NULL;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  unlink(path);
  int rc = ckpt_file_write(path, c, &err);
  if (rc) fprintf(stderr, "make_seeds: %s\n", err);
  free(err);
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make_seeds DIR\n");
    return 2;
  }
  float w[6] = {0.5f, -1.25f, 2.0f, 0.0f, 3.5f, -0.125f}, b[3] = {1.0f, -2.0f, 0.25f};
  float wm[6] = {0.01f, 0.02f, 0.03f, 0.04f, 0.05f, 0.06f}, bm[3] = {0.1f, 0.2f, 0.3f};
  float wv[6] = {1e-4f, 2e-4f, 3e-4f, 4e-4f, 5e-4f, 6e-4f}, bv[3] = {1e-3f, 2e-3f, 3e-3f};
  ckpt_tensor p[2] = {{"bert.pooler.dense.weight", 2, {2, 3}, w}, {"bert.pooler.dense.bias", 1, {3}, b}};
  ckpt_tensor m[2] = {{"bert.pooler.dense.weight", 2, {2, 3}, wm}, {"bert.pooler.dense.bias", 1, {3}, bm}};
  ckpt_tensor v[2] = {{"bert.pooler.dense.weight", 2, {2, 3}, wv}, {"bert.pooler.dense.bias", 1, {3}, bv}};
  int64_t cursor[6] = {0, 1, 17, 1, 0, 4}, seed_step[2] = {42, 12};
  ckpt_array arrays[2] = {{"data/cursor", 2, {2, 3}, cursor}, {"rng/seed_step", 1, {2}, seed_step}};
  ckpt_attr attrs[2] = {{"vocab", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\ncat\n"}, {"vocab_lowercase", "1"}};
  ckpt_content c = {.meta = {.step = 12, .tokens_seen = 3072, .world_size = 2, .seed = 7,
                             .model_type = "bert",
                             .config = "[model]\nhidden_size = 3\nvocab_size = 7\n[train]\nsteps = 20\n",
                             .attrs = attrs, .n_attrs = 2},
                    .params = p, .n_params = 2, .optim_m = m, .n_optim_m = 2, .optim_v = v, .n_optim_v = 2,
                    .arrays = arrays, .n_arrays = 2};
  if (write_seed(argv[1], "full.h5", &c)) return 1;
  c.n_optim_m = c.n_optim_v = c.n_arrays = 0;
  return write_seed(argv[1], "weights.h5", &c) ? 1 : 0;
}
