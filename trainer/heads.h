/* Fine-tuning heads as pure functions on raw pointers: softmax
 * cross-entropy over K labels with ignored rows, and a linear-chain CRF
 * (negative log-likelihood, its gradient, Viterbi decoding).
 *
 * Conventions (those of trainer/layers.h, plus):
 *  1. Outputs (or gradients) first, then scratch, then const inputs and
 *     weights, then sizes. Every pointer's comment gives its shape: N rows,
 *     K labels, B sequences, T positions per sequence.
 *  2. Backward writes (=) the gradient of its input (logits, emissions) and
 *     adds (+=) into parameter gradients (the CRF's transitions, start and
 *     end scores), as layers.h does.
 *  3. A label of HEAD_IGNORE (-100, HuggingFace's ignore_index) takes no
 *     part: no loss, no gradient, not counted. Losses are means over what is
 *     counted (labelled rows; sequences with at least one labelled
 *     position), and backward takes dloss, the factor d(total)/d(mean):
 *     1 for a lone mean, count * (weight of one item) when the caller
 *     normalises across ranks itself (as bert_backward does for NSP).
 *  4. Sums run in double, in a fixed order, on one thread: the bits do not
 *     depend on the thread count. The heads are tiny next to the encoder.
 *  5. The rest of a head is layers.h, not repeated here:
 *     - classifier (HF `classifier.weight` [K, H], `classifier.bias` [K]):
 *       layer_linear_forward(logits, x, w, b, N, H, K) and
 *       layer_linear_backward(dx, dw, db, dlogits, x, w, N, H, K);
 *     - pooler (HF `bert.pooler.dense.*` [H, H], [H], then tanh), as
 *       bert_forward runs it for NSP: layer_gather_forward of the [CLS]
 *       rows, layer_linear_forward, layer_tanh_forward (and the backwards).
 *
 * The CRF (pytorch-crf's semantics and parameter names):
 *  - `crf.transitions` [K, K]: transitions[i * K + j] scores tag i followed
 *    by tag j; `crf.start_transitions` [K] scores the first tag and
 *    `crf.end_transitions` [K] the last. score(y) = start[y_0] + sum_t
 *    e_t[y_t] + sum_{t>0} transitions[y_{t-1}, y_t] + end[y_{n-1}];
 *    nll = log Z - score(gold), Z summed over all K^n tag paths.
 *  - It runs over chains: the labelled positions of a sequence, in order,
 *    compacted. With HuggingFace's first-piece tagging the later pieces of
 *    a word (and [CLS], [SEP], padding) carry HEAD_IGNORE, so the chain is
 *    the sequence of words and a transition links consecutive words, not a
 *    word and its own continuation piece. With every piece labelled the
 *    chain is the whole sequence, as in pytorch-crf with a prefix mask.
 *  - So the CRF reads emissions (P, K) where chain b is rows first[b] ..
 *    first[b + 1] - 1 (P = first[B]): head_chain_rows finds the rows,
 *    layer_gather_forward collects them (from the encoder output before
 *    the classifier, or from its logits), layer_gather_backward returns the
 *    emission gradient to them. An empty chain adds nothing and is not
 *    counted.
 */
#ifndef DDPT_TRAINER_HEADS_H
#define DDPT_TRAINER_HEADS_H

#include <stddef.h>
#include <stdint.h>

#define HEAD_IGNORE (-100)

/* ---------------------------------------------------------- cross-entropy */

/* probs = softmax of each row of logits (in double, shifted by the row's
 * largest), and argmax[n] its highest (the lowest index among equals);
 * argmax may be NULL. Returns nothing; the same rows as the loss uses. */
void head_softmax_rows(float *probs,        /* (N, K) */
                       int32_t *argmax,     /* (N) or NULL */
                       const float *logits, /* (N, K) */
                       size_t N, size_t K);

/* Mean over the labelled rows of -log softmax(logits)[label]; returns 0
 * when no row is labelled. Writes (=) the probabilities of every row
 * (ignored rows too: prediction wants them); *count gets the labelled rows
 * and, unless correct is NULL, *correct those whose highest probability (the
 * lowest label among equals) is the label. */
double head_softmax_ce_forward(float *probs,           /* (N, K) */
                               size_t *count, size_t *correct,
                               const float *logits,    /* (N, K) */
                               const int32_t *labels,  /* (N) < K or HEAD_IGNORE */
                               size_t N, size_t K);
/* dlogits = dloss * (probs - onehot(label)) / count on labelled rows, 0 on
 * ignored rows (=). dlogits may be probs. */
void head_softmax_ce_backward(float *dlogits,         /* (N, K) */
                              const float *probs,     /* (N, K) from forward */
                              const int32_t *labels,  /* (N) */
                              size_t N, size_t K, float dloss);

/* -------------------------------------------------------------------- CRF */

/* The chains of a batch: rows[p] is the position (b * T + t) of chain row
 * p, first[b] the first chain row of sequence b (first[B] = P), tags[p] its
 * label (tags may be NULL). Position t belongs to the chain when labels[b *
 * T + t] != HEAD_IGNORE; at prediction time pass a 0 at each word's first
 * piece and HEAD_IGNORE elsewhere. Returns P (<= B * T). */
size_t head_chain_rows(size_t *rows,            /* (<= B * T) */
                       size_t *first,           /* (B + 1) */
                       int32_t *tags,           /* (<= B * T) or NULL */
                       const int32_t *labels,   /* (B, T) */
                       size_t B, size_t T);

/* Doubles of scratch the CRF functions need when no chain is longer than
 * max_len (T is always enough). */
size_t head_crf_work_len(size_t max_len, size_t K);

/* Mean over the non-empty chains of log Z - score(tags); *count gets their
 * number. */
double head_crf_forward(size_t *count,
                        double *work,           /* (head_crf_work_len) scratch */
                        const float *emis,      /* (P, K) */
                        const int32_t *tags,    /* (P) < K */
                        const size_t *first,    /* (B + 1) */
                        const float *trans,     /* (K, K) from, to */
                        const float *start,     /* (K) */
                        const float *end,       /* (K) */
                        size_t B, size_t K);
/* The gradient of forward's mean times dloss, from the forward-backward
 * marginals (computed again here: O(P K^2)): demis (=), dtrans, dstart,
 * dend (+=). */
void head_crf_backward(float *demis,            /* (P, K) */
                       float *dtrans,           /* (K, K) */
                       float *dstart,           /* (K) */
                       float *dend,             /* (K) */
                       double *work,            /* (head_crf_work_len) scratch */
                       const float *emis, const int32_t *tags, const size_t *first,
                       const float *trans, const float *start, const float *end, size_t B,
                       size_t K, float dloss);
/* The highest-scoring tag path of every chain (ties: the lower tag in each
 * argmax); its score goes to score[b] unless score is NULL (an empty chain
 * scores 0). */
void head_crf_viterbi(int32_t *tags,            /* (P) */
                      double *score,            /* (B) or NULL */
                      double *work,             /* (head_crf_work_len) scratch */
                      int32_t *back,            /* (longest chain, K) scratch */
                      const float *emis, const size_t *first, const float *trans,
                      const float *start, const float *end, size_t B, size_t K);

#endif
