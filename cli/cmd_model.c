/* `ddpt model info`: a model's parameter count and the memory its
 * parameters, gradients, Adam state and activations take for a given batch,
 * the same figures ddpt allocates at start, per rank: with --zero 1 each of
 * --world ranks keeps only its shard of the Adam state; the gradient
 * exchange's buffers for --world ranks and --accumulation micro-batches.
 * Then the peaks of a checkpoint and a resume, what tests/train_zero.sh
 * and bench/zero_memory.py measure. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "corpus/corpus.h"
#include "trainer/bert.h"
#include "trainer/gemm.h"
#include "trainer/train.h"
#include "util/status.h"

/* Beyond any machine's memory, and far from overflowing the arena sizes;
 * the memory estimate refuses what does not fit the model. */
enum { MAX_SETS = 32, MAX_BATCH = 1 << 24, MAX_SEQ_LEN = 1 << 20, MAX_WORLD = 1 << 20 };

static double mib(size_t bytes) { return (double)bytes / (1 << 20); }

int cmd_model(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "info") != 0)
    return cli_usage_error("model", argc < 2 ? "missing subcommand%s" : "unknown subcommand '%s'",
                           argc < 2 ? "" : argv[1]);
  static const struct option opts[] = {
      {"preset", required_argument, NULL, 'p'},  {"config", required_argument, NULL, 'c'},
      {"set", required_argument, NULL, 's'},     {"batch", required_argument, NULL, 'b'},
      {"seq-len", required_argument, NULL, 'l'}, {"max-predictions", required_argument, NULL, 'm'},
      {"precision", required_argument, NULL, 'P'}, {"world", required_argument, NULL, 'w'},
      {"zero", required_argument, NULL, 'z'},      {"accumulation", required_argument, NULL, 'a'},
      {"bucket-mb", required_argument, NULL, 'k'}, {NULL, 0, NULL, 0}};
  int precision = GEMM_FP32;
  const char *preset = NULL, *json = NULL;
  char *sets[MAX_SETS];
  size_t nsets = 0, B = 8, L = 128, max_pred = 0, world = 1, zero = 0, A = 1;
  double bucket_mb = 25; /* [train] bucket_mb's default */
  opterr = 0;
  optind = 0;
  int c, rc;
  argc--, argv++;
  while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
    switch (c) {
      case 'p': preset = optarg; break;
      case 'c': json = optarg; break;
      case 's':
        if (nsets == MAX_SETS) return cli_usage_error("model", "more than %d --set options", MAX_SETS);
        sets[nsets++] = optarg;
        break;
      case 'b':
        if ((rc = cli_parse_size("model", "--batch", optarg, 1, MAX_BATCH, &B))) return rc;
        break;
      case 'l':
        if ((rc = cli_parse_size("model", "--seq-len", optarg, 1, MAX_SEQ_LEN, &L))) return rc;
        break;
      case 'm':
        rc = cli_parse_size("model", "--max-predictions", optarg, 1, MAX_SEQ_LEN, &max_pred);
        if (rc) return rc;
        break;
      case 'w':
        if ((rc = cli_parse_size("model", "--world", optarg, 1, MAX_WORLD, &world))) return rc;
        break;
      case 'z':
        if ((rc = cli_parse_size("model", "--zero", optarg, 0, 1, &zero))) return rc;
        break;
      case 'a':
        if ((rc = cli_parse_size("model", "--accumulation", optarg, 1, MAX_BATCH, &A))) return rc;
        break;
      case 'k':
        if ((rc = cli_parse_double("model", "--bucket-mb", optarg, 1.0 / (1 << 20), 4096, &bucket_mb))) return rc;
        break;
      case 'P':
        if ((precision = gemm_precision_parse(optarg)) < 0)
          return cli_usage_error("model", "--precision is fp32 or bf16, not '%s'", optarg);
        break;
      default: return cli_bad_option("model", argc, argv);
    }
  }
  if (optind < argc) return cli_usage_error("model", "unexpected argument '%s'", argv[optind]);
  if (!max_pred) max_pred = corpus_default_max_predictions(0.15, L);

  char *err = NULL;
  bert_config cfg;
  if (bert_config_resolve(&cfg, preset, json, sets, nsets, &err) != ST_OK) return cli_fail("model", err);
  bert_memory mem;
  if (bert_memory_estimate(&cfg, B, L, max_pred, &mem, &err) != ST_OK) return cli_fail("model", err);
  /* ZeRO-1: shards are whole optimizer chunks, so one rank's is within a
   * chunk (256 KiB of moments) of this. */
  size_t adam_all = mem.adam;
  if (zero) mem.adam = (mem.adam + world - 1) / world;
  char desc[512];
  bert_config_describe(&cfg, desc, sizeof desc);
  train_exchange_memory xm = train_exchange_estimate(mem.params / sizeof(float), cfg.task, (int)zero,
                                                     cfg.vocab_size, cfg.hidden, B, L, A, world, bucket_mb);
  size_t total = bert_memory_total(&mem, precision) + xm.arena + xm.lookup;
  printf("model:       %s (%s)\n", preset ? preset : json ? json : "bert-base", desc);
  printf("parameters:  %zu\n", mem.param_count);
  printf("batch:       %zu x %zu tokens, up to %zu predicted tokens per sequence", B, L, max_pred);
  if (A > 1) printf(", %zu micro-batches per step", A);
  printf("\n");
  printf("precision:   %s\n", gemm_precision_name(precision));
  printf("world:       %zu rank%s, zero %zu%s\n", world, world == 1 ? "" : "s", zero,
         zero ? " (Adam state sharded over the ranks)" : "");
  printf("memory per rank (MiB):\n");
  printf("  parameters        %10.1f\n", mib(mem.params));
  printf("  gradients         %10.1f\n", mib(mem.grads));
  printf("  adam m + v        %10.1f", mib(mem.adam));
  if (zero && world > 1) printf("   (of %.1f: 1/%zu per rank)", mib(adam_all), world);
  printf("\n");
  /* bf16 keeps the attention context in bf16. */
  printf("  activations       %10.1f\n",
         mib(precision == GEMM_BF16 ? mem.activations_bf16 : mem.activations));
  printf("  backward scratch  %10.1f\n", mib(mem.scratch));
  if (precision == GEMM_BF16) {
    /* fp32 master weights stay: bf16 adds its copy of them and the
     * buffers the other operands of each product are rounded into. */
    printf("  bf16 weights      %10.1f\n", mib(mem.bf16_weights));
    printf("  bf16 operands     %10.1f\n", mib(mem.bf16_operands));
  }
  /* The reducers: receive buffers (world > 1) and partial sums (A > 1);
   * the lookup rows of the word-embedding gradient (at most one per token
   * of the step over every rank). Upper bounds. */
  printf("  gradient exchange %10.1f\n", mib(xm.arena));
  if (xm.lookup) printf("  lookup rows       %10.1f\n", mib(xm.lookup));
  printf("  total             %10.1f\n", mib(total));
  /* Beyond the total: at a checkpoint, rank 0's background writer copies
   * the parameters and the moments (zero 0), or rank 0 holds one streamed
   * piece of another rank's shard (zero 1). A resume reads tensors into
   * their arenas (or shards) and verifies 4 MiB at a time before the model
   * exists, so it peaks at the total. */
  size_t piece = world > 1 ? TRAIN_CKPT_PIECE_FLOATS * sizeof(float) : 0;
  size_t ckpt = zero ? piece : mem.params + adam_all;
  printf("peak per rank (MiB):\n");
  printf("  at a checkpoint   %10.1f   (rank 0: + %s)\n", mib(total + ckpt),
         zero ? "one streamed piece of the Adam state" : "the writer's copy of parameters and Adam state");
  printf("  at a resume       %10.1f\n", mib(total));
  return CLI_EXIT_OK;
}
