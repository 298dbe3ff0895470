/* Packing documents of tokenized sentences into training sequences, in
 * document order and deterministically (seeded per document):
 *  - full sentences (RoBERTa): sentences fill [CLS] ... [SEP] greedily up to
 *    seq_len, across documents with a [SEP] between them;
 *  - NSP pairs (BERT create_pretraining_data): [CLS] A [SEP] B [SEP], B the
 *    actual continuation or, half of the time, taken from another document. */
#ifndef DDPT_CORPUS_PACKING_H
#define DDPT_CORPUS_PACKING_H

#include <stddef.h>
#include <stdint.h>

#include "corpus/record.h"

typedef struct pack_config {
  size_t seq_len;        /* >= 8 */
  int nsp;               /* sentence pairs instead of full sentences */
  uint64_t seed;         /* NSP draws are keyed by (seed, document number) */
  double short_seq_prob; /* NSP: share of pairs with a shorter target (BERT: 0.1) */
  size_t window_docs;    /* NSP: random B comes from one of the last this many documents */
  int32_t cls_id, sep_id;
} pack_config;

/* Receives each finished sequence; rec and its ids are valid during the
 * call only. A non-zero return stops packing and is passed back. */
typedef int (*pack_emit_fn)(void *ctx, const record *rec, char **err);

typedef struct packer packer;

/* *out owns the packer; free it with packer_free. */
int packer_create(const pack_config *cfg, pack_emit_fn emit, void *ctx, packer **out, char **err);
void packer_free(packer *p); /* NULL is a no-op */

/* Adds one document: ids[0..sent_end[nsent-1]), sentence i ending at
 * sent_end[i]. Empty sentences are skipped; so is a document without
 * tokens (it is not counted). */
int packer_add_document(packer *p, const int32_t *ids, const size_t *sent_end, size_t nsent,
                        char **err);

/* Emits what is still buffered. Call once after the last document. */
int packer_finish(packer *p, char **err);

/* Documents with at least one token seen so far. */
uint64_t packer_documents(const packer *p);

#endif
