/* Fixtures for the storage tests (see fixtures.h). */
#include "fixtures.h"

#include <dirent.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/file.h"

float fixture_value(unsigned k, size_t i) {
  uint32_t h = (uint32_t)i * 2654435761u + k * 97u;
  return (float)((int32_t)(h % 20011u) - 10005) / 1024.0f;
}

static const char *const names[FIXTURE_NT] = {
    "bert.embeddings.word_embeddings.weight",
    "bert.embeddings.LayerNorm.weight",
    FIXTURE_QUERY,
    "bert.encoder.layer.0.attention.self.query.bias",
    "bert.encoder.layer.0.intermediate.dense.weight",
    "cls.predictions.bias",
};
static const int ndims[FIXTURE_NT] = {2, 1, 2, 1, 3, 1};
static const size_t shapes[FIXTURE_NT][3] = {{50, 16}, {16}, {16, 16}, {16}, {2, 3, 4}, {50}};

size_t fixture_count(const ckpt_tensor *t) {
  size_t n = 1;
  for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
  return n;
}

void fixture_init(fixture *fx, int64_t step) {
  memset(fx, 0, sizeof *fx);
  size_t total = 0;
  for (int k = 0; k < FIXTURE_NT; k++) {
    ckpt_tensor t = {names[k], ndims[k], {0}, NULL};
    for (int d = 0; d < ndims[k]; d++) t.shape[d] = shapes[k][d];
    fx->params[k] = fx->m[k] = fx->v[k] = t;
    total += fixture_count(&t);
  }
  fx->buf = malloc(3 * total * sizeof(float));
  float *p = fx->buf;
  ckpt_tensor *groups[3] = {fx->params, fx->m, fx->v};
  for (unsigned g = 0; g < 3; g++)
    for (unsigned k = 0; k < FIXTURE_NT; k++) {
      ckpt_tensor *t = &groups[g][k];
      t->data = p;
      for (size_t i = 0; i < fixture_count(t); i++) *p++ = fixture_value(k + 10 * g, i);
    }
  for (int s = 0; s < 4; s++) {
    fx->cursor[3 * s] = s;
    fx->cursor[3 * s + 1] = step / 7;
    fx->cursor[3 * s + 2] = step * 1000 + s;
  }
  fx->cursor[2] = INT64_MAX;
  fx->cursor[5] = INT64_MIN;
  fx->cursor[8] = ((int64_t)1 << 53) + 1;
  fx->dropout[0] = step;
  fx->dropout[1] = -3;
  fx->arrays[0] = (ckpt_array){"data/cursor", 2, {4, 3}, fx->cursor};
  fx->arrays[1] = (ckpt_array){"rng/dropout", 1, {2}, fx->dropout};
  fx->content = (ckpt_content){
      .meta = {.step = step, .tokens_seen = step * 4096, .world_size = 2, .seed = 0xFEEDFACECAFEBEEFull,
               .model_type = "bert", .config = "[model]\nhidden = 16\n# 中文 ok\n"},
      .params = fx->params, .n_params = FIXTURE_NT,
      .optim_m = fx->m, .n_optim_m = FIXTURE_NT,
      .optim_v = fx->v, .n_optim_v = FIXTURE_NT,
      .arrays = fx->arrays, .n_arrays = 2,
  };
}

void fixture_free(fixture *fx) {
  free(fx->buf);
  fx->buf = NULL;
}

static int read_all(const char *path, unsigned char **data, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  *data = malloc((size_t)n + 1);
  *size = fread(*data, 1, (size_t)n, f);
  fclose(f);
  return *size == (size_t)n ? 0 : -1;
}

int fixture_flip_bit_in_query(const char *path) {
  float pattern[4];
  for (int i = 0; i < 4; i++) pattern[i] = fixture_value(2, (size_t)i);
  unsigned char *d = NULL;
  size_t n = 0;
  if (read_all(path, &d, &n) != 0) {
    free(d);
    return -1;
  }
  long at = -1;
  for (size_t i = 0; i + sizeof pattern <= n; i++)
    if (memcmp(d + i, pattern, sizeof pattern) == 0) {
      at = (long)i;
      break;
    }
  free(d);
  if (at < 0) return -1;
  FILE *f = fopen(path, "r+b");
  if (!f) return -1;
  fseek(f, at + 5, SEEK_SET);
  int c = fgetc(f);
  fseek(f, at + 5, SEEK_SET);
  fputc(c ^ 0x10, f);
  return fclose(f) == 0 ? 0 : -1;
}

int fixture_truncate_half(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  return truncate(path, st.st_size / 2);
}

int fixture_contains(const char *haystack, const char *needle) {
  return haystack && strstr(haystack, needle) != NULL;
}

int fixture_write_text(const char *dir, const char *name, const char *text) {
  char *path = file_path_join(dir, name);
  FILE *f = path ? fopen(path, "w") : NULL;
  free(path);
  if (!f) return -1;
  fputs(text, f);
  return fclose(f) == 0 ? 0 : -1;
}

int fixture_exists(const char *dir, const char *name) {
  char *path = file_path_join(dir, name);
  int found = path && access(path, F_OK) == 0;
  free(path);
  return found;
}

int fixture_count_matching(const char *dir, const char *glob) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)))
    if (fnmatch(glob, de->d_name, FNM_PERIOD) == 0) n++;
  closedir(d);
  return n;
}
