/* Evaluation metrics of fine-tuning tasks: classification (accuracy,
 * macro-F1, per-class precision/recall/F1, confusion matrix) and tagging
 * (token accuracy, entity precision/recall/F1 overall and per type, as
 * conlleval computes them).
 *
 * Conventions:
 *  1. Evaluation adds into integer counts (+=), and every score is a
 *     function of the counts alone: ranks sum their counts (one uint64
 *     array each: the confusion matrix, the tag counts) and any rank then
 *     computes the same scores, whatever the batching.
 *  2. Gold labels of HEAD_IGNORE (trainer/heads.h) are skipped.
 *  3. Scores are fractions in [0, 1] (conlleval prints percentages). A
 *     ratio whose denominator is 0 is 0 (sklearn's zero_division=0 and
 *     conlleval agree on this).
 *  4. Statuses and messages as util/status.h. Strings returned through
 *     `char **out` are malloc'd; the caller frees them.
 */
#ifndef DDPT_TRAINER_TASK_METRICS_H
#define DDPT_TRAINER_TASK_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* One class or chunk type. */
typedef struct task_prf {
  double precision, recall, f1;
  uint64_t gold;    /* items whose gold label is this class (support), or gold chunks */
  uint64_t pred;    /* items predicted as this class, or predicted chunks */
  uint64_t correct; /* both */
} task_prf;

/* --------------------------------------------------------- classification */

/* confusion[g * K + p] += the items with gold label g predicted as p:
 * rows are gold, columns predictions (sklearn's confusion_matrix). */
void task_confusion_add(uint64_t *confusion,     /* (K, K) */
                        const int32_t *gold,     /* (n) < K or HEAD_IGNORE */
                        const int32_t *pred,     /* (n) < K */
                        size_t n, size_t K);

typedef struct task_class_scores {
  uint64_t total, correct;
  double accuracy; /* correct / total */
  /* The mean F1 of the classes that occur as a gold label or a
   * prediction, as sklearn's f1_score(average='macro') without `labels`;
   * classes that never occur are not averaged in (they would count as 0). */
  double macro_f1;
} task_class_scores;

/* The scores of a confusion matrix; per_class[k] for class k (=). */
void task_class_scores_compute(task_class_scores *out,
                               task_prf *per_class,       /* (K) */
                               const uint64_t *confusion, /* (K, K) */
                               size_t K);

/* The whole classification report as one JSON object:
 *   {"accuracy", "macro_f1", "total", "correct",
 *    "per_class": {NAME: {"precision", "recall", "f1", "support", "predicted"}},
 *    "labels": [NAME...], "confusion": [[row of gold label 0]...]} */
int task_class_json(char **out, const uint64_t *confusion, const char *const *names, size_t K,
                    char **err);

/* ---------------------------------------------------------------- tagging */

/* A tag set read for chunking. A label splits at its first '-' into a
 * prefix and a type (conlleval: "B-PER" is B and PER, "B-ORG-X" is B and
 * ORG-X; "S" alone is S with the empty type). Prefixes B, I, E, S and O are
 * BIO / BIOES tags; M (BMES, word segmentation) is read as I; any other
 * prefix starts or ends a chunk only by a change of type, as in conlleval.
 * Chunk types are the types of the labels that are not O, sorted by strcmp
 * (conlleval's order); "" is one for a set without types (B, M, E, S). */
typedef struct task_tagset {
  size_t K;
  size_t n_types;
  char **types;   /* (n_types) */
  uint8_t *kind;  /* (K) internal */
  int32_t *type;  /* (K) index into types; -1 when O's empty type is no chunk type */
} task_tagset;

/* Fails with ST_INVALID when a name is empty or appears twice. */
int task_tagset_init(task_tagset *ts, const char *const *names, size_t K, char **err);
void task_tagset_free(task_tagset *ts);

/* The tag counts: counts[TASK_TAG_TOKENS] labelled tokens,
 * counts[TASK_TAG_TOKENS_CORRECT] those tagged right, then for chunk type t
 * counts[TASK_TAG_TYPE(t) + TASK_TAG_GOLD / _PRED / _CORRECT]. */
enum {
  TASK_TAG_TOKENS = 0,
  TASK_TAG_TOKENS_CORRECT = 1,
  TASK_TAG_GOLD = 0,
  TASK_TAG_PRED = 1,
  TASK_TAG_CORRECT = 2,
};
#define TASK_TAG_TYPE(t) (2 + 3 * (size_t)(t))
size_t task_tag_counts_len(const task_tagset *ts);

/* Adds one batch into counts: sequence b is positions first[b] ..
 * first[b + 1] - 1 of gold and pred (the chains of heads.h: labelled
 * positions only), and is one conlleval sentence. Chunks are counted as
 * conlleval does: a chunk is correct when gold and prediction start it at
 * the same position with the same type and end it at the same position. */
void task_tag_count(uint64_t *counts,          /* (task_tag_counts_len) */
                    const task_tagset *ts,
                    const int32_t *gold,       /* (P) < K */
                    const int32_t *pred,       /* (P) < K */
                    const size_t *first,       /* (B + 1) */
                    size_t B);

typedef struct task_tag_scores {
  uint64_t tokens, tokens_correct;
  double token_accuracy;
  task_prf overall; /* chunks of every type */
} task_tag_scores;

void task_tag_scores_compute(task_tag_scores *out,
                             task_prf *per_type,      /* (n_types) */
                             const uint64_t *counts, const task_tagset *ts);

/* The chunks of one tagged sequence, by the rules task_tag_count uses:
 * [begin, end) positions and a chunk type. Returns how many (<= n). */
typedef struct task_chunk {
  size_t begin, end;
  int32_t type;
} task_chunk;
size_t task_tag_chunks(task_chunk *out,        /* (<= n) */
                       const task_tagset *ts,
                       const int32_t *tags,    /* (n) < K */
                       size_t n);

/* The tagging report as one JSON object:
 *   {"token_accuracy", "tokens", "precision", "recall", "f1",
 *    "gold_chunks", "pred_chunks", "correct_chunks",
 *    "per_type": {TYPE: {"precision", "recall", "f1", "gold", "predicted", "correct"}}} */
int task_tag_json(char **out, const uint64_t *counts, const task_tagset *ts, char **err);

#endif
