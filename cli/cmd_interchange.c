/* `ddpt import` and `ddpt export`: models in and out of ddpt. The reading,
 * mapping and writing are trainer/interchange's; this file parses options
 * and prints what was loaded, renamed, skipped and left out. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "storage/safetensors.h"
#include "trainer/interchange.h"
#include "util/status.h"

/* At most this many names of one kind are listed; the rest are counted. */
enum { LIST_MAX = 12 };

static void print_list(const char *title, char *const *items, size_t n) {
  if (!n) return;
  printf("%s (%zu):\n", title, n);
  for (size_t i = 0; i < n && i < LIST_MAX; i++) printf("  %s\n", items[i]);
  if (n > LIST_MAX) printf("  ... and %zu more\n", n - LIST_MAX);
}

static void print_report(const char *src, const xchg_model *m) {
  const xchg_report *r = &m->report;
  char desc[256];
  bert_config_describe(&m->cfg, desc, sizeof desc);
  printf("read %s (%s): %s%s\n", src, r->format, desc, m->cfg.nsp ? ", with the next-sentence head" : "");
  printf("loaded %zu tensor%s", r->loaded, r->loaded == 1 ? "" : "s");
  if (r->renamed) printf(", %zu under legacy or prefix-less names", r->renamed);
  printf("\n");
  if (m->has_optim) printf("Adam moments (adam_m, adam_v) imported as /optim/m and /optim/v\n");
  if (r->optimizer) printf("skipped %zu optimizer slots and step counters (adam_m, adam_v, global_step)\n", r->optimizer);
  for (size_t i = 0; i < r->n_notes; i++) printf("%s\n", r->notes[i]);
  print_list("unused: the model has no place for these", r->unused, r->n_unused);
  print_list("fresh: not in the source, initialised", r->fresh, r->n_fresh);
  printf("vocab: %s, %s\n", m->vocab ? "recorded" : "none (give --vocab to record one)",
         m->lowercase ? "lowercased" : "cased");
}

typedef struct {
  const char *out, *vocab, *config;
  int cased, overwrite, dtype, with_optimizer;
  int arch;
} xchg_args;

/* Parses the options both commands share; SRC is the one positional. */
static int parse(const char *cmd, int argc, char **argv, xchg_args *a, const char **src) {
  static const struct option opts[] = {
      {"out", required_argument, NULL, 'o'},    {"vocab", required_argument, NULL, 'v'},
      {"config", required_argument, NULL, 'c'}, {"cased", no_argument, NULL, 'C'},
      {"arch", required_argument, NULL, 'a'},   {"dtype", required_argument, NULL, 'd'},
      {"overwrite", no_argument, NULL, 'w'},    {"with-optimizer", no_argument, NULL, 'O'},
      {NULL, 0, NULL, 0},
  };
  int is_export = strcmp(cmd, "export") == 0;
  opterr = 0;
  optind = 0;
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'o': a->out = optarg; break;
    case 'v': a->vocab = optarg; break;
    case 'c': a->config = optarg; break;
    case 'C': a->cased = 1; break;
    case 'a':
      if (!is_export) return cli_usage_error(cmd, "--arch belongs to ddpt export");
      if ((a->arch = xchg_arch_parse(optarg)) <= XCHG_ARCH_AUTO)
        return cli_usage_error(cmd, "--arch: '%s' is not BertForPreTraining, BertForMaskedLM, "
                               "BertForSequenceClassification or BertForTokenClassification", optarg);
      break;
    case 'd':
      if (!is_export) return cli_usage_error(cmd, "--dtype belongs to ddpt export");
      if (strcmp(optarg, "f32") == 0) a->dtype = SAFET_F32;
      else if (strcmp(optarg, "bf16") == 0) a->dtype = SAFET_BF16;
      else if (strcmp(optarg, "f16") == 0) a->dtype = SAFET_F16;
      else return cli_usage_error(cmd, "--dtype: '%s' is not f32, bf16 or f16", optarg);
      break;
    case 'w':
      if (!is_export) return cli_usage_error(cmd, "--overwrite belongs to ddpt export");
      a->overwrite = 1;
      break;
    case 'O':
      if (is_export) return cli_usage_error(cmd, "--with-optimizer belongs to ddpt import");
      a->with_optimizer = 1;
      break;
    default: return cli_bad_option(cmd, argc, argv);
    }
  }
  if (optind == argc) return cli_usage_error(cmd, "give the model to read (SRC)");
  if (optind + 1 != argc) return cli_usage_error(cmd, "expected one SRC, got %d", argc - optind);
  if (!a->out) return cli_usage_error(cmd, is_export ? "give --out DIR" : "give --out CKPT.h5");
  *src = argv[optind];
  return CLI_EXIT_OK;
}

static int read_model(const char *cmd, const char *src, const xchg_args *a, xchg_model *m) {
  xchg_read_opts o = {.vocab_path = a->vocab, .config_path = a->config, .cased = a->cased,
                      .with_optimizer = a->with_optimizer, .seed = 0};
  char *err = NULL;
  if (xchg_read(src, &o, m, &err)) return cli_fail(cmd, err);
  print_report(src, m);
  return CLI_EXIT_OK;
}

int cmd_import(int argc, char **argv) {
  xchg_args a = {.dtype = SAFET_F32};
  const char *src = NULL;
  int rc = parse("import", argc, argv, &a, &src);
  if (rc != CLI_EXIT_OK) return rc;
  xchg_model m;
  if ((rc = read_model("import", src, &a, &m)) != CLI_EXIT_OK) return rc;
  char *err = NULL;
  if (xchg_write_ckpt(&m, src, a.out, &err)) rc = cli_fail("import", err);
  else printf("wrote %s\n", a.out);
  xchg_model_clear(&m);
  return rc;
}

int cmd_export(int argc, char **argv) {
  xchg_args a = {.dtype = SAFET_F32};
  const char *src = NULL;
  int rc = parse("export", argc, argv, &a, &src);
  if (rc != CLI_EXIT_OK) return rc;
  char *err = NULL;
  if (xchg_check_out_dir(a.out, a.overwrite, &err)) return cli_fail("export", err);
  xchg_model m;
  if ((rc = read_model("export", src, &a, &m)) != CLI_EXIT_OK) return rc;
  xchg_export_opts eo = {.arch = (xchg_arch)a.arch, .dtype = a.dtype, .overwrite = a.overwrite};
  xchg_arch written;
  if (xchg_write_hf(&m, a.out, &eo, &written, &err)) rc = cli_fail("export", err);
  else printf("wrote %s (%s, %s)\n", a.out, xchg_arch_name(written), safet_dtype_name((safet_dtype)a.dtype));
  xchg_model_clear(&m);
  return rc;
}
