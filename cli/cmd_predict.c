/* `ddpt predict`: a fine-tuned checkpoint's predictions for each line of a
 * file or standard input, in batches: a class and its probabilities
 * (classify), or words with tags and the spans they form (tag); as text or
 * JSON lines. The prediction is trainer/predict's; this file reads lines,
 * batches them and prints. Output line i answers input line i: a blank
 * input line gets a blank line (JSON: null). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "corpus/tok_lines.h"
#include "trainer/blas.h"
#include "trainer/gemm.h"
#include "trainer/predict.h"
#include "util/status.h"

#define CMD "predict"

typedef struct options {
  const char *ckpt, *vocab, *input;
  int json, lowercase;
  size_t top_k, batch, seq_len;
} options;

/* Up to `batch` lines to predict, plus the blank lines among them. */
typedef struct batch {
  char **lines;  /* (n) copies; NULL for a blank line */
  size_t *line_no; /* (n) */
  size_t n, filled, cap;
  /* The inputs to predict and their results. */
  const char **texts;     /* (filled) */
  int32_t *label;         /* (filled) classify */
  float *probs;           /* (filled, K) classify */
  int *truncated;         /* (filled) classify */
  predict_tagged *tagged; /* (filled) tag */
} batch;

static int is_blank(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (!strchr(" \t\r\n\f\v", s[i])) return 0;
  return 1;
}

static int batch_init(batch *b, size_t cap, size_t K) {
  *b = (batch){.cap = cap};
  /* Blank lines take room too: at most cap of each. */
  b->lines = calloc(2 * cap, sizeof *b->lines);
  b->line_no = calloc(2 * cap, sizeof *b->line_no);
  b->texts = calloc(cap, sizeof *b->texts);
  b->label = calloc(cap, sizeof *b->label);
  b->probs = calloc(cap * K, sizeof *b->probs);
  b->truncated = calloc(cap, sizeof *b->truncated);
  b->tagged = calloc(cap, sizeof *b->tagged);
  return b->lines && b->line_no && b->texts && b->label && b->probs && b->truncated && b->tagged;
}

static void batch_empty(batch *b) {
  for (size_t i = 0; i < b->n; i++) free(b->lines[i]);
  for (size_t i = 0; i < b->filled; i++) predict_tagged_clear(&b->tagged[i]);
  b->n = b->filled = 0;
}

static void batch_free(batch *b) {
  batch_empty(b);
  free(b->lines);
  free(b->line_no);
  free(b->texts);
  free(b->label);
  free(b->probs);
  free(b->truncated);
  free(b->tagged);
}

/* The K best labels, most probable first; equal probabilities in id order. */
static void top_labels(size_t *order, const float *p, size_t K, size_t k) {
  for (size_t i = 0; i < k; i++) {
    size_t best = SIZE_MAX;
    for (size_t j = 0; j < K; j++) {
      int taken = 0;
      for (size_t t = 0; t < i && !taken; t++) taken = order[t] == j;
      if (!taken && (best == SIZE_MAX || p[j] > p[best])) best = j;
    }
    order[i] = best;
  }
}

/* classify, text: "label:prob" of the top K, TAB-separated. */
static void print_class(const predict_model *pm, const float *p, size_t K, size_t k, size_t *order) {
  top_labels(order, p, K, k);
  for (size_t i = 0; i < k; i++)
    printf("%s%s:%.6f", i ? "\t" : "", predict_model_label(pm, (int32_t)order[i]), (double)p[order[i]]);
  printf("\n");
}

/* p to nine significant digits, which read back as the same float: JSON
 * shows 0.530787349, not the 17 digits of the double it widens to. */
static double json_prob(float p) {
  char text[32];
  snprintf(text, sizeof text, "%.9g", (double)p);
  return strtod(text, NULL);
}

/* {"label", "probs": {NAME: p}, "top": [{"label", "prob"}], "truncated"} */
static cJSON *class_json(const predict_model *pm, int32_t label, const float *p, size_t K, size_t k,
                         int truncated, size_t *order) {
  cJSON *o = cJSON_CreateObject();
  cJSON *probs = NULL;
  if (!cJSON_AddStringToObject(o, "label", predict_model_label(pm, label)) ||
      !(probs = cJSON_AddObjectToObject(o, "probs")))
    goto fail;
  for (size_t j = 0; j < K; j++)
    if (!cJSON_AddNumberToObject(probs, predict_model_label(pm, (int32_t)j), json_prob(p[j]))) goto fail;
  cJSON *top = cJSON_AddArrayToObject(o, "top");
  if (!top) goto fail;
  top_labels(order, p, K, k);
  for (size_t i = 0; i < k; i++) {
    cJSON *t = cJSON_CreateObject();
    if (!cJSON_AddItemToArray(top, t) ||
        !cJSON_AddStringToObject(t, "label", predict_model_label(pm, (int32_t)order[i])) ||
        !cJSON_AddNumberToObject(t, "prob", json_prob(p[order[i]])))
      goto fail;
  }
  if (!cJSON_AddBoolToObject(o, "truncated", truncated)) goto fail;
  return o;
fail:
  cJSON_Delete(o);
  return NULL;
}

static const char *span_type(const predict_model *pm, const task_chunk *c) {
  return c->type >= 0 ? predict_model_tagset(pm)->types[c->type] : "";
}

/* tag, text: "word/TAG ..." then, TAB-separated, each span as "text/TYPE"
 * (just "text" for a tag set without types, as BMES). */
static void print_tagged(const predict_model *pm, const char *line, const predict_tagged *t) {
  for (size_t w = 0; w < t->n_words; w++)
    printf("%s%.*s/%s", w ? " " : "", (int)(t->end[w] - t->begin[w]), line + t->begin[w],
           predict_model_label(pm, t->tags[w]));
  for (size_t s = 0; s < t->n_spans; s++) {
    const task_chunk *c = &t->spans[s];
    const char *type = span_type(pm, c);
    printf("\t%.*s%s%s", (int)(t->end[c->end - 1] - t->begin[c->begin]), line + t->begin[c->begin],
           *type ? "/" : "", type);
  }
  printf("\n");
}

/* {"tokens", "tags", "spans": [{"type", "start", "end", "text"}], "truncated"}:
 * start and end index tokens, end exclusive. */
static cJSON *tagged_json(const predict_model *pm, const char *line, const predict_tagged *t) {
  cJSON *o = cJSON_CreateObject();
  cJSON *tokens = cJSON_AddArrayToObject(o, "tokens"), *tags = cJSON_AddArrayToObject(o, "tags");
  cJSON *spans = cJSON_AddArrayToObject(o, "spans");
  if (!tokens || !tags || !spans) goto fail;
  for (size_t w = 0; w < t->n_words; w++) {
    char *word = strndup(line + t->begin[w], t->end[w] - t->begin[w]);
    cJSON *item = word ? cJSON_CreateString(word) : NULL;
    free(word);
    if (!cJSON_AddItemToArray(tokens, item) ||
        !cJSON_AddItemToArray(tags, cJSON_CreateString(predict_model_label(pm, t->tags[w]))))
      goto fail;
  }
  for (size_t s = 0; s < t->n_spans; s++) {
    const task_chunk *c = &t->spans[s];
    cJSON *span = cJSON_CreateObject();
    char *text = strndup(line + t->begin[c->begin], t->end[c->end - 1] - t->begin[c->begin]);
    int ok = text && cJSON_AddItemToArray(spans, span) && cJSON_AddStringToObject(span, "type", span_type(pm, c)) &&
             cJSON_AddNumberToObject(span, "start", (double)c->begin) &&
             cJSON_AddNumberToObject(span, "end", (double)c->end) && cJSON_AddStringToObject(span, "text", text);
    free(text);
    if (!ok) goto fail;
  }
  if (!cJSON_AddBoolToObject(o, "truncated", t->n_words < t->words_in_line)) goto fail;
  return o;
fail:
  cJSON_Delete(o);
  return NULL;
}

static int print_json(cJSON *o) {
  char *text = o ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  if (!text) return cli_fail(CMD, strdup("out of memory formatting JSON"));
  printf("%s\n", text);
  cJSON_free(text);
  return CLI_EXIT_OK;
}

/* Predicts the batch's lines and prints every line's answer in order. */
static int flush_batch(predict_model *pm, const options *o, const char *name, batch *b, size_t *order) {
  const bert_config *cfg = predict_model_config(pm);
  size_t K = cfg->num_labels, k = o->top_k < K ? o->top_k : K, bad = 0;
  char *err = NULL;
  int rc = ST_OK;
  for (size_t i = 0; i < b->n; i++)
    if (b->lines[i]) b->texts[b->filled++] = b->lines[i];
  if (b->filled && cfg->task == BERT_TASK_CLASSIFY)
    rc = predict_classify(b->label, b->probs, b->truncated, &bad, pm, b->texts, b->filled, &err);
  else if (b->filled)
    rc = predict_tag(b->tagged, &bad, pm, b->texts, b->filled, &err);
  if (rc) {
    if (bad < b->filled) {
      size_t at = 0;
      for (size_t i = 0, seen = 0; i < b->n; i++)
        if (b->lines[i] && seen++ == bad) at = b->line_no[i];
      status_wrap(&err, rc, "%s:%zu", name, at);
    }
    b->filled = 0;
    return cli_fail(CMD, err);
  }
  int out = CLI_EXIT_OK;
  for (size_t i = 0, j = 0; i < b->n && out == CLI_EXIT_OK; i++) {
    if (!b->lines[i]) {
      printf(o->json ? "null\n" : "\n");
      continue;
    }
    if (cfg->task == BERT_TASK_CLASSIFY && o->json)
      out = print_json(class_json(pm, b->label[j], b->probs + j * K, K, k, b->truncated[j], order));
    else if (cfg->task == BERT_TASK_CLASSIFY)
      print_class(pm, b->probs + j * K, K, k, order);
    else if (o->json)
      out = print_json(tagged_json(pm, b->lines[i], &b->tagged[j]));
    else
      print_tagged(pm, b->lines[i], &b->tagged[j]);
    j++;
  }
  return out;
}

static int predict_lines(predict_model *pm, const options *o) {
  const char *path = o->input ? o->input : "-";
  const char *name = strcmp(path, "-") == 0 ? "stdin" : path;
  size_t K = predict_model_config(pm)->num_labels;
  char *err = NULL;
  tok_lines *r = NULL;
  batch b;
  size_t *order = malloc(K * sizeof *order);
  int out = CLI_EXIT_OK;
  if (!batch_init(&b, o->batch, K) || !order) {
    out = cli_fail(CMD, strdup("out of memory"));
    goto done;
  }
  if (tok_lines_open(path, TOK_LINES_MAX_BYTES, &r, &err)) {
    out = cli_fail(CMD, err);
    goto done;
  }
  for (size_t line_no = 1;; line_no++) {
    const char *line;
    size_t len;
    if (tok_lines_next(r, &line, &len, &err)) {
      out = cli_fail(CMD, err);
      break;
    }
    if (line) {
      char *copy = NULL;
      if (!is_blank(line, len) && !(copy = strndup(line, len))) {
        out = cli_fail(CMD, strdup("out of memory"));
        break;
      }
      b.lines[b.n] = copy;
      b.line_no[b.n++] = line_no;
      b.filled += copy != NULL;
    }
    /* filled counts the inputs until flush_batch recounts them. */
    if (!line || b.filled == b.cap || b.n == 2 * b.cap) {
      b.filled = 0;
      out = flush_batch(pm, o, name, &b, order);
      batch_empty(&b);
      if (out != CLI_EXIT_OK || !line) break;
    }
  }
  if (out == CLI_EXIT_OK && fflush(stdout) != 0) out = cli_fail(CMD, strdup("cannot write to standard output"));
done:
  tok_lines_close(r);
  batch_free(&b);
  free(order);
  return out;
}

int cmd_predict(int argc, char **argv) {
  static const struct option opts[] = {
      {"ckpt", required_argument, NULL, 'c'},    {"vocab", required_argument, NULL, 'v'},
      {"top-k", required_argument, NULL, 'k'},   {"json", no_argument, NULL, 'j'},
      {"batch", required_argument, NULL, 'b'},   {"threads", required_argument, NULL, 't'},
      {"seq-len", required_argument, NULL, 'L'}, {"cased", no_argument, NULL, 'C'},
      {"precision", required_argument, NULL, 'P'}, {NULL, 0, NULL, 0},
  };
  int precision = GEMM_FP32;
  options o = {.lowercase = -1, .top_k = 1, .batch = 32};
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  int threads = cores > 0 ? (int)cores : 1;
  opterr = 0;
  optind = 0;
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'c': o.ckpt = optarg; break;
    case 'v': o.vocab = optarg; break;
    case 'k':
      if (cli_parse_size(CMD, "--top-k", optarg, 1, 1000000, &o.top_k)) return CLI_EXIT_USAGE;
      break;
    case 'j': o.json = 1; break;
    case 'b':
      if (cli_parse_size(CMD, "--batch", optarg, 1, 4096, &o.batch)) return CLI_EXIT_USAGE;
      break;
    case 't':
      if (cli_parse_int(CMD, "--threads", optarg, 1, 1024, &threads)) return CLI_EXIT_USAGE;
      break;
    case 'L':
      if (cli_parse_size(CMD, "--seq-len", optarg, 8, 1000000, &o.seq_len)) return CLI_EXIT_USAGE;
      break;
    case 'C': o.lowercase = 0; break;
    case 'P':
      if ((precision = gemm_precision_parse(optarg)) < 0)
        return cli_usage_error(CMD, "--precision is fp32 or bf16, not '%s'", optarg);
      break;
    default: return cli_bad_option(CMD, argc, argv);
    }
  }
  if (!o.ckpt) return cli_usage_error(CMD, "give --ckpt FILE, a fine-tuned checkpoint");
  if (optind + 1 < argc) return cli_usage_error(CMD, "expected at most one input FILE (or -), got %d", argc - optind);
  o.input = optind < argc ? argv[optind] : NULL;
  char *err = NULL;
  /* Before any thread exists: may restart ddpt with a better OpenBLAS kernel. */
  if (blas_kernel_ensure(argc, argv, &err)) return cli_fail(CMD, err);
  blas_set_threads(threads);
  predict_model *pm = NULL;
  if (predict_model_open(o.ckpt, o.vocab, o.lowercase, &pm, &err) || predict_model_check_task(pm, &err) ||
      predict_model_set_precision(pm, precision, &err) ||
      (o.seq_len && predict_model_set_seq_len(pm, o.seq_len, &err))) {
    predict_model_close(pm);
    return cli_fail(CMD, err);
  }
  int rc = predict_lines(pm, &o);
  predict_model_close(pm);
  return rc;
}
