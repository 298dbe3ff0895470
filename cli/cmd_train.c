/* `ddpt train` and `ddpt finetune`: run (or resume) pretraining or
 * fine-tuning, one loop (trainer/train.h); under mpirun every rank runs the
 * command and is one data-parallel replica. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "comm/comm.h"
#include "storage/ckpt.h"
#include "trainer/blas.h"
#include "trainer/gemm.h"
#include "trainer/metrics.h"
#include "trainer/train.h"
#include "util/log.h"
#include "util/status.h"

static volatile sig_atomic_t g_stop = 0;
/* "train" or "finetune": the command, for messages. */
static const char *g_command = "train";

/* The first SIGINT/SIGTERM/SIGUSR1 asks for a checkpoint at the end of the
 * step; a second one ends the process at once, removing the temporary file
 * of a checkpoint being written (LATEST still names the previous one).
 * SIGUSR1 is the one for a launcher: Open MPI's mpirun passes it on to every
 * rank and goes on running, where SIGINT/SIGTERM make it abort the job (it
 * stops reading the ranks' output and kills them a second after passing
 * the signal on, mid-checkpoint for any real model). */
static void on_stop_signal(int sig) {
  if (g_stop) {
    ckpt_dir_remove_temp_now();
    _exit(128 + sig);
  }
  g_stop = 1;
  static const char train[] = "\nddpt train: stopping after this step (checkpoint follows); signal again to abort now\n",
                    finetune[] = "\nddpt finetune: stopping after this step (checkpoint follows); signal again to "
                                 "abort now\n";
  int ft = g_command[0] == 'f';
  ssize_t ignored = write(STDERR_FILENO, ft ? finetune : train, ft ? sizeof finetune - 1 : sizeof train - 1);
  (void)ignored;
}

/* Rank 0's output: the plan, then a progress line per step (redrawn in
 * place on a terminal), then the summary. */
typedef struct progress {
  int live;      /* redraw one line on a terminal */
  int line_open; /* a live line is drawn and not yet ended */
} progress;

static void print_plan(void *ctx, const train_plan *p) {
  (void)ctx;
  printf("# resolved config (also in %s/config.ini)\n%s\n", p->run_dir, p->config_text);
  printf("model: %s, %zu parameters\n", p->model, p->param_count);
  printf("world: %d rank(s) x %d thread(s), %zu x %zu x %zu sequences per step (rank x accumulation x batch) "
         "of %zu tokens\n",
         p->world, p->threads, (size_t)p->world, p->accumulation, p->batch_size, p->seq_len);
  fflush(stdout);
}

static void end_live_line(progress *pr) {
  if (pr->line_open) metrics_progress_end(stdout, 1);
  pr->line_open = 0;
}

static void print_step(void *ctx, const metrics_step *m, int logged, int final) {
  progress *pr = ctx;
  if (pr->live || logged) metrics_progress(stdout, pr->live, m);
  pr->line_open = pr->live;
  if (final) end_live_line(pr);
}

static void print_summary(const train_summary *s, const char *run_dir) {
  printf("done: %llu steps, %llu tokens, %.1f s; %llu steps skipped; last step waited %.3f s on %zu gradient "
         "bucket(s)\n",
         (unsigned long long)s->steps, (unsigned long long)s->tokens, s->seconds, (unsigned long long)s->skipped,
         s->comm_wait_s, s->buckets);
  if (s->has_best)
    printf("best: step %llu, %s %.4f (%s/BEST; scores in %s/report.json)\n", (unsigned long long)s->best_step,
           s->best_metric, s->best_value, run_dir, run_dir);
}

/* Fills req from the command line, the --set values into overrides (argc
 * slots). CLI_EXIT_OK, or the code of the usage error it printed. */
static int parse_args(int argc, char **argv, train_request *req, char **overrides) {
  static const struct option opts[] = {
      {"set", required_argument, NULL, 's'},     {"run-dir", required_argument, NULL, 'r'},
      {"resume", required_argument, NULL, 'R'},  {"threads", required_argument, NULL, 't'},
      {"init", required_argument, NULL, 'i'},    {"precision", required_argument, NULL, 'P'},
      {NULL, 0, NULL, 0},
  };
  /* --precision P is --set train.precision=P, after any --set. */
  static char precision_set[40];
  const char *precision = NULL;
  size_t n_over = 0;
  opterr = 0;
  optind = 0;
  int c;
  /* Options may follow CONFIG, as in `ddpt train CONFIG --set ...`. */
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 's': overrides[n_over++] = optarg; break;
    case 'r': req->run_dir = optarg; break;
    case 'R':
      req->run_dir = optarg;
      req->resume = 1;
      break;
    case 'i': req->init = optarg; break;
    case 't':
      if (cli_parse_int(g_command, "--threads", optarg, 1, 1024, &req->threads) != CLI_EXIT_OK) return CLI_EXIT_USAGE;
      break;
    case 'P':
      if (gemm_precision_parse(optarg) < 0)
        return cli_usage_error(g_command, "--precision is fp32 or bf16, not '%s'", optarg);
      precision = optarg;
      break;
    default: return cli_bad_option(g_command, argc, argv);
    }
  }
  if (precision) {
    snprintf(precision_set, sizeof precision_set, "train.precision=%s", precision);
    overrides[n_over++] = precision_set;
  }
  if (optind < argc) req->config_path = argv[optind++];
  if (optind < argc) return cli_usage_error(g_command, "unexpected argument '%s'", argv[optind]);
  if (!req->config_path && !req->resume)
    return cli_usage_error(g_command, "give a CONFIG file (e.g. configs/bert-tiny.ini) or --resume RUN_DIR");
  if (req->init && req->resume)
    return cli_usage_error(g_command, "--init starts a new run from a model; --resume continues a run: give one");
  if (req->finetune && !req->init && !req->resume)
    return cli_usage_error(g_command, "fine-tuning starts from a trained model: give --init MODEL (a ddpt "
                           "checkpoint, a HuggingFace directory or a TF checkpoint), or --resume RUN_DIR");
  req->overrides = overrides;
  req->n_overrides = n_over;
  return CLI_EXIT_OK;
}

static void set_stop_signals(void (*handler)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
}

/* Reports how train_run ended (rc, err: its status and message, freed
 * here), ends this rank's part of the job and returns the exit code. */
static int finish(int rc, const train_summary *s, const char *run_dir, char *err) {
  int rank = comm_rank(), world = comm_world_size();
  if (rc == ST_OK || rc == ST_INTERRUPTED) {
    if (rank == 0 && rc == ST_OK) print_summary(s, run_dir);
    if (rank == 0 && rc == ST_INTERRUPTED) fprintf(stderr, "ddpt %s: %s\n", g_command, err);
    free(err);
    comm_finalize();
    return rc == ST_OK ? CLI_EXIT_OK : CLI_EXIT_INTERRUPTED;
  }
  if (world == 1) {
    comm_finalize();
    return cli_fail(g_command, err);
  }
  /* A failure every rank returned together is reported once, by rank 0.
   * Any other must end every rank: the others may be waiting for this one
   * inside a collective. */
  if (!s->failed_together || rank == 0) fprintf(stderr, "ddpt %s: rank %d: %s\n", g_command, rank, err);
  free(err);
  if (!s->failed_together) comm_abort(CLI_EXIT_FAILURE);
  comm_finalize();
  return CLI_EXIT_FAILURE;
}

/* Rank 0 names the host of every rank, so that a host lost mid-run (which
 * mpirun names) can be traced to its ranks. Collective; silent in a world
 * of one; a failure here ends the job. */
static void print_host_map(void) {
  if (comm_world_size() == 1) return;
  char *map = NULL, *err = NULL;
  if (comm_host_map(&map, &err) != ST_OK) {
    fprintf(stderr, "ddpt %s: %s\n", g_command, err);
    free(err);
    comm_abort(CLI_EXIT_FAILURE);
  }
  if (comm_rank() == 0) printf("hosts: %s\n", map);
  free(map);
}

/* The whole command; finetune: `ddpt finetune` rather than `ddpt train`. */
static int run_command(int argc, char **argv, int finetune) {
  g_command = finetune ? "finetune" : "train";
  char **overrides = calloc((size_t)argc, sizeof *overrides);
  if (!overrides) return cli_fail(g_command, strdup("out of memory"));
  train_request req = {.run_dir = "run", .stop_requested = &g_stop, .finetune = finetune};
  int code = parse_args(argc, argv, &req, overrides);
  char *err = NULL;
  /* Before MPI starts: this may re-execute the process with a better
   * OpenBLAS kernel. */
  if (code == CLI_EXIT_OK && (blas_kernel_ensure(argc, argv, &err) || comm_init(&argc, &argv, &err)))
    code = cli_fail(g_command, err);
  if (code != CLI_EXIT_OK) {
    free(overrides);
    return code;
  }
  log_init(comm_rank(), comm_world_size());
  print_host_map();
  set_stop_signals(on_stop_signal);
  /* Open MPI hands ranks a pseudo-terminal even when mpirun's output goes to
   * a file, so under mpirun the progress is plain lines. */
  progress pr = {.live = isatty(STDOUT_FILENO) && !getenv("OMPI_COMM_WORLD_SIZE")};
  if (comm_rank() == 0) req.observer = (train_observer){.ctx = &pr, .planned = print_plan, .stepped = print_step};
  train_summary summary;
  int rc = train_run(&req, &summary, &err);
  /* The run is over: a signal now (Open MPI's SIGTERM to the rest of a job
   * one of whose ranks exited non-zero) ends the process, not a step. */
  set_stop_signals(SIG_DFL);
  free(overrides);
  end_live_line(&pr);
  return finish(rc, &summary, req.run_dir, err);
}

int cmd_train(int argc, char **argv) { return run_command(argc, argv, 0); }

int cmd_finetune(int argc, char **argv) { return run_command(argc, argv, 1); }
