/* libFuzzer target for storage/safetensors: the input is a whole file.
 * safet_header_parse gets its header bytes; safet_model_open gets the file
 * itself, and every float tensor is read. Checks that a refusal is one line
 * naming the file, and that what is accepted tiles the data region exactly
 * with sizes that match the shapes (recomputed here, not trusted). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/safetensors.h"
#include "util/status.h"

static char fuzz_path[64];

static void check_refusal(int rc, char *err, const char *what) {
  if (rc == ST_OK) return;
  if (!err || strchr(err, '\n') || !strstr(err, what)) abort();
  free(err);
}

/* What safet_header_parse promised: sorted by begin, back to back from 0 to
 * data_size, each end - begin = prod(shape) * dtype size. */
static void check_infos(const safet_info *t, size_t n, uint64_t data_size) {
  uint64_t pos = 0;
  for (size_t i = 0; i < n; i++) {
    if (t[i].begin != pos || t[i].end < t[i].begin || t[i].ndim < 0 || t[i].ndim > CKPT_NDIM_MAX) abort();
    size_t count = 1;
    for (int d = 0; d < t[i].ndim; d++) count *= t[i].shape[d];
    if (count != t[i].count || (uint64_t)count * safet_dtype_size(t[i].dtype) != t[i].end - t[i].begin) abort();
    if (safet_dtype_parse(safet_dtype_name(t[i].dtype)) != (int)t[i].dtype) abort();
    pos = t[i].end;
  }
  if (pos != data_size) abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  if (!fuzz_path[0]) snprintf(fuzz_path, sizeof fuzz_path, "/tmp/ddpt-fuzz-safet-%ld.safetensors", (long)getpid());
  if (size >= 8) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | data[i];
    if (n <= size - 8) {
      safet_info *t = NULL;
      size_t nt = 0;
      char *err = NULL;
      uint64_t data_size = size - 8 - n;
      int rc = safet_header_parse((const char *)data + 8, n, data_size, "fuzz", &t, &nt, &err);
      if (rc == ST_OK) check_infos(t, nt, data_size);
      check_refusal(rc, err, "fuzz");
      safet_infos_free(t, nt);
    }
  }
  FILE *f = fopen(fuzz_path, "wb");
  if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();
  safet_model *m = NULL;
  char *err = NULL;
  int rc = safet_model_open(fuzz_path, &m, &err);
  check_refusal(rc, err, fuzz_path);
  for (size_t i = 0; rc == ST_OK && i < safet_model_count(m); i++) {
    const safet_info *t = safet_model_info(m, i);
    if (safet_model_find(m, t->name) != (long)i) abort();
    /* count <= the input's size for every dtype, so this stays small. */
    float *x = malloc((t->count ? t->count : 1) * sizeof *x);
    if (!x) abort();
    err = NULL;
    int r = safet_model_read_f32(m, i, x, &err);
    int is_float = t->dtype == SAFET_F32 || t->dtype == SAFET_F16 || t->dtype == SAFET_BF16;
    if ((r == ST_OK) != is_float) abort();
    check_refusal(r, err, fuzz_path);
    free(x);
  }
  safet_model_close(m);
  unlink(fuzz_path);
  return 0;
}
