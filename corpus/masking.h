/* Dynamic masked-language-model masking, done when a sample is read. The
 * random draws are keyed by (seed, shard, epoch, index) only, so a sample's
 * masks never depend on the rank that reads it or the world size. */
#ifndef DDPT_CORPUS_MASKING_H
#define DDPT_CORPUS_MASKING_H

#include <stddef.h>
#include <stdint.h>

typedef struct mask_config {
  double prob;            /* share of candidate tokens predicted (BERT: 0.15) */
  size_t max_predictions; /* per sample (BERT: 20 at seq_len 128) */
  int whole_word;         /* mask all pieces of a word together */
  /* Never masked: these four ids. Every other position is a candidate. */
  int32_t cls_id, sep_id, pad_id, mask_id;
  int32_t vocab_size; /* random replacements are drawn from 0..vocab_size-1 */
  /* (vocab_size) 1 where the token continues a word ("##..."); read only
   * when whole_word. Borrowed: must outlive every call. */
  const uint8_t *continuation;
} mask_config;

/* Masks ids[0..n): input gets the ids with the chosen positions replaced
 * (80% [MASK], 10% a random id, 10% unchanged), labels gets the original id
 * at each chosen position and -1 elsewhere. round(prob * candidates) tokens
 * are chosen, clamped to [1, max_predictions] and to the candidates there
 * are. scratch holds n entries. Returns the number of predicted positions. */
size_t mask_apply(const mask_config *cfg, uint64_t seed, uint32_t shard, uint32_t epoch,
                  uint32_t index, const int32_t *ids, size_t n, int32_t *input, int32_t *labels,
                  uint32_t *scratch);

#endif
