/* Tokenizer throughput: one thread runs tok_encode over a text held in
 * memory, line by line as `ddpt tokenize` does, for a few seconds, and prints
 * MB/s of input per second of the thread's CPU time (the per-core figure,
 * steady on a shared machine) and per second of wall time.
 * usage: bench_tokenize VOCAB FILE [--cased] [SECONDS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "corpus/tokenizer.h"
#include "corpus/vocab.h"
#include "util/timer.h"

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 20, n = 0, got;
  char *buf = malloc(cap);
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  *len = n;
  return buf;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s VOCAB FILE [--cased] [SECONDS]\n", argv[0]);
    return 2;
  }
  int cased = argc > 3 && strcmp(argv[3], "--cased") == 0;
  double seconds = argc > 3 + cased ? atof(argv[3 + cased]) : 3.0;
  char *err = NULL;
  tok_vocab *v = NULL;
  tokenizer *t = NULL;
  if (tok_vocab_load(argv[1], &v, &err) != 0 || tok_create(v, !cased, &t, &err) != 0) {
    fprintf(stderr, "bench_tokenize: %s\n", err);
    return 1;
  }
  size_t len;
  char *text = read_all(argv[2], &len);
  if (!text || len == 0) {
    fprintf(stderr, "bench_tokenize: cannot read '%s'\n", argv[2]);
    return 1;
  }
  tok_ids ids = {0};
  tok_stats st = {0};
  uint64_t passes = 0;
  double start = timer_now(), cpu_start = cpu_seconds(), elapsed;
  do {
    for (size_t pos = 0; pos < len;) {
      const char *nl = memchr(text + pos, '\n', len - pos);
      size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
      ids.len = 0;
      if (tok_encode(t, text + pos, n, &ids, &st, &err) != 0) {
        fprintf(stderr, "bench_tokenize: %s\n", err);
        return 1;
      }
      pos += n + 1;
    }
    passes++;
    elapsed = timer_now() - start;
  } while (elapsed < seconds);
  double cpu = cpu_seconds() - cpu_start;
  printf("%s: %.2f MB x %llu passes, %s: %.1f MB/s per core (%.1f MB/s wall), %.2f M tokens/s, "
         "[UNK] %.3f%%\n",
         argv[2], (double)len / 1e6, (unsigned long long)passes, cased ? "cased" : "uncased",
         (double)st.bytes_in / 1e6 / cpu, (double)st.bytes_in / 1e6 / elapsed,
         (double)st.tokens / 1e6 / cpu, st.tokens ? 100.0 * (double)st.unk / (double)st.tokens : 0.0);
  tok_ids_free(&ids);
  tok_free(t);
  tok_vocab_free(v);
  free(text);
  return 0;
}
