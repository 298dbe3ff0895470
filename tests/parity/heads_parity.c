/* Test-only program for heads_parity.py: runs trainer/heads.h on numbers
 * PyTorch also sees, exchanging raw little-endian files.
 *
 *   heads_parity DIR   reads DIR/in.bin:
 *                        int32 N H K B T KC, int32 cls_labels (N),
 *                        int32 crf_labels (B, T), then float32 x (N, H),
 *                        w (K, H), b (K), logits (B, T, KC), trans (KC, KC),
 *                        start (KC), end (KC)
 *                      writes DIR/out.f32 (float32, dloss 1):
 *                        ce_loss, correct, probs (N, K), dx, dw, db,
 *                        crf_nll, dlogits (B, T, KC), dtrans, dstart, dend,
 *                        viterbi tags (B, T) (-100 off the chains)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/heads.h"
#include "trainer/layers.h"

static int fail(const char *what) {
  fprintf(stderr, "heads_parity: %s\n", what);
  return 1;
}

static int put(FILE *f, const float *x, size_t n) { return fwrite(x, sizeof *x, n, f) == n ? 0 : -1; }

int main(int argc, char **argv) {
  if (argc != 2) return fail("usage: heads_parity DIR");
  char path[4096];
  snprintf(path, sizeof path, "%s/in.bin", argv[1]);
  FILE *f = fopen(path, "rb");
  int32_t d[6];
  if (!f || fread(d, sizeof *d, 6, f) != 6) return fail("cannot read in.bin");
  size_t N = (size_t)d[0], H = (size_t)d[1], K = (size_t)d[2], B = (size_t)d[3],
         T = (size_t)d[4], KC = (size_t)d[5];
  size_t ni = N + B * T, nf = N * H + K * H + K + B * T * KC + KC * KC + 2 * KC;
  int32_t *ints = malloc(ni * sizeof *ints);
  float *in = malloc(nf * sizeof *in);
  if (fread(ints, sizeof *ints, ni, f) != ni || fread(in, sizeof *in, nf, f) != nf)
    return fail("in.bin is shorter than its header says");
  fclose(f);
  const int32_t *cls_labels = ints, *crf_labels = ints + N;
  const float *x = in, *w = x + N * H, *b = w + K * H, *logits = b + K;
  const float *trans = logits + B * T * KC, *start = trans + KC * KC, *end = start + KC;

  /* Classifier and cross-entropy. */
  float *lg = malloc(N * K * sizeof *lg), *probs = malloc(N * K * sizeof *probs);
  float *dlg = malloc(N * K * sizeof *dlg), *dx = malloc(N * H * sizeof *dx);
  float *dw = calloc(K * H, sizeof *dw), *db = calloc(K, sizeof *db);
  size_t count, correct;
  layer_linear_forward(lg, x, w, b, N, H, K);
  float ce[2];
  ce[0] = (float)head_softmax_ce_forward(probs, &count, &correct, lg, cls_labels, N, K);
  ce[1] = (float)correct;
  head_softmax_ce_backward(dlg, probs, cls_labels, N, K, 1.0f);
  layer_linear_backward(dx, dw, db, dlg, x, w, N, H, K);

  /* CRF over the labelled positions. */
  size_t *rows = malloc(B * T * sizeof *rows), *first = malloc((B + 1) * sizeof *first);
  int32_t *tags = malloc(B * T * sizeof *tags), *best = malloc(B * T * sizeof *best);
  int32_t *back = malloc(T * KC * sizeof *back);
  size_t P = head_chain_rows(rows, first, tags, crf_labels, B, T);
  float *emis = malloc((P ? P : 1) * KC * sizeof *emis), *demis = malloc((P ? P : 1) * KC * sizeof *demis);
  float *dlogits = calloc(B * T * KC, sizeof *dlogits), *dtrans = calloc(KC * KC, sizeof *dtrans);
  float *dstart = calloc(KC, sizeof *dstart), *dend = calloc(KC, sizeof *dend);
  double *work = malloc(head_crf_work_len(T, KC) * sizeof *work);
  layer_gather_forward(emis, logits, rows, P, KC);
  float nll = (float)head_crf_forward(&count, work, emis, tags, first, trans, start, end, B, KC);
  head_crf_backward(demis, dtrans, dstart, dend, work, emis, tags, first, trans, start, end, B, KC,
                    1.0f);
  layer_gather_backward(dlogits, demis, rows, P, KC);
  head_crf_viterbi(best, NULL, work, back, emis, first, trans, start, end, B, KC);
  float *decoded = malloc(B * T * sizeof *decoded);
  for (size_t i = 0; i < B * T; i++) decoded[i] = HEAD_IGNORE;
  for (size_t p = 0; p < P; p++) decoded[rows[p]] = (float)best[p];

  snprintf(path, sizeof path, "%s/out.f32", argv[1]);
  FILE *o = fopen(path, "wb");
  if (!o) return fail("cannot write out.f32");
  int bad = put(o, ce, 2) || put(o, probs, N * K) || put(o, dx, N * H) || put(o, dw, K * H) ||
            put(o, db, K) || put(o, &nll, 1) || put(o, dlogits, B * T * KC) ||
            put(o, dtrans, KC * KC) || put(o, dstart, KC) || put(o, dend, KC) ||
            put(o, decoded, B * T);
  if (fclose(o) || bad) return fail("cannot write out.f32");
  free(ints), free(in), free(lg), free(probs), free(dlg), free(dx), free(dw), free(db);
  free(rows), free(first), free(tags), free(best), free(back), free(emis), free(demis);
  free(dlogits), free(dtrans), free(dstart), free(dend), free(work), free(decoded);
  return 0;
}
