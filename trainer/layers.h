/* Transformer layers as forward/backward pairs on raw float pointers.
 *
 * Conventions:
 *  1. Outputs (or gradients) first, then const inputs and weights, then sizes.
 *     Every pointer's comment gives its shape; N is the number of rows
 *     (tokens), C the row width.
 *  2. Backward functions add (+=) into parameter gradients (zeroing them is
 *     the caller's step, so micro-batches accumulate) and write (=) the input
 *     gradient, so activation gradients need no zeroing. Where branches meet
 *     (a residual), layer_linear_backward_ld adds into its input gradient
 *     instead, and layer_gather_backward always adds (a scatter). A NULL
 *     input gradient means it is not needed and is not computed.
 *  3. Results do not depend on the number of threads: every reduction runs in
 *     a fixed order (rows split among threads, each column summed by one).
 *  4. Element i of a dropout site keeps or drops by word i of a Philox
 *     stream keyed by layer_rng, so a step is reproducible. Backward draws
 *     the same words again (layer_dropout_backward), reads a mask recorded
 *     by forward (the dropouts before a residual join, one byte per
 *     element), or reads it off the dropped-out values (attention).
 *     Computing only some rows of a site (the rows and _q variants) gives
 *     those rows the same masks.
 */
#ifndef DDPT_TRAINER_LAYERS_H
#define DDPT_TRAINER_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* Which dropout mask: seed, then three words (ddpt uses step, micro-batch,
 * site). */
typedef struct layer_rng {
  uint64_t seed;
  uint32_t a, b, c;
} layer_rng;

/* out = word + position + token-type embedding, per token. */
void layer_embeddings_forward(float *out,              /* (B, T, C) */
                              const int32_t *ids,      /* (B, T) < V */
                              const int32_t *types,    /* (B, T) < TV */
                              const float *wte,        /* (V, C) */
                              const float *wpe,        /* (maxT, C) */
                              const float *wtt,        /* (TV, C) */
                              size_t B, size_t T, size_t C);
void layer_embeddings_backward(float *dwte,            /* (V, C) */
                               float *dwpe,            /* (maxT, C) */
                               float *dwtt,            /* (TV, C) */
                               const float *dout,      /* (B, T, C) */
                               const int32_t *ids,     /* (B, T) */
                               const int32_t *types,   /* (B, T) */
                               size_t B, size_t T, size_t C);

/* out = inp w^T + b (PyTorch Linear). b may be NULL. */
void layer_linear_forward(float *out,       /* (N, OC) */
                          const float *inp, /* (N, C) */
                          const float *w,   /* (OC, C) */
                          const float *b,   /* (OC) or NULL */
                          size_t N, size_t C, size_t OC);
void layer_linear_backward(float *dinp,       /* (N, C) or NULL */
                           float *dw,         /* (OC, C) */
                           float *db,         /* (OC) or NULL */
                           const float *dout, /* (N, OC) */
                           const float *inp,  /* (N, C) */
                           const float *w,    /* (OC, C) */
                           size_t N, size_t C, size_t OC);
/* The same with the rows of out / dout ldo / ldd >= OC floats apart: part
 * of a wider row, as the key and value columns of a fused QKV projection;
 * the input gradient is written or, with add, added to. */
void layer_linear_forward_ld(float *out, size_t ldo, const float *inp, const float *w,
                             const float *b, size_t N, size_t C, size_t OC);
void layer_linear_backward_ld(float *dinp, int add, /* add != 0: dinp += instead of = */
                              float *dw, float *db, const float *dout, size_t ldd,
                              const float *inp, const float *w, size_t N, size_t C, size_t OC);

/* The same two with the input kept in bf16 (precision = bf16 only, see
 * gemm_bias_bf16in): an activation that only products read, rounded once
 * by its producer. The same bits as the float input's functions. */
void layer_linear_forward_bf16in(float *out,          /* (N, OC) */
                                 const uint16_t *inp, /* (N, C) bf16 */
                                 const float *w,      /* (OC, C) */
                                 const float *b,      /* (OC) */
                                 size_t N, size_t C, size_t OC);
void layer_linear_backward_bf16in(float *dinp, float *dw, float *db, const float *dout,
                                  const uint16_t *inp, const float *w, size_t N, size_t C,
                                  size_t OC);

void layer_layernorm_forward(float *out,       /* (N, C) */
                             float *mean,      /* (N) */
                             float *rstd,      /* (N) */
                             const float *inp, /* (N, C) */
                             const float *w,   /* (C) */
                             const float *b,   /* (C) */
                             size_t N, size_t C, float eps);
void layer_layernorm_backward(float *dinp,       /* (N, C) */
                              float *dw,         /* (C) */
                              float *db,         /* (C) */
                              const float *dout, /* (N, C) */
                              const float *inp,  /* (N, C) */
                              const float *w,    /* (C) */
                              const float *mean, /* (N) */
                              const float *rstd, /* (N) */
                              size_t N, size_t C);

/* GELU, exact erf form: x/2 (1 + erf(x/sqrt 2)). */
void layer_gelu_forward(float *out, const float *inp, size_t n);
/* Uses the forward input and output (Phi(x) = out / x). */
void layer_gelu_backward(float *dinp, const float *dout, const float *inp, const float *out,
                         size_t n);

void layer_tanh_forward(float *out, const float *inp, size_t n);
/* Uses the forward output: d tanh = 1 - out^2. */
void layer_tanh_backward(float *dinp, const float *dout, const float *out, size_t n);


/* Inverted dropout with rate p in [0, 1): kept values are scaled by 1/(1-p).
 * out may alias inp. p == 0 copies. */
void layer_dropout_forward(float *out, const float *inp, size_t n, float p, layer_rng key);
void layer_dropout_backward(float *dinp, const float *dout, size_t n, float p, layer_rng key);
/* For tests: the masks come from AVX2 code where the CPU has it (on, the
 * default) or from the portable loop (off), so that both are checked on
 * one machine. Returns whether the AVX2 code is in use afterwards. Not
 * while another thread draws masks. */
int layer_dropout_simd(int on);
/* out = dropout(inp) + res over some rows of an (N, C) site (the dropout
 * before a residual join): row r of the (n, C) buffers is row rows[r] of
 * the site and keeps or drops as layer_dropout_forward over the whole site
 * would (rows NULL: rows 0 .. n-1). out may alias inp or res. When p > 0
 * the keep bytes go to mask (n, C), for layer_dropout_mask_backward. */
void layer_dropout_add_forward(float *out, const float *inp, const float *res, uint8_t *mask,
                               const size_t *rows, size_t n, size_t C, float p, layer_rng key);
/* dinp = d(dropout) from the recorded mask (unused when p == 0). */
void layer_dropout_mask_backward(float *dinp, const float *dout, const uint8_t *mask, size_t n,
                                 float p);

/* Multi-head self-attention over a fused QKV projection (q, k, v side by side
 * in each row). Keys where mask is 0 (padding) get probability exactly 0.
 * Probabilities go to att; when p > 0 the dropped-out probabilities go to
 * attd (its own buffer, needed by backward). */
void layer_attention_forward(float *out,             /* (B, T, C) */
                             float *att,             /* (B, NH, T, T) */
                             float *attd,            /* (B, NH, T, T), or NULL when p == 0 */
                             const float *qkv,       /* (B, T, 3C) */
                             const int32_t *mask,    /* (B, T) 1 = token, 0 = padding */
                             float p, layer_rng key, size_t B, size_t T, size_t C, size_t NH);
/* scratch is overwritten. The dropout mask is read off attd (kept
 * probabilities are the nonzero ones), not drawn again. */
void layer_attention_backward(float *dqkv,          /* (B, T, 3C) */
                              float *scratch,       /* (B, NH, T, T) */
                              const float *dout,    /* (B, T, C) */
                              const float *qkv,     /* (B, T, 3C) */
                              const float *att,     /* (B, NH, T, T) */
                              const float *attd,    /* (B, NH, T, T) or NULL when p == 0 */
                              float p, size_t B, size_t T, size_t C, size_t NH);

/* Attention for some of the queries only (the last encoder layer, whose
 * other rows no head reads). The queries of sequence b are rows first[b] ..
 * first[b + 1] - 1 of q and out, at positions pos[row] of the sequence;
 * keys and values are every position. A NULL layer_queries means all B * T
 * queries in order. Scores and dropout masks are those of the full layer
 * for the same queries. */
typedef struct layer_queries {
  const size_t *first; /* (B + 1) */
  const size_t *pos;   /* (NQ) */
} layer_queries;

void layer_attention_forward_q(float *out,          /* (NQ, C) */
                               float *att,          /* (NQ * NH, T): head h of sequence b at
                                                       (first[b] NH + h count_b) T */
                               float *attd,         /* like att, or NULL when p == 0 */
                               const float *q,      /* (NQ, ldq) */
                               size_t ldq,
                               const float *kv,     /* (B, T, ldkv): k, then v at +C */
                               size_t ldkv,
                               const layer_queries *qs, const int32_t *mask, float p,
                               layer_rng key, size_t B, size_t T, size_t C, size_t NH);
void layer_attention_backward_q(float *dq,          /* (NQ, ldq) */
                                float *dkv,         /* (B, T, ldkv) */
                                float *scratch,     /* like att, overwritten */
                                const float *dout,  /* (NQ, C) */
                                const float *q, size_t ldq, const float *kv, size_t ldkv,
                                const layer_queries *qs, const float *att, const float *attd,
                                float p, size_t B, size_t T, size_t C, size_t NH);

/* out[i] = inp[rows[i]]: the rows the MLM and NSP heads work on. Backward
 * adds dout[i] into dinp[rows[i]]. */
void layer_gather_forward(float *out,         /* (P, C) */
                          const float *inp,   /* (N, C) */
                          const size_t *rows, /* (P) */
                          size_t P, size_t C);
void layer_gather_backward(float *dinp,        /* (N, C) */
                           const float *dout,  /* (P, C) */
                           const size_t *rows, /* (P) distinct */
                           size_t P, size_t C);

/* Softmax cross-entropy, mean over the N rows. Turns logits into
 * probabilities in place and returns the mean loss. */
double layer_crossentropy_forward(float *logits,          /* (N, V) in: logits, out: probs */
                                  const int32_t *targets, /* (N) < V */
                                  size_t N, size_t V);
/* Turns the probabilities in place into d(mean loss)/d(logits) times dloss.
 * An exception to "backward accumulates": the logits are produced by one
 * GEMM and their buffer is reused, which saves an (N, V) buffer. */
void layer_crossentropy_backward_inplace(float *probs,           /* (N, V) in: probs, out: dlogits */
                                         const int32_t *targets, /* (N) */
                                         size_t N, size_t V, float dloss);

#endif
