/* Vector code paths for the element-wise kernels of trainer/.
 *
 * VECTOR_CLONES compiles a function once per vector width (AVX-512, AVX2,
 * plain x86-64) and picks the widest the CPU runs when the program loads
 * (GCC function multiversioning): the build stays portable and the hot loops
 * still use the full registers. OpenMP splits work among threads in the
 * caller, in chunks, and each chunk calls a cloned function (an outlined
 * OpenMP body would not inherit the target).
 *
 * A clone may contract a*b + c into one fused multiply-add where another
 * cannot, so results can differ by an ulp between CPUs. Code whose bits must
 * be the same on every rank whatever the CPU (the optimizer: every rank
 * updates its own replica) is compiled with -ffp-contract=off. */
#ifndef DDPT_TRAINER_SIMD_H
#define DDPT_TRAINER_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

#endif
