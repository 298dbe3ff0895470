/* WordPiece vocabulary training by BPE pair counts (see vocab_train.h).
 * Distinct words are counted once; merges then work on per-word symbol
 * sequences, with pair counts kept up to date incrementally and the best
 * pair found through a max-heap whose stale entries are skipped lazily. */
#include "corpus/vocab_train.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "corpus/tokenizer.h"
#include "util/array.h"
#include "util/status.h"

/* A string -> index map over an arena of NUL-terminated strings. */
typedef struct strmap {
  char *arena;
  size_t arena_len, arena_cap;
  size_t *offset; /* (n) */
  uint32_t *length; /* (n) */
  uint64_t *hash;   /* (n) */
  size_t n, cap;
  int32_t *slots; /* (mask + 1) index or -1 */
  size_t mask;
} strmap;

typedef struct pair_info {
  uint64_t key;   /* left symbol << 32 | right symbol */
  int64_t count;  /* weighted occurrences now */
  int32_t *words; /* (nwords) words that held the pair at some point */
  size_t nwords, cap;
} pair_info;

typedef struct heap_entry {
  int64_t count;
  int32_t pair;
} heap_entry;

struct tok_vocab_trainer {
  tokenizer *splitter;
  strmap words;    /* distinct words */
  uint64_t *freq;  /* (freq_cap) occurrences of each word */
  size_t freq_cap;
  uint64_t total_words;

  strmap symbols; /* "c", "##c", merged pieces */
  uint64_t *sym_count; /* (sym_count_cap) occurrences of each character */
  size_t sym_count_cap;
  uint8_t *in_vocab;   /* (alphabet size) symbol is in the alphabet */
  int32_t **seq;       /* (words.n) symbol sequence of each trainable word, or NULL */
  uint32_t *seq_len;   /* (words.n) */
  pair_info *pairs;
  size_t npairs, pairs_cap;
  int32_t *pair_slots; /* (pair_mask + 1) pair index or -1 */
  size_t pair_mask;
  heap_entry *heap;
  size_t heap_len, heap_cap;
  uint32_t *visited; /* (words.n) last merge that rewrote the word */
  int32_t *out_ids;  /* (out_n) the trained vocabulary: symbols after the specials */
  size_t out_n;      /* specials included */
  const char **out;  /* (out_n) its strings, made once no symbol moves any more */
};

static uint64_t train_hash(const char *s, size_t len) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
  return h ^ (h >> 31);
}

static void strmap_free(strmap *m) {
  free(m->arena);
  free(m->offset);
  free(m->length);
  free(m->hash);
  free(m->slots);
}

static const char *strmap_str(const strmap *m, int32_t i) { return m->arena + m->offset[i]; }

static int strmap_rehash(strmap *m, size_t cap) {
  int32_t *slots = malloc(cap * sizeof *slots);
  if (!slots) return ST_NOMEM;
  memset(slots, 0xff, cap * sizeof *slots);
  for (size_t i = 0; i < m->n; i++) {
    size_t s = m->hash[i] & (cap - 1);
    while (slots[s] >= 0) s = (s + 1) & (cap - 1);
    slots[s] = (int32_t)i;
  }
  free(m->slots);
  m->slots = slots;
  m->mask = cap - 1;
  return ST_OK;
}

/* The index of s, added if absent (*added set); -1 when out of memory. */
static int32_t strmap_intern(strmap *m, const char *s, size_t len, int *added) {
  uint64_t h = train_hash(s, len);
  *added = 0;
  if (m->slots) {
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
      int32_t id = m->slots[i];
      if (id < 0) break;
      if (m->hash[id] == h && m->length[id] == len && memcmp(strmap_str(m, id), s, len) == 0)
        return id;
    }
  }
  if (m->n >= INT32_MAX - 1) return -1;
  if ((m->n + 1) * 2 > (m->slots ? m->mask + 1 : 0) &&
      strmap_rehash(m, m->slots ? (m->mask + 1) * 2 : 1024) != ST_OK)
    return -1;
  size_t cap = m->cap;
  if (array_grow(&m->arena, &m->arena_cap, m->arena_len + len + 1, 1) != ST_OK ||
      array_grow(&m->offset, &cap, m->n + 1, sizeof *m->offset) != ST_OK)
    return -1;
  cap = m->cap;
  if (array_grow(&m->length, &cap, m->n + 1, sizeof *m->length) != ST_OK) return -1;
  cap = m->cap;
  if (array_grow(&m->hash, &cap, m->n + 1, sizeof *m->hash) != ST_OK) return -1;
  m->cap = cap;
  memcpy(m->arena + m->arena_len, s, len);
  m->arena[m->arena_len + len] = '\0';
  int32_t id = (int32_t)m->n++;
  m->offset[id] = m->arena_len;
  m->length[id] = (uint32_t)len;
  m->hash[id] = h;
  m->arena_len += len + 1;
  size_t i = h & m->mask;
  while (m->slots[i] >= 0) i = (i + 1) & m->mask;
  m->slots[i] = id;
  *added = 1;
  return id;
}

static int trainer_count_word(void *ctx, const char *word, size_t len, size_t chars) {
  (void)chars;
  tok_vocab_trainer *tr = ctx;
  int added;
  int32_t id = strmap_intern(&tr->words, word, len, &added);
  if (id < 0) return ST_NOMEM;
  if (added) {
    if (array_grow(&tr->freq, &tr->freq_cap, tr->words.n, sizeof *tr->freq) != ST_OK)
      return ST_NOMEM;
    tr->freq[id] = 0;
  }
  tr->freq[id]++;
  tr->total_words++;
  return ST_OK;
}

int tok_vocab_trainer_create(int lowercase, tok_vocab_trainer **out, char **err) {
  assert(out);
  tok_vocab_trainer *tr = calloc(1, sizeof *tr);
  if (!tr) return status_set(err, ST_NOMEM, "out of memory creating the vocab trainer");
  int rc = tok_create(NULL, lowercase, &tr->splitter, err);
  if (rc != ST_OK) {
    free(tr);
    return rc;
  }
  *out = tr;
  return ST_OK;
}

void tok_vocab_trainer_free(tok_vocab_trainer *tr) {
  if (!tr) return;
  tok_free(tr->splitter);
  strmap_free(&tr->words);
  free(tr->freq);
  strmap_free(&tr->symbols);
  free(tr->sym_count);
  free(tr->in_vocab);
  if (tr->seq)
    for (size_t i = 0; i < tr->words.n; i++) free(tr->seq[i]);
  free(tr->seq);
  free(tr->seq_len);
  for (size_t i = 0; i < tr->npairs; i++) free(tr->pairs[i].words);
  free(tr->pairs);
  free(tr->pair_slots);
  free(tr->heap);
  free(tr->visited);
  free(tr->out_ids);
  free(tr->out);
  free(tr);
}

int tok_vocab_trainer_add(tok_vocab_trainer *tr, const char *text, size_t len, char **err) {
  assert(tr && (text || len == 0));
  int rc = tok_split(tr->splitter, text, len, trainer_count_word, tr, NULL, err);
  if (rc != ST_OK) return status_set(err, rc, "out of memory counting words for the vocab");
  return ST_OK;
}

/* ------------------------------------------------------------------ pairs */

static int32_t pair_find(tok_vocab_trainer *tr, uint64_t key, int create) {
  if (tr->pair_slots) {
    for (size_t i = (key * 0x9e3779b97f4a7c15ull >> 17) & tr->pair_mask;;
         i = (i + 1) & tr->pair_mask) {
      int32_t p = tr->pair_slots[i];
      if (p < 0) break;
      if (tr->pairs[p].key == key) return p;
    }
  }
  if (!create) return -1;
  if ((tr->npairs + 1) * 2 > (tr->pair_slots ? tr->pair_mask + 1 : 0)) {
    size_t cap = tr->pair_slots ? (tr->pair_mask + 1) * 2 : 4096;
    int32_t *slots = malloc(cap * sizeof *slots);
    if (!slots) return -1;
    memset(slots, 0xff, cap * sizeof *slots);
    for (size_t p = 0; p < tr->npairs; p++) {
      size_t i = (tr->pairs[p].key * 0x9e3779b97f4a7c15ull >> 17) & (cap - 1);
      while (slots[i] >= 0) i = (i + 1) & (cap - 1);
      slots[i] = (int32_t)p;
    }
    free(tr->pair_slots);
    tr->pair_slots = slots;
    tr->pair_mask = cap - 1;
  }
  if (array_grow(&tr->pairs, &tr->pairs_cap, tr->npairs + 1, sizeof *tr->pairs) != ST_OK)
    return -1;
  int32_t p = (int32_t)tr->npairs++;
  memset(&tr->pairs[p], 0, sizeof tr->pairs[p]);
  tr->pairs[p].key = key;
  size_t i = (key * 0x9e3779b97f4a7c15ull >> 17) & tr->pair_mask;
  while (tr->pair_slots[i] >= 0) i = (i + 1) & tr->pair_mask;
  tr->pair_slots[i] = p;
  return p;
}

/* Heap order: more occurrences first; among equals the pair seen first, so
 * that training is deterministic. */
static int heap_above(heap_entry a, heap_entry b) {
  return a.count > b.count || (a.count == b.count && a.pair < b.pair);
}

static int heap_push(tok_vocab_trainer *tr, int32_t pair, int64_t count) {
  if (array_grow(&tr->heap, &tr->heap_cap, tr->heap_len + 1, sizeof *tr->heap) != ST_OK)
    return ST_NOMEM;
  size_t i = tr->heap_len++;
  heap_entry e = {count, pair};
  while (i > 0 && heap_above(e, tr->heap[(i - 1) / 2])) {
    tr->heap[i] = tr->heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  tr->heap[i] = e;
  return ST_OK;
}

static heap_entry heap_pop(tok_vocab_trainer *tr) {
  heap_entry top = tr->heap[0], last = tr->heap[--tr->heap_len];
  size_t i = 0, n = tr->heap_len;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && heap_above(tr->heap[c + 1], tr->heap[c])) c++;
    if (!heap_above(tr->heap[c], last)) break;
    tr->heap[i] = tr->heap[c];
    i = c;
  }
  if (n > 0) tr->heap[i] = last;
  return top;
}

static int seq_has_pair(const int32_t *s, size_t n, int32_t a, int32_t b) {
  for (size_t i = 0; i + 1 < n; i++)
    if (s[i] == a && s[i + 1] == b) return 1;
  return 0;
}

/* Adds sign * freq for every adjacent pair of word w's sequence; on adding,
 * records w with pairs it did not hold before (old, nold) and pushes the
 * raised counts. */
static int pairs_account(tok_vocab_trainer *tr, int32_t w, int sign, const int32_t *old,
                         size_t nold) {
  const int32_t *s = tr->seq[w];
  int64_t f = (int64_t)tr->freq[w];
  for (size_t i = 0; i + 1 < tr->seq_len[w]; i++) {
    uint64_t key = (uint64_t)(uint32_t)s[i] << 32 | (uint32_t)s[i + 1];
    int32_t p = pair_find(tr, key, sign > 0);
    if (p < 0) return sign > 0 ? ST_NOMEM : ST_OK;
    pair_info *pi = &tr->pairs[p];
    pi->count += sign * f;
    if (sign < 0) continue;
    if (!old || !seq_has_pair(old, nold, s[i], s[i + 1])) {
      if (array_grow(&pi->words, &pi->cap, pi->nwords + 1, sizeof *pi->words) != ST_OK)
        return ST_NOMEM;
      if (pi->nwords == 0 || pi->words[pi->nwords - 1] != w) pi->words[pi->nwords++] = w;
    }
    if (heap_push(tr, p, pi->count) != ST_OK) return ST_NOMEM;
  }
  return ST_OK;
}

/* The symbol "c" or "##c" for the len bytes at c, added if absent. */
static int symbol_intern(tok_vocab_trainer *tr, const char *c, size_t len, int cont, int32_t *id) {
  char buf[8];
  size_t n = 0;
  assert(len <= 4);
  if (cont) buf[n++] = '#', buf[n++] = '#';
  memcpy(buf + n, c, len);
  int added;
  *id = strmap_intern(&tr->symbols, buf, n + len, &added);
  if (*id < 0) return ST_NOMEM;
  if (added) {
    if (tr->sym_count_cap < tr->symbols.cap) {
      uint64_t *sc = realloc(tr->sym_count, tr->symbols.cap * sizeof *sc);
      if (!sc) return ST_NOMEM;
      tr->sym_count = sc;
      tr->sym_count_cap = tr->symbols.cap;
    }
    tr->sym_count[*id] = 0;
  }
  return ST_OK;
}

/* ---------------------------------------------------------------- training */

/* Occurrences of every character of the counted words, in tr->symbols
 * (plain form) and sym_count. */
static int count_chars(tok_vocab_trainer *tr) {
  for (size_t w = 0; w < tr->words.n; w++) {
    const char *s = strmap_str(&tr->words, (int32_t)w);
    size_t len = tr->words.length[w];
    for (size_t i = 0; i < len;) {
      utf8proc_int32_t cp;
      utf8proc_ssize_t k =
          utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &cp);
      assert(k > 0);
      int32_t id;
      if (symbol_intern(tr, s + i, (size_t)k, 0, &id) != ST_OK) return ST_NOMEM;
      tr->sym_count[id] += tr->freq[w];
      i += (size_t)k;
    }
  }
  return ST_OK;
}

typedef struct char_rank {
  int32_t id;
  uint64_t count;
  const char *s;
} char_rank;

static int char_rank_cmp(const void *a, const void *b) {
  const char_rank *x = a, *y = b;
  if (x->count != y->count) return x->count > y->count ? -1 : 1;
  return strcmp(x->s, y->s);
}

static const char *const tok_specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
enum { TOK_NSPECIALS = 5 };

/* The alphabet: every character seen at least min_frequency times, most
 * frequent first, then the "##" forms of those that can occur inside a word
 * (all but CJK ideographs and punctuation, which rules 2 and 5 always split
 * off). Marks them in tr->in_vocab and appends them to tr->out. */
static int build_alphabet(tok_vocab_trainer *tr, size_t size, uint64_t min_frequency,
                          tok_vocab_summary *sum, char **err) {
  size_t nchars = tr->symbols.n;
  char_rank *plain = malloc((nchars ? nchars : 1) * sizeof *plain);
  char_rank *cont = malloc((nchars ? nchars : 1) * sizeof *cont);
  int rc = ST_NOMEM;
  if (!plain || !cont) goto done;
  size_t np = 0, nc = 0;
  for (size_t id = 0; id < nchars; id++)
    if (tr->sym_count[id] >= min_frequency)
      plain[np++] = (char_rank){(int32_t)id, tr->sym_count[id], strmap_str(&tr->symbols, (int32_t)id)};
  qsort(plain, np, sizeof *plain, char_rank_cmp);
  for (size_t i = 0; i < np; i++) {
    utf8proc_int32_t cp;
    utf8proc_iterate((const utf8proc_uint8_t *)plain[i].s, -1, &cp);
    if (tok_char_is_cjk((uint32_t)cp) || tok_char_is_punct((uint32_t)cp)) continue;
    cont[nc++] = (char_rank){plain[i].id, plain[i].count, NULL};
  }
  sum->chars = np;
  sum->cont_chars = nc;
  size_t need = TOK_NSPECIALS + np + nc;
  if (need > size) {
    rc = status_set(err, ST_INVALID,
                    "the %zu characters seen at least %llu times need a vocab of at least %zu "
                    "tokens; raise --size or --min-frequency",
                    np, (unsigned long long)min_frequency, need);
    goto done;
  }
  /* The "##" forms are interned only now: interning may move the arena
   * that the ranks' strings point into. */
  for (size_t i = 0; i < nc; i++) {
    char c[5];
    const char *s = strmap_str(&tr->symbols, cont[i].id);
    size_t len = strlen(s);
    memcpy(c, s, len);
    if (symbol_intern(tr, c, len, 1, &cont[i].id) != ST_OK) goto done;
  }
  tr->out_ids = malloc(size * sizeof *tr->out_ids);
  tr->in_vocab = calloc(tr->symbols.n, 1);
  if (!tr->out_ids || !tr->in_vocab) goto done;
  tr->out_n = TOK_NSPECIALS;
  for (size_t i = 0; i < np; i++) {
    tr->out_ids[tr->out_n++] = plain[i].id;
    tr->in_vocab[plain[i].id] = 1;
  }
  for (size_t i = 0; i < nc; i++) {
    tr->out_ids[tr->out_n++] = cont[i].id;
    tr->in_vocab[cont[i].id] = 1;
  }
  rc = ST_OK;
done:
  free(plain);
  free(cont);
  if (rc == ST_NOMEM) return status_set(err, rc, "out of memory building the vocab's alphabet");
  return rc;
}

/* Symbol sequences ("c", "##c", ...) of the words made only of alphabet
 * characters and short enough for WordPiece: the others are [UNK] anyway,
 * and merging their pairs would learn pieces that never match. */
static int build_sequences(tok_vocab_trainer *tr) {
  size_t nsym = tr->symbols.n;
  tr->seq = calloc(tr->words.n, sizeof *tr->seq);
  tr->seq_len = calloc(tr->words.n, sizeof *tr->seq_len);
  tr->visited = calloc(tr->words.n, sizeof *tr->visited);
  if (!tr->seq || !tr->seq_len || !tr->visited) return ST_NOMEM;
  for (size_t w = 0; w < tr->words.n; w++) {
    const char *s = strmap_str(&tr->words, (int32_t)w);
    size_t len = tr->words.length[w], k = 0;
    int32_t *seq = malloc((len ? len : 1) * sizeof *seq);
    if (!seq) return ST_NOMEM;
    int ok = 1;
    for (size_t i = 0; i < len && ok;) {
      utf8proc_int32_t cp;
      utf8proc_ssize_t m =
          utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &cp);
      int32_t id;
      if (symbol_intern(tr, s + i, (size_t)m, i > 0, &id) != ST_OK) {
        free(seq);
        return ST_NOMEM;
      }
      ok = (size_t)id < nsym && tr->in_vocab[id];
      seq[k++] = id;
      i += (size_t)m;
    }
    if (!ok || k > TOK_MAX_WORD_CHARS || k < 2) {
      free(seq);
      continue;
    }
    tr->seq[w] = seq;
    tr->seq_len[w] = (uint32_t)k;
    if (pairs_account(tr, (int32_t)w, +1, NULL, 0) != ST_OK) return ST_NOMEM;
  }
  return ST_OK;
}

int tok_vocab_trainer_train(tok_vocab_trainer *tr, size_t size, uint64_t min_frequency,
                            const char *const **tokens, size_t *n, tok_vocab_summary *summary,
                            char **err) {
  assert(tr && tokens && n && !tr->out);
  if (min_frequency == 0) min_frequency = 1;
  if (tr->words.n == 0)
    return status_set(err, ST_INVALID, "the input holds no words to train a vocab from");
  tok_vocab_summary sum = {0};
  sum.words = tr->total_words;
  sum.distinct_words = tr->words.n;
  sum.specials = TOK_NSPECIALS;
  if (count_chars(tr) != ST_OK) goto nomem;
  int rc = build_alphabet(tr, size, min_frequency, &sum, err);
  if (rc != ST_OK) return rc;
  if (build_sequences(tr) != ST_OK) goto nomem;

  /* Merges: the most frequent pair becomes one symbol, in every word. */
  int32_t *scratch = NULL;
  size_t scratch_cap = 0;
  char *joined = NULL;
  size_t joined_cap = 0;
  uint32_t round = 0;
  while (tr->out_n < size && tr->heap_len > 0) {
    heap_entry top = heap_pop(tr);
    pair_info *pi = &tr->pairs[top.pair];
    if (top.count != pi->count) {
      if (top.count > pi->count && pi->count > 0 && heap_push(tr, top.pair, pi->count) != ST_OK)
        goto nomem_merge;
      continue;
    }
    if (pi->count < (int64_t)min_frequency || pi->count < 2) break;
    int32_t a = (int32_t)(pi->key >> 32), b = (int32_t)(pi->key & 0xffffffffu);
    size_t la = tr->symbols.length[a], lb = tr->symbols.length[b] - 2;
    if (array_grow(&joined, &joined_cap, la + lb + 1, 1) != ST_OK) goto nomem_merge;
    memcpy(joined, strmap_str(&tr->symbols, a), la);
    memcpy(joined + la, strmap_str(&tr->symbols, b) + 2, lb);
    int added;
    int32_t merged = strmap_intern(&tr->symbols, joined, la + lb, &added);
    if (merged < 0) goto nomem_merge;
    if (added) {
      tr->out_ids[tr->out_n++] = merged;
      sum.merges++;
    }
    round++;
    /* The pair's word list may grow while we walk it: index, not pointer. */
    for (size_t k = 0; k < tr->pairs[top.pair].nwords; k++) {
      int32_t w = tr->pairs[top.pair].words[k];
      if (tr->visited[w] == round) continue;
      tr->visited[w] = round;
      int32_t *s = tr->seq[w];
      size_t len = tr->seq_len[w];
      if (!seq_has_pair(s, len, a, b)) continue;
      if (array_grow(&scratch, &scratch_cap, len, sizeof *scratch) != ST_OK) goto nomem_merge;
      memcpy(scratch, s, len * sizeof *s);
      pairs_account(tr, w, -1, NULL, 0);
      size_t j = 0;
      for (size_t i = 0; i < len; i++) {
        if (i + 1 < len && s[i] == a && s[i + 1] == b) {
          s[j++] = merged;
          i++;
        } else {
          s[j++] = s[i];
        }
      }
      tr->seq_len[w] = (uint32_t)j;
      if (pairs_account(tr, w, +1, scratch, len) != ST_OK) goto nomem_merge;
    }
  }
  free(scratch);
  free(joined);
  tr->out = malloc(tr->out_n * sizeof *tr->out);
  if (!tr->out) goto nomem;
  for (size_t i = 0; i < tr->out_n; i++)
    tr->out[i] = i < TOK_NSPECIALS ? tok_specials[i] : strmap_str(&tr->symbols, tr->out_ids[i]);
  *tokens = tr->out;
  *n = tr->out_n;
  if (summary) *summary = sum;
  return ST_OK;

nomem_merge:
  free(scratch);
  free(joined);
nomem:
  return status_set(err, ST_NOMEM, "out of memory training the vocab (%zu distinct words)",
                    tr->words.n);
}
