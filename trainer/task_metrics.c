/* Classification and tagging metrics (see task_metrics.h). The chunk rules
 * are conlleval's endOfChunk / startOfChunk with the S (single) tag of its
 * BIOES extension; for BIO tags they are the original script's. */
#include "trainer/task_metrics.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "trainer/heads.h"
#include "util/status.h"

static double ratio(uint64_t num, uint64_t den) { return den ? (double)num / (double)den : 0.0; }

static void prf_finish(task_prf *p) {
  p->precision = ratio(p->correct, p->pred);
  p->recall = ratio(p->correct, p->gold);
  double s = p->precision + p->recall;
  p->f1 = s > 0.0 ? 2.0 * p->precision * p->recall / s : 0.0;
}

void task_confusion_add(uint64_t *confusion, const int32_t *gold, const int32_t *pred, size_t n,
                        size_t K) {
  for (size_t i = 0; i < n; i++) {
    if (gold[i] == HEAD_IGNORE) continue;
    assert(gold[i] >= 0 && (size_t)gold[i] < K && pred[i] >= 0 && (size_t)pred[i] < K);
    confusion[(size_t)gold[i] * K + (size_t)pred[i]]++;
  }
}

void task_class_scores_compute(task_class_scores *out, task_prf *per_class,
                               const uint64_t *confusion, size_t K) {
  *out = (task_class_scores){0};
  for (size_t k = 0; k < K; k++) per_class[k] = (task_prf){0};
  for (size_t g = 0; g < K; g++)
    for (size_t p = 0; p < K; p++) {
      uint64_t c = confusion[g * K + p];
      per_class[g].gold += c;
      per_class[p].pred += c;
      out->total += c;
    }
  double f1_sum = 0.0;
  size_t present = 0;
  for (size_t k = 0; k < K; k++) {
    per_class[k].correct = confusion[k * K + k];
    out->correct += per_class[k].correct;
    prf_finish(&per_class[k]);
    if (per_class[k].gold || per_class[k].pred) f1_sum += per_class[k].f1, present++;
  }
  out->accuracy = ratio(out->correct, out->total);
  out->macro_f1 = present ? f1_sum / (double)present : 0.0;
}

/* A class's or type's scores as a JSON object; NULL when out of memory. */
static cJSON *prf_json(const task_prf *p, const char *gold_key, const char *pred_key) {
  cJSON *o = cJSON_CreateObject();
  int ok = o && cJSON_AddNumberToObject(o, "precision", p->precision) &&
           cJSON_AddNumberToObject(o, "recall", p->recall) &&
           cJSON_AddNumberToObject(o, "f1", p->f1) &&
           cJSON_AddNumberToObject(o, gold_key, (double)p->gold) &&
           cJSON_AddNumberToObject(o, pred_key, (double)p->pred) &&
           cJSON_AddNumberToObject(o, "correct", (double)p->correct);
  if (ok) return o;
  cJSON_Delete(o);
  return NULL;
}

static int json_finish(char **out, cJSON *root, int complete, char **err) {
  char *text = complete ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  if (!text) return status_set(err, ST_NOMEM, "out of memory writing the metrics report");
  *out = text;
  return ST_OK;
}

int task_class_json(char **out, const uint64_t *confusion, const char *const *names, size_t K,
                    char **err) {
  task_prf *per = malloc((K ? K : 1) * sizeof *per);
  if (!per) return status_set(err, ST_NOMEM, "out of memory writing the metrics report");
  task_class_scores s;
  task_class_scores_compute(&s, per, confusion, K);
  cJSON *root = cJSON_CreateObject();
  int ok = root != NULL;
  ok = ok && cJSON_AddNumberToObject(root, "accuracy", s.accuracy);
  ok = ok && cJSON_AddNumberToObject(root, "macro_f1", s.macro_f1);
  ok = ok && cJSON_AddNumberToObject(root, "total", (double)s.total);
  ok = ok && cJSON_AddNumberToObject(root, "correct", (double)s.correct);
  cJSON *classes = ok ? cJSON_AddObjectToObject(root, "per_class") : NULL;
  cJSON *labels = ok ? cJSON_AddArrayToObject(root, "labels") : NULL;
  cJSON *matrix = ok ? cJSON_AddArrayToObject(root, "confusion") : NULL;
  ok = classes && labels && matrix;
  for (size_t k = 0; ok && k < K; k++) {
    cJSON *c = prf_json(&per[k], "support", "predicted");
    ok = c && cJSON_AddItemToObject(classes, names[k], c);
    if (c && !ok) cJSON_Delete(c);
    cJSON *name = ok ? cJSON_CreateString(names[k]) : NULL;
    ok = name && cJSON_AddItemToArray(labels, name);
    cJSON *row = ok ? cJSON_CreateArray() : NULL;
    ok = row && cJSON_AddItemToArray(matrix, row);
    for (size_t p = 0; ok && p < K; p++) {
      cJSON *v = cJSON_CreateNumber((double)confusion[k * K + p]);
      ok = v && cJSON_AddItemToArray(row, v);
    }
  }
  free(per);
  return json_finish(out, root, ok, err);
}

/* ---------------------------------------------------------------- tagging */

enum { KIND_O, KIND_B, KIND_I, KIND_E, KIND_S, KIND_OTHER };

static uint8_t kind_of(const char *prefix, size_t len) {
  if (len != 1) return KIND_OTHER;
  switch (prefix[0]) {
  case 'O': return KIND_O;
  case 'B': return KIND_B;
  case 'I':
  case 'M': return KIND_I;
  case 'E': return KIND_E;
  case 'S': return KIND_S;
  default: return KIND_OTHER;
  }
}

static const char *type_of(const char *name) {
  const char *dash = strchr(name, '-');
  return dash ? dash + 1 : "";
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int32_t find_type(const task_tagset *ts, const char *type) {
  const char *key = type;
  char **hit = bsearch(&key, ts->types, ts->n_types, sizeof *ts->types, cmp_str);
  return hit ? (int32_t)(hit - ts->types) : -1;
}

static int check_names(const char *const *names, size_t K, char **err) {
  for (size_t k = 0; k < K; k++) {
    if (!names[k][0])
      return status_set(err, ST_INVALID, "label %zu of the tag set is empty; give every label a name", k);
    for (size_t j = 0; j < k; j++)
      if (!strcmp(names[j], names[k]))
        return status_set(err, ST_INVALID, "label '%s' appears twice in the tag set; list each label once", names[k]);
  }
  return ST_OK;
}

int task_tagset_init(task_tagset *ts, const char *const *names, size_t K, char **err) {
  *ts = (task_tagset){.K = K};
  int rc = check_names(names, K, err);
  if (rc) return rc;
  ts->kind = malloc((K ? K : 1) * sizeof *ts->kind);
  ts->type = malloc((K ? K : 1) * sizeof *ts->type);
  ts->types = malloc((K ? K : 1) * sizeof *ts->types);
  if (!ts->kind || !ts->type || !ts->types) goto fail;
  for (size_t k = 0; k < K; k++) {
    const char *dash = strchr(names[k], '-'), *type = type_of(names[k]);
    ts->kind[k] = kind_of(names[k], dash ? (size_t)(dash - names[k]) : strlen(names[k]));
    if (ts->kind[k] == KIND_O) continue;
    int seen = 0;
    for (size_t t = 0; t < ts->n_types && !seen; t++) seen = !strcmp(ts->types[t], type);
    if (seen) continue;
    if (!(ts->types[ts->n_types] = strdup(type))) goto fail;
    ts->n_types++;
  }
  qsort(ts->types, ts->n_types, sizeof *ts->types, cmp_str);
  for (size_t k = 0; k < K; k++) ts->type[k] = find_type(ts, type_of(names[k]));
  return ST_OK;
fail:
  task_tagset_free(ts);
  return status_set(err, ST_NOMEM, "out of memory reading a tag set of %zu labels", K);
}

void task_tagset_free(task_tagset *ts) {
  if (!ts) return;
  for (size_t t = 0; t < ts->n_types; t++) free(ts->types[t]);
  free(ts->types), free(ts->kind), free(ts->type);
  *ts = (task_tagset){0};
}

size_t task_tag_counts_len(const task_tagset *ts) { return TASK_TAG_TYPE(ts->n_types); }

/* A tag as conlleval sees it: the prefix's kind and the type. Positions
 * outside a sentence are O with the empty type. */
typedef struct tag {
  uint8_t kind;
  int32_t type;
} tag;

static tag tag_at(const task_tagset *ts, const int32_t *tags, size_t i, size_t n) {
  if (i >= n) return (tag){KIND_O, find_type(ts, "")};
  assert(tags[i] >= 0 && (size_t)tags[i] < ts->K);
  return (tag){ts->kind[tags[i]], ts->type[tags[i]]};
}

/* conlleval's endOfChunk: did a chunk end between prev and cur? */
static int chunk_ends(tag prev, tag cur) {
  int end = prev.kind == KIND_E || prev.kind == KIND_S;
  end |= (prev.kind == KIND_B || prev.kind == KIND_I) &&
         (cur.kind == KIND_B || cur.kind == KIND_S || cur.kind == KIND_O);
  end |= prev.kind != KIND_O && prev.type != cur.type;
  return end;
}

/* conlleval's startOfChunk: did a chunk start at cur? (An I or E after O
 * starts one: conlleval's reading of "I- without B-".) */
static int chunk_starts(tag prev, tag cur) {
  int start = cur.kind == KIND_B || cur.kind == KIND_S;
  start |= (prev.kind == KIND_E || prev.kind == KIND_S || prev.kind == KIND_O) &&
           (cur.kind == KIND_E || cur.kind == KIND_I);
  start |= cur.kind != KIND_O && prev.type != cur.type;
  return start;
}

/* One sentence, conlleval's main loop: n tokens, then the sentence break
 * (O), and an open candidate closed at the end as at end of file. */
static void count_sentence(uint64_t *counts, const task_tagset *ts, const int32_t *gold,
                           const int32_t *pred, size_t n) {
  tag last_g = tag_at(ts, gold, n, n), last_p = last_g;
  int in_correct = 0;
  for (size_t i = 0; i <= n; i++) {
    tag g = tag_at(ts, gold, i, n), p = tag_at(ts, pred, i, n);
    if (in_correct) {
      int end_g = chunk_ends(last_g, g), end_p = chunk_ends(last_p, p);
      if (end_g && end_p && last_g.type == last_p.type) {
        in_correct = 0;
        counts[TASK_TAG_TYPE(last_g.type) + TASK_TAG_CORRECT]++;
      } else if (end_g != end_p || g.type != p.type) {
        in_correct = 0;
      }
    }
    int start_g = chunk_starts(last_g, g), start_p = chunk_starts(last_p, p);
    if (start_g && start_p && g.type == p.type) in_correct = 1;
    if (start_g) counts[TASK_TAG_TYPE(g.type) + TASK_TAG_GOLD]++;
    if (start_p) counts[TASK_TAG_TYPE(p.type) + TASK_TAG_PRED]++;
    if (i < n) {
      counts[TASK_TAG_TOKENS]++;
      counts[TASK_TAG_TOKENS_CORRECT] += gold[i] == pred[i];
    }
    last_g = g, last_p = p;
  }
  if (in_correct) counts[TASK_TAG_TYPE(last_g.type) + TASK_TAG_CORRECT]++;
}

void task_tag_count(uint64_t *counts, const task_tagset *ts, const int32_t *gold,
                    const int32_t *pred, const size_t *first, size_t B) {
  for (size_t b = 0; b < B; b++)
    count_sentence(counts, ts, gold + first[b], pred + first[b], first[b + 1] - first[b]);
}

void task_tag_scores_compute(task_tag_scores *out, task_prf *per_type, const uint64_t *counts,
                             const task_tagset *ts) {
  *out = (task_tag_scores){.tokens = counts[TASK_TAG_TOKENS],
                           .tokens_correct = counts[TASK_TAG_TOKENS_CORRECT]};
  out->token_accuracy = ratio(out->tokens_correct, out->tokens);
  for (size_t t = 0; t < ts->n_types; t++) {
    const uint64_t *c = counts + TASK_TAG_TYPE(t);
    per_type[t] = (task_prf){.gold = c[TASK_TAG_GOLD], .pred = c[TASK_TAG_PRED],
                             .correct = c[TASK_TAG_CORRECT]};
    prf_finish(&per_type[t]);
    out->overall.gold += per_type[t].gold;
    out->overall.pred += per_type[t].pred;
    out->overall.correct += per_type[t].correct;
  }
  prf_finish(&out->overall);
}

size_t task_tag_chunks(task_chunk *out, const task_tagset *ts, const int32_t *tags, size_t n) {
  size_t count = 0;
  int open = 0;
  tag last = tag_at(ts, tags, n, n);
  for (size_t i = 0; i <= n; i++) {
    tag cur = tag_at(ts, tags, i, n);
    if (open && chunk_ends(last, cur)) out[count++].end = i, open = 0;
    if (i < n && chunk_starts(last, cur)) {
      if (open) out[count++].end = i;
      out[count] = (task_chunk){.begin = i, .type = cur.type};
      open = 1;
    }
    last = cur;
  }
  if (open) out[count++].end = n;
  return count;
}

int task_tag_json(char **out, const uint64_t *counts, const task_tagset *ts, char **err) {
  task_prf *per = malloc((ts->n_types ? ts->n_types : 1) * sizeof *per);
  if (!per) return status_set(err, ST_NOMEM, "out of memory writing the metrics report");
  task_tag_scores s;
  task_tag_scores_compute(&s, per, counts, ts);
  cJSON *root = cJSON_CreateObject();
  int ok = root != NULL;
  ok = ok && cJSON_AddNumberToObject(root, "token_accuracy", s.token_accuracy);
  ok = ok && cJSON_AddNumberToObject(root, "tokens", (double)s.tokens);
  ok = ok && cJSON_AddNumberToObject(root, "precision", s.overall.precision);
  ok = ok && cJSON_AddNumberToObject(root, "recall", s.overall.recall);
  ok = ok && cJSON_AddNumberToObject(root, "f1", s.overall.f1);
  ok = ok && cJSON_AddNumberToObject(root, "gold_chunks", (double)s.overall.gold);
  ok = ok && cJSON_AddNumberToObject(root, "pred_chunks", (double)s.overall.pred);
  ok = ok && cJSON_AddNumberToObject(root, "correct_chunks", (double)s.overall.correct);
  cJSON *types = ok ? cJSON_AddObjectToObject(root, "per_type") : NULL;
  ok = types != NULL;
  for (size_t t = 0; ok && t < ts->n_types; t++) {
    cJSON *c = prf_json(&per[t], "gold", "predicted");
    ok = c && cJSON_AddItemToObject(types, ts->types[t], c);
    if (c && !ok) cJSON_Delete(c);
  }
  free(per);
  return json_finish(out, root, ok, err);
}
