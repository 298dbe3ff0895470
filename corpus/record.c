/* Record codec (see record.h and docs/corpus.md): a 6-byte header (version,
 * flags, n and split as little-endian u16) followed by n little-endian ids,
 * then, in a labelled record, its int16 labels. */
#include "corpus/record.h"

#include <assert.h>

#include "util/status.h"

size_t record_encoded_size(size_t n, int id_bytes) {
  assert(id_bytes == 2 || id_bytes == 4);
  return RECORD_HEADER_BYTES + n * (size_t)id_bytes;
}

size_t record_labels_size(record_kind kind, size_t n) {
  return kind == RECORD_CLASS ? 2 : kind == RECORD_TAGS ? 2 * n : 0;
}

static void put_u16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

static uint32_t get_u16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

static void put_label(uint8_t *p, int32_t label, int ignore_ok) {
  (void)ignore_ok; /* read by the assertion only */
  assert((label >= 0 && label < RECORD_MAX_LABELS) || (ignore_ok && label == RECORD_IGNORE_LABEL));
  put_u16(p, (uint32_t)(uint16_t)(int16_t)label);
}

static int32_t get_label(const uint8_t *p) { return (int16_t)(uint16_t)get_u16(p); }

void record_encode(const record *rec, int id_bytes, uint8_t *out) {
  assert(id_bytes == 2 || id_bytes == 4);
  assert(rec->n <= RECORD_MAX_TOKENS && rec->split <= rec->n);
  assert(rec->pair || rec->split == rec->n);
  assert(rec->kind == RECORD_PLAIN || !rec->random_next);
  uint8_t flags = (uint8_t)((rec->pair ? RECORD_FLAG_PAIR : 0) |
                            (rec->random_next ? RECORD_FLAG_RANDOM_NEXT : 0) |
                            (id_bytes == 4 ? RECORD_FLAG_IDS32 : 0) |
                            (rec->kind == RECORD_CLASS ? RECORD_FLAG_CLASS : 0) |
                            (rec->kind == RECORD_TAGS ? RECORD_FLAG_TAGS : 0));
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
  if (rec->kind == RECORD_CLASS) put_label(p, rec->label, 0);
  for (size_t i = 0; rec->kind == RECORD_TAGS && i < rec->n; i++)
    put_label(p + 2 * i, rec->tags[i], 1);
}

/* Reads the labels of a labelled record at p into rec (tags into tags). */
static int decode_labels(const uint8_t *p, record_kind kind, size_t n, int32_t *tags, record *rec,
                         char **err) {
  rec->kind = kind;
  rec->label = -1;
  rec->tags = NULL;
  if (kind == RECORD_CLASS) {
    rec->label = get_label(p);
    if (rec->label < 0)
      return status_set(err, ST_CORRUPT, "record class label %d is negative", rec->label);
    if (rec->label >= RECORD_MAX_LABELS)
      return status_set(err, ST_CORRUPT, "record class label %d is not below %d", rec->label,
                        RECORD_MAX_LABELS);
  } else if (kind == RECORD_TAGS) {
    assert(tags);
    for (size_t i = 0; i < n; i++) {
      tags[i] = get_label(p + 2 * i);
      if (tags[i] < 0 && tags[i] != RECORD_IGNORE_LABEL)
        return status_set(err, ST_CORRUPT, "record tag %d at position %zu is negative and not %d",
                          tags[i], i, RECORD_IGNORE_LABEL);
      if (tags[i] >= RECORD_MAX_LABELS)
        return status_set(err, ST_CORRUPT, "record tag %d at position %zu is not below %d",
                          tags[i], i, RECORD_MAX_LABELS);
    }
    rec->tags = tags;
  }
  return ST_OK;
}

int record_decode(const uint8_t *buf, size_t len, int id_bytes, int32_t *ids, int32_t *tags,
                  size_t max_n, record *rec, char **err) {
  assert(id_bytes == 2 || id_bytes == 4);
  if (len < RECORD_HEADER_BYTES)
    return status_set(err, ST_CORRUPT, "record of %zu bytes is shorter than its %d-byte header",
                      len, RECORD_HEADER_BYTES);
  if (buf[0] != RECORD_VERSION)
    return status_set(err, ST_CORRUPT, "record version %u, this ddpt reads version %d",
                      buf[0], RECORD_VERSION);
  uint8_t flags = buf[1];
  if (flags & ~(RECORD_FLAG_PAIR | RECORD_FLAG_RANDOM_NEXT | RECORD_FLAG_IDS32 |
                RECORD_FLAG_CLASS | RECORD_FLAG_TAGS))
    return status_set(err, ST_CORRUPT, "record has unknown flag bits 0x%02x", flags);
  if ((flags & RECORD_FLAG_CLASS) && (flags & (RECORD_FLAG_TAGS | RECORD_FLAG_RANDOM_NEXT)))
    return status_set(err, ST_CORRUPT, "record flags 0x%02x combine a class label with tags or "
                      "a random next", flags);
  if ((flags & RECORD_FLAG_TAGS) && (flags & RECORD_FLAG_RANDOM_NEXT))
    return status_set(err, ST_CORRUPT, "record flags 0x%02x combine tags with a random next",
                      flags);
  record_kind kind = (flags & RECORD_FLAG_CLASS)  ? RECORD_CLASS
                     : (flags & RECORD_FLAG_TAGS) ? RECORD_TAGS
                                                  : RECORD_PLAIN;
  int width = (flags & RECORD_FLAG_IDS32) ? 4 : 2;
  if (width != id_bytes)
    return status_set(err, ST_CORRUPT, "record holds %d-byte ids, the manifest says %d", width,
                      id_bytes);
  size_t n = get_u16(buf + 2), split = get_u16(buf + 4);
  size_t want = record_encoded_size(n, id_bytes) + record_labels_size(kind, n);
  if (len != want)
    return status_set(err, ST_CORRUPT, "record of %zu tokens must be %zu bytes, it is %zu", n,
                      want, len);
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
  int rc = decode_labels(buf + record_encoded_size(n, id_bytes), kind, n, tags, rec, err);
  if (rc) return rc;
  rec->ids = ids;
  rec->n = n;
  rec->split = split;
  rec->pair = pair;
  rec->random_next = (flags & RECORD_FLAG_RANDOM_NEXT) != 0;
  return ST_OK;
}
