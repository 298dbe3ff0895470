/* Fine-tuning heads (see heads.h): softmax cross-entropy with ignored rows,
 * and the linear-chain CRF's forward algorithm, marginals and Viterbi, all
 * in log space in double. */
#include "trainer/heads.h"

#include <assert.h>
#include <math.h>

/* log sum_i exp(x[i]), shifted by the largest so nothing overflows. All
 * terms -inf (a transition forbidden by a -inf score) gives -inf, not NaN. */
static double logsumexp(const double *x, size_t K) {
  double mx = x[0];
  for (size_t i = 1; i < K; i++) mx = x[i] > mx ? x[i] : mx;
  if (isinf(mx)) return mx;
  double s = 0.0;
  for (size_t i = 0; i < K; i++) s += exp(x[i] - mx);
  return mx + log(s);
}

/* One row's softmax into p; returns its log-sum-exp, *best its argmax. */
static double softmax_row(float *p, size_t *best, const float *x, size_t K) {
  size_t b = 0;
  for (size_t k = 1; k < K; k++)
    if (x[k] > x[b]) b = k;
  double s = 0.0;
  for (size_t k = 0; k < K; k++) s += exp((double)x[k] - x[b]);
  double lse = x[b] + log(s);
  for (size_t k = 0; k < K; k++) p[k] = (float)exp((double)x[k] - lse);
  *best = b;
  return lse;
}

void head_softmax_rows(float *probs, int32_t *argmax, const float *logits, size_t N, size_t K) {
  for (size_t n = 0; n < N; n++) {
    size_t best;
    softmax_row(probs + n * K, &best, logits + n * K, K);
    if (argmax) argmax[n] = (int32_t)best;
  }
}

double head_softmax_ce_forward(float *probs, size_t *count, size_t *correct, const float *logits,
                               const int32_t *labels, size_t N, size_t K) {
  double total = 0.0;
  size_t labelled = 0, right = 0;
  for (size_t n = 0; n < N; n++) {
    const float *x = logits + n * K;
    size_t best;
    double lse = softmax_row(probs + n * K, &best, x, K);
    if (labels[n] == HEAD_IGNORE) continue;
    assert(labels[n] >= 0 && (size_t)labels[n] < K);
    total += lse - x[labels[n]];
    labelled++;
    right += (int32_t)best == labels[n];
  }
  *count = labelled;
  if (correct) *correct = right;
  return labelled ? total / (double)labelled : 0.0;
}

void head_softmax_ce_backward(float *dlogits, const float *probs, const int32_t *labels, size_t N,
                              size_t K, float dloss) {
  size_t labelled = 0;
  for (size_t n = 0; n < N; n++) labelled += labels[n] != HEAD_IGNORE;
  float g = labelled ? dloss / (float)labelled : 0.0f;
  for (size_t n = 0; n < N; n++) {
    float *d = dlogits + n * K;
    const float *p = probs + n * K;
    if (labels[n] == HEAD_IGNORE) {
      for (size_t k = 0; k < K; k++) d[k] = 0.0f;
      continue;
    }
    for (size_t k = 0; k < K; k++) d[k] = g * p[k];
    d[labels[n]] -= g;
  }
}

size_t head_chain_rows(size_t *rows, size_t *first, int32_t *tags, const int32_t *labels,
                       size_t B, size_t T) {
  size_t P = 0;
  for (size_t b = 0; b < B; b++) {
    first[b] = P;
    for (size_t t = 0; t < T; t++) {
      int32_t label = labels[b * T + t];
      if (label == HEAD_IGNORE) continue;
      rows[P] = b * T + t;
      if (tags) tags[P] = label;
      P++;
    }
  }
  first[B] = P;
  return P;
}

/* alpha (n, K) then beta (n, K); Viterbi uses the first 2K as two rows. */
size_t head_crf_work_len(size_t max_len, size_t K) {
  size_t n = max_len ? max_len : 1;
  return 2 * n * K + K;
}

/* alpha[t][j] = log of the summed scores of the paths over rows 0..t that
 * end in tag j; returns log Z. alpha is (n, K). */
static double crf_alpha(double *alpha, double *tmp, const float *e, size_t n, const float *trans,
                        const float *start, const float *end, size_t K) {
  for (size_t j = 0; j < K; j++) alpha[j] = (double)start[j] + e[j];
  for (size_t t = 1; t < n; t++) {
    const double *prev = alpha + (t - 1) * K;
    double *cur = alpha + t * K;
    for (size_t j = 0; j < K; j++) {
      for (size_t i = 0; i < K; i++) tmp[i] = prev[i] + trans[i * K + j];
      cur[j] = logsumexp(tmp, K) + e[t * K + j];
    }
  }
  const double *last = alpha + (n - 1) * K;
  for (size_t j = 0; j < K; j++) tmp[j] = last[j] + end[j];
  return logsumexp(tmp, K);
}

/* beta[t][i] = log of the summed scores of the paths over rows t+1..n-1
 * (with the end score) that follow tag i at row t. beta is (n, K). */
static void crf_beta(double *beta, double *tmp, const float *e, size_t n, const float *trans,
                     const float *end, size_t K) {
  double *last = beta + (n - 1) * K;
  for (size_t i = 0; i < K; i++) last[i] = end[i];
  for (size_t t = n - 1; t-- > 0;) {
    const double *next = beta + (t + 1) * K;
    const float *en = e + (t + 1) * K;
    double *cur = beta + t * K;
    for (size_t i = 0; i < K; i++) {
      for (size_t j = 0; j < K; j++) tmp[j] = (double)trans[i * K + j] + en[j] + next[j];
      cur[i] = logsumexp(tmp, K);
    }
  }
}

static double crf_path_score(const float *e, const int32_t *y, size_t n, const float *trans,
                             const float *start, const float *end, size_t K) {
  double s = 0.0;
  for (size_t t = 0; t < n; t++) {
    assert(y[t] >= 0 && (size_t)y[t] < K);
    s += e[t * K + (size_t)y[t]];
    if (t) s += trans[(size_t)y[t - 1] * K + (size_t)y[t]];
  }
  return s + start[y[0]] + end[y[n - 1]];
}

double head_crf_forward(size_t *count, double *work, const float *emis, const int32_t *tags,
                        const size_t *first, const float *trans, const float *start,
                        const float *end, size_t B, size_t K) {
  double total = 0.0;
  size_t chains = 0;
  for (size_t b = 0; b < B; b++) {
    size_t n = first[b + 1] - first[b];
    if (!n) continue;
    const float *e = emis + first[b] * K;
    double *alpha = work, *tmp = work + 2 * n * K;
    double logz = crf_alpha(alpha, tmp, e, n, trans, start, end, K);
    total += logz - crf_path_score(e, tags + first[b], n, trans, start, end, K);
    chains++;
  }
  *count = chains;
  return chains ? total / (double)chains : 0.0;
}

void head_crf_backward(float *demis, float *dtrans, float *dstart, float *dend, double *work,
                       const float *emis, const int32_t *tags, const size_t *first,
                       const float *trans, const float *start, const float *end, size_t B,
                       size_t K, float dloss) {
  size_t chains = 0;
  for (size_t b = 0; b < B; b++) chains += first[b + 1] > first[b];
  double g = chains ? (double)dloss / (double)chains : 0.0;
  for (size_t b = 0; b < B; b++) {
    size_t n = first[b + 1] - first[b];
    if (!n) continue;
    const float *e = emis + first[b] * K;
    const int32_t *y = tags + first[b];
    float *de = demis + first[b] * K;
    double *alpha = work, *beta = work + n * K, *tmp = work + 2 * n * K;
    double logz = crf_alpha(alpha, tmp, e, n, trans, start, end, K);
    crf_beta(beta, tmp, e, n, trans, end, K);
    /* d nll = expected counts under the model - counts on the gold path. */
    for (size_t t = 0; t < n; t++)
      for (size_t j = 0; j < K; j++) {
        double m = exp(alpha[t * K + j] + beta[t * K + j] - logz);
        de[t * K + j] = (float)(g * (m - (y[t] == (int32_t)j)));
        if (t == 0) dstart[j] += (float)(g * (m - (y[0] == (int32_t)j)));
        if (t == n - 1) dend[j] += (float)(g * (m - (y[n - 1] == (int32_t)j)));
      }
    for (size_t i = 0; i < K; i++)
      for (size_t j = 0; j < K; j++) {
        double m = 0.0;
        for (size_t t = 1; t < n; t++)
          m += exp(alpha[(t - 1) * K + i] + trans[i * K + j] + e[t * K + j] + beta[t * K + j] -
                   logz);
        dtrans[i * K + j] += (float)(g * m);
      }
    for (size_t t = 1; t < n; t++) dtrans[(size_t)y[t - 1] * K + (size_t)y[t]] -= (float)g;
  }
}

void head_crf_viterbi(int32_t *tags, double *score, double *work, int32_t *back,
                      const float *emis, const size_t *first, const float *trans,
                      const float *start, const float *end, size_t B, size_t K) {
  for (size_t b = 0; b < B; b++) {
    size_t n = first[b + 1] - first[b];
    if (!n) {
      if (score) score[b] = 0.0;
      continue;
    }
    const float *e = emis + first[b] * K;
    int32_t *y = tags + first[b];
    double *prev = work, *cur = work + K;
    for (size_t j = 0; j < K; j++) prev[j] = (double)start[j] + e[j];
    for (size_t t = 1; t < n; t++) {
      for (size_t j = 0; j < K; j++) {
        size_t best = 0;
        double best_s = prev[0] + trans[j];
        for (size_t i = 1; i < K; i++) {
          double s = prev[i] + trans[i * K + j];
          if (s > best_s) best = i, best_s = s;
        }
        cur[j] = best_s + e[t * K + j];
        back[t * K + j] = (int32_t)best;
      }
      double *swap = prev;
      prev = cur, cur = swap;
    }
    size_t best = 0;
    double best_s = prev[0] + end[0];
    for (size_t j = 1; j < K; j++)
      if (prev[j] + end[j] > best_s) best = j, best_s = prev[j] + end[j];
    if (score) score[b] = best_s;
    y[n - 1] = (int32_t)best;
    for (size_t t = n - 1; t > 0; t--) y[t - 1] = back[t * K + (size_t)y[t]];
  }
}
