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
#include "trainer/gemm.h"
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

/* What `ddpt bench train` was asked for. */
typedef struct bench_options {
  const char *preset, *json; /* NULL: not given */
  char *sets[MAX_SETS];      /* --set KEY=VALUE, in order */
  size_t nsets, B, L, threads, steps, warmup;
  uint64_t seed;
  int precision; /* a gemm_precision */
} bench_options;

static int bench_parse(bench_options *o, int argc, char **argv) {
  static const struct option opts[] = {
      {"preset", required_argument, NULL, 'p'},  {"config", required_argument, NULL, 'c'},
      {"set", required_argument, NULL, 's'},     {"batch", required_argument, NULL, 'b'},
      {"seq-len", required_argument, NULL, 'l'}, {"threads", required_argument, NULL, 't'},
      {"steps", required_argument, NULL, 'k'},   {"warmup", required_argument, NULL, 'w'},
      {"seed", required_argument, NULL, 'S'},    {"precision", required_argument, NULL, 'P'},
      {NULL, 0, NULL, 0}};
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  *o = (bench_options){.B = 8, .L = 128, .steps = 5, .warmup = 1, .seed = 1,
                       .threads = ncpu > 0 ? (size_t)ncpu : 1};
  opterr = 0;
  optind = 0;
  int c, rc;
  while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
    switch (c) {
      case 'p': o->preset = optarg; break;
      case 'c': o->json = optarg; break;
      case 's':
        if (o->nsets == MAX_SETS)
          return cli_usage_error("bench", "more than %d --set options", MAX_SETS);
        o->sets[o->nsets++] = optarg;
        break;
      case 'b':
        if ((rc = cli_parse_size("bench", "--batch", optarg, 1, MAX_BATCH, &o->B))) return rc;
        break;
      case 'l':
        if ((rc = cli_parse_size("bench", "--seq-len", optarg, 1, MAX_SEQ_LEN, &o->L))) return rc;
        break;
      case 't':
        rc = cli_parse_size("bench", "--threads", optarg, 1, MAX_THREADS, &o->threads);
        if (rc) return rc;
        break;
      case 'k':
        if ((rc = cli_parse_size("bench", "--steps", optarg, 1, MAX_STEPS, &o->steps))) return rc;
        break;
      case 'w':
        rc = cli_parse_size("bench", "--warmup", optarg, 0, MAX_STEPS, &o->warmup);
        if (rc) return rc;
        break;
      case 'S':
        if ((rc = cli_parse_u64("bench", "--seed", optarg, 0, UINT64_MAX, &o->seed))) return rc;
        break;
      case 'P':
        if ((o->precision = gemm_precision_parse(optarg)) < 0)
          return cli_usage_error("bench", "--precision is fp32 or bf16, not '%s'", optarg);
        break;
      default: return cli_bad_option("bench", argc, argv);
    }
  }
  if (optind < argc) return cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);
  return CLI_EXIT_OK;
}

/* What the timed steps measured. */
typedef struct bench_result {
  double times[MAX_STEPS]; /* seconds of each timed step, sorted */
  double median;
  double first_loss, last_loss; /* of the first step (warm-up included) and the last */
  size_t predicted;             /* predicted tokens per batch */
} bench_result;

/* o->warmup steps then o->steps timed ones on the same batch, each as ddpt
 * train runs it: forward, backward, gradient norm, AdamW update. */
static int bench_run_steps(bench_result *r, bert_model *m, const bert_batch *batch,
                           const bench_options *o, char **err) {
  params *p = bert_model_params(m);
  optim_config oc = optim_config_default();
  *r = (bench_result){0};
  for (size_t step = 0; step < o->warmup + o->steps; step++) {
    double t0 = timer_now();
    /* As ddpt train: each update clears the gradients for the next step. */
    if (step == 0) params_zero_grad(p);
    bert_dropout drop = {o->seed, (uint32_t)step, 0};
    bert_loss loss;
    int rc = bert_forward(m, batch, &drop, &loss, err);
    if (rc != ST_OK) return rc;
    bert_backward(m, batch, NULL);
    /* In bf16 it also writes the weights' bf16 copy (optimizer.h, 4). */
    optim_step(&oc, p, 1e-4f, step + 1, optim_grad_norm(p), OPTIM_ZERO_GRAD);
    double dt = timer_now() - t0;
    if (step == 0) r->first_loss = loss.total;
    r->last_loss = loss.total;
    r->predicted = loss.predicted;
    if (step >= o->warmup) r->times[step - o->warmup] = dt;
  }
  size_t k = o->steps;
  qsort(r->times, k, sizeof *r->times, cmp_double);
  r->median = k % 2 ? r->times[k / 2] : 0.5 * (r->times[k / 2 - 1] + r->times[k / 2]);
  return ST_OK;
}

/* Measures peak RSS and this machine's sgemm, then prints the JSON line. */
static void bench_report(const bench_options *o, const bert_config *cfg, const bert_memory *mem,
                         const bert_flops *flops, const bench_result *r) {
  /* Peak RSS before the sgemm measurement, whose matrices are not the model's. */
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double sgemm = blas_sgemm_gflops(2048, 3);
  /* The bf16 ceiling too when the steps ran in bf16: the figure its MFU is
   * measured against. */
  int bf16 = o->precision == GEMM_BF16;
  double peak = bf16 ? gemm_bf16_gflops(2048, 3) : sgemm;
  size_t predicted_bytes = bert_memory_total(mem, o->precision);
  double tokens = (double)(o->B * o->L), median = r->median;
  double model_flops = flops->model, work_flops = flops->work;
  const char *coretype = getenv("OPENBLAS_CORETYPE");
  char desc[512], onednn[160];
  bert_config_describe(cfg, desc, sizeof desc);
  gemm_onednn_version(onednn, sizeof onednn);
  /* The test hook's products are not oneDNN's: say so where the figure is. */
  if (o->precision == GEMM_BF16 && gemm_bf16_emulated())
    snprintf(onednn, sizeof onednn, "emulated in fp32 (DDPT_TEST_BF16_EMULATE: tests only)");
  printf("{\"bench\":\"train\",\"impl\":\"ddpt\",\"preset\":\"%s\",\"config\":\"%s\","
         "\"precision\":\"%s\",\"params\":%zu,\"batch\":%zu,\"seq_len\":%zu,\"threads\":%zu,"
         "\"steps\":%zu,\"predicted_tokens\":%zu,\"step_time_median_s\":%.4f,"
         "\"step_time_min_s\":%.4f,\"tokens_per_s\":%.1f,\"model_flops_per_step\":%.4e,"
         "\"model_gflops_per_s\":%.1f,\"work_flops_per_step\":%.4e,\"work_gflops_per_s\":%.1f,"
         "\"sgemm_gflops_per_s\":%.1f,\"peak_gflops_per_s\":%.1f,\"mfu_vs_sgemm\":%.3f,"
         "\"work_mfu_vs_sgemm\":%.3f,\"work_mfu_vs_peak\":%.3f,\"peak_rss_bytes\":%lld,"
         "\"predicted_bytes\":%zu,\"bf16_operand_bytes_used\":%zu,"
         "\"bf16_operand_bytes_predicted\":%zu,\"rss_over_predicted\":%.3f,"
         "\"loss_first\":%.5f,\"loss_last\":%.5f,\"blas_kernel\":\"%s\","
         "\"openblas_coretype\":\"%s\",\"onednn\":\"%s\"}\n",
         o->preset ? o->preset : o->json ? o->json : "bert-base", desc,
         gemm_precision_name(o->precision), mem->param_count, o->B, o->L, o->threads, o->steps,
         r->predicted, median, r->times[0], tokens / median, model_flops,
         model_flops / median / 1e9, work_flops, work_flops / median / 1e9, sgemm, peak,
         model_flops / median / 1e9 / sgemm, work_flops / median / 1e9 / sgemm,
         peak > 0 ? work_flops / median / 1e9 / peak : 0.0, (long long)ru.ru_maxrss * 1024,
         predicted_bytes, gemm_scratch_bytes(), bf16 ? mem->bf16_operands : 0,
         (double)ru.ru_maxrss * 1024 / (double)predicted_bytes, r->first_loss, r->last_loss,
         blas_corename(), coretype ? coretype : "", onednn);
}

static int bench_train(int argc, char **argv) {
  bench_options o;
  int rc = bench_parse(&o, argc, argv);
  if (rc != CLI_EXIT_OK) return rc;
  char *err = NULL;
  bert_config cfg;
  bert_memory mem;
  bert_model *m = NULL;
  synth s = {0};
  bench_result r;
  bert_flops flops;
  size_t max_pred = corpus_default_max_predictions(0.15, o.L);
  if (bert_config_resolve(&cfg, o.preset, o.json, o.sets, o.nsets, &err) != ST_OK) goto fail;
  blas_set_threads((int)o.threads);
  if (bert_memory_estimate(&cfg, o.B, o.L, max_pred, &mem, &err) != ST_OK ||
      bert_model_create(&m, &cfg, o.B, o.L, max_pred, &err) != ST_OK)
    goto fail;
  if (bert_set_precision(m, o.precision, &err) != ST_OK) goto fail;
  params_init(bert_model_params(m), o.seed);
  if (synth_make(&s, &cfg, o.B, o.L, max_pred, o.seed) != 0) {
    err = strdup("out of memory for the synthetic batch");
    goto fail;
  }
  bert_batch batch = {.B = o.B, .L = o.L, .input_ids = s.ids, .segment_ids = s.segs,
                      .attention_mask = s.mask, .mlm_labels = s.labels, .nsp_labels = s.nsp};
  if (bench_run_steps(&r, m, &batch, &o, &err) != ST_OK ||
      bert_flops_per_step(&cfg, o.B, o.L, r.predicted, &flops, &err) != ST_OK)
    goto fail;
  bench_report(&o, &cfg, &mem, &flops, &r);
  synth_free(&s);
  bert_model_free(m);
  return CLI_EXIT_OK;
fail:
  synth_free(&s);
  bert_model_free(m);
  return cli_fail("bench", err);
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
