/* `ddpt shard`: text files -> a LevelDB corpus (manifest.json + shards),
 * for pretraining or, with --task classify|tag, of labelled examples.
 * Parses options, shows progress on a terminal, prints the summary, and
 * turns Ctrl-C into a clean stop that leaves no manifest behind. */
#include <assert.h>
#include <ftw.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "corpus/manifest.h"
#include "corpus/shard_writer.h"
#include "ddpt_version.h"
#include "util/status.h"

static volatile sig_atomic_t shard_stop;

static void on_signal(int sig) {
  (void)sig;
  shard_stop = 1;
}

/* On a terminal one line is rewritten every second; into a log, a line is
 * added every ten seconds. */
static void show_progress(void *ctx, const shard_progress *p) {
  static double last_line;
  int tty = *(const int *)ctx;
  if (!tty && p->seconds - last_line < 10.0) return;
  last_line = p->seconds;
  double mb = (double)p->bytes_read / 1e6;
  fprintf(stderr, "%sddpt shard: %.1f", tty ? "\r" : "", mb);
  if (p->bytes_total) fprintf(stderr, "/%.1f", (double)p->bytes_total / 1e6);
  fprintf(stderr, " MB read, %llu sequences, %.1f MB/s%s",
          (unsigned long long)(p->sequences + p->valid_sequences),
          p->seconds > 0 ? mb / p->seconds : 0.0, tty ? "   " : "\n");
}

static uint64_t disk_bytes;
static int add_size(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)path;
  (void)ftw;
  if (flag == FTW_F) disk_bytes += (uint64_t)st->st_size;
  return 0;
}

enum { OPT_VOCAB = 256, OPT_OUT, OPT_SHARDS, OPT_SEQ_LEN, OPT_FORMAT, OPT_NSP, OPT_VALID,
       OPT_SEED, OPT_CASED, OPT_THREADS, OPT_OVERWRITE, OPT_TASK, OPT_LABELS, OPT_VALID_FILE,
       OPT_TRUNCATE, OPT_LABEL_ALL };

static const char *valid_file[1]; /* --valid FILE, as opt.valid_inputs */

/* Sets what option c with value arg asks for; CLI_EXIT_USAGE on a bad value. */
static int parse_option(int c, const char *arg, shard_options *opt) {
  switch (c) {
  case OPT_VOCAB: opt->vocab_path = arg; return CLI_EXIT_OK;
  case OPT_OUT: opt->out_dir = arg; return CLI_EXIT_OK;
  case OPT_SHARDS:
    return cli_parse_size("shard", "--shards", arg, 1, SHARD_MAX_SHARDS, &opt->num_shards);
  case OPT_SEQ_LEN:
    return cli_parse_size("shard", "--seq-len", arg, SHARD_MIN_SEQ_LEN, SHARD_MAX_SEQ_LEN,
                          &opt->seq_len);
  case OPT_FORMAT: {
    int f = shard_format_parse(arg);
    if (f < 0)
      return cli_usage_error("shard", "--format must be lines, docs or fortune (pretraining), tsv "
                             "or jsonl (--task classify) or conll (--task tag), got '%s'", arg);
    opt->format = (shard_format)f;
    return CLI_EXIT_OK;
  }
  case OPT_TASK: {
    int t = manifest_task_parse(arg);
    if (t < 0)
      return cli_usage_error("shard", "--task must be pretrain, classify or tag, got '%s'", arg);
    opt->task = (manifest_task)t;
    return CLI_EXIT_OK;
  }
  case OPT_LABELS: opt->labels_path = arg; return CLI_EXIT_OK;
  case OPT_VALID_FILE:
    valid_file[0] = arg;
    opt->valid_inputs = valid_file;
    opt->num_valid_inputs = 1;
    return CLI_EXIT_OK;
  case OPT_TRUNCATE: opt->truncate = 1; return CLI_EXIT_OK;
  case OPT_LABEL_ALL: opt->label_all_pieces = 1; return CLI_EXIT_OK;
  case OPT_NSP: opt->nsp = 1; return CLI_EXIT_OK;
  case OPT_VALID:
    /* 1 itself is refused by shard_writer_run: no training text would be left. */
    return cli_parse_double("shard", "--valid-fraction", arg, 0, 1, &opt->valid_fraction);
  case OPT_SEED: return cli_parse_u64("shard", "--seed", arg, 0, UINT64_MAX, &opt->seed);
  case OPT_CASED: opt->lowercase = 0; return CLI_EXIT_OK;
  case OPT_THREADS:
    return cli_parse_int("shard", "--threads", arg, 1, SHARD_MAX_THREADS, &opt->threads);
  case OPT_OVERWRITE: opt->overwrite = 1; return CLI_EXIT_OK;
  }
  assert(!"an option in opts without a case here");
  return CLI_EXIT_USAGE;
}

/* Fills opt from the command line: the options, then the inputs. */
static int parse_args(int argc, char **argv, shard_options *opt) {
  static const struct option opts[] = {
      {"vocab", required_argument, NULL, OPT_VOCAB},
      {"out", required_argument, NULL, OPT_OUT},
      {"shards", required_argument, NULL, OPT_SHARDS},
      {"seq-len", required_argument, NULL, OPT_SEQ_LEN},
      {"format", required_argument, NULL, OPT_FORMAT},
      {"nsp", no_argument, NULL, OPT_NSP},
      {"valid-fraction", required_argument, NULL, OPT_VALID},
      {"seed", required_argument, NULL, OPT_SEED},
      {"cased", no_argument, NULL, OPT_CASED},
      {"threads", required_argument, NULL, OPT_THREADS},
      {"overwrite", no_argument, NULL, OPT_OVERWRITE},
      {"task", required_argument, NULL, OPT_TASK},
      {"labels", required_argument, NULL, OPT_LABELS},
      {"valid", required_argument, NULL, OPT_VALID_FILE},
      {"truncate", no_argument, NULL, OPT_TRUNCATE},
      {"label-all-pieces", no_argument, NULL, OPT_LABEL_ALL},
      {NULL, 0, NULL, 0},
  };
  int have_shards = 0, have_seq_len = 0, have_format = 0, c, usage;
  opterr = 0;
  optind = 0;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c < OPT_VOCAB) return cli_bad_option("shard", argc, argv); /* '?' or ':' */
    if ((usage = parse_option(c, optarg, opt))) return usage;
    have_shards |= c == OPT_SHARDS;
    have_seq_len |= c == OPT_SEQ_LEN;
    have_format |= c == OPT_FORMAT;
  }
  /* Each task has its own default format; classify goes by file names. */
  if (!have_format && opt->task == MANIFEST_TASK_CLASSIFY) opt->format = SHARD_FORMAT_DETECT;
  if (!have_format && opt->task == MANIFEST_TASK_TAG) opt->format = SHARD_FORMAT_CONLL;
  if (!opt->vocab_path) return cli_usage_error("shard", "--vocab FILE is required");
  if (!opt->out_dir) return cli_usage_error("shard", "--out DIR is required");
  if (!have_shards) return cli_usage_error("shard", "--shards N is required");
  if (!have_seq_len) return cli_usage_error("shard", "--seq-len L is required");
  if (optind >= argc)
    return cli_usage_error("shard", "no input given: name files, directories or -");
  opt->inputs = (const char *const *)(argv + optind);
  opt->num_inputs = (size_t)(argc - optind);
  return CLI_EXIT_OK;
}

/* Runs the writer with SIGINT and SIGTERM turned into a clean stop. */
static int run_stoppable(const shard_options *opt, shard_progress *s, char **err) {
  struct sigaction sa, old_int, old_term;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  int rc = shard_writer_run(opt, s, err);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  return rc;
}

/* A labelled corpus's label set and truncations, from its manifest. */
static void print_labels(const shard_options *opt) {
  manifest *m = NULL;
  char *err = NULL;
  if (manifest_read(opt->out_dir, &m, &err)) {
    cli_fail("shard", err);
    return;
  }
  printf("  labels:     %zu:", m->num_labels);
  for (size_t i = 0; i < m->num_labels && i < 20; i++) printf(" %s", m->labels[i]);
  printf("%s\n", m->num_labels > 20 ? " ..." : "");
  printf("  truncated:  %llu %s\n", (unsigned long long)m->truncated,
         opt->task == MANIFEST_TASK_TAG ? "sentences" : "examples");
  manifest_free(m);
}

static void print_summary(const shard_options *opt, const shard_progress *s) {
  disk_bytes = 0;
  nftw(opt->out_dir, add_size, 16, FTW_PHYS);
  double mb = (double)s->bytes_read / 1e6;
  const char *unit = opt->task == MANIFEST_TASK_PRETRAIN  ? "documents: "
                     : opt->task == MANIFEST_TASK_CLASSIFY ? "examples:  "
                                                           : "sentences: ";
  printf("ddpt shard: wrote corpus %s\n", opt->out_dir);
  printf("  %s %llu training, %llu validation\n", unit, (unsigned long long)s->documents,
         (unsigned long long)s->valid_documents);
  if (opt->task != MANIFEST_TASK_PRETRAIN) print_labels(opt);
  printf("  sequences:  %llu in %zu shards of seq_len %zu%s, %llu validation\n",
         (unsigned long long)s->sequences, opt->num_shards, opt->seq_len,
         opt->nsp ? " (NSP pairs)" : "", (unsigned long long)s->valid_sequences);
  printf("  tokens:     %llu in training sequences; text gave %llu, [UNK] %.3f%%\n",
         (unsigned long long)s->tokens, (unsigned long long)s->text_tokens,
         s->text_tokens ? 100.0 * (double)s->unk / (double)s->text_tokens : 0.0);
  printf("  invalid UTF-8: %llu bytes replaced\n", (unsigned long long)s->invalid_utf8_bytes);
  /* Labelled examples are tokenized on the calling thread (they are few). */
  int threads = opt->task == MANIFEST_TASK_PRETRAIN ? opt->threads : 1;
  printf("  input:      %.2f MB in %.2f s (%.2f MB/s, %d tokenizer thread%s)\n", mb, s->seconds,
         s->seconds > 0 ? mb / s->seconds : 0.0, threads, threads == 1 ? "" : "s");
  printf("  on disk:    %.2f MB (%.2f bytes per text token)\n", (double)disk_bytes / 1e6,
         s->text_tokens ? (double)disk_bytes / (double)s->text_tokens : 0.0);
  if (opt->valid_fraction > 0 && s->valid_sequences == 0)
    fprintf(stderr, "ddpt shard: warning: --valid-fraction %g selected no %s; the corpus "
            "has no validation shard\n", opt->valid_fraction,
            opt->task == MANIFEST_TASK_PRETRAIN ? "document" : "example");
}

int cmd_shard(int argc, char **argv) {
  shard_options opt;
  shard_options_default(&opt);
  int usage = parse_args(argc, argv, &opt);
  if (usage) return usage;
  opt.tool = "ddpt " DDPT_VERSION " (git " DDPT_GIT_REVISION ")";
  opt.stop = &shard_stop;
  int tty = isatty(STDERR_FILENO);
  opt.progress = show_progress;
  opt.progress_ctx = &tty;
  shard_progress s;
  char *err = NULL;
  int rc = run_stoppable(&opt, &s, &err);
  if (tty) fputc('\n', stderr);
  if (rc == ST_INTERRUPTED) {
    cli_fail("shard", err);
    return CLI_EXIT_INTERRUPTED;
  }
  if (rc) return cli_fail("shard", err);
  print_summary(&opt, &s);
  return CLI_EXIT_OK;
}
