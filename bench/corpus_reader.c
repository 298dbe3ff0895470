/* Reader throughput: batches of (B, L) read, masked and padded by one
 * thread from rank 0 of a world of one, as the trainer would consume them.
 * usage: bench_corpus_reader DIR [BATCH] [SECONDS] [--whole-word] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "corpus/corpus.h"
#include "util/timer.h"

/* CPU time of this thread: on a loaded machine it measures the reader's own
 * cost, where wall time also counts waiting for a core. */
static double thread_cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s DIR [BATCH] [SECONDS] [--whole-word]\n", argv[0]);
    return 2;
  }
  corpus_options opt;
  corpus_options_default(&opt);
  opt.batch_size = argc > 2 ? (size_t)atoi(argv[2]) : 32;
  double seconds = argc > 3 ? atof(argv[3]) : 3.0;
  opt.whole_word = argc > 4 && strcmp(argv[4], "--whole-word") == 0;
  corpus *c = NULL;
  corpus_batch *b = NULL;
  char *err = NULL;
  double open0 = timer_now();
  int rc = corpus_open(argv[1], 0, 1, &opt, &c, &err);
  double open_s = timer_now() - open0;
  if (rc ||
      corpus_batch_alloc(opt.batch_size, corpus_manifest(c)->seq_len, &b, &err)) {
    fprintf(stderr, "bench_corpus_reader: %s\n", err);
    free(err);
    corpus_close(c);
    return 1;
  }
  printf("open: %.1f ms for %zu shards\n", 1e3 * open_s, corpus_num_shards(c));
  uint64_t samples = 0, masked = 0;
  double t0 = timer_now(), c0 = thread_cpu_seconds(), t;
  while ((t = timer_now() - t0) < seconds) {
    if (corpus_next_batch(c, b, &err)) {
      fprintf(stderr, "bench_corpus_reader: %s\n", err);
      free(err);
      return 1;
    }
    samples += b->count;
    for (size_t r = 0; r < b->count; r++) masked += b->num_masked[r];
  }
  double cpu = thread_cpu_seconds() - c0;
  printf("reader: %.0f samples/s, %.0f per CPU-second (batch %zu, seq_len %zu, %s masking, %.1f "
         "masked per sample, %.2f s, 1 thread)\n", (double)samples / t, (double)samples / cpu,
         opt.batch_size, b->seq_len, opt.whole_word ? "whole-word" : "token",
         (double)masked / (double)samples, t);
  corpus_batch_free(b);
  corpus_close(c);
  return 0;
}
