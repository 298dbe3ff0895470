/* Loading a BERT vocab.txt (see vocab.h): the whole file is read once, its
 * lines become tokens in one byte arena, and two open-addressing hash tables
 * (plain tokens, and "##" tokens keyed without the prefix) map them to ids. */
#include "corpus/vocab.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "util/sha256.h"
#include "util/status.h"

/* A slot holds the high half of the token's hash beside its id, so that a
 * probe that misses touches one cache line and no token bytes. */
typedef struct vocab_slot {
  uint32_t tag;
  int32_t id; /* -1 when empty */
} vocab_slot;

typedef struct vocab_table {
  vocab_slot *slots; /* capacity is a power of two, at most half full */
  size_t mask;
} vocab_table;

struct tok_vocab {
  char *bytes;       /* every token, each NUL-terminated */
  size_t *offset;    /* (n) start of token i in bytes */
  uint32_t *length;  /* (n) length of token i in bytes, without the NUL */
  uint64_t *hash;    /* (n) hash of token i, without a "##" prefix */
  size_t n;
  vocab_table plain; /* tokens that do not start with "##" */
  vocab_table cont;  /* "##" tokens, looked up by what follows the prefix */
  char sha256_hex[65];
};

/* A multiply-xorshift hash over 8-byte words: vocab lookups sit on the
 * tokenizer's hot path, and byte-at-a-time hashes cost more than the rest of
 * the lookup. */
static uint64_t vocab_hash(const char *s, size_t len) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ (len * 0xff51afd7ed558ccdull);
  while (len >= 8) {
    uint64_t w;
    memcpy(&w, s, 8);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    s += 8;
    len -= 8;
  }
  uint64_t w = 0;
  memcpy(&w, s, len);
  h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 32;
  return h;
}

static int vocab_is_cont(const char *s, size_t len) {
  return len >= 2 && s[0] == '#' && s[1] == '#';
}

static int32_t vocab_table_find(const tok_vocab *v, const vocab_table *t, const char *key,
                                size_t len, size_t skip) {
  uint64_t h = vocab_hash(key, len);
  uint32_t tag = (uint32_t)(h >> 32);
  for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
    vocab_slot s = t->slots[i];
    if (s.id < 0) return -1;
    if (s.tag == tag && v->length[s.id] == len + skip &&
        memcmp(v->bytes + v->offset[s.id] + skip, key, len) == 0)
      return s.id;
  }
}

int32_t tok_vocab_find(const tok_vocab *v, const char *token, size_t len) {
  assert(v && (token || len == 0));
  if (vocab_is_cont(token, len)) return vocab_table_find(v, &v->cont, token + 2, len - 2, 2);
  return vocab_table_find(v, &v->plain, token, len, 0);
}

int tok_vocab_special(const tok_vocab *v, const char *path, const char *token, int32_t *id, char **err) {
  *id = tok_vocab_find(v, token, strlen(token));
  if (*id < 0)
    return status_set(err, ST_INVALID, "vocab %s has no %s token: BERT needs [CLS], [SEP], [MASK], [PAD] and [UNK]; "
                      "rebuild it with ddpt vocab", path, token);
  return ST_OK;
}

int32_t tok_vocab_find_cont(const tok_vocab *v, const char *piece, size_t len) {
  assert(v && (piece || len == 0));
  return vocab_table_find(v, &v->cont, piece, len, 2);
}

size_t tok_vocab_size(const tok_vocab *v) {
  assert(v);
  return v->n;
}

const char *tok_vocab_token(const tok_vocab *v, int32_t id) {
  assert(v && id >= 0 && (size_t)id < v->n);
  return v->bytes + v->offset[id];
}

const char *tok_vocab_sha256_hex(const tok_vocab *v) {
  assert(v);
  return v->sha256_hex;
}

void tok_vocab_free(tok_vocab *v) {
  if (!v) return;
  free(v->bytes);
  free(v->offset);
  free(v->length);
  free(v->hash);
  free(v->plain.slots);
  free(v->cont.slots);
  free(v);
}

static int vocab_read_file(const char *path, char **data, size_t *size, char **err) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return status_set(err, ST_IO, "cannot open vocab '%s': %s; check the --vocab path", path,
                      strerror(errno));
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  if (!buf) goto nomem;
  for (;;) {
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) break;
    if (len == cap) {
      char *grown = realloc(buf, cap * 2);
      if (!grown) goto nomem;
      buf = grown;
      cap *= 2;
    }
  }
  if (ferror(f)) {
    int e = errno;
    free(buf);
    fclose(f);
    return status_set(err, ST_IO, "cannot read vocab '%s': %s", path, strerror(e));
  }
  fclose(f);
  *data = buf;
  *size = len;
  return ST_OK;
nomem:
  free(buf);
  fclose(f);
  return status_set(err, ST_NOMEM, "out of memory reading vocab '%s'", path);
}

/* Lines end at LF, CRLF or a lone CR: Python's universal newlines, which is
 * how tokenization.py and HuggingFace read vocab.txt. A final line without a
 * newline counts; a trailing newline does not start another line. */
static size_t vocab_next_line(const char *data, size_t size, size_t pos, size_t *line_len) {
  size_t end = pos;
  while (end < size && data[end] != '\n' && data[end] != '\r') end++;
  *line_len = end - pos;
  if (end < size && data[end] == '\r' && end + 1 < size && data[end + 1] == '\n') return end + 2;
  return end < size ? end + 1 : end;
}

static int vocab_table_init(vocab_table *t, size_t n) {
  size_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  t->slots = malloc(cap * sizeof *t->slots);
  if (!t->slots) return ST_NOMEM;
  for (size_t i = 0; i < cap; i++) t->slots[i] = (vocab_slot){0, -1};
  t->mask = cap - 1;
  return ST_OK;
}

/* Inserts id unless its token is present; returns the id that holds it. */
static int32_t vocab_table_insert(tok_vocab *v, vocab_table *t, int32_t id, size_t skip) {
  const char *key = v->bytes + v->offset[id] + skip;
  size_t len = v->length[id] - skip;
  for (size_t i = v->hash[id] & t->mask;; i = (i + 1) & t->mask) {
    int32_t other = t->slots[i].id;
    if (other < 0) {
      t->slots[i] = (vocab_slot){(uint32_t)(v->hash[id] >> 32), id};
      return id;
    }
    if (v->hash[other] == v->hash[id] && v->length[other] == v->length[id] &&
        memcmp(v->bytes + v->offset[other] + skip, key, len) == 0)
      return other;
  }
}

static int vocab_check_utf8(const char *s, size_t len) {
  const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
  while (len > 0) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t n = utf8proc_iterate(p, (utf8proc_ssize_t)len, &cp);
    if (n <= 0) return 0;
    p += n;
    len -= (size_t)n;
  }
  return 1;
}

int tok_vocab_load(const char *path, tok_vocab **out, char **err) {
  assert(path && out);
  char *data = NULL;
  size_t size = 0;
  int rc = vocab_read_file(path, &data, &size, err);
  if (rc != ST_OK) return rc;
  rc = tok_vocab_parse(path, data, size, out, err);
  free(data);
  return rc;
}

int tok_vocab_parse(const char *path, const char *data, size_t size, tok_vocab **out, char **err) {
  assert(path && (data || size == 0) && out);
  int rc = ST_OK;
  tok_vocab *v = calloc(1, sizeof *v);
  if (!v) goto nomem;
  uint8_t digest[32];
  sha256(data, size, digest);
  sha256_hex(digest, v->sha256_hex);

  size_t lines = 0, conts = 0;
  for (size_t pos = 0, len; pos < size; lines++) {
    size_t start = pos;
    pos = vocab_next_line(data, size, pos, &len);
    conts += vocab_is_cont(data + start, len);
  }
  if (lines == 0) {
    rc = status_set(err, ST_INVALID, "vocab '%s' is empty; give a BERT vocab.txt (one token per line)",
                    path);
    goto fail;
  }
  if (lines > INT32_MAX) {
    rc = status_set(err, ST_INVALID, "vocab '%s' has %zu lines, more than ids can hold", path, lines);
    goto fail;
  }
  v->bytes = malloc(size + lines);
  v->offset = malloc(lines * sizeof *v->offset);
  v->length = malloc(lines * sizeof *v->length);
  v->hash = malloc(lines * sizeof *v->hash);
  if (!v->bytes || !v->offset || !v->length || !v->hash) goto nomem;
  if (vocab_table_init(&v->plain, lines - conts) != ST_OK || vocab_table_init(&v->cont, conts) != ST_OK)
    goto nomem;

  size_t at = 0;
  for (size_t pos = 0, len; pos < size; v->n++) {
    size_t start = pos;
    pos = vocab_next_line(data, size, pos, &len);
    size_t line = v->n + 1;
    if (len > TOK_VOCAB_MAX_TOKEN) {
      rc = status_set(err, ST_INVALID,
                      "vocab '%s' line %zu is %zu bytes long (at most %d); is this a vocab.txt?",
                      path, line, len, TOK_VOCAB_MAX_TOKEN);
      goto fail;
    }
    if (!vocab_check_utf8(data + start, len)) {
      rc = status_set(err, ST_INVALID, "vocab '%s' line %zu is not valid UTF-8", path, line);
      goto fail;
    }
    memcpy(v->bytes + at, data + start, len);
    v->bytes[at + len] = '\0';
    v->offset[v->n] = at;
    v->length[v->n] = (uint32_t)len;
    int cont = vocab_is_cont(data + start, len);
    v->hash[v->n] = cont ? vocab_hash(data + start + 2, len - 2) : vocab_hash(data + start, len);
    int32_t id = (int32_t)v->n;
    int32_t held = vocab_table_insert(v, cont ? &v->cont : &v->plain, id, cont ? 2 : 0);
    if (held != id) {
      rc = status_set(err, ST_INVALID,
                      "vocab '%s' lines %d and %zu are both '%s'; remove the duplicate line",
                      path, held + 1, line, v->bytes + at);
      goto fail;
    }
    at += len + 1;
  }
  if (tok_vocab_find(v, "[UNK]", 5) < 0) {
    rc = status_set(err, ST_INVALID,
                    "vocab '%s' has no [UNK] line; a BERT vocab.txt needs one (ddpt vocab writes it)",
                    path);
    goto fail;
  }
  *out = v;
  return ST_OK;

nomem:
  rc = status_set(err, ST_NOMEM, "out of memory loading vocab '%s'", path);
fail:
  tok_vocab_free(v);
  return rc;
}
