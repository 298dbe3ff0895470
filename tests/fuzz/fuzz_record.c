/* libFuzzer target for corpus/record's decoder, the code that reads every
 * value of a shard. The first byte picks the id width (bit 0) and the
 * seq_len bound (the rest); the remaining bytes are the record. A refusal
 * must be one line; an accepted record must keep what record.h promises
 * (split within n, n within seq_len, labels in range) and must encode back
 * to exactly the bytes it was decoded from. */
#include <stdlib.h>
#include <string.h>

#include "corpus/record.h"
#include "util/status.h"

#define MAX_N 600 /* above seq_len's 512, so that the bound itself is fuzzed */

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  static int32_t ids[MAX_N], tags[MAX_N];
  static uint8_t again[RECORD_HEADER_BYTES + MAX_N * 6];
  if (size == 0) return 0;
  int id_bytes = data[0] & 1 ? 4 : 2;
  size_t max_n = (size_t)(data[0] >> 1) * MAX_N / 127;
  record rec;
  char *err = NULL;
  if (record_decode(data + 1, size - 1, id_bytes, ids, tags, max_n, &rec, &err) != ST_OK) {
    if (!err || strchr(err, '\n')) abort();
    free(err);
    return 0;
  }
  if (err || rec.n > max_n || rec.split > rec.n || (!rec.pair && rec.split != rec.n)) abort();
  if (rec.ids != ids || (rec.kind == RECORD_TAGS) != (rec.tags != NULL)) abort();
  if (rec.kind == RECORD_CLASS && (rec.label < 0 || rec.label >= RECORD_MAX_LABELS)) abort();
  for (size_t i = 0; rec.kind == RECORD_TAGS && i < rec.n; i++)
    if ((tags[i] < 0 && tags[i] != RECORD_IGNORE_LABEL) || tags[i] >= RECORD_MAX_LABELS) abort();
  size_t len = record_encoded_size(rec.n, id_bytes) + record_labels_size(rec.kind, rec.n);
  if (len != size - 1) abort();
  record_encode(&rec, id_bytes, again);
  if (memcmp(again, data + 1, len) != 0) abort();
  return 0;
}
