/* The BLAS ddpt computes with (OpenBLAS): identification for `ddpt version`
 * and benchmark reports, thread control, and choosing the best kernel the
 * CPU supports when OpenBLAS's own detection falls short. */
#ifndef DDPT_TRAINER_BLAS_H
#define DDPT_TRAINER_BLAS_H

#include <stddef.h>

/* "OpenBLAS 0.3.21 (kernel SkylakeX, 2 threads)" or similar. */
void blas_library_version(char *buf, size_t size);
/* The kernel OpenBLAS selected at load time, e.g. "Prescott", "SkylakeX". */
const char *blas_corename(void);

/* Sets the threads ddpt computes with (n >= 1): OpenMP's. OpenBLAS is kept
 * at one thread; trainer/ splits GEMMs among the OpenMP threads itself. */
void blas_set_threads(int n);

/* The x86 features that decide which OpenBLAS sgemm kernel a CPU deserves. */
typedef struct blas_cpu {
  int avx, avx2, fma;
  int avx512f, avx512bw, avx512vl, avx512dq, avx512cd;
  int avx512_bf16;
} blas_cpu;

/* Reads this CPU's features (cpuid, and the OS's xgetbv for AVX state). */
blas_cpu blas_cpu_detect(void);
/* The OpenBLAS kernel name for these features ("Cooperlake", "SkylakeX",
 * "Haswell", "Sandybridge"), or NULL when none of those applies. */
const char *blas_kernel_for_cpu(const blas_cpu *cpu);
/* How fast a kernel's sgemm is, by family: 3 AVX-512, 2 AVX2+FMA, 1 AVX,
 * 0 older or unknown. Case-insensitive. */
int blas_kernel_rank(const char *corename);
/* The kernel to switch to, or NULL to keep the current one: NULL when the
 * user set OPENBLAS_CORETYPE (user_coretype not NULL), else the deserved
 * kernel when it ranks above the current one. */
const char *blas_kernel_choice(const char *current, const blas_cpu *cpu, const char *user_coretype);

/* sgemm throughput in GFLOP/s on n x n x n matrices (best of reps), with
 * OpenBLAS threading over as many threads as OpenMP has. */
double blas_sgemm_gflops(int n, int reps);

/* Max relative error of a 96x80x72 sgemm against a double-precision loop. */
double blas_sgemm_check(void);

/* Makes OpenBLAS use the best kernel this CPU supports. Call first thing in
 * a command, before MPI starts and before any thread is created: when
 * OpenBLAS picked a weaker kernel and OPENBLAS_CORETYPE is not set, it sets
 * the variable and re-executes the running binary (/proc/self/exe) as
 * `ddpt cmd_argv[0] .. cmd_argv[cmd_argc - 1]`, where cmd_argv is the
 * command's own argument vector (cmd_argv[0] is the command's name); the
 * re-executed process verifies an sgemm and logs what was done. A user's
 * OPENBLAS_CORETYPE is never changed. Fails with ST_MISMATCH if the selected
 * kernel computes wrong results, ST_NOMEM if the new argument vector cannot
 * be allocated. */
int blas_kernel_ensure(int cmd_argc, char *const *cmd_argv, char **err);

#endif
