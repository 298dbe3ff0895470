/* OpenBLAS identification, threads and kernel selection (see blas.h).
 * Debian's OpenBLAS 0.3.21 does not know every newer x86 CPU by model and
 * then falls back to its Prescott kernels, 4-5x slower at sgemm than the
 * AVX-512 ones the CPU can run; the CPU's features say what it can run. */
#include "trainer/blas.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cblas.h>
#include <cpuid.h>
#include <omp.h>

#include "util/log.h"
#include "util/rng.h"
#include "util/status.h"
#include "util/timer.h"

/* Set, with the library's own pick as value, for the re-executed process. */
#define REEXEC_ENV "DDPT_BLAS_REEXEC"

const char *blas_corename(void) { return openblas_get_corename(); }

void blas_library_version(char *buf, size_t size) {
  /* openblas_get_config() reads "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY
   * Prescott MAX_THREADS=64": keep the name and version only. */
  char config[256];
  snprintf(config, sizeof config, "%s", openblas_get_config());
  char *space = strchr(config, ' ');
  if (space) space = strchr(space + 1, ' ');
  if (space) *space = '\0';
  snprintf(buf, size, "%s (kernel %s, %d threads)", config, openblas_get_corename(),
           openblas_get_num_threads());
}

void blas_set_threads(int n) {
  /* OpenBLAS itself runs single-threaded: trainer/layers.c splits every GEMM
   * among the OpenMP threads (see gemm_split there). */
  openblas_set_num_threads(1);
  omp_set_num_threads(n);
}

blas_cpu blas_cpu_detect(void) {
  blas_cpu c = {0};
  unsigned a, b, cx, d;
  if (!__get_cpuid(1, &a, &b, &cx, &d)) return c;
  int osxsave = (cx >> 27) & 1;
  unsigned long long xcr0 = 0;
  if (osxsave) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = ((unsigned long long)hi << 32) | lo;
  }
  /* The OS must save the YMM (bits 1-2) and ZMM/opmask (bits 5-7) state. */
  int ymm = (xcr0 & 0x6) == 0x6, zmm = ymm && (xcr0 & 0xe0) == 0xe0;
  c.avx = ymm && ((cx >> 28) & 1);
  c.fma = ymm && ((cx >> 12) & 1);
  if (__get_cpuid_count(7, 0, &a, &b, &cx, &d)) {
    c.avx2 = ymm && ((b >> 5) & 1);
    c.avx512f = zmm && ((b >> 16) & 1);
    c.avx512dq = zmm && ((b >> 17) & 1);
    c.avx512cd = zmm && ((b >> 28) & 1);
    c.avx512bw = zmm && ((b >> 30) & 1);
    c.avx512vl = zmm && ((b >> 31) & 1);
  }
  if (__get_cpuid_count(7, 1, &a, &b, &cx, &d)) c.avx512_bf16 = zmm && ((a >> 5) & 1);
  return c;
}

const char *blas_kernel_for_cpu(const blas_cpu *cpu) {
  int skx = cpu->avx512f && cpu->avx512bw && cpu->avx512vl && cpu->avx512dq && cpu->avx512cd;
  if (skx && cpu->avx512_bf16) return "Cooperlake";
  if (skx) return "SkylakeX";
  if (cpu->avx2 && cpu->fma) return "Haswell";
  if (cpu->avx) return "Sandybridge";
  return NULL;
}

int blas_kernel_rank(const char *corename) {
  static const struct {
    const char *name;
    int rank;
  } ranks[] = {
      {"sapphirerapids", 3}, {"cooperlake", 3}, {"skylakex", 3},   {"haswell", 2},
      {"zen", 2},            {"sandybridge", 1}, {"bulldozer", 1}, {"piledriver", 1},
      {"steamroller", 1},    {"excavator", 1},
  };
  if (!corename) return 0;
  for (size_t i = 0; i < sizeof ranks / sizeof *ranks; i++)
    if (strcasecmp(corename, ranks[i].name) == 0) return ranks[i].rank;
  return 0;
}

const char *blas_kernel_choice(const char *current, const blas_cpu *cpu,
                               const char *user_coretype) {
  if (user_coretype) return NULL;
  const char *deserved = blas_kernel_for_cpu(cpu);
  if (!deserved || blas_kernel_rank(deserved) <= blas_kernel_rank(current)) return NULL;
  return deserved;
}

double blas_sgemm_check(void) {
  enum { M = 96, N = 80, K = 72 };
  static float a[M * K], b[K * N], c[M * N];
  rng_stream s;
  rng_stream_init(&s, 1, 2, 3, 4);
  for (int i = 0; i < M * K; i++) a[i] = rng_next_uniform(&s) - 0.5f;
  for (int i = 0; i < K * N; i++) b[i] = rng_next_uniform(&s) - 0.5f;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, K, b, N, 0.0f, c, N);
  double worst = 0.0;
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double ref = 0.0, mag = 0.0;
      for (int k = 0; k < K; k++) {
        ref += (double)a[i * K + k] * b[k * N + j];
        mag += fabs((double)a[i * K + k] * b[k * N + j]);
      }
      double rel = fabs(c[i * N + j] - ref) / (mag > 0 ? mag : 1.0);
      if (rel > worst) worst = rel;
    }
  return worst;
}

double blas_sgemm_gflops(int n, int reps) {
  /* OpenBLAS's own threading, as many threads as OpenMP has: the library's
   * best figure, the ceiling the model's GEMMs are measured against. */
  openblas_set_num_threads(omp_get_max_threads());
  size_t nn = (size_t)n * (size_t)n;
  float *a = malloc(3 * nn * sizeof(float));
  if (!a) return 0.0;
  float *b = a + nn, *c = b + nn;
  for (size_t i = 0; i < 3 * nn; i++) a[i] = (float)(i % 7) * 0.125f - 0.375f;
  double best = 0.0;
  for (int r = 0; r < reps; r++) {
    double t0 = timer_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double gf = 2.0 * (double)n * nn / (timer_now() - t0) / 1e9;
    if (gf > best) best = gf;
  }
  free(a);
  openblas_set_num_threads(1);
  return best;
}

int blas_kernel_ensure(int cmd_argc, char *const *cmd_argv, char **err) {
  const char *picked = getenv(REEXEC_ENV);
  if (picked) {
    char was[64];
    snprintf(was, sizeof was, "%s", picked);
    unsetenv(REEXEC_ENV);
    double rel = blas_sgemm_check();
    if (!(rel < 1e-5))
      return status_set(err, ST_MISMATCH,
                        "OpenBLAS kernel %s (OPENBLAS_CORETYPE=%s, set by ddpt) computes sgemm "
                        "with relative error %.2g: run with OPENBLAS_CORETYPE=%s to use the "
                        "library's own choice",
                        blas_corename(), getenv("OPENBLAS_CORETYPE"), rel, was);
    log_info("OpenBLAS picked kernel %s for this CPU, which supports %s: ddpt set "
             "OPENBLAS_CORETYPE=%s and restarted (sgemm verified, max relative error %.1e)",
             was, blas_corename(), getenv("OPENBLAS_CORETYPE"), rel);
    return ST_OK;
  }
  blas_cpu cpu = blas_cpu_detect();
  const char *user = getenv("OPENBLAS_CORETYPE");
  const char *choice = blas_kernel_choice(blas_corename(), &cpu, user);
  if (user) {
    const char *deserved = blas_kernel_for_cpu(&cpu);
    if (deserved && blas_kernel_rank(deserved) > blas_kernel_rank(blas_corename()))
      log_warn("OPENBLAS_CORETYPE=%s is set: kept, though this CPU supports %s (faster sgemm)",
               user, deserved);
    return ST_OK;
  }
  if (!choice) return ST_OK;
  char **argv = malloc(((size_t)cmd_argc + 2) * sizeof *argv);
  if (!argv) return status_set(err, ST_NOMEM, "out of memory restarting ddpt with OpenBLAS kernel %s", choice);
  argv[0] = "ddpt";
  for (int i = 0; i < cmd_argc; i++) argv[i + 1] = cmd_argv[i];
  argv[cmd_argc + 1] = NULL;
  char current[64];
  snprintf(current, sizeof current, "%s", blas_corename());
  setenv("OPENBLAS_CORETYPE", choice, 1);
  setenv(REEXEC_ENV, current, 1);
  fflush(NULL);
  execv("/proc/self/exe", argv);
  /* Still here: carry on with the weaker kernel rather than fail. */
  free(argv);
  unsetenv("OPENBLAS_CORETYPE");
  unsetenv(REEXEC_ENV);
  log_warn("OpenBLAS picked kernel %s though this CPU supports %s; restarting with "
           "OPENBLAS_CORETYPE=%s failed, continuing with %s",
           current, choice, choice, current);
  return ST_OK;
}
