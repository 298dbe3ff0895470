/* BERT's FullTokenizer (see tokenizer.h and docs/tokenizer.md): one pass over
 * the bytes builds whitespace-separated words, each word is lowercased and
 * stripped of accents as a whole, split at punctuation, and the pieces go to
 * greedy longest-match WordPiece. ASCII takes table lookups only. */
#include "corpus/tokenizer.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "util/array.h"
#include "util/status.h"

enum { TOK_DROP = 0, TOK_SPACE, TOK_OTHER };

struct tokenizer {
  const tok_vocab *vocab; /* NULL: a word splitter only (tok_split) */
  int lowercase;
  int32_t unk;
  size_t max_token_bytes; /* longest token (without "##"): longer pieces cannot match */

  uint32_t *word; /* (word_cap) code points of the current whitespace-separated word */
  size_t word_len, word_cap;
  int word_ascii;
  uint32_t *norm; /* (norm_cap) the word lowercased, NFD, marks dropped */
  size_t norm_len, norm_cap;
  char *piece; /* (piece_cap) UTF-8 of one punctuation-split piece */
  uint32_t *starts; /* (piece_cap + 1) byte offset of each character of piece, then its end */
  size_t piece_len, piece_chars, piece_cap;
  int piece_ascii; /* piece is ASCII: character i is byte i, starts is not filled */

  tok_word_fn sink; /* tok_split's callback, or NULL for WordPiece */
  void *sink_ctx;
};

/* Rules 1 and 3 for ASCII: \t \n \r and space separate words, the other
 * control characters are dropped. */
static int tok_ascii_class(uint32_t c) {
  if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return TOK_SPACE;
  return (c < 32 || c == 127) ? TOK_DROP : TOK_OTHER;
}

/* Rule 2: the CJK Unified Ideographs blocks and their compatibility blocks,
 * as tokenization.py lists them (Hangul and kana are not in them). */
int tok_char_is_cjk(uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Rules 1 and 3 for non-ASCII. Cc/Cf and U+FFFD are dropped; Zs becomes a
 * space; Python's str.split() also splits at whatever else it counts as
 * whitespace (bidi class WS, B or S: U+2028, U+2029) after cleaning. */
static int tok_class(uint32_t c) {
  const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)c);
  if (c == 0xFFFD || p->category == UTF8PROC_CATEGORY_CC || p->category == UTF8PROC_CATEGORY_CF)
    return TOK_DROP;
  if (p->category == UTF8PROC_CATEGORY_ZS || p->bidi_class == UTF8PROC_BIDI_CLASS_WS ||
      p->bidi_class == UTF8PROC_BIDI_CLASS_B || p->bidi_class == UTF8PROC_BIDI_CLASS_S)
    return TOK_SPACE;
  return TOK_OTHER;
}

static int tok_ascii_is_punct(uint32_t c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
         (c >= 123 && c <= 126);
}

int tok_char_is_punct(uint32_t c) {
  if (c < 128) return tok_ascii_is_punct(c);
  utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
  return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

/* Case_Ignorable and Cased (Unicode DerivedCoreProperties), needed only for
 * the final-sigma rule of Python's str.lower(). utf8proc has no such flags,
 * so they are derived from their definitions: Case_Ignorable is Mn, Me, Cf,
 * Lm, Sk or Word_Break MidLetter/MidNumLet/Single_Quote (the short list
 * below); Cased is Lu, Ll, Lt or Other_Lowercase/Other_Uppercase, whose
 * members outside those categories either have a case mapping or are the
 * ones listed. Cased letters that are also Case_Ignorable never decide the
 * rule, so Lm members of Other_Lowercase need no listing. */
static int tok_is_case_ignorable(uint32_t c) {
  switch (c) {
  case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4:
  case 0x2018: case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55:
  case 0xFF07: case 0xFF0E: case 0xFF1A:
    return 1;
  default: break;
  }
  utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
  return cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_ME || cat == UTF8PROC_CATEGORY_CF ||
         cat == UTF8PROC_CATEGORY_LM || cat == UTF8PROC_CATEGORY_SK;
}

static int tok_is_cased(uint32_t c) {
  utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
  if (cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT)
    return 1;
  utf8proc_int32_t s = (utf8proc_int32_t)c;
  if (utf8proc_tolower(s) != s || utf8proc_toupper(s) != s) return 1;
  return c == 0xAA || c == 0xBA || (c >= 0x1F130 && c <= 0x1F149) ||
         (c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189);
}

/* Python's handle_capital_sigma: Σ at i becomes ς when a cased letter comes
 * before it and none after it, skipping case-ignorable characters. */
static uint32_t tok_lower_sigma(const uint32_t *w, size_t n, size_t i) {
  size_t j = i;
  while (j > 0 && tok_is_case_ignorable(w[j - 1])) j--;
  if (j == 0 || !tok_is_cased(w[j - 1])) return 0x3C3;
  j = i + 1;
  while (j < n && tok_is_case_ignorable(w[j])) j++;
  return (j == n || !tok_is_cased(w[j])) ? 0x3C2 : 0x3C3;
}

static int tok_norm_grow(tokenizer *t, size_t need) {
  return array_grow(&t->norm, &t->norm_cap, need, sizeof *t->norm);
}

/* The piece bytes and their start offsets grow together. */
static int tok_piece_grow(tokenizer *t, size_t need) {
  size_t cap = t->piece_cap;
  if (array_grow(&t->piece, &cap, need, 1) != ST_OK) return ST_NOMEM;
  if (cap != t->piece_cap) {
    uint32_t *s = realloc(t->starts, (cap + 1) * sizeof *s);
    if (!s) return ST_NOMEM;
    t->starts = s;
    t->piece_cap = cap;
  }
  return ST_OK;
}

static int tok_ids_push(tok_ids *out, int32_t id) {
  if (out->len == out->cap &&
      array_grow(&out->ids, &out->cap, out->len + 1, sizeof *out->ids) != ST_OK)
    return ST_NOMEM;
  out->ids[out->len++] = id;
  return ST_OK;
}

void tok_ids_free(tok_ids *ids) {
  if (!ids) return;
  free(ids->ids);
  ids->ids = NULL;
  ids->len = ids->cap = 0;
}

/* Byte offset of character i of the current piece. */
static size_t tok_piece_offset(const tokenizer *t, size_t i) {
  return t->piece_ascii ? i : t->starts[i];
}

/* Rule 6 on the piece in t->piece: greedy longest-match-first, "##" after
 * the first sub-piece; one [UNK] for the whole piece if any part fails.
 * Candidates longer than the vocab's longest token are skipped unlooked. */
static int tok_wordpiece(tokenizer *t, tok_ids *out, tok_stats *stats) {
  size_t n = t->piece_chars, mark = out->len;
  if (n > TOK_MAX_WORD_CHARS) goto unk;
  for (size_t start = 0; start < n;) {
    int32_t id = -1;
    size_t end = n, from = tok_piece_offset(t, start);
    while (end > start && tok_piece_offset(t, end) - from > t->max_token_bytes) end--;
    for (; end > start; end--) {
      const char *s = t->piece + from;
      size_t len = tok_piece_offset(t, end) - from;
      id = start == 0 ? tok_vocab_find(t->vocab, s, len) : tok_vocab_find_cont(t->vocab, s, len);
      if (id >= 0) break;
    }
    if (id < 0) goto unk;
    if (tok_ids_push(out, id) != ST_OK) return ST_NOMEM;
    start = end;
  }
  if (stats) stats->tokens += out->len - mark;
  return ST_OK;
unk:
  out->len = mark;
  if (tok_ids_push(out, t->unk) != ST_OK) return ST_NOMEM;
  if (stats) {
    stats->tokens++;
    stats->unk++;
  }
  return ST_OK;
}

static int tok_emit_piece(tokenizer *t, tok_ids *out, tok_stats *stats) {
  if (t->piece_chars == 0) return ST_OK;
  int rc = t->sink ? t->sink(t->sink_ctx, t->piece, t->piece_len, t->piece_chars)
                   : tok_wordpiece(t, out, stats);
  t->piece_len = t->piece_chars = 0;
  return rc;
}

static int tok_piece_append(tokenizer *t, uint32_t c) {
  if (t->piece_len + 4 > t->piece_cap && tok_piece_grow(t, t->piece_len + 4) != ST_OK)
    return ST_NOMEM;
  t->starts[t->piece_chars++] = (uint32_t)t->piece_len;
  if (c < 128)
    t->piece[t->piece_len++] = (char)c;
  else
    t->piece_len += (size_t)utf8proc_encode_char((utf8proc_int32_t)c,
                                                 (utf8proc_uint8_t *)t->piece + t->piece_len);
  t->starts[t->piece_chars] = (uint32_t)t->piece_len;
  return ST_OK;
}

/* Rule 5 over the normalised word: every punctuation character is a piece of
 * its own, the runs between them are pieces. */
static int tok_split_punct(tokenizer *t, const uint32_t *w, size_t n, tok_ids *out,
                           tok_stats *stats) {
  int rc = ST_OK;
  for (size_t i = 0; i < n && rc == ST_OK; i++) {
    if (tok_char_is_punct(w[i])) {
      rc = tok_emit_piece(t, out, stats);
      if (rc == ST_OK) rc = tok_piece_append(t, w[i]);
      if (rc == ST_OK) rc = tok_emit_piece(t, out, stats);
    } else {
      rc = tok_piece_append(t, w[i]);
    }
  }
  if (rc == ST_OK) rc = tok_emit_piece(t, out, stats);
  return rc;
}

/* Canonical ordering (the second half of NFD): a stable sort by combining
 * class within each run of non-starters. */
static void tok_canonical_order(uint32_t *w, size_t n) {
  for (size_t i = 1; i < n; i++) {
    uint32_t c = w[i];
    int ccc = utf8proc_get_property((utf8proc_int32_t)c)->combining_class;
    if (ccc == 0) continue;
    size_t j = i;
    while (j > 0) {
      int prev = utf8proc_get_property((utf8proc_int32_t)w[j - 1])->combining_class;
      if (prev <= ccc) break;
      w[j] = w[j - 1];
      j--;
    }
    w[j] = c;
  }
}

/* Rule 4 for a word with non-ASCII characters: Python's str.lower() (full
 * mapping: İ gives i + U+0307; final sigma), then NFD, then Mn dropped. */
static int tok_lower_strip(tokenizer *t) {
  const uint32_t *w = t->word;
  size_t n = t->word_len;
  t->norm_len = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t c = w[i];
    uint32_t low[2];
    size_t nlow = 1;
    if (c == 0x3A3) low[0] = tok_lower_sigma(w, n, i);
    else if (c == 0x130) low[0] = 0x69, low[1] = 0x307, nlow = 2;
    else low[0] = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
    for (size_t k = 0; k < nlow; k++) {
      if (tok_norm_grow(t, t->norm_len + 32) != ST_OK) return ST_NOMEM;
      utf8proc_ssize_t got = utf8proc_decompose_char(
          (utf8proc_int32_t)low[k], (utf8proc_int32_t *)t->norm + t->norm_len, 32,
          UTF8PROC_DECOMPOSE, NULL);
      assert(got > 0 && got <= 32);
      t->norm_len += (size_t)got;
    }
  }
  tok_canonical_order(t->norm, t->norm_len);
  size_t kept = 0;
  for (size_t i = 0; i < t->norm_len; i++)
    if (utf8proc_category((utf8proc_int32_t)t->norm[i]) != UTF8PROC_CATEGORY_MN)
      t->norm[kept++] = t->norm[i];
  t->norm_len = kept;
  return ST_OK;
}

/* Rules 4 and 5 for an ASCII word: lowercasing is A-Z only, NFD changes
 * nothing, and pieces are bytes. */
static int tok_split_ascii(tokenizer *t, tok_ids *out, tok_stats *stats) {
  const uint32_t *w = t->word;
  size_t n = t->word_len;
  if (tok_piece_grow(t, n) != ST_OK) return ST_NOMEM;
  int rc = ST_OK;
  t->piece_ascii = 1;
  for (size_t i = 0; i < n && rc == ST_OK; i++) {
    uint32_t c = w[i];
    if (tok_ascii_is_punct(c)) {
      rc = tok_emit_piece(t, out, stats);
      t->piece[0] = (char)c;
      t->piece_len = t->piece_chars = 1;
      if (rc == ST_OK) rc = tok_emit_piece(t, out, stats);
    } else {
      if (t->lowercase && c >= 'A' && c <= 'Z') c += 'a' - 'A';
      t->piece[t->piece_len++] = (char)c;
      t->piece_chars++;
    }
  }
  if (rc == ST_OK) rc = tok_emit_piece(t, out, stats);
  t->piece_ascii = 0;
  return rc;
}

static int tok_flush_word(tokenizer *t, tok_ids *out, tok_stats *stats) {
  if (t->word_len == 0) return ST_OK;
  int rc;
  if (t->word_ascii) {
    rc = tok_split_ascii(t, out, stats);
  } else if (t->lowercase) {
    rc = tok_lower_strip(t);
    if (rc == ST_OK) rc = tok_split_punct(t, t->norm, t->norm_len, out, stats);
  } else {
    rc = tok_split_punct(t, t->word, t->word_len, out, stats);
  }
  t->word_len = 0;
  t->word_ascii = 1;
  return rc;
}

static int tok_word_append(tokenizer *t, uint32_t c) {
  if (t->word_len == t->word_cap &&
      array_grow(&t->word, &t->word_cap, t->word_len + 1, sizeof *t->word) != ST_OK)
    return ST_NOMEM;
  t->word[t->word_len++] = c;
  if (c >= 128) t->word_ascii = 0;
  return ST_OK;
}

/* Decodes one character as Python's UTF-8 decoder does (Unicode Table 3-7:
 * no overlongs, surrogates or values past U+10FFFF). Returns its length, or
 * 0 when the byte at s starts no valid sequence. */
static size_t tok_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
  unsigned char b = s[0];
  size_t len;
  uint32_t c, lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) len = 2, c = b & 0x1F;
  else if (b >= 0xE0 && b <= 0xEF) {
    len = 3, c = b & 0x0F;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4, c = b & 0x07;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (n < len || s[1] < lo || s[1] > hi) return 0;
  c = (c << 6) | (s[1] & 0x3F);
  for (size_t i = 2; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    c = (c << 6) | (s[i] & 0x3F);
  }
  *cp = c;
  return len;
}

static int tok_run(tokenizer *t, const char *text, size_t len, tok_ids *out, tok_stats *stats) {
  const unsigned char *s = (const unsigned char *)text;
  uint64_t invalid = 0;
  int rc = ST_OK;
  t->word_len = 0;
  t->word_ascii = 1;
  t->piece_len = t->piece_chars = 0;
  for (size_t i = 0; i < len && rc == ST_OK;) {
    uint32_t c = s[i];
    int cls;
    if (c < 128) {
      i++;
      cls = tok_ascii_class(c);
    } else {
      size_t n = tok_utf8_decode(s + i, len - i, &c);
      if (n == 0) {
        invalid++;
        i++;
        continue;
      }
      i += n;
      cls = tok_class(c);
      if (cls == TOK_OTHER && tok_char_is_cjk(c)) {
        rc = tok_flush_word(t, out, stats);
        if (rc != ST_OK) break;
        /* A unified ideograph is a word that lowercasing, NFD and the
         * punctuation split leave alone; only the compatibility blocks
         * decompose under NFD. */
        int compat = (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
        rc = compat && t->lowercase ? tok_word_append(t, c) : tok_piece_append(t, c);
        if (rc == ST_OK) rc = compat && t->lowercase ? tok_flush_word(t, out, stats)
                                                     : tok_emit_piece(t, out, stats);
        continue;
      }
    }
    if (cls == TOK_OTHER) rc = tok_word_append(t, c);
    else if (cls == TOK_SPACE) rc = tok_flush_word(t, out, stats);
  }
  if (rc == ST_OK) rc = tok_flush_word(t, out, stats);
  if (stats) {
    stats->bytes_in += len;
    stats->invalid_utf8_bytes += invalid;
  }
  return rc;
}

int tok_create(const tok_vocab *v, int lowercase, tokenizer **out, char **err) {
  assert(out);
  tokenizer *t = calloc(1, sizeof *t);
  if (!t) return status_set(err, ST_NOMEM, "out of memory creating a tokenizer");
  t->vocab = v;
  t->lowercase = lowercase != 0;
  t->word_ascii = 1;
  if (v) {
    t->unk = tok_vocab_find(v, "[UNK]", 5);
    if (t->unk < 0) {
      free(t);
      return status_set(err, ST_INVALID, "the vocab has no [UNK] token; a BERT vocab.txt needs one");
    }
    for (size_t id = 0; id < tok_vocab_size(v); id++) {
      const char *tok = tok_vocab_token(v, (int32_t)id);
      size_t n = strlen(tok);
      if (n >= 2 && tok[0] == '#' && tok[1] == '#') n -= 2;
      if (n > t->max_token_bytes) t->max_token_bytes = n;
    }
  }
  *out = t;
  return ST_OK;
}

void tok_free(tokenizer *t) {
  if (!t) return;
  free(t->word);
  free(t->norm);
  free(t->piece);
  free(t->starts);
  free(t);
}

int tok_encode(tokenizer *t, const char *text, size_t len, tok_ids *out, tok_stats *stats,
               char **err) {
  assert(t && t->vocab && (text || len == 0) && out);
  size_t mark = out->len;
  tok_stats local = {0};
  t->sink = NULL;
  int rc = tok_run(t, text, len, out, &local);
  if (rc != ST_OK) {
    out->len = mark;
    return status_set(err, rc, "out of memory tokenizing %zu bytes of text", len);
  }
  if (stats) {
    stats->bytes_in += local.bytes_in;
    stats->invalid_utf8_bytes += local.invalid_utf8_bytes;
    stats->tokens += local.tokens;
    stats->unk += local.unk;
  }
  return ST_OK;
}

int tok_split(tokenizer *t, const char *text, size_t len, tok_word_fn fn, void *ctx,
              tok_stats *stats, char **err) {
  assert(t && (text || len == 0) && fn);
  t->sink = fn;
  t->sink_ctx = ctx;
  int rc = tok_run(t, text, len, NULL, stats);
  t->sink = NULL;
  if (rc == ST_NOMEM) return status_set(err, rc, "out of memory splitting %zu bytes of text", len);
  return rc;
}
