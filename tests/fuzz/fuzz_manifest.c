/* libFuzzer target for corpus/manifest's parser: any text as manifest.json.
 * A refusal must be one line naming the file; an accepted manifest must
 * hold what the reader trusts it for (manifest.h, docs/corpus.md): a
 * seq_len and id width it can size buffers with, special ids inside the
 * vocab, each shard's files covering its keys without gaps, totals equal
 * to the shards' sums and every shard's largest id inside the vocab. */
#include <stdlib.h>
#include <string.h>

#include "corpus/manifest.h"
#include "util/status.h"

#define FUZZ_WHAT "fuzz/manifest.json"

static void check_shards(const manifest *m, const manifest_shard *s, size_t n, uint64_t *seqs,
                         uint64_t *tokens) {
  for (size_t i = 0; i < n; i++) {
    if (s[i].sequences == 0 || s[i].num_files == 0 || strchr(s[i].name, '/') ||
        (int64_t)s[i].max_id >= m->vocab_size)
      abort();
    uint64_t next = 0;
    for (size_t f = 0; f < s[i].num_files; f++) {
      if (s[i].files[f].first != next || s[i].files[f].last < s[i].files[f].first ||
          strchr(s[i].files[f].name, '/'))
        abort();
      next = s[i].files[f].last + 1;
    }
    if (next != s[i].sequences) abort();
    *seqs += s[i].sequences;
    *tokens += s[i].tokens;
  }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  manifest *m = NULL;
  char *err = NULL;
  if (manifest_parse((const char *)data, size, FUZZ_WHAT, &m, &err) != ST_OK) {
    if (m || !err || strchr(err, '\n') || !strstr(err, FUZZ_WHAT)) abort();
    free(err);
    return 0;
  }
  if (err || m->seq_len < 8 || m->seq_len > 65535 || (m->id_bytes != 2 && m->id_bytes != 4))
    abort();
  int32_t special[5] = {m->cls_id, m->sep_id, m->mask_id, m->pad_id, m->unk_id};
  for (int i = 0; i < 5; i++)
    if (special[i] < 0 || special[i] >= m->vocab_size) abort();
  if (m->num_shards == 0 || m->task > MANIFEST_TASK_TAG) abort();
  if (m->task != MANIFEST_TASK_PRETRAIN && (m->num_labels == 0 || !m->labels)) abort();
  for (size_t i = 0; i < m->num_labels; i++)
    if (!m->labels[i] || m->labels[i][0] == '\0') abort();
  uint64_t seqs = 0, tokens = 0;
  check_shards(m, m->shards, m->num_shards, &seqs, &tokens);
  check_shards(m, m->valid, m->num_valid, &seqs, &tokens);
  if (seqs != m->sequences || tokens != m->tokens) abort();
  manifest_free(m);
  return 0;
}
