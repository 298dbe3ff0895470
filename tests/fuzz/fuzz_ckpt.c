/* libFuzzer target for storage/ckpt_file.c, the checkpoint reader: the
 * input is a whole HDF5 file (seeds: tests/fuzz/seeds/ckpt/, real ddpt
 * checkpoints of two tiny tensors written by ckpt_file_write, see
 * tests/fuzz/seeds/ckpt/README). It is verified whole (ckpt_file_verify),
 * then opened and read the way resume and fill-mask read: header, optional
 * attributes, the dataset list, every float and int64 dataset, and a
 * by-name load of params/. Checks that every refusal is one line naming the
 * file, that what verify accepts reads back in full, and that every HDF5
 * object the reader opened is closed again, on every path (the leak
 * checker cannot tell: libhdf5's own allocations are suppressed, since it
 * leaks some decoding a damaged object header).
 *
 * Every byte is fuzzed. ddpt's string attributes are fixed-length (in the
 * checksummed object headers), and the reader refuses a variable-length one
 * before reading it (seed old-vlen-weights.h5, a checkpoint of the old
 * format): libhdf5 1.10's H5HG_read trusts the unchecksummed global heap
 * that holds those, and a damaged one made it copy wild lengths or loop
 * forever (docs/checkpoint.md, "Strings"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/ckpt.h"
#include "storage/storage.h"
#include "util/status.h"

static char fuzz_path[64];

static void check_refusal(int rc, char *err) {
  if (rc == ST_OK) return;
  if (!err || strchr(err, '\n') || !strstr(err, fuzz_path)) abort();
}

/* Reads every dataset ckpt_file_list names, as its own dtype; returns the
 * number that failed. */
static size_t read_all(ckpt_file *f, const ckpt_entry *e, size_t n) {
  size_t failed = 0;
  for (size_t i = 0; i < n; i++) {
    if (e[i].dtype == CKPT_OTHER || e[i].count > ((size_t)1 << 22)) continue;
    void *buf = malloc((e[i].count ? e[i].count : 1) * 8);
    if (!buf) continue;
    char *err = NULL;
    int rc = e[i].dtype == CKPT_FLOAT32 ? ckpt_file_read_float(f, e[i].path, buf, e[i].count, &err)
                                         : ckpt_file_read_int64(f, e[i].path, buf, e[i].count, &err);
    if (rc) {
      if (!err || strchr(err, '\n')) abort();
      failed++;
    }
    free(err);
    free(buf);
  }
  return failed;
}

/* A non-strict load of params/ into targets shaped as the file says. */
static void load_params(ckpt_file *f, const ckpt_entry *e, size_t n) {
  ckpt_tensor *t = calloc(n + 1, sizeof *t);
  size_t k = 0;
  for (size_t i = 0; t && i < n; i++) {
    if (strncmp(e[i].path, "params/", 7) != 0 || e[i].dtype != CKPT_FLOAT32 || e[i].ndim < 1 ||
        e[i].count > ((size_t)1 << 22) || !(t[k].data = malloc(e[i].count * sizeof(float))))
      continue;
    t[k].name = e[i].path + 7;
    t[k].ndim = e[i].ndim;
    memcpy(t[k].shape, e[i].shape, sizeof t[k].shape);
    k++;
  }
  char *err = NULL;
  ckpt_load_report report = {0};
  int rc = t ? ckpt_file_load(f, "params", t, k, 0, &report, &err) : ST_OK;
  if (rc && (!err || strchr(err, '\n'))) abort();
  ckpt_load_report_clear(&report);
  free(err);
  for (size_t i = 0; i < k; i++) free(t[i].data);
  free(t);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  if (!fuzz_path[0]) snprintf(fuzz_path, sizeof fuzz_path, "/tmp/ddpt-fuzz-ckpt-%ld.h5", (long)getpid());
  FILE *fp = fopen(fuzz_path, "wb");
  if (!fp) abort();
  if (size && fwrite(data, 1, size, fp) != size) abort();
  fclose(fp);
  char *err = NULL;
  int verified = ckpt_file_verify(fuzz_path, &err);
  check_refusal(verified, err);
  free(err);
  err = NULL;
  ckpt_file *f = NULL;
  int rc = ckpt_file_open(fuzz_path, &f, &err);
  check_refusal(rc, err);
  free(err);
  if (rc) {
    if (verified == ST_OK) abort(); /* verify opened it */
    if (storage_open_object_count() != 0) abort();
    return 0;
  }
  ckpt_header h;
  err = NULL;
  rc = ckpt_file_read_header(f, &h, &err);
  check_refusal(rc, err);
  free(err);
  if (rc == ST_OK) ckpt_header_clear(&h);
  else if (verified == ST_OK) abort(); /* verify read the header */
  static const char *const attrs[] = {"vocab", "vocab_lowercase", "labels", "best", "seq_len"};
  for (size_t i = 0; i < sizeof attrs / sizeof *attrs; i++) {
    char *value = NULL;
    err = NULL;
    if (ckpt_file_read_attr(f, attrs[i], &value, &err) != ST_OK && (!err || strchr(err, '\n'))) abort();
    free(value);
    free(err);
  }
  ckpt_entry *e = NULL;
  size_t n = 0;
  err = NULL;
  rc = ckpt_file_list(f, &e, &n, &err);
  check_refusal(rc, err);
  free(err);
  if (rc == ST_OK) {
    /* Whatever verify accepted reads back whole. */
    if (read_all(f, e, n) && verified == ST_OK) abort();
    load_params(f, e, n);
    ckpt_entries_free(e, n);
  }
  ckpt_file_close(f);
  if (storage_open_object_count() != 0) abort();
  return 0;
}
