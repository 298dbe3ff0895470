/* `ddpt bench train`: times full training steps (forward, backward, AdamW)
 * of a BERT on synthetic batches and prints one JSON line, so that scripts
 * (bench/) can put ddpt side by side with PyTorch. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/cli.h"
#include "corpus/corpus.h"
#include "trainer/bert.h"
#include "trainer/blas.h"
#include "trainer/optimizer.h"
#include "util/rng.h"
#include "util/status.h"
#include "util/timer.h"

/* MAX_BATCH and MAX_SEQ_LEN lie beyond any machine's memory and keep the
 * arena sizes far from overflowing; the memory estimate refuses what does not
 * fit. */
enum {
  MAX_SETS = 32,
  MAX_STEPS = 1000,
  MAX_THREADS = 1024,
  MAX_BATCH = 1 << 24,
  MAX_SEQ_LEN = 1 << 20,
};

/* Random ids, two segments, no padding, round(15%) predicted positions per
 * sequence (distinct, [CLS] excluded), random NSP labels. */
typedef struct synth {
  int32_t *ids, *segs, *mask, *labels, *nsp;
} synth;

static int synth_make(synth *s, const bert_config *cfg, size_t B, size_t L, size_t max_pred,
                      uint64_t seed) {
  size_t N = B * L;
  s->ids = malloc(N * sizeof(int32_t));
  s->segs = malloc(N * sizeof(int32_t));
  s->mask = malloc(N * sizeof(int32_t));
  s->labels = malloc(N * sizeof(int32_t));
  s->nsp = malloc(B * sizeof(int32_t));
  if (!s->ids || !s->segs || !s->mask || !s->labels || !s->nsp) return -1;
  rng_stream r;
  rng_stream_init(&r, seed, 0xbe7c4, 0, 0);
  size_t per_seq = (L * 15 + 50) / 100;
  if (per_seq > max_pred) per_seq = max_pred;
  if (per_seq >= L) per_seq = L - 1;
  for (size_t b = 0; b < B; b++) {
    for (size_t t = 0; t < L; t++) {
      size_t i = b * L + t;
      s->ids[i] = (int32_t)rng_next_below(&r, (uint32_t)cfg->vocab_size);
      s->segs[i] = t >= L / 2 && cfg->type_vocab > 1;
      s->mask[i] = 1;
      s->labels[i] = -1;
    }
    for (size_t k = 0; k < per_seq;) {
      size_t t = 1 + rng_next_below(&r, (uint32_t)(L - 1));
      if (s->labels[b * L + t] >= 0) continue;
      s->labels[b * L + t] = (int32_t)rng_next_below(&r, (uint32_t)cfg->vocab_size);
      k++;
    }
    s->nsp[b] = (int32_t)rng_next_below(&r, 2);
  }
  return 0;
}

static void synth_free(synth *s) {
  free(s->ids), free(s->segs), free(s->mask), free(s->labels), free(s->nsp);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int bench_train(int argc, char **argv) {
  static const struct option opts[] = {
      {"preset", required_argument, NULL, 'p'},  {"config", required_argument, NULL, 'c'},
      {"set", required_argument, NULL, 's'},     {"batch", required_argument, NULL, 'b'},
      {"seq-len", required_argument, NULL, 'l'}, {"threads", required_argument, NULL, 't'},
      {"steps", required_argument, NULL, 'k'},   {"warmup", required_argument, NULL, 'w'},
      {"seed", required_argument, NULL, 'S'},    {NULL, 0, NULL, 0}};
  const char *preset = NULL, *json = NULL;
  char *sets[MAX_SETS];
  size_t nsets = 0, B = 8, L = 128, threads = 0, steps = 5, warmup = 1;
  uint64_t seed = 1;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  threads = ncpu > 0 ? (size_t)ncpu : 1;
  opterr = 0;
  optind = 0;
  int c, rc;
  while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
    switch (c) {
      case 'p': preset = optarg; break;
      case 'c': json = optarg; break;
      case 's':
        if (nsets == MAX_SETS) return cli_usage_error("bench", "more than %d --set options", MAX_SETS);
        sets[nsets++] = optarg;
        break;
      case 'b':
        if ((rc = cli_parse_size("bench", "--batch", optarg, 1, MAX_BATCH, &B))) return rc;
        break;
      case 'l':
        if ((rc = cli_parse_size("bench", "--seq-len", optarg, 1, MAX_SEQ_LEN, &L))) return rc;
        break;
      case 't':
        rc = cli_parse_size("bench", "--threads", optarg, 1, MAX_THREADS, &threads);
        if (rc) return rc;
        break;
      case 'k':
        if ((rc = cli_parse_size("bench", "--steps", optarg, 1, MAX_STEPS, &steps))) return rc;
        break;
      case 'w':
        if ((rc = cli_parse_size("bench", "--warmup", optarg, 0, MAX_STEPS, &warmup))) return rc;
        break;
      case 'S':
        if ((rc = cli_parse_u64("bench", "--seed", optarg, 0, UINT64_MAX, &seed))) return rc;
        break;
      default: return cli_bad_option("bench", argc, argv);
    }
  }
  if (optind < argc) return cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);

  char *err = NULL;
  bert_config cfg;
  if (bert_config_resolve(&cfg, preset, json, sets, nsets, &err) != ST_OK) return cli_fail("bench", err);
  blas_set_threads((int)threads);
  size_t max_pred = corpus_default_max_predictions(0.15, L);
  bert_memory mem;
  if (bert_memory_estimate(&cfg, B, L, max_pred, &mem, &err) != ST_OK) return cli_fail("bench", err);
  bert_model *m;
  if (bert_model_create(&m, &cfg, B, L, max_pred, &err) != ST_OK) return cli_fail("bench", err);
  params *p = bert_model_params(m);
  params_init(p, seed);
  synth s;
  if (synth_make(&s, &cfg, B, L, max_pred, seed) != 0) {
    bert_model_free(m);
    return cli_fail("bench", strdup("out of memory for the synthetic batch"));
  }
  bert_batch batch = {B, L, s.ids, s.segs, s.mask, s.labels, s.nsp};
  optim_config oc = optim_config_default();
  double times[MAX_STEPS], first_loss = 0, last_loss = 0;
  size_t predicted = 0;
  for (size_t step = 0; step < warmup + steps; step++) {
    double t0 = timer_now();
    /* As ddpt train: each update clears the gradients for the next step. */
    if (step == 0) params_zero_grad(p);
    bert_dropout drop = {seed, (uint32_t)step, 0};
    bert_loss loss;
    if (bert_forward(m, &batch, &drop, &loss, &err) != ST_OK) {
      synth_free(&s);
      bert_model_free(m);
      return cli_fail("bench", err);
    }
    bert_backward(m, &batch, NULL);
    optim_step(&oc, p, 1e-4f, step + 1, optim_grad_norm(p), OPTIM_ZERO_GRAD);
    double dt = timer_now() - t0;
    if (step == 0) first_loss = loss.total;
    last_loss = loss.total;
    predicted = loss.predicted;
    if (step >= warmup) times[step - warmup] = dt;
  }
  qsort(times, steps, sizeof *times, cmp_double);
  double median = steps % 2 ? times[steps / 2] : 0.5 * (times[steps / 2 - 1] + times[steps / 2]);
  double tokens = (double)(B * L);
  bert_flops flops;
  if (bert_flops_per_step(&cfg, B, L, predicted, &flops, &err) != ST_OK) {
    synth_free(&s);
    bert_model_free(m);
    return cli_fail("bench", err);
  }
  double model_flops = flops.model, work_flops = flops.work;
  /* Peak RSS before the sgemm measurement, whose matrices are not the model's. */
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double sgemm = blas_sgemm_gflops(2048, 3);
  size_t predicted_bytes = mem.params + mem.grads + mem.adam + mem.activations + mem.scratch;
  char desc[512];
  bert_config_describe(&cfg, desc, sizeof desc);
  printf("{\"bench\":\"train\",\"impl\":\"ddpt\",\"preset\":\"%s\",\"config\":\"%s\","
         "\"params\":%zu,\"batch\":%zu,\"seq_len\":%zu,\"threads\":%zu,\"steps\":%zu,"
         "\"predicted_tokens\":%zu,\"step_time_median_s\":%.4f,\"step_time_min_s\":%.4f,"
         "\"tokens_per_s\":%.1f,\"model_flops_per_step\":%.4e,\"model_gflops_per_s\":%.1f,"
         "\"work_flops_per_step\":%.4e,\"work_gflops_per_s\":%.1f,\"sgemm_gflops_per_s\":%.1f,"
         "\"mfu_vs_sgemm\":%.3f,\"work_mfu_vs_sgemm\":%.3f,\"peak_rss_bytes\":%lld,"
         "\"predicted_bytes\":%zu,\"rss_over_predicted\":%.3f,\"loss_first\":%.5f,"
         "\"loss_last\":%.5f,\"blas_kernel\":\"%s\",\"openblas_coretype\":\"%s\"}\n",
         preset ? preset : json ? json : "bert-base", desc, mem.param_count, B, L, threads, steps,
         predicted, median, times[0], tokens / median, model_flops, model_flops / median / 1e9,
         work_flops, work_flops / median / 1e9, sgemm, model_flops / median / 1e9 / sgemm,
         work_flops / median / 1e9 / sgemm, (long long)ru.ru_maxrss * 1024, predicted_bytes,
         (double)ru.ru_maxrss * 1024 / (double)predicted_bytes, first_loss, last_loss,
         blas_corename(), getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "");
  synth_free(&s);
  bert_model_free(m);
  return CLI_EXIT_OK;
}

int cmd_bench(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "train") != 0)
    return cli_usage_error("bench", argc < 2 ? "missing subcommand%s" : "unknown subcommand '%s'",
                           argc < 2 ? "" : argv[1]);
  /* Before any thread exists: may restart ddpt with a better OpenBLAS kernel. */
  char *err = NULL;
  if (blas_kernel_ensure(argc, argv, &err) != ST_OK) return cli_fail("bench", err);
  return bench_train(argc - 1, argv + 1);
}
