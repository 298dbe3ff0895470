/* `ddpt fill-mask`: the K most probable tokens at each [MASK] of a text,
 * from a checkpoint and its vocab alone; as a table, or one JSON object.
 * The prediction is trainer/predict's; this file parses and prints. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "trainer/blas.h"
#include "trainer/gemm.h"
#include "trainer/predict.h"
#include "util/status.h"

static void print_table(const predict_model *pm, const predict_result *r) {
  printf("input:");
  for (size_t i = 0; i < r->n_ids; i++) printf(" %s", predict_model_token(pm, r->ids[i]));
  printf("\n");
  for (size_t m = 0; m < r->n_masks; m++) {
    printf("\n[MASK] %zu of %zu, position %zu:\n", m + 1, r->n_masks, r->masks[m].position);
    for (size_t i = 0; i < r->masks[m].k; i++) {
      const predict_token *t = &r->masks[m].top[i];
      printf("  %2zu  %-20s %8d  %.6f\n", i + 1, t->token, t->id, (double)t->prob);
    }
  }
}

/* {"tokens": [...], "masks": [{"position": P, "predictions": [{"token", "id",
 * "prob"}, ...]}, ...]}; cJSON escapes whatever bytes a vocab token holds. */
static char *format_json(const predict_model *pm, const predict_result *r) {
  cJSON *root = cJSON_CreateObject();
  cJSON *tokens = cJSON_AddArrayToObject(root, "tokens");
  cJSON *masks = cJSON_AddArrayToObject(root, "masks");
  if (!tokens || !masks) goto fail;
  for (size_t i = 0; i < r->n_ids; i++)
    if (!cJSON_AddItemToArray(tokens, cJSON_CreateString(predict_model_token(pm, r->ids[i])))) goto fail;
  for (size_t m = 0; m < r->n_masks; m++) {
    cJSON *mask = cJSON_CreateObject();
    if (!cJSON_AddItemToArray(masks, mask) ||
        !cJSON_AddNumberToObject(mask, "position", (double)r->masks[m].position))
      goto fail;
    cJSON *preds = cJSON_AddArrayToObject(mask, "predictions");
    if (!preds) goto fail;
    for (size_t i = 0; i < r->masks[m].k; i++) {
      const predict_token *t = &r->masks[m].top[i];
      cJSON *p = cJSON_CreateObject();
      if (!cJSON_AddItemToArray(preds, p) || !cJSON_AddStringToObject(p, "token", t->token) ||
          !cJSON_AddNumberToObject(p, "id", t->id) || !cJSON_AddNumberToObject(p, "prob", (double)t->prob))
        goto fail;
    }
  }
  char *text = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  return text;
fail:
  cJSON_Delete(root);
  return NULL;
}

static int fill_mask(const char *ckpt, const char *vocab, int lowercase, size_t k, int json,
                     int precision, const char *text) {
  char *err = NULL;
  predict_model *pm = NULL;
  predict_result r = {0};
  if (predict_model_open(ckpt, vocab, lowercase, &pm, &err) ||
      predict_model_set_precision(pm, precision, &err) || predict_fill_mask(pm, text, k, &r, &err)) {
    predict_model_close(pm);
    return cli_fail("fill-mask", err);
  }
  int rc = CLI_EXIT_OK;
  if (json) {
    char *out = format_json(pm, &r);
    if (out) printf("%s\n", out);
    else rc = cli_fail("fill-mask", strdup("out of memory formatting JSON"));
    cJSON_free(out);
  } else {
    print_table(pm, &r);
  }
  if (rc == CLI_EXIT_OK && fflush(stdout) != 0)
    rc = cli_fail("fill-mask", strdup("cannot write to standard output"));
  predict_result_clear(&r);
  predict_model_close(pm);
  return rc;
}

int cmd_fill_mask(int argc, char **argv) {
  static const struct option opts[] = {
      {"ckpt", required_argument, NULL, 'c'}, {"vocab", required_argument, NULL, 'v'},
      {"top-k", required_argument, NULL, 'k'}, {"json", no_argument, NULL, 'j'},
      {"cased", no_argument, NULL, 'C'},      {"precision", required_argument, NULL, 'P'},
      {NULL, 0, NULL, 0},
  };
  int precision = GEMM_FP32;
  const char *ckpt = NULL, *vocab = NULL;
  size_t k = 5;
  int json = 0, lowercase = -1;
  opterr = 0;
  optind = 0;
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'c': ckpt = optarg; break;
    case 'v': vocab = optarg; break;
    case 'k':
      if (cli_parse_size("fill-mask", "--top-k", optarg, 1, 1000000, &k) != CLI_EXIT_OK) return CLI_EXIT_USAGE;
      break;
    case 'j': json = 1; break;
    case 'C': lowercase = 0; break;
    case 'P':
      if ((precision = gemm_precision_parse(optarg)) < 0)
        return cli_usage_error("fill-mask", "--precision is fp32 or bf16, not '%s'", optarg);
      break;
    default: return cli_bad_option("fill-mask", argc, argv);
    }
  }
  if (!ckpt) return cli_usage_error("fill-mask", "give --ckpt FILE");
  if (optind == argc)
    return cli_usage_error("fill-mask", "give the text, with [MASK] where a token is to be predicted");
  if (optind + 1 != argc)
    return cli_usage_error("fill-mask", "expected one text argument (quote it), got %d", argc - optind);
  char *err = NULL;
  /* Before any thread exists: may restart ddpt with a better OpenBLAS kernel. */
  if (blas_kernel_ensure(argc, argv, &err)) return cli_fail("fill-mask", err);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  blas_set_threads(cores > 0 ? (int)cores : 1);
  return fill_mask(ckpt, vocab, lowercase, k, json, precision, argv[optind]);
}
