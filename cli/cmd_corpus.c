/* `ddpt corpus info|verify|sample DIR`: print a corpus's manifest, check
 * every record of every shard, or show which samples (and masks) each rank
 * reads step by step, with a data state that can be saved and resumed. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "corpus/corpus.h"
#include "corpus/manifest.h"
#include "corpus/shard_reader.h"
#include "corpus/shard_writer.h"
#include "util/sha256.h"
#include "util/file.h"
#include "util/status.h"

#define STATE_MAGIC "ddpt-corpus-state"

static void print_shards(const char *what, const manifest_shard *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    printf("    %-12s %10llu sequences %12llu tokens   (%s)\n", s[i].name,
           (unsigned long long)s[i].sequences, (unsigned long long)s[i].tokens, what);
}

static int corpus_info(const char *dir) {
  manifest *m = NULL;
  char *err = NULL;
  if (manifest_read(dir, &m, &err)) return cli_fail("corpus", err);
  printf("corpus %s\n", dir);
  printf("  written by:   %s at %s\n", m->tool, m->created);
  printf("  sequences:    %llu of up to %zu tokens, %s\n", (unsigned long long)m->sequences,
         m->seq_len, m->task == MANIFEST_TASK_CLASSIFY ? "one labelled example each"
                     : m->task == MANIFEST_TASK_TAG    ? "one tagged sentence each"
                     : m->nsp                          ? "sentence pairs with NSP labels"
                                                       : "full sentences");
  printf("  task:         %s", manifest_task_name(m->task));
  for (size_t i = 0; i < m->num_labels; i++) printf("%s%s", i ? " " : ", labels: ", m->labels[i]);
  printf("\n");
  printf("  tokens:       %llu in sequences; [UNK] %llu\n", (unsigned long long)m->tokens,
         (unsigned long long)m->unk_tokens);
  printf("  documents:    %llu from %llu bytes of %s-format text (%llu invalid UTF-8 bytes "
         "replaced)\n", (unsigned long long)m->documents, (unsigned long long)m->bytes_in,
         m->input_format, (unsigned long long)m->invalid_utf8_bytes);
  printf("  vocab:        %" PRId64 " tokens, %s, SHA-256 %s\n", m->vocab_size,
         m->lowercase ? "lowercased" : "cased", m->vocab_sha256);
  printf("  special ids:  [CLS] %d [SEP] %d [MASK] %d [PAD] %d [UNK] %d\n", m->cls_id, m->sep_id,
         m->mask_id, m->pad_id, m->unk_id);
  printf("  ids:          %d bytes each; seed %" PRIu64 ", validation fraction %g\n",
         m->id_bytes, m->seed, m->valid_fraction);
  printf("  shards:       %zu training, %zu validation\n", m->num_shards, m->num_valid);
  print_shards("training", m->shards, m->num_shards);
  print_shards("validation", m->valid, m->num_valid);
  manifest_free(m);
  return CLI_EXIT_OK;
}

static int verify_list(const char *dir, const manifest *m, const manifest_shard *s, size_t n,
                       uint64_t *total, char **err) {
  int rc = ST_OK;
  for (size_t i = 0; i < n && !rc; i++) {
    char *path = file_path_join(dir, s[i].name);
    if (!path) return status_set(err, ST_NOMEM, "out of memory verifying %s", dir);
    shard_reader *r = NULL;
    uint64_t tokens = 0;
    rc = shard_reader_open(dir, m, &s[i], &r, err);
    if (!rc) rc = shard_reader_verify(r, m, &tokens, err);
    shard_reader_close(r);
    if (!rc && tokens != s[i].tokens)
      rc = status_set(err, ST_CORRUPT, "shard %s holds %llu tokens, the manifest says %llu", path,
                      (unsigned long long)tokens, (unsigned long long)s[i].tokens);
    free(path);
    *total += tokens;
  }
  return rc;
}

static int check_hash(const char *path, const char *want, const char *what, char **err) {
  uint8_t d[32];
  char hex[65];
  int rc = sha256_file(path, d, err);
  if (rc) return rc;
  sha256_hex(d, hex);
  if (strcmp(hex, want) != 0)
    return status_set(err, ST_MISMATCH, "%s %s has SHA-256 %s, the corpus was sharded with "
                      "SHA-256 %s: %s", what, path, hex, want,
                      strcmp(what, "vocab") == 0 ? "use the corpus's vocab.txt or reshard"
                                                 : "the corpus is damaged; reshard it");
  return ST_OK;
}

static int corpus_verify(const char *dir, const char *vocab) {
  manifest *m = NULL;
  char *err = NULL;
  if (manifest_read(dir, &m, &err)) return cli_fail("corpus", err);
  char *path = file_path_join(dir, MANIFEST_VOCAB_FILE);
  int rc = path ? check_hash(path, m->vocab_sha256, "corpus vocab", &err)
                : status_set(&err, ST_NOMEM, "out of memory verifying %s", dir);
  free(path);
  if (!rc && vocab) rc = check_hash(vocab, m->vocab_sha256, "vocab", &err);
  uint64_t tokens = 0, seqs = 0;
  if (!rc) rc = verify_list(dir, m, m->shards, m->num_shards, &tokens, &err);
  if (!rc) rc = verify_list(dir, m, m->valid, m->num_valid, &tokens, &err);
  for (size_t i = 0; i < m->num_shards; i++) seqs += m->shards[i].sequences;
  for (size_t i = 0; i < m->num_valid; i++) seqs += m->valid[i].sequences;
  if (!rc && (seqs != m->sequences || tokens != m->tokens))
    rc = status_set(&err, ST_CORRUPT, "%s/%s: totals say %llu sequences and %llu tokens, the "
                    "shards hold %llu and %llu", dir, MANIFEST_FILE,
                    (unsigned long long)m->sequences, (unsigned long long)m->tokens,
                    (unsigned long long)seqs, (unsigned long long)tokens);
  if (rc) {
    manifest_free(m);
    return cli_fail("corpus", err);
  }
  printf("corpus %s: ok (%zu training and %zu validation shards, %llu sequences, %llu tokens, "
         "ids below %" PRId64 ", vocab SHA-256 %s)\n", dir, m->num_shards, m->num_valid,
         (unsigned long long)seqs, (unsigned long long)tokens, m->vocab_size, m->vocab_sha256);
  manifest_free(m);
  return CLI_EXIT_OK;
}

/* The state file: a header line, then "shard epoch position" per shard. */
static int state_load(const char *path, corpus *c, char **err) {
  FILE *f = fopen(path, "r");
  if (!f) {
    if (errno == ENOENT) return ST_OK; /* no state yet: start at the beginning */
    return status_set(err, ST_IO, "cannot read state %s: %s", path, strerror(errno));
  }
  size_t n = corpus_num_shards(c), count = 0;
  corpus_cursor *cur = calloc(n, sizeof *cur);
  int rc = ST_OK, version = 0;
  unsigned long long shards = 0;
  if (!cur) {
    fclose(f);
    return status_set(err, ST_NOMEM, "out of memory reading %s", path);
  }
  if (fscanf(f, STATE_MAGIC " %d %llu", &version, &shards) != 2 || version != 1) {
    rc = status_set(err, ST_CORRUPT, "%s is not a ddpt corpus state file", path);
    goto done;
  }
  unsigned long long s, e, p;
  while (!rc && fscanf(f, "%llu %llu %llu", &s, &e, &p) == 3) {
    if (count == n || e > UINT32_MAX) {
      rc = status_set(err, ST_INVALID, "%s holds more or larger cursors than corpus has shards",
                      path);
      break;
    }
    cur[count++] = (corpus_cursor){(uint32_t)s, (uint32_t)e, p};
  }
  if (!rc && !feof(f))
    rc = status_set(err, ST_CORRUPT, "%s: line %zu is not \"shard epoch position\"", path,
                    count + 2);
  if (!rc) rc = corpus_state_set(c, cur, count, err);
  if (rc) status_wrap(err, rc, "state %s", path);
done:
  fclose(f);
  free(cur);
  return rc;
}

static int state_save(const char *path, const corpus *c, char **err) {
  size_t n = corpus_num_shards(c);
  corpus_cursor *cur = calloc(n, sizeof *cur);
  char *text = NULL;
  size_t len = 0;
  FILE *f = cur ? open_memstream(&text, &len) : NULL;
  if (!f) {
    free(cur);
    return status_set(err, ST_NOMEM, "out of memory saving state");
  }
  corpus_state_get(c, cur);
  fprintf(f, STATE_MAGIC " 1 %zu\n", n);
  for (size_t i = 0; i < n; i++)
    fprintf(f, "%u %u %llu\n", cur[i].shard, cur[i].epoch, (unsigned long long)cur[i].position);
  free(cur);
  int rc = fclose(f) == 0 ? file_write_atomic(path, text, len, err)
                          : status_set(err, ST_NOMEM, "out of memory saving state");
  free(text);
  if (rc) status_wrap(err, rc, "cannot write state %s", path);
  return rc;
}

/* One line: "step N:" then shard:index per row, with masks the masked
 * positions and their input ids. */
static void print_batch(uint64_t step, const corpus_batch *b, int masks) {
  printf("step %llu:", (unsigned long long)step);
  for (size_t r = 0; r < b->count; r++) {
    printf(" %u:%llu", b->samples[r].shard, (unsigned long long)b->samples[r].index);
    if (!masks) continue;
    const uint32_t *pos = b->masked + r * b->seq_len;
    const int32_t *in = b->input_ids + r * b->seq_len;
    printf("[");
    for (size_t k = 0; k < b->num_masked[r]; k++)
      printf("%s%u=%d", k ? "," : "", pos[k], in[pos[k]]);
    printf("]");
  }
  printf("\n");
}

static int corpus_sample_cmd(int argc, char **argv) {
  enum { OPT_WORLD = 256, OPT_RANK, OPT_BATCH, OPT_STEPS, OPT_SEED, OPT_STATE, OPT_MASKS,
         OPT_WHOLE, OPT_MAXPRED, OPT_VOCAB };
  static const struct option opts[] = {
      {"world", required_argument, NULL, OPT_WORLD},
      {"rank", required_argument, NULL, OPT_RANK},
      {"batch", required_argument, NULL, OPT_BATCH},
      {"steps", required_argument, NULL, OPT_STEPS},
      {"seed", required_argument, NULL, OPT_SEED},
      {"state", required_argument, NULL, OPT_STATE},
      {"masks", no_argument, NULL, OPT_MASKS},
      {"whole-word", no_argument, NULL, OPT_WHOLE},
      {"max-predictions", required_argument, NULL, OPT_MAXPRED},
      {"vocab", required_argument, NULL, OPT_VOCAB},
      {NULL, 0, NULL, 0},
  };
  corpus_options opt;
  corpus_options_default(&opt);
  uint64_t steps = 1;
  int world = 1, rank = 0, masks = 0, c, usage = CLI_EXIT_OK;
  const char *state = NULL;
  opterr = 0;
  optind = 0;
  while (!usage && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case OPT_WORLD: usage = cli_parse_int("corpus", "--world", optarg, 1, 65536, &world); break;
    case OPT_RANK: usage = cli_parse_int("corpus", "--rank", optarg, 0, 65535, &rank); break;
    case OPT_STEPS:
      usage = cli_parse_u64("corpus", "--steps", optarg, 0, UINT64_MAX, &steps);
      break;
    case OPT_SEED:
      usage = cli_parse_u64("corpus", "--seed", optarg, 0, UINT64_MAX, &opt.seed);
      break;
    case OPT_BATCH:
      usage = cli_parse_size("corpus", "--batch", optarg, 1, 65536, &opt.batch_size);
      break;
    case OPT_MAXPRED:
      /* 0: the default budget; a sequence never holds more than SHARD_MAX_SEQ_LEN. */
      usage = cli_parse_size("corpus", "--max-predictions", optarg, 0, SHARD_MAX_SEQ_LEN,
                             &opt.max_predictions);
      break;
    case OPT_STATE: state = optarg; break;
    case OPT_MASKS: masks = 1; break;
    case OPT_WHOLE: opt.whole_word = 1; break;
    case OPT_VOCAB: opt.vocab_path = optarg; break;
    default: return cli_bad_option("corpus", argc, argv);
    }
  }
  if (usage) return usage;
  if (optind + 1 != argc) return cli_usage_error("corpus", "sample takes one corpus directory");
  if (rank >= world)
    return cli_usage_error("corpus", "--rank must be below --world (got rank %d, world %d)", rank,
                           world);
  corpus *cp = NULL;
  corpus_batch *b = NULL;
  char *err = NULL;
  int rc = corpus_open(argv[optind], rank, world, &opt, &cp, &err);
  if (!rc && state) rc = state_load(state, cp, &err);
  if (!rc) rc = corpus_batch_alloc(opt.batch_size, corpus_manifest(cp)->seq_len, &b, &err);
  for (uint64_t step = 0; !rc && step < steps; step++)
    if (!(rc = corpus_next_batch(cp, b, &err))) print_batch(step, b, masks);
  if (!rc && state) rc = state_save(state, cp, &err);
  corpus_batch_free(b);
  corpus_close(cp);
  return rc ? cli_fail("corpus", err) : CLI_EXIT_OK;
}

int cmd_corpus(int argc, char **argv) {
  if (argc < 2) return cli_usage_error("corpus", "expected info, verify or sample");
  const char *sub = argv[1];
  if (strcmp(sub, "sample") == 0) return corpus_sample_cmd(argc - 1, argv + 1);
  if (strcmp(sub, "info") == 0) {
    if (argc != 3) return cli_usage_error("corpus", "info takes one corpus directory");
    return corpus_info(argv[2]);
  }
  if (strcmp(sub, "verify") == 0) {
    static const struct option opts[] = {{"vocab", required_argument, NULL, 'v'},
                                         {NULL, 0, NULL, 0}};
    const char *vocab = NULL;
    int c;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
      if (c != 'v') return cli_bad_option("corpus", argc - 1, argv + 1);
      vocab = optarg;
    }
    if (optind + 1 != argc - 1) return cli_usage_error("corpus", "verify takes one corpus directory");
    return corpus_verify(argv[optind + 1], vocab);
  }
  return cli_usage_error("corpus", "unknown subcommand '%s': expected info, verify or sample", sub);
}
