/* Labelled corpora (see labelled.h): TSV, JSON lines and CoNLL parsed line
 * by line, label sets, one sequence per example, and the two-pass writer:
 * pass 1 checks every line and gathers the labels before anything is
 * created, pass 2 tokenizes and writes through the shard sets of
 * shard_out.h, then manifest.json is written last. */
#include "corpus/labelled.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <utf8proc.h>

#include "corpus/inputs.h"
#include "corpus/manifest.h"
#include "corpus/record.h"
#include "corpus/shard_out.h"
#include "corpus/tok_lines.h"
#include "corpus/vocab.h"
#include "util/array.h"
#include "util/rng.h"
#include "util/status.h"
#include "util/timer.h"

/* ----------------------------------------------------------- examples */

int lab_is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

int lab_is_blank(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (!lab_is_space(s[i])) return 0;
  return 1;
}

/* *s, *len without leading and trailing whitespace. */
static void trim(const char **s, size_t *len) {
  while (*len && lab_is_space(**s)) {
    (*s)++;
    (*len)--;
  }
  while (*len && lab_is_space((*s)[*len - 1])) (*len)--;
}

static size_t drop_cr(const char *line, size_t len) {
  return len && line[len - 1] == '\r' ? len - 1 : len;
}

int lab_parse_tsv(const char *line, size_t len, lab_example *ex, char **err) {
  memset(ex, 0, sizeof *ex);
  len = drop_cr(line, len);
  if (lab_is_blank(line, len)) {
    ex->blank = 1;
    return ST_OK;
  }
  const char *field[3];
  size_t flen[3], nf = 0;
  for (const char *p = line, *end = line + len;; nf++) {
    const char *tab = memchr(p, '\t', (size_t)(end - p));
    if (nf < 3) {
      field[nf] = p;
      flen[nf] = (size_t)((tab ? tab : end) - p);
    }
    if (!tab) break;
    p = tab + 1;
  }
  nf++;
  if (nf < 2 || nf > 3)
    return status_set(err, ST_INVALID, "%zu tab-separated field%s: expected label<TAB>text or "
                      "label<TAB>text_a<TAB>text_b", nf, nf == 1 ? "" : "s");
  trim(&field[0], &flen[0]);
  if (flen[0] == 0) return status_set(err, ST_INVALID, "empty label");
  for (size_t i = 1; i < nf; i++)
    if (lab_is_blank(field[i], flen[i]))
      return status_set(err, ST_INVALID, "empty %s",
                        nf == 2 ? "text" : i == 1 ? "text_a" : "text_b");
  ex->label = field[0];
  ex->label_len = flen[0];
  ex->pair = nf == 3;
  for (size_t i = 1; i < nf; i++) {
    ex->text[i - 1] = field[i];
    ex->text_len[i - 1] = flen[i];
  }
  return ST_OK;
}

/* obj[key] as a non-blank string into *s, *len. ST_INVALID if it is
 * missing (unless optional: *s stays NULL), null (likewise), another type,
 * or blank. */
static int json_text(const cJSON *obj, const char *key, int optional, const char **s, size_t *len,
                     char **err) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(obj, key);
  *s = NULL;
  *len = 0;
  if (optional && (!x || cJSON_IsNull(x))) return ST_OK;
  if (!cJSON_IsString(x))
    return status_set(err, ST_INVALID, "\"%s\" is %s, expected a string", key,
                      x ? "not a string" : "missing");
  *s = x->valuestring;
  *len = strlen(x->valuestring);
  if (lab_is_blank(*s, *len)) return status_set(err, ST_INVALID, "\"%s\" is empty", key);
  return ST_OK;
}

/* 2^53: integers up to this survive a JSON double exactly. */
#define JSON_MAX_EXACT 9007199254740992.0

int lab_parse_jsonl(lab_jsonl *j, const char *line, size_t len, lab_example *ex, char **err) {
  memset(ex, 0, sizeof *ex);
  cJSON_Delete(j->root);
  j->root = NULL;
  len = drop_cr(line, len);
  if (lab_is_blank(line, len)) {
    ex->blank = 1;
    return ST_OK;
  }
  const char *end = NULL;
  j->root = cJSON_ParseWithLengthOpts(line, len, &end, 0);
  if (!j->root) {
    const char *at = cJSON_GetErrorPtr();
    size_t col = at && at >= line && at <= line + len ? (size_t)(at - line) + 1 : 1;
    return status_set(err, ST_INVALID, "not valid JSON (at column %zu)", col);
  }
  if (!lab_is_blank(end, (size_t)(line + len - end)))
    return status_set(err, ST_INVALID, "text after the JSON value: one object per line");
  if (!cJSON_IsObject(j->root))
    return status_set(err, ST_INVALID,
                      "not a JSON object: expected {\"text\": ..., \"label\": ...}");
  int rc = json_text(j->root, "text", 0, &ex->text[0], &ex->text_len[0], err);
  if (!rc) rc = json_text(j->root, "text_b", 1, &ex->text[1], &ex->text_len[1], err);
  if (rc) return rc;
  ex->pair = ex->text[1] != NULL;
  const cJSON *label = cJSON_GetObjectItemCaseSensitive(j->root, "label");
  if (cJSON_IsNumber(label)) {
    double v = label->valuedouble;
    if (v != (double)(long long)v || v > JSON_MAX_EXACT || v < -JSON_MAX_EXACT)
      return status_set(err, ST_INVALID, "\"label\" %g is not an integer", v);
    snprintf(j->number, sizeof j->number, "%lld", (long long)v);
    ex->label = j->number;
    ex->label_len = strlen(j->number);
    return ST_OK;
  }
  if (!cJSON_IsString(label))
    return status_set(err, ST_INVALID, "\"label\" is %s, expected a string or an integer",
                      label ? "neither a string nor a number" : "missing");
  ex->label = label->valuestring;
  ex->label_len = strlen(label->valuestring);
  trim(&ex->label, &ex->label_len);
  if (ex->label_len == 0) return status_set(err, ST_INVALID, "\"label\" is empty");
  return ST_OK;
}

void lab_jsonl_free(lab_jsonl *j) {
  cJSON_Delete(j->root);
  j->root = NULL;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

shard_format lab_detect_format(const char *path) {
  return ends_with(path, ".jsonl") || ends_with(path, ".json") ? SHARD_FORMAT_JSONL
                                                                : SHARD_FORMAT_TSV;
}

#define DOCSTART "-DOCSTART-"

int lab_parse_conll(const char *line, size_t len, lab_conll_line *out, char **err) {
  memset(out, 0, sizeof *out);
  len = drop_cr(line, len);
  size_t b = 0, e;
  while (b < len && lab_is_space(line[b])) b++;
  if (b == len) {
    out->kind = LAB_CONLL_BREAK;
    return ST_OK;
  }
  for (e = b; e < len && !lab_is_space(line[e]); e++) {}
  out->word = line + b;
  out->word_len = e - b;
  int docstart = out->word_len == strlen(DOCSTART) && memcmp(out->word, DOCSTART, e - b) == 0;
  size_t te = len;
  while (lab_is_space(line[te - 1])) te--;
  size_t tb = te;
  while (tb > 0 && !lab_is_space(line[tb - 1])) tb--;
  if (docstart) {
    out->kind = LAB_CONLL_DOCSTART;
    return ST_OK;
  }
  if (tb == b)
    return status_set(err, ST_INVALID, "one field \"%.*s\": expected word<whitespace>tag",
                      (int)(e - b > 40 ? 40 : e - b), out->word);
  out->kind = LAB_CONLL_WORD;
  out->tag = line + tb;
  out->tag_len = te - tb;
  return ST_OK;
}

/* --------------------------------------------------------- label sets */

static int valid_utf8(const char *s, size_t len) {
  for (size_t i = 0; i < len;) {
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                          (utf8proc_ssize_t)(len - i), &c);
    if (k <= 0 || c <= 0) return 0;
    i += (size_t)k;
  }
  return 1;
}

static int check_label(const char *name, size_t len, char **err) {
  if (len > LAB_MAX_LABEL_BYTES)
    return status_set(err, ST_INVALID, "label \"%.32s...\" is longer than %d bytes", name,
                      LAB_MAX_LABEL_BYTES);
  if (!valid_utf8(name, len))
    return status_set(err, ST_INVALID, "label \"%.*s\" is not UTF-8 text", (int)len, name);
  return ST_OK;
}

static int cmp_bytes(const char *a, size_t na, const char *b, size_t nb) {
  int c = memcmp(a, b, na < nb ? na : nb);
  return c ? c : (na > nb) - (na < nb);
}

/* Where name belongs in l->sorted; *found when it is there. */
static size_t find_pos(const lab_labels *l, const char *name, size_t len, int *found) {
  size_t lo = 0, hi = l->n;
  *found = 0;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const char *s = l->names[l->sorted[mid]];
    int c = cmp_bytes(s, strlen(s), name, len);
    if (c == 0) {
      *found = 1;
      return mid;
    }
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* Appends name as id n, at position pos of the byte order. */
static int labels_push(lab_labels *l, const char *name, size_t len, size_t pos, char **err) {
  if (l->n >= RECORD_MAX_LABELS)
    return status_set(err, ST_INVALID, "more than %d labels", RECORD_MAX_LABELS);
  /* Two arrays of one capacity: each grows from the same old cap. */
  size_t cap = l->cap;
  if (array_grow(&l->names, &cap, l->n + 1, sizeof *l->names) != ST_OK)
    return status_set(err, ST_NOMEM, "out of memory collecting labels");
  cap = l->cap;
  if (array_grow(&l->sorted, &cap, l->n + 1, sizeof *l->sorted) != ST_OK)
    return status_set(err, ST_NOMEM, "out of memory collecting labels");
  l->cap = cap;
  char *copy = malloc(len + 1);
  if (!copy) return status_set(err, ST_NOMEM, "out of memory collecting labels");
  memcpy(copy, name, len);
  copy[len] = '\0';
  l->names[l->n] = copy;
  memmove(l->sorted + pos + 1, l->sorted + pos, (l->n - pos) * sizeof *l->sorted);
  l->sorted[pos] = l->n++;
  return ST_OK;
}

int lab_labels_add(lab_labels *l, const char *name, size_t len, char **err) {
  int found, rc = check_label(name, len, err);
  if (rc) return rc;
  size_t pos = find_pos(l, name, len, &found);
  return found ? ST_OK : labels_push(l, name, len, pos, err);
}

int lab_labels_load(lab_labels *l, const char *path, char **err) {
  tok_lines *r = NULL;
  int rc = tok_lines_open(path, TOK_LINES_MAX_BYTES, &r, err);
  size_t line_no = 0;
  while (!rc) {
    const char *line;
    size_t len;
    if ((rc = tok_lines_next(r, &line, &len, err)) || !line) break;
    line_no++;
    trim(&line, &len);
    int found;
    size_t pos = find_pos(l, line, len, &found);
    if (len == 0)
      rc = status_set(err, ST_INVALID, "%s:%zu: empty line: a label file holds one label per "
                      "line", path, line_no);
    else if (found)
      rc = status_set(err, ST_INVALID, "%s:%zu: label \"%.*s\" again (first on line %zu)", path,
                      line_no, (int)len, line, l->sorted[pos] + 1);
    else if ((rc = check_label(line, len, err)) || (rc = labels_push(l, line, len, pos, err)))
      status_wrap(err, rc, "%s:%zu", path, line_no);
  }
  tok_lines_close(r);
  if (!rc && l->n == 0) rc = status_set(err, ST_INVALID, "label file %s holds no labels", path);
  l->fixed = 1;
  return rc;
}

/* A decimal integer written as Python's str(int) writes it. */
static int is_decimal(const char *s) {
  int negative = *s == '-';
  s += negative;
  if (s[0] == '0') return s[1] == '\0' && !negative; /* "0", never "-0" or "07" */
  if (*s < '1' || *s > '9') return 0;
  while (*s >= '0' && *s <= '9') s++;
  return *s == '\0';
}

/* Numeric order of two decimal integers, from their text alone. */
static int cmp_decimal(const void *pa, const void *pb) {
  const char *a = *(char *const *)pa, *b = *(char *const *)pb;
  int na = *a == '-', nb = *b == '-';
  if (na != nb) return na ? -1 : 1;
  size_t la = strlen(a), lb = strlen(b);
  int c = la != lb ? (la < lb ? -1 : 1) : strcmp(a, b);
  return na ? -c : c;
}

static int cmp_name(const void *pa, const void *pb) {
  return strcmp(*(char *const *)pa, *(char *const *)pb);
}

void lab_labels_sort(lab_labels *l) {
  int numeric = l->n > 0;
  for (size_t i = 0; i < l->n && numeric; i++) numeric = is_decimal(l->names[i]);
  qsort(l->names, l->n, sizeof *l->names, numeric ? cmp_decimal : cmp_name);
  /* Rebuild the byte-order index: the ids changed. Insertion keeps it
   * simple, and label sets are small. */
  size_t n = l->n;
  l->n = 0;
  for (size_t id = 0; id < n; id++) {
    int found;
    size_t pos = find_pos(l, l->names[id], strlen(l->names[id]), &found);
    memmove(l->sorted + pos + 1, l->sorted + pos, (l->n - pos) * sizeof *l->sorted);
    l->sorted[pos] = l->n++;
  }
}

int32_t lab_labels_find(const lab_labels *l, const char *name, size_t len) {
  int found;
  size_t pos = find_pos(l, name, len, &found);
  return found ? (int32_t)l->sorted[pos] : -1;
}

void lab_labels_free(lab_labels *l) {
  for (size_t i = 0; i < l->n; i++) free(l->names[i]);
  free(l->names);
  free(l->sorted);
  memset(l, 0, sizeof *l);
}

/* ---------------------------------------------------------- sequences */

int lab_build_example(const lab_seq_config *c, const int32_t *a, size_t na, const int32_t *b,
                      size_t nb, int pair, int32_t *ids, size_t *n, size_t *split, int *truncated,
                      char **err) {
  size_t room = c->seq_len - (pair ? 3 : 2);
  if (!pair) nb = 0;
  *truncated = 0;
  if (na + nb > room) {
    if (!c->truncate)
      return status_set(err, ST_INVALID, "%s gives %zu word pieces, more than the %zu that fit "
                        "in --seq-len %zu: use --truncate or a larger --seq-len",
                        pair ? "the pair" : "the text", na + nb, room, c->seq_len);
    for (size_t cut = na + nb - room; cut > 0; cut--) {
      if (na > nb) na--;
      else nb--;
    }
    *truncated = 1;
  }
  ids[0] = c->cls_id;
  memcpy(ids + 1, a, na * sizeof *ids);
  ids[na + 1] = c->sep_id;
  *split = *n = na + 2;
  if (pair) {
    memcpy(ids + *n, b, nb * sizeof *ids);
    *n += nb;
    ids[(*n)++] = c->sep_id;
  }
  return ST_OK;
}

int lab_sentence_add_word(lab_sentence *s, const lab_seq_config *c, tokenizer *t, const char *word,
                          size_t len, int32_t tag, tok_stats *stats, char **err) {
  size_t before = s->pieces.len;
  int rc = tok_encode(t, word, len, &s->pieces, stats, err);
  if (rc) return rc;
  if (s->pieces.len == before) {
    /* Control characters or invalid UTF-8 alone give no piece; the word
     * still needs one to carry its tag. */
    if (array_grow(&s->pieces.ids, &s->pieces.cap, before + 1, sizeof *s->pieces.ids) != ST_OK)
      return status_set(err, ST_NOMEM, "out of memory tokenizing a sentence");
    s->pieces.ids[s->pieces.len++] = c->unk_id;
    if (stats) {
      stats->tokens++;
      stats->unk++;
    }
  }
  if (array_grow(&s->tags, &s->tags_cap, s->pieces.len, sizeof *s->tags) != ST_OK)
    return status_set(err, ST_NOMEM, "out of memory tokenizing a sentence");
  s->tags[before] = tag;
  for (size_t i = before + 1; i < s->pieces.len; i++)
    s->tags[i] = c->label_all_pieces ? tag : RECORD_IGNORE_LABEL;
  s->words++;
  return ST_OK;
}

int lab_sentence_finish(lab_sentence *s, const lab_seq_config *c, int32_t *ids, int32_t *tags,
                        size_t *n, int *truncated, char **err) {
  size_t room = c->seq_len - 2, k = s->pieces.len;
  *truncated = 0;
  if (k > room) {
    if (!c->truncate)
      return status_set(err, ST_INVALID, "sentence of %zu words gives %zu word pieces, more "
                        "than the %zu that fit in --seq-len %zu: use --truncate or a larger "
                        "--seq-len", s->words, k, room, c->seq_len);
    k = room;
    *truncated = 1;
  }
  ids[0] = c->cls_id;
  tags[0] = RECORD_IGNORE_LABEL;
  memcpy(ids + 1, s->pieces.ids, k * sizeof *ids);
  memcpy(tags + 1, s->tags, k * sizeof *tags);
  ids[k + 1] = c->sep_id;
  tags[k + 1] = RECORD_IGNORE_LABEL;
  *n = k + 2;
  s->pieces.len = 0;
  s->words = 0;
  return ST_OK;
}

void lab_sentence_free(lab_sentence *s) {
  tok_ids_free(&s->pieces);
  free(s->tags);
  memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------- writer */

/* Everything one labelled_shard_run holds; job_free releases it. */
typedef struct job {
  const shard_options *opt;
  corpus_inputs train_in, valid_in;
  tok_vocab *vocab;
  tokenizer *tok;
  manifest m; /* special ids and id width from the vocab; the rest at the end */
  lab_labels labels;
  lab_seq_config cfg;
  lab_jsonl json;
  lab_sentence sent;
  size_t sent_line; /* where the sentence being read starts */
  tok_ids a, b;     /* a classify example's two texts */
  int32_t *ids, *tags;      /* (seq_len) the record being written */
  uint64_t *counts;         /* (2, labels.n) the manifest's label_counts */
  uint64_t examples[2];     /* pass 1: in training and in validation inputs */
  uint64_t index;           /* training-input examples written, keys the validation draw */
  unsigned formats_seen;    /* bit per shard_format read */
  int writing;              /* pass 2 */
  shard_set train, valid;
  shard_progress prog;
  double t0, last_report;
  int out_created, out_touched;
} job;

/* A line being read: its file, number and format, and whether the file
 * holds validation examples. */
typedef struct where {
  const char *path;
  size_t line;
  shard_format format;
  int valid_file;
} where;

static int stopped(const shard_options *opt) { return opt->stop && *opt->stop; }

static void report(job *j, int force) {
  double now = timer_now();
  if (!j->opt->progress || (!force && now - j->last_report < 1.0)) return;
  j->last_report = now;
  j->prog.seconds = now - j->t0;
  j->opt->progress(j->opt->progress_ctx, &j->prog);
}

/* Pass 1 adds the label to the set (or, with a fixed set, checks it is
 * there); pass 2 gives its id. */
static int label_id(job *j, const char *name, size_t len, int32_t *id, char **err) {
  *id = -1;
  if (j->writing || j->labels.fixed) *id = lab_labels_find(&j->labels, name, len);
  if (*id >= 0) return ST_OK;
  if (j->labels.fixed)
    return status_set(err, ST_INVALID, "label \"%.*s\" is not in the label set %s", (int)len,
                      name, j->opt->labels_path);
  return lab_labels_add(&j->labels, name, len, err);
}

/* The shard set an example goes to: a validation file's to validation;
 * with valid_fraction, a training file's with that probability, drawn
 * from the seed and the example's number as pretraining draws documents. */
static shard_set *route(job *j, const where *at) {
  if (at->valid_file) return &j->valid;
  int to_valid = shard_out_to_valid(j->opt->valid_fraction, j->opt->seed, j->index);
  j->index++;
  return to_valid ? &j->valid : &j->train;
}

/* Writes rec to the split route chooses, counting its labels. */
static int emit(job *j, const where *at, const record *rec, int truncated, char **err) {
  shard_set *dest = route(j, at);
  int v = dest == &j->valid;
  int rc = shard_set_emit(dest, rec, err);
  if (rc) return rc;
  uint64_t *counts = j->counts + (size_t)v * j->labels.n;
  if (rec->kind == RECORD_CLASS) counts[rec->label]++;
  for (size_t i = 0; rec->kind == RECORD_TAGS && i < rec->n; i++)
    if (rec->tags[i] != RECORD_IGNORE_LABEL) counts[rec->tags[i]]++;
  j->m.truncated += (uint64_t)truncated;
  if (v) j->prog.valid_documents++;
  else j->prog.documents++;
  return ST_OK;
}

static int encode_text(job *j, const char *text, size_t len, tok_ids *out, const char *what,
                       char **err) {
  tok_stats st = {0};
  out->len = 0;
  int rc = tok_encode(j->tok, text, len, out, &st, err);
  j->prog.text_tokens += st.tokens;
  j->prog.unk += st.unk;
  j->prog.invalid_utf8_bytes += st.invalid_utf8_bytes;
  if (!rc && out->len == 0)
    rc = status_set(err, ST_INVALID, "%s gives no word piece (only control characters or "
                    "invalid UTF-8)", what);
  return rc;
}

static int write_example(job *j, const where *at, const lab_example *ex, int32_t label,
                         char **err) {
  int rc = encode_text(j, ex->text[0], ex->text_len[0], &j->a, ex->pair ? "text_a" : "text", err);
  if (!rc && ex->pair) rc = encode_text(j, ex->text[1], ex->text_len[1], &j->b, "text_b", err);
  size_t n, split;
  int truncated;
  if (!rc)
    rc = lab_build_example(&j->cfg, j->a.ids, j->a.len, j->b.ids, j->b.len, ex->pair, j->ids, &n,
                           &split, &truncated, err);
  if (rc) return rc;
  record rec = {.ids = j->ids, .n = n, .split = split, .pair = ex->pair, .kind = RECORD_CLASS,
                .label = label};
  return emit(j, at, &rec, truncated, err);
}

/* Data errors (ST_INVALID) get the file and line in front. */
static int at_line(int rc, const char *path, size_t line, char **err) {
  return rc == ST_INVALID ? status_wrap(err, rc, "%s:%zu", path, line) : rc;
}

static int classify_line(job *j, const where *at, const char *line, size_t len, char **err) {
  lab_example ex;
  int rc = at->format == SHARD_FORMAT_JSONL ? lab_parse_jsonl(&j->json, line, len, &ex, err)
                                            : lab_parse_tsv(line, len, &ex, err);
  if (rc || ex.blank) return at_line(rc, at->path, at->line, err);
  int32_t label;
  rc = label_id(j, ex.label, ex.label_len, &label, err);
  if (!rc && j->writing) rc = write_example(j, at, &ex, label, err);
  if (!rc && !j->writing) j->examples[at->valid_file]++;
  return at_line(rc, at->path, at->line, err);
}

/* The end of a sentence: a blank line, a -DOCSTART- line, the file's end. */
static int end_sentence(job *j, const where *at, char **err) {
  if (j->sent.words == 0) return ST_OK;
  if (!j->writing) {
    j->sent.words = 0;
    j->examples[at->valid_file]++;
    return ST_OK;
  }
  size_t n;
  int truncated;
  int rc = lab_sentence_finish(&j->sent, &j->cfg, j->ids, j->tags, &n, &truncated, err);
  if (rc) return at_line(rc, at->path, j->sent_line, err);
  record rec = {.ids = j->ids, .n = n, .split = n, .kind = RECORD_TAGS, .tags = j->tags};
  return emit(j, at, &rec, truncated, err);
}

static int tag_line(job *j, const where *at, const char *line, size_t len, char **err) {
  lab_conll_line c;
  int rc = lab_parse_conll(line, len, &c, err);
  if (rc) return at_line(rc, at->path, at->line, err);
  if (c.kind != LAB_CONLL_WORD) return end_sentence(j, at, err);
  if (j->sent.words == 0) j->sent_line = at->line;
  int32_t tag;
  if ((rc = label_id(j, c.tag, c.tag_len, &tag, err))) return at_line(rc, at->path, at->line, err);
  if (!j->writing) {
    j->sent.words++;
    return ST_OK;
  }
  tok_stats st = {0};
  rc = lab_sentence_add_word(&j->sent, &j->cfg, j->tok, c.word, c.word_len, tag, &st, err);
  j->prog.text_tokens += st.tokens;
  j->prog.unk += st.unk;
  j->prog.invalid_utf8_bytes += st.invalid_utf8_bytes;
  return rc;
}

/* Reads one input file line by line, in the current pass. */
static int read_file(job *j, const char *path, int valid_file, char **err) {
  const shard_options *opt = j->opt;
  where at = {path, 0, opt->format == SHARD_FORMAT_DETECT ? lab_detect_format(path) : opt->format,
              valid_file};
  j->formats_seen |= 1u << at.format;
  tok_lines *r = NULL;
  int rc = tok_lines_open(path, TOK_LINES_MAX_BYTES, &r, err);
  while (!rc) {
    if (stopped(opt)) {
      rc = ST_INTERRUPTED;
      break;
    }
    const char *line;
    size_t len;
    if ((rc = tok_lines_next(r, &line, &len, err)) || !line) break;
    at.line++;
    if (j->writing) j->prog.bytes_read += len + 1;
    rc = opt->task == MANIFEST_TASK_CLASSIFY ? classify_line(j, &at, line, len, err)
                                             : tag_line(j, &at, line, len, err);
    if (j->writing) report(j, 0);
  }
  if (!rc && opt->task == MANIFEST_TASK_TAG) rc = end_sentence(j, &at, err);
  tok_lines_close(r);
  return rc;
}

static int read_all(job *j, char **err) {
  int rc = ST_OK;
  for (size_t i = 0; i < j->train_in.n && !rc; i++) rc = read_file(j, j->train_in.paths[i], 0, err);
  for (size_t i = 0; i < j->valid_in.n && !rc; i++) rc = read_file(j, j->valid_in.paths[i], 1, err);
  if (rc == ST_INTERRUPTED)
    return status_set(err, rc, "interrupted: %s", j->writing ? "the corpus is incomplete (no "
                      MANIFEST_FILE "); rerun ddpt shard with --overwrite" : "nothing was written");
  return rc;
}

/* The inputs, read twice (so not standard input), before anything is created. */
static int list_inputs(job *j, char **err) {
  const shard_options *opt = j->opt;
  int rc = corpus_inputs_list(&j->train_in, opt->inputs, opt->num_inputs, 0, opt->out_dir, err);
  if (!rc && opt->num_valid_inputs)
    rc = corpus_inputs_list(&j->valid_in, opt->valid_inputs, opt->num_valid_inputs, 0,
                            opt->out_dir, err);
  if (rc == ST_INVALID && strstr(*err, "standard input"))
    status_wrap(err, rc, "--task %s", manifest_task_name(opt->task));
  j->prog.bytes_total = j->train_in.total_bytes + j->valid_in.total_bytes;
  return rc;
}

/* Pass 1: every line checked, the labels gathered (or checked against the
 * fixed set) and given their ids. */
static int check_inputs(job *j, char **err) {
  const shard_options *opt = j->opt;
  int rc = opt->labels_path ? lab_labels_load(&j->labels, opt->labels_path, err) : ST_OK;
  if (!rc) rc = read_all(j, err);
  if (rc) return rc;
  const char *what = opt->task == MANIFEST_TASK_CLASSIFY ? "examples" : "sentences";
  if (j->examples[0] == 0)
    return status_set(err, ST_INVALID, "no %s in the training input %s%s", what,
                      j->train_in.paths[0], j->train_in.n > 1 ? " and the others" : "");
  if (opt->num_valid_inputs && j->examples[1] == 0)
    return status_set(err, ST_INVALID, "no %s in the validation input %s%s", what,
                      j->valid_in.paths[0], j->valid_in.n > 1 ? " and the others" : "");
  if (!j->labels.fixed) lab_labels_sort(&j->labels);
  return ST_OK;
}

/* Empties (or creates) out_dir, copies the vocab, opens the shard sets. */
static int open_outputs(job *j, char **err) {
  const shard_options *opt = j->opt;
  j->cfg = (lab_seq_config){.seq_len = opt->seq_len, .truncate = opt->truncate,
                            .label_all_pieces = opt->label_all_pieces, .cls_id = j->m.cls_id,
                            .sep_id = j->m.sep_id, .unk_id = j->m.unk_id};
  j->ids = malloc(opt->seq_len * sizeof *j->ids);
  j->tags = malloc(opt->seq_len * sizeof *j->tags);
  j->counts = calloc(2 * j->labels.n, sizeof *j->counts);
  if (!j->ids || !j->tags || !j->counts)
    return status_set(err, ST_NOMEM, "out of memory starting ddpt shard");
  int rc = shard_out_prepare(opt->out_dir, opt->overwrite, &j->out_created, err);
  if (rc) return rc;
  j->out_touched = 1;
  if ((rc = shard_out_copy_vocab(opt->vocab_path, opt->out_dir, tok_vocab_sha256_hex(j->vocab),
                                 err)))
    return rc;
  j->train.progress = j->valid.progress = &j->prog;
  j->valid.valid = 1;
  rc = shard_set_open(&j->train, opt->out_dir, "shard", opt->num_shards, j->m.id_bytes,
                      opt->seq_len, err);
  if (!rc && (opt->num_valid_inputs || opt->valid_fraction > 0))
    rc = shard_set_open(&j->valid, opt->out_dir, "valid", 1, j->m.id_bytes, opt->seq_len, err);
  return rc;
}

/* After pass 2: refuses fewer training sequences than shards, closes the
 * shards (flushed, compacted) and writes the manifest. */
static int finish(job *j, char **err) {
  const shard_options *opt = j->opt;
  report(j, 1);
  if (j->prog.sequences < opt->num_shards)
    return status_set(err, ST_INVALID, "%zu shards but only %llu training sequences: use --shards "
                      "%llu or fewer, or add examples", opt->num_shards,
                      (unsigned long long)j->prog.sequences, (unsigned long long)j->prog.sequences);
  int rc = shard_set_close(&j->train, 1, err);
  if (!rc) rc = shard_set_close(&j->valid, 1, err);
  if (rc) return rc;
  manifest *m = &j->m;
  m->num_labels = j->labels.n;
  m->labels = j->labels.names;
  m->label_counts = j->counts;
  m->label_all_pieces = opt->label_all_pieces;
  const char *format = shard_format_name(opt->format);
  if (opt->format == SHARD_FORMAT_DETECT)
    format = j->formats_seen == (1u << SHARD_FORMAT_JSONL | 1u << SHARD_FORMAT_TSV) ? "tsv+jsonl"
             : j->formats_seen & 1u << SHARD_FORMAT_JSONL                        ? "jsonl"
                                                                                  : "tsv";
  return shard_out_write_manifest(m, opt, format, j->vocab, &j->prog, &j->train, &j->valid, err);
}

/* Releases everything. A failed run takes back what it wrote, except when
 * interrupted: the directory then stays, without a manifest. */
static void job_free(job *j, int rc) {
  shard_set_close(&j->train, 0, NULL);
  shard_set_close(&j->valid, 0, NULL);
  if (rc && rc != ST_INTERRUPTED && j->out_touched) {
    char *ignored = NULL;
    shard_out_remove(j->opt->out_dir, &ignored);
    free(ignored);
    if (j->out_created) rmdir(j->opt->out_dir);
  }
  shard_set_free(&j->train);
  shard_set_free(&j->valid);
  free(j->m.shards);
  free(j->m.valid);
  free(j->counts);
  free(j->ids);
  free(j->tags);
  tok_ids_free(&j->a);
  tok_ids_free(&j->b);
  lab_sentence_free(&j->sent);
  lab_jsonl_free(&j->json);
  lab_labels_free(&j->labels);
  tok_free(j->tok);
  tok_vocab_free(j->vocab);
  corpus_inputs_free(&j->train_in);
  corpus_inputs_free(&j->valid_in);
}

int labelled_shard_run(const shard_options *opt, shard_progress *summary, char **err) {
  job *j = calloc(1, sizeof *j);
  if (!j) return status_set(err, ST_NOMEM, "out of memory starting ddpt shard");
  j->opt = opt;
  j->t0 = j->last_report = timer_now();
  int rc = list_inputs(j, err);
  if (!rc) rc = shard_out_load_vocab(opt->vocab_path, &j->vocab, &j->m, err);
  if (!rc) rc = tok_create(j->vocab, opt->lowercase, &j->tok, err);
  if (!rc) rc = check_inputs(j, err);
  if (!rc) rc = open_outputs(j, err);
  if (!rc) {
    j->writing = 1;
    rc = read_all(j, err);
  }
  if (!rc) rc = finish(j, err);
  if (!rc) {
    j->prog.seconds = timer_now() - j->t0;
    *summary = j->prog;
  }
  job_free(j, rc);
  free(j);
  return rc;
}
