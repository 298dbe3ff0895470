/* LevelDB's table format read by hand (see sstable.h): footer, handles,
 * block trailers and the entries of a block, every length checked against
 * the bytes that hold it. */
#include "util/sstable.h"

#include <stdlib.h>
#include <string.h>

#include "util/crc32c.h"
#include "util/status.h"

const uint8_t *sstable_varint(const uint8_t *p, const uint8_t *end, int max_bytes, uint64_t *v) {
  uint64_t r = 0;
  for (int i = 0; i < max_bytes && p < end; i++) {
    uint64_t byte = *p++;
    r |= (byte & 0x7fu) << (7 * i);
    if (!(byte & 0x80u)) {
      *v = r;
      return p;
    }
  }
  return NULL;
}

const uint8_t *sstable_varint32(const uint8_t *p, const uint8_t *end, uint32_t *v) {
  uint64_t r;
  p = sstable_varint(p, end, 5, &r);
  if (!p || r > UINT32_MAX) return NULL;
  *v = (uint32_t)r;
  return p;
}

const uint8_t *sstable_handle_get(const uint8_t *p, const uint8_t *end, sstable_handle *h) {
  if (!(p = sstable_varint(p, end, 10, &h->offset))) return NULL;
  return sstable_varint(p, end, 10, &h->size);
}

int sstable_footer_parse(const uint8_t *footer, const char *what, sstable_handle *meta,
                         sstable_handle *index, char **err) {
  if (sstable_le64(footer + 40) != SSTABLE_MAGIC)
    return status_set(err, ST_CORRUPT, "%s: bad magic number: not an SSTable (LevelDB table)",
                      what);
  const uint8_t *p = sstable_handle_get(footer, footer + 40, meta);
  if (!p || !sstable_handle_get(p, footer + 40, index))
    return status_set(err, ST_CORRUPT, "%s: the table footer's block handles are malformed", what);
  return ST_OK;
}

int sstable_block_check(const uint8_t *raw, uint64_t size, uint64_t offset, const char *kind,
                        const char *what, int *type, char **err) {
  uint32_t stored = crc32c_unmask(sstable_le32(raw + size + 1));
  uint32_t actual = crc32c(raw, (size_t)size + 1);
  if (stored != actual)
    return status_set(err, ST_CORRUPT,
                      "%s: the %s block at offset %llu fails its CRC32C (block checksum mismatch: "
                      "stored %08x, computed %08x): the file is damaged",
                      what, kind, (unsigned long long)offset, stored, actual);
  *type = raw[size];
  return ST_OK;
}

static int block_fail(const sstable_iter *it, const char *what, const char *why, char **err) {
  return status_set(err, ST_CORRUPT, "%s: the %s block at offset %llu is malformed: %s at byte %zu",
                    what, it->b->kind, (unsigned long long)it->b->offset, why, it->pos);
}

static uint32_t restart_at(const sstable_iter *it, uint32_t i) {
  return sstable_le32(it->b->data + it->limit + 4 * (size_t)i);
}

int sstable_iter_init(sstable_iter *it, const sstable_block *b, const char *what, char **err) {
  memset(it, 0, sizeof *it);
  it->b = b;
  if (b->len < 4) return block_fail(it, what, "shorter than its restart count", err);
  it->n_restarts = sstable_le32(b->data + b->len - 4);
  if (it->n_restarts > (b->len - 4) / 4)
    return block_fail(it, what, "restart count larger than the block", err);
  it->limit = b->len - 4 - 4 * (size_t)it->n_restarts;
  for (uint32_t i = 0; i < it->n_restarts; i++) {
    uint32_t r = restart_at(it, i);
    /* An empty block still records its first restart, at 0. */
    int empty_block_start = it->limit == 0 && i == 0 && r == 0;
    if ((r >= it->limit && !empty_block_start) || (i > 0 && r <= restart_at(it, i - 1)))
      return block_fail(it, what, "restart offsets out of order or past the entries", err);
  }
  if (it->limit > 0 && it->n_restarts == 0)
    return block_fail(it, what, "entries without a restart point", err);
  if (it->limit == 0) it->next_restart = it->n_restarts;
  it->key = malloc(b->len + 1);
  if (!it->key)
    return status_set(err, ST_NOMEM, "%s: out of memory reading the %s block", what, b->kind);
  return ST_OK;
}

void sstable_iter_free(sstable_iter *it) {
  free(it->key);
  it->key = NULL;
}

int sstable_iter_next(sstable_iter *it, const char *what, int *more, char **err) {
  *more = 0;
  if (it->pos == it->limit) {
    if (it->next_restart != it->n_restarts)
      return block_fail(it, what, "a restart offset not at an entry", err);
    return ST_OK;
  }
  const uint8_t *start = it->b->data + it->pos, *end = it->b->data + it->limit, *p;
  uint32_t shared, non_shared, value_len;
  if (!(p = sstable_varint32(start, end, &shared)) ||
      !(p = sstable_varint32(p, end, &non_shared)) || !(p = sstable_varint32(p, end, &value_len)))
    return block_fail(it, what, "an entry header that runs past the entries", err);
  if (shared > it->key_len)
    return block_fail(it, what, "an entry sharing more bytes than the previous key has", err);
  if ((uint64_t)non_shared + value_len > (uint64_t)(end - p))
    return block_fail(it, what, "an entry that runs past the entries", err);
  if (it->next_restart < it->n_restarts) {
    uint32_t r = restart_at(it, it->next_restart);
    if (r < it->pos) return block_fail(it, what, "a restart offset not at an entry", err);
    if (r == it->pos) {
      if (shared != 0)
        return block_fail(it, what, "an entry at a restart point that shares a prefix", err);
      it->next_restart++;
    }
  }
  memcpy(it->key + shared, p, non_shared);
  it->key_len = (size_t)shared + non_shared;
  it->key[it->key_len] = '\0';
  it->value = p + non_shared;
  it->value_len = value_len;
  it->pos = (size_t)(it->value + value_len - it->b->data);
  *more = 1;
  return ST_OK;
}

int sstable_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  int c = memcmp(a, b, alen < blen ? alen : blen);
  return c ? c : (alen > blen) - (alen < blen);
}
