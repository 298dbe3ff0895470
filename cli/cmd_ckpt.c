/* `ddpt ckpt info|verify|diff`: print a checkpoint's attributes and tensor
 * table, check it whole, or compare two tensor by tensor. The file work is
 * storage/ckpt's; this file formats and chooses exit codes. */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "storage/ckpt.h"
#include "util/status.h"

static void format_shape(char *buf, size_t size, const ckpt_entry *e) {
  size_t at = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < e->ndim && at < size; i++)
    at += (size_t)snprintf(buf + at, size - at, i ? ", %zu" : "%zu", e->shape[i]);
  if (at < size) snprintf(buf + at, size - at, "]");
}

static const char *dtype_name(ckpt_dtype t) {
  return t == CKPT_FLOAT32 ? "float32" : t == CKPT_INT64 ? "int64" : "other";
}

static int same_shape(const ckpt_entry *a, const ckpt_entry *b) {
  if (a->ndim != b->ndim) return 0;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d]) return 0;
  return 1;
}

static int ckpt_info(const char *path) {
  ckpt_file *f = NULL;
  ckpt_header h = {0};
  ckpt_entry *e = NULL;
  size_t n = 0;
  float *buf = NULL;
  char *err = NULL;
  int shown = 0;
  if (ckpt_file_open(path, &f, &err) || ckpt_file_read_header(f, &h, &err) || ckpt_file_list(f, &e, &n, &err))
    goto done;
  size_t most = 0, floats = 0;
  for (size_t i = 0; i < n; i++) {
    if (e[i].count > most) most = e[i].count;
    if (e[i].dtype == CKPT_FLOAT32) floats += e[i].count;
  }
  printf("file:          %s\n", path);
  printf("format:        %s, version %lld\n", h.format, (long long)h.format_version);
  printf("step:          %lld\n", (long long)h.step);
  printf("tokens_seen:   %lld\n", (long long)h.tokens_seen);
  printf("world_size:    %lld\n", (long long)h.world_size);
  printf("seed:          %llu\n", (unsigned long long)h.seed);
  printf("model_type:    %s\n", h.model_type);
  printf("ddpt_version:  %s\n", h.ddpt_version);
  printf("created:       %s\n", h.created);
  printf("datasets:      %zu (%zu float32 values, %.1f MB)\n\n", n, floats, floats * 4.0 / 1e6);
  if (most && !(buf = malloc(most * sizeof *buf))) {
    status_set(&err, ST_NOMEM, "out of memory for a %zu-element tensor", most);
    goto done;
  }
  printf("%-60s %-8s %-16s %s\n", "dataset", "type", "shape", "L2 norm");
  for (size_t i = 0; i < n; i++) {
    char shape[128], norm[32] = "-";
    format_shape(shape, sizeof shape, &e[i]);
    if (e[i].dtype == CKPT_FLOAT32) {
      if (ckpt_file_read_float(f, e[i].path, buf, e[i].count, &err)) goto done;
      double sum = 0;
      for (size_t k = 0; k < e[i].count; k++) sum += (double)buf[k] * buf[k];
      snprintf(norm, sizeof norm, "%.6g", sqrt(sum));
    }
    printf("%-60s %-8s %-16s %s\n", e[i].path, dtype_name(e[i].dtype), shape, norm);
  }
  printf("\nconfig:\n");
  for (const char *line = h.config; *line;) {
    size_t len = strcspn(line, "\n");
    printf("  %.*s\n", (int)len, line);
    line += len + (line[len] == '\n');
  }
  shown = 1;
done:
  free(buf);
  ckpt_entries_free(e, n);
  ckpt_header_clear(&h);
  ckpt_file_close(f);
  return shown ? CLI_EXIT_OK : cli_fail("ckpt", err);
}

static int ckpt_verify(const char *path) {
  char *err = NULL;
  if (ckpt_file_verify(path, &err)) return cli_fail("ckpt", err);
  ckpt_file *f = NULL;
  ckpt_entry *e = NULL;
  size_t n = 0;
  if (ckpt_file_open(path, &f, &err) || ckpt_file_list(f, &e, &n, &err)) {
    ckpt_file_close(f);
    return cli_fail("ckpt", err);
  }
  printf("%s: ok (%zu datasets read in full, every Fletcher-32 checksum matches)\n", path, n);
  ckpt_entries_free(e, n);
  ckpt_file_close(f);
  return CLI_EXIT_OK;
}

/* Compares one dataset present in both files with the same type and shape;
 * *differs is set when any element differs bit for bit, *max_abs to the
 * largest absolute difference (NaN when a NaN sits against a number). */
static int diff_dataset(ckpt_file *a, ckpt_file *b, const ckpt_entry *e, void *ba, void *bb, int *differs,
                        double *max_abs, char **err) {
  *differs = 0;
  *max_abs = 0;
  if (e->dtype == CKPT_FLOAT32) {
    if (ckpt_file_read_float(a, e->path, ba, e->count, err) || ckpt_file_read_float(b, e->path, bb, e->count, err))
      return CLI_EXIT_FAILURE;
    const float *x = ba, *y = bb;
    for (size_t k = 0; k < e->count; k++) {
      if (memcmp(&x[k], &y[k], sizeof *x) == 0) continue;
      *differs = 1;
      double d = fabs((double)x[k] - (double)y[k]);
      if (isnan(d)) *max_abs = NAN;
      else if (!isnan(*max_abs) && d > *max_abs) *max_abs = d;
    }
  } else {
    if (ckpt_file_read_int64(a, e->path, ba, e->count, err) || ckpt_file_read_int64(b, e->path, bb, e->count, err))
      return CLI_EXIT_FAILURE;
    const int64_t *x = ba, *y = bb;
    for (size_t k = 0; k < e->count; k++) {
      if (x[k] == y[k]) continue;
      *differs = 1;
      double d = fabs((double)x[k] - (double)y[k]);
      if (d > *max_abs) *max_abs = d;
    }
  }
  return CLI_EXIT_OK;
}

static const ckpt_entry *find_entry(const ckpt_entry *e, size_t n, const char *path) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(e[i].path, path) == 0) return &e[i];
  return NULL;
}

static int ckpt_diff(const char *pa, const char *pb) {
  ckpt_file *a = NULL, *b = NULL;
  ckpt_entry *ea = NULL, *eb = NULL;
  size_t na = 0, nb = 0, n_diff = 0, only_a = 0, only_b = 0;
  void *ba = NULL, *bb = NULL;
  char *err = NULL;
  int same = 0, compared = 0;
  if (ckpt_file_open(pa, &a, &err) || ckpt_file_open(pb, &b, &err) || ckpt_file_list(a, &ea, &na, &err) ||
      ckpt_file_list(b, &eb, &nb, &err))
    goto done;
  size_t most = 1;
  for (size_t i = 0; i < na; i++)
    if (ea[i].count > most) most = ea[i].count;
  if (!(ba = malloc(most * 8)) || !(bb = malloc(most * 8))) {
    status_set(&err, ST_NOMEM, "out of memory for a %zu-element tensor", most);
    goto done;
  }
  printf("%-60s %s\n", "dataset", "max |A - B|");
  for (size_t i = 0; i < na; i++) {
    const ckpt_entry *x = &ea[i], *y = find_entry(eb, nb, x->path);
    if (!y) continue;
    char sa[128], sb[128];
    if (x->dtype != y->dtype || !same_shape(x, y) || x->dtype == CKPT_OTHER) {
      format_shape(sa, sizeof sa, x);
      format_shape(sb, sizeof sb, y);
      printf("%-60s differs: %s %s in A, %s %s in B\n", x->path, dtype_name(x->dtype), sa, dtype_name(y->dtype), sb);
      n_diff++;
      continue;
    }
    int differs;
    double max_abs;
    if (diff_dataset(a, b, x, ba, bb, &differs, &max_abs, &err)) goto done;
    if (differs) {
      printf("%-60s %.6g\n", x->path, max_abs);
      n_diff++;
    } else {
      printf("%-60s 0 (identical)\n", x->path);
    }
  }
  for (size_t i = 0; i < na; i++)
    if (!find_entry(eb, nb, ea[i].path)) {
      printf("only in A: %s\n", ea[i].path);
      only_a++;
    }
  for (size_t i = 0; i < nb; i++)
    if (!find_entry(ea, na, eb[i].path)) {
      printf("only in B: %s\n", eb[i].path);
      only_b++;
    }
  same = n_diff == 0 && only_a == 0 && only_b == 0;
  if (same)
    printf("identical: %zu datasets, bit for bit\n", na);
  else
    printf("differ: %zu common dataset%s differ, %zu only in A, %zu only in B\n", n_diff, n_diff == 1 ? "" : "s",
           only_a, only_b);
  compared = 1;
done:
  free(ba);
  free(bb);
  ckpt_entries_free(ea, na);
  ckpt_entries_free(eb, nb);
  ckpt_file_close(a);
  ckpt_file_close(b);
  if (!compared) return cli_fail("ckpt", err);
  return same ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

static int ckpt_upgrade(const char *from, const char *to) {
  char *err = NULL;
  if (ckpt_file_upgrade(from, to, &err)) return cli_fail("ckpt", err);
  printf("%s: written from %s with fixed-length string attributes, and verified\n", to, from);
  return CLI_EXIT_OK;
}

int cmd_ckpt(int argc, char **argv) {
  static const struct option opts[] = {{NULL, 0, NULL, 0}};
  opterr = 0;
  optind = 0;
  if (getopt_long(argc, argv, "+", opts, NULL) != -1) return cli_bad_option("ckpt", argc, argv);
  if (optind >= argc) return cli_usage_error("ckpt", "expected info, verify, diff or upgrade");
  const char *sub = argv[optind];
  int nargs = argc - optind - 1;
  char **args = argv + optind + 1;
  if (strcmp(sub, "info") == 0 || strcmp(sub, "verify") == 0) {
    if (nargs != 1) return cli_usage_error("ckpt", "%s takes one FILE, got %d arguments", sub, nargs);
    return sub[0] == 'i' ? ckpt_info(args[0]) : ckpt_verify(args[0]);
  }
  if (strcmp(sub, "diff") == 0) {
    if (nargs != 2) return cli_usage_error("ckpt", "diff takes two files A B, got %d arguments", nargs);
    return ckpt_diff(args[0], args[1]);
  }
  if (strcmp(sub, "upgrade") == 0) {
    if (nargs != 2) return cli_usage_error("ckpt", "upgrade takes two files OLD NEW, got %d arguments", nargs);
    return ckpt_upgrade(args[0], args[1]);
  }
  return cli_usage_error("ckpt", "unknown subcommand '%s'", sub);
}
