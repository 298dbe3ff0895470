/* Record codec (see record.h and docs/corpus.md): a 6-byte header (version,
 * flags, n and split as little-endian u16) followed by n little-endian ids. */
#include "corpus/record.h"

#include <assert.h>

#include "util/status.h"

size_t record_encoded_size(size_t n, int id_bytes) {
  assert(id_bytes == 2 || id_bytes == 4);
  return RECORD_HEADER_BYTES + n * (size_t)id_bytes;
}

static void put_u16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

static uint32_t get_u16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

void record_encode(const record *rec, int id_bytes, uint8_t *out) {
  assert(id_bytes == 2 || id_bytes == 4);
  assert(rec->n <= RECORD_MAX_TOKENS && rec->split <= rec->n);
  assert(rec->pair || rec->split == rec->n);
  uint8_t flags = (uint8_t)((rec->pair ? RECORD_FLAG_PAIR : 0) |
                            (rec->random_next ? RECORD_FLAG_RANDOM_NEXT : 0) |
                            (id_bytes == 4 ? RECORD_FLAG_IDS32 : 0));
  out[0] = RECORD_VERSION;
  out[1] = flags;
  put_u16(out + 2, (uint32_t)rec->n);
  put_u16(out + 4, (uint32_t)rec->split);
  uint8_t *p = out + RECORD_HEADER_BYTES;
  for (size_t i = 0; i < rec->n; i++) {
    int32_t id = rec->ids[i];
    assert(id >= 0 && (id_bytes == 4 || id <= 0xFFFF));
    uint32_t v = (uint32_t)id;
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    if (id_bytes == 4) {
      p[2] = (uint8_t)(v >> 16);
      p[3] = (uint8_t)(v >> 24);
    }
    p += id_bytes;
  }
}

int record_decode(const uint8_t *buf, size_t len, int id_bytes, int32_t *ids, size_t max_n,
                  record *rec, char **err) {
  assert(id_bytes == 2 || id_bytes == 4);
  if (len < RECORD_HEADER_BYTES)
    return status_set(err, ST_CORRUPT, "record of %zu bytes is shorter than its %d-byte header",
                      len, RECORD_HEADER_BYTES);
  if (buf[0] != RECORD_VERSION)
    return status_set(err, ST_CORRUPT, "record version %u, this ddpt reads version %d",
                      buf[0], RECORD_VERSION);
  uint8_t flags = buf[1];
  if (flags & ~(RECORD_FLAG_PAIR | RECORD_FLAG_RANDOM_NEXT | RECORD_FLAG_IDS32))
    return status_set(err, ST_CORRUPT, "record has unknown flag bits 0x%02x", flags);
  int width = (flags & RECORD_FLAG_IDS32) ? 4 : 2;
  if (width != id_bytes)
    return status_set(err, ST_CORRUPT, "record holds %d-byte ids, the manifest says %d", width,
                      id_bytes);
  size_t n = get_u16(buf + 2), split = get_u16(buf + 4);
  if (len != record_encoded_size(n, id_bytes))
    return status_set(err, ST_CORRUPT, "record of %zu tokens must be %zu bytes, it is %zu", n,
                      record_encoded_size(n, id_bytes), len);
  if (n > max_n)
    return status_set(err, ST_CORRUPT, "record holds %zu tokens, more than seq_len %zu", n, max_n);
  int pair = (flags & RECORD_FLAG_PAIR) != 0;
  if (split > n || (!pair && split != n))
    return status_set(err, ST_CORRUPT, "record segment split %zu is invalid for %zu tokens%s",
                      split, n, pair ? "" : " (not a pair)");
  if (!pair && (flags & RECORD_FLAG_RANDOM_NEXT))
    return status_set(err, ST_CORRUPT, "record is flagged random-next but is not a pair");
  const uint8_t *p = buf + RECORD_HEADER_BYTES;
  if (id_bytes == 2) {
    for (size_t i = 0; i < n; i++, p += 2) ids[i] = (int32_t)get_u16(p);
  } else {
    for (size_t i = 0; i < n; i++, p += 4) {
      uint32_t v = get_u16(p) | get_u16(p + 2) << 16;
      if (v > INT32_MAX) return status_set(err, ST_CORRUPT, "record id %u at %zu is negative", v, i);
      ids[i] = (int32_t)v;
    }
  }
  rec->ids = ids;
  rec->n = n;
  rec->split = split;
  rec->pair = pair;
  rec->random_next = (flags & RECORD_FLAG_RANDOM_NEXT) != 0;
  return ST_OK;
}
