/* BERT's masking procedure (google-research/bert create_pretraining_data),
 * applied per read: candidate units (tokens, or whole words) are drawn by a
 * partial Fisher-Yates shuffle until the prediction budget is met. */
#include "corpus/masking.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#include "util/rng.h"

#define MASK_SEED_TAG 0x6d61736b696e6731ull /* "masking1": masks' own key */

static int is_special(const mask_config *cfg, int32_t id) {
  return id == cfg->cls_id || id == cfg->sep_id || id == cfg->pad_id || id == cfg->mask_id;
}

size_t mask_apply(const mask_config *cfg, uint64_t seed, uint32_t shard, uint32_t epoch,
                  uint32_t index, const int32_t *ids, size_t n, int32_t *input, int32_t *labels,
                  uint32_t *scratch) {
  assert(cfg->vocab_size > 0 && (!cfg->whole_word || cfg->continuation));
  memcpy(input, ids, n * sizeof *ids);
  for (size_t i = 0; i < n; i++) labels[i] = -1;

  /* scratch[u] = start of unit u; a unit runs to the next unit's start or
   * to the next special token, so its length is found by scanning. */
  size_t units = 0, candidates = 0;
  for (size_t i = 0; i < n; i++) {
    int32_t id = ids[i];
    if (is_special(cfg, id)) continue;
    candidates++;
    int joins = cfg->whole_word && units > 0 && i > 0 && !is_special(cfg, ids[i - 1]) &&
                id >= 0 && id < cfg->vocab_size && cfg->continuation[id];
    if (!joins) scratch[units++] = (uint32_t)i;
  }
  if (candidates == 0) return 0;
  size_t budget = (size_t)lround(cfg->prob * (double)candidates);
  if (budget > cfg->max_predictions) budget = cfg->max_predictions;
  if (budget < 1) budget = 1;
  if (budget > candidates) budget = candidates;

  rng_stream rng;
  rng_stream_init(&rng, rng_mix64(seed ^ MASK_SEED_TAG), shard, epoch, index);
  size_t chosen = 0;
  for (size_t u = 0; u < units && chosen < budget; u++) {
    size_t pick = u + rng_next_below(&rng, (uint32_t)(units - u));
    uint32_t start = scratch[pick];
    scratch[pick] = scratch[u];
    scratch[u] = start;
    size_t len = 1;
    if (cfg->whole_word)
      while (start + len < n && !is_special(cfg, ids[start + len]) &&
             ids[start + len] >= 0 && ids[start + len] < cfg->vocab_size &&
             cfg->continuation[ids[start + len]])
        len++;
    if (chosen + len > budget) continue; /* as BERT: skip words that overflow */
    for (size_t i = start; i < start + len; i++) {
      labels[i] = ids[i];
      uint32_t r = rng_next_below(&rng, 10);
      if (r < 8)
        input[i] = cfg->mask_id;
      else if (r == 8)
        input[i] = (int32_t)rng_next_below(&rng, (uint32_t)cfg->vocab_size);
    }
    chosen += len;
  }
  return chosen;
}
