/* ddpt_ckpt_read_path FILE PATH COUNT: reads the int64 dataset PATH of the
 * checkpoint FILE through ckpt_file_read_int64, as resume reads
 * data/cursor, and prints "ok" (exit 0) or the one-line refusal (exit 1).
 * PATH "--list": lists the file's datasets (ckpt_file_list, as verify, diff
 * and a load by name do) instead, COUNT of them expected.
 * tests/parity/ckpt_hostile_check.py points it at files crafted with h5py
 * (external links, external storage, virtual datasets, unknown filters),
 * which no ddpt command reaches by path. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/ckpt.h"

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: ddpt_ckpt_read_path FILE PATH COUNT\n");
    return 2;
  }
  size_t count = (size_t)strtoull(argv[3], NULL, 10);
  int64_t *buf = calloc(count ? count : 1, sizeof *buf);
  ckpt_file *f = NULL;
  char *err = NULL;
  int rc = buf ? ckpt_file_open(argv[1], &f, &err) : 1;
  if (!rc && strcmp(argv[2], "--list") == 0) {
    ckpt_entry *e = NULL;
    size_t n = 0;
    rc = ckpt_file_list(f, &e, &n, &err);
    if (!rc && n != count) {
      char msg[512];
      snprintf(msg, sizeof msg, "%s: %zu datasets listed, %zu expected", argv[1], n, count);
      rc = 1;
      err = strdup(msg);
    }
    ckpt_entries_free(e, n);
  } else if (!rc) {
    rc = ckpt_file_read_int64(f, argv[2], buf, count, &err);
  }
  if (rc) fprintf(stderr, "%s\n", err ? err : "out of memory");
  else printf("ok\n");
  ckpt_file_close(f);
  free(err);
  free(buf);
  return rc ? 1 : 0;
}
