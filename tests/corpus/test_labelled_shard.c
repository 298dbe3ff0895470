/* Labelled corpora end to end through LevelDB: ddpt shard --task classify
 * and tag as library calls, read back by the corpus reader (labels where
 * the text says they belong, no masking), validation split by seed or by
 * file, 2 ranks x b reading what 1 rank x 2b reads, exact resume, and
 * every bad input named by file:line with no corpus left behind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "corpus/corpus.h"
#include "corpus/manifest.h"
#include "corpus/record.h"
#include "corpus/shard_reader.h"
#include "corpus/vocab.h"
#include "harness.h"
#include "test_shard_fixture.h"
#include "util/file.h"
#include "util/status.h"

#define LETTERS "abcde"

/* Example i of the classify data: label letter L, text "L L ... L" (1 to 4
 * times), and every third example a pair with text_b "the". */
static char letter_of(size_t i) { return LETTERS[(i * 7 + i / 5) % 5]; }

static void write_classify(const char *path, size_t first, size_t n) {
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  for (size_t i = first; i < first + n; i++) {
    char l = letter_of(i);
    fprintf(f, "%c\t", l);
    for (size_t k = 0; k <= i % 4; k++) fprintf(f, "%s%c", k ? " " : "", l);
    fputs(i % 3 == 0 ? "\tthe\n" : "\n", f);
  }
  fclose(f);
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text, f);
  fclose(f);
}

static shard_options labelled_options(const fixture *f, manifest_task task, const char *input,
                                      size_t shards, size_t seq_len) {
  static const char *inputs[1];
  inputs[0] = input;
  shard_options opt = fixture_options(f, shards, seq_len);
  opt.inputs = inputs;
  opt.task = task;
  opt.format = task == MANIFEST_TASK_TAG ? SHARD_FORMAT_CONLL : SHARD_FORMAT_DETECT;
  return opt;
}

static corpus *open_reader(const char *dir, int rank, int world, size_t batch) {
  corpus_options o;
  corpus_options_default(&o);
  o.batch_size = batch;
  o.seed = 3;
  corpus *c = NULL;
  char *err = NULL;
  int rc = corpus_open(dir, rank, world, &o, &c, &err);
  if (rc) fprintf(stderr, "corpus_open: %s\n", err);
  free(err);
  CU_ASSERT_EQUAL_FATAL(rc, ST_OK);
  return c;
}

/* Row r of b is a classify example as write_classify made it: its label is
 * its letter's, its first piece that letter; nothing is masked. Returns
 * whether it is a pair. */
static int check_classify_row(const corpus_batch *b, size_t r, const tok_vocab *v) {
  const int32_t *in = b->input_ids + r * b->seq_len, *seg = b->segment_ids + r * b->seq_len;
  int32_t first = in[1];
  const char *tok = tok_vocab_token(v, first);
  CU_ASSERT_FATAL(strlen(tok) == 1 && strchr(LETTERS, tok[0]));
  CU_ASSERT_EQUAL(b->class_labels[r], tok[0] - 'a'); /* labels a..e sorted: ids 0..4 */
  CU_ASSERT_EQUAL(b->nsp_labels[r], -1);
  CU_ASSERT_EQUAL(b->num_masked[r], 0);
  int pair = 0;
  for (size_t i = 0; i < b->seq_len; i++) {
    CU_ASSERT_EQUAL(b->mlm_labels[r * b->seq_len + i], -1);
    CU_ASSERT_EQUAL(b->tag_labels[r * b->seq_len + i], CORPUS_IGNORE_LABEL);
    pair |= seg[i];
  }
  return pair;
}

static void test_classify_round_trip_through_leveldb(void) {
  fixture f;
  fixture_init(&f, "lab-classify", 1, 1);
  char input[600];
  snprintf(input, sizeof input, "%s/train.tsv", f.root);
  write_classify(input, 0, 60);
  shard_options opt = labelled_options(&f, MANIFEST_TASK_CLASSIFY, input, 3, 16);
  fixture_shard(&opt);
  manifest *m = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(manifest_read(f.out, &m, &err), ST_OK);
  CU_ASSERT_EQUAL(m->task, MANIFEST_TASK_CLASSIFY);
  CU_ASSERT_STRING_EQUAL(m->input_format, "tsv");
  CU_ASSERT_EQUAL_FATAL(m->num_labels, 5);
  uint64_t counted = 0, want[5] = {0};
  for (size_t i = 0; i < 60; i++) want[letter_of(i) - 'a']++;
  for (size_t k = 0; k < 5; k++) {
    CU_ASSERT(m->labels[k][0] == LETTERS[k] && m->labels[k][1] == '\0');
    CU_ASSERT_EQUAL(m->label_counts[k], want[k]);
    CU_ASSERT_EQUAL(m->label_counts[5 + k], 0);
    counted += m->label_counts[k];
  }
  CU_ASSERT_EQUAL(counted, 60);
  CU_ASSERT(m->documents == 60 && m->sequences == 60 && m->num_valid == 0 && m->truncated == 0);
  for (size_t s = 0; s < m->num_shards; s++) {
    shard_reader *r = NULL;
    uint64_t tokens = 0;
    CU_ASSERT_EQUAL_FATAL(shard_reader_open(f.out, m, &m->shards[s], &r, &err), ST_OK);
    CU_ASSERT_EQUAL(shard_reader_verify(r, m, &tokens, &err), ST_OK);
    CU_ASSERT_EQUAL(tokens, m->shards[s].tokens);
    shard_reader_close(r);
  }
  /* One epoch, one row at a time: every example once, labels right. */
  tok_vocab *v = NULL;
  CU_ASSERT_EQUAL_FATAL(tok_vocab_load(f.vocab, &v, &err), ST_OK);
  corpus *c = open_reader(f.out, 0, 1, 1);
  corpus_batch *b = NULL;
  CU_ASSERT_EQUAL_FATAL(corpus_batch_alloc(1, m->seq_len, &b, &err), ST_OK);
  int seen[3][20] = {{0}};
  size_t pairs = 0;
  for (size_t i = 0; i < 60; i++) {
    CU_ASSERT_EQUAL_FATAL(corpus_next_batch(c, b, &err), ST_OK);
    CU_ASSERT_FATAL(b->samples[0].shard < 3 && b->samples[0].index < 20);
    seen[b->samples[0].shard][b->samples[0].index]++;
    pairs += (size_t)check_classify_row(b, 0, v);
  }
  for (size_t s = 0; s < 3; s++)
    for (size_t k = 0; k < 20; k++) CU_ASSERT_EQUAL(seen[s][k], 1);
  CU_ASSERT_EQUAL(pairs, 20);
  corpus_batch_free(b);
  corpus_close(c);
  tok_vocab_free(v);
  manifest_free(m);
  fixture_free(&f);
}

/* The validation examples of the corpus in dir, one digest each, in order. */
static size_t valid_digests(const char *dir, uint64_t *out, size_t max) {
  corpus_options o;
  corpus_options_default(&o);
  o.batch_size = 4;
  corpus_valid *v = NULL;
  corpus_batch *b = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(corpus_valid_open(dir, &o, &v, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(corpus_batch_alloc(4, 16, &b, &err), ST_OK);
  size_t n = 0;
  for (uint64_t start = 0; start < corpus_valid_size(v); start += 4) {
    CU_ASSERT_EQUAL_FATAL(corpus_valid_batch(v, start, b, &err), ST_OK);
    for (size_t r = 0; r < b->count && n < max; r++) {
      uint64_t h = (uint64_t)b->class_labels[r];
      for (size_t i = 0; i < 16; i++) h = h * 1000003u + (uint32_t)b->input_ids[r * 16 + i];
      out[n++] = h;
    }
  }
  corpus_batch_free(b);
  corpus_valid_close(v);
  return n;
}

static void test_valid_split_is_fixed_by_seed_or_by_file(void) {
  fixture f;
  fixture_init(&f, "lab-valid", 1, 1);
  char input[600], valid[600], out2[600];
  snprintf(input, sizeof input, "%s/train.tsv", f.root);
  snprintf(valid, sizeof valid, "%s/dev.tsv", f.root);
  snprintf(out2, sizeof out2, "%s/corpus2", f.root);
  write_classify(input, 0, 80);
  shard_options opt = labelled_options(&f, MANIFEST_TASK_CLASSIFY, input, 2, 16);
  opt.valid_fraction = 0.25;
  opt.seed = 5;
  fixture_shard(&opt);
  shard_options again = opt;
  again.out_dir = out2;
  again.threads = 1;
  fixture_shard(&again);
  uint64_t a[80], b2[80];
  size_t na = valid_digests(f.out, a, 80), nb = valid_digests(out2, b2, 80);
  CU_ASSERT(na >= 8 && na <= 32); /* about a quarter of 80 */
  CU_ASSERT_EQUAL(na, nb);
  CU_ASSERT_EQUAL(memcmp(a, b2, na * sizeof *a), 0); /* same seed, same examples */
  again.seed = 6;
  again.overwrite = 1;
  fixture_shard(&again);
  nb = valid_digests(out2, b2, 80);
  CU_ASSERT(na != nb || memcmp(a, b2, na * sizeof *a) != 0); /* another seed, another split */
  manifest *m = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(manifest_read(f.out, &m, &err), ST_OK);
  uint64_t tv = 0, vv = 0;
  for (size_t k = 0; k < m->num_labels; k++) {
    tv += m->label_counts[k];
    vv += m->label_counts[m->num_labels + k];
  }
  CU_ASSERT(tv + vv == 80 && vv == na && m->num_valid == 1);
  manifest_free(m);

  /* --valid FILE: all of it is validation, none of the training file is. */
  write_classify(valid, 100, 7);
  const char *valid_in[] = {valid};
  opt.valid_fraction = 0;
  opt.valid_inputs = valid_in;
  opt.num_valid_inputs = 1;
  opt.overwrite = 1;
  fixture_shard(&opt);
  CU_ASSERT_EQUAL_FATAL(manifest_read(f.out, &m, &err), ST_OK);
  CU_ASSERT(m->num_valid == 1 && m->valid[0].sequences == 7 && m->shards[0].sequences +
            m->shards[1].sequences == 80);
  manifest_free(m);
  fixture_free(&f);
}

/* (shard, index, label) of each row, sorted, for comparing steps as sets. */
static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

static uint64_t row_key(const corpus_batch *b, size_t r) {
  return (uint64_t)b->samples[r].shard << 40 | b->samples[r].index << 8 |
         (uint64_t)b->class_labels[r];
}

static void test_two_ranks_of_b_read_what_one_rank_of_2b_reads_and_resume_is_exact(void) {
  fixture f;
  fixture_init(&f, "lab-ranks", 1, 1);
  char input[600];
  snprintf(input, sizeof input, "%s/train.tsv", f.root);
  write_classify(input, 0, 40); /* 4 shards of 10 */
  shard_options opt = labelled_options(&f, MANIFEST_TASK_CLASSIFY, input, 4, 16);
  fixture_shard(&opt);
  enum { STEPS = 15 };
  corpus_batch *b4 = NULL, *b0 = NULL, *b1 = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(corpus_batch_alloc(4, 16, &b4, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(corpus_batch_alloc(2, 16, &b0, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(corpus_batch_alloc(2, 16, &b1, &err), ST_OK);
  uint64_t straight[STEPS][4];
  corpus *one = open_reader(f.out, 0, 1, 4);
  for (size_t s = 0; s < STEPS; s++) {
    CU_ASSERT_EQUAL_FATAL(corpus_next_batch(one, b4, &err), ST_OK);
    for (size_t r = 0; r < 4; r++) straight[s][r] = row_key(b4, r);
  }
  corpus_close(one); /* LevelDB: one process opens a shard once */
  corpus *r0 = open_reader(f.out, 0, 2, 2), *r1 = open_reader(f.out, 1, 2, 2);
  for (size_t s = 0; s < STEPS; s++) {
    CU_ASSERT_EQUAL_FATAL(corpus_next_batch(r0, b0, &err), ST_OK);
    CU_ASSERT_EQUAL_FATAL(corpus_next_batch(r1, b1, &err), ST_OK);
    uint64_t w1[4], w2[4] = {row_key(b0, 0), row_key(b0, 1), row_key(b1, 0), row_key(b1, 1)};
    memcpy(w1, straight[s], sizeof w1);
    qsort(w1, 4, sizeof *w1, cmp_u64);
    qsort(w2, 4, sizeof *w2, cmp_u64);
    CU_ASSERT_EQUAL(memcmp(w1, w2, sizeof w1), 0);
  }
  corpus_close(r0);
  corpus_close(r1);
  /* 6 steps, the cursors saved, a new reader set to them: the same rows. */
  one = open_reader(f.out, 0, 1, 4);
  corpus_cursor cur[4];
  for (size_t s = 0; s < 6; s++) CU_ASSERT_EQUAL_FATAL(corpus_next_batch(one, b4, &err), ST_OK);
  corpus_state_get(one, cur);
  corpus_close(one);
  one = open_reader(f.out, 0, 1, 4);
  CU_ASSERT_EQUAL_FATAL(corpus_state_set(one, cur, 4, &err), ST_OK);
  for (size_t s = 6; s < STEPS; s++) {
    CU_ASSERT_EQUAL_FATAL(corpus_next_batch(one, b4, &err), ST_OK);
    for (size_t r = 0; r < 4; r++) CU_ASSERT_EQUAL(row_key(b4, r), straight[s][r]);
  }
  corpus_close(one);
  corpus_batch_free(b4);
  corpus_batch_free(b0);
  corpus_batch_free(b1);
  fixture_free(&f);
}

/* Sentences of words whose tag is fixed by the word: "the" O, "abing"
 * (a ##b ##ing) B-X, "c" I-X; with a -DOCSTART- and extra blank lines. */
static const char CONLL[] = "-DOCSTART- -X- O\n\n"
                            "the O\nabing B-X\nc I-X\n\n\n"
                            "abing\tB-X\n"
                            "c x I-X\r\n\n"
                            "c I-X\nthe O\nthe O\nabing B-X\n";

/* Checks row r of a tag batch: every word's first piece carries the word's
 * tag (ids: the, a, c -> O, B-X, I-X = 2, 0, 1), continuation pieces the
 * same tag with all, else nothing. Returns the words found. */
static size_t check_tag_row(const corpus_batch *b, size_t r, const int32_t word_ids[3], int32_t sep,
                            int all) {
  const size_t L = b->seq_len;
  const int32_t *in = b->input_ids + r * L, *tag = b->tag_labels + r * L;
  static const int32_t word_tag[3] = {2, 0, 1};
  CU_ASSERT_EQUAL(b->class_labels[r], CORPUS_IGNORE_LABEL);
  CU_ASSERT_EQUAL(tag[0], CORPUS_IGNORE_LABEL); /* [CLS] */
  int32_t current = CORPUS_IGNORE_LABEL;
  size_t words = 0;
  for (size_t i = 1; i < L; i++) {
    if (!b->attention_mask[r * L + i] || in[i] == sep) {
      CU_ASSERT_EQUAL(tag[i], CORPUS_IGNORE_LABEL);
      continue;
    }
    int w = in[i] == word_ids[0] ? 0 : in[i] == word_ids[1] ? 1 : in[i] == word_ids[2] ? 2 : -1;
    if (w >= 0) {
      current = word_tag[w];
      CU_ASSERT_EQUAL(tag[i], current);
      words++;
    } else {
      CU_ASSERT_EQUAL(tag[i], all ? current : CORPUS_IGNORE_LABEL); /* ##b, ##ing */
    }
  }
  return words;
}

static void test_tag_round_trip_aligns_tags_to_pieces(void) {
  fixture f;
  fixture_init(&f, "lab-tag", 1, 1);
  char input[600];
  snprintf(input, sizeof input, "%s/tags.conll", f.root);
  write_text(input, CONLL);
  tok_vocab *v = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(tok_vocab_load(f.vocab, &v, &err), ST_OK);
  const int32_t word_ids[3] = {tok_vocab_find(v, "the", 3), tok_vocab_find(v, "a", 1),
                               tok_vocab_find(v, "c", 1)};
  for (int all = 0; all <= 1; all++) {
    shard_options opt = labelled_options(&f, MANIFEST_TASK_TAG, input, 1, 16);
    const char *valid_in[] = {input}; /* the same sentences again, as validation */
    opt.valid_inputs = valid_in;
    opt.num_valid_inputs = 1;
    opt.label_all_pieces = all;
    opt.overwrite = 1;
    fixture_shard(&opt);
    manifest *m = NULL;
    CU_ASSERT_EQUAL_FATAL(manifest_read(f.out, &m, &err), ST_OK);
    CU_ASSERT(m->task == MANIFEST_TASK_TAG && m->label_all_pieces == all && m->documents == 6);
    CU_ASSERT_EQUAL_FATAL(m->num_labels, 3);
    CU_ASSERT_STRING_EQUAL(m->labels[0], "B-X");
    CU_ASSERT_STRING_EQUAL(m->labels[1], "I-X");
    CU_ASSERT_STRING_EQUAL(m->labels[2], "O");
    /* Tagged pieces: 3 abing (1 or 3 pieces each), 3 c, 3 the; per split. */
    for (size_t split = 0; split < 2; split++) {
      CU_ASSERT_EQUAL(m->label_counts[3 * split + 0], all ? 9u : 3u);
      CU_ASSERT_EQUAL(m->label_counts[3 * split + 1], 3);
      CU_ASSERT_EQUAL(m->label_counts[3 * split + 2], 3);
    }
    corpus *c = open_reader(f.out, 0, 1, 3);
    corpus_batch *b = NULL, *vb = NULL;
    CU_ASSERT_EQUAL_FATAL(corpus_batch_alloc(3, 16, &b, &err), ST_OK);
    CU_ASSERT_EQUAL_FATAL(corpus_batch_alloc(4, 16, &vb, &err), ST_OK);
    CU_ASSERT_EQUAL_FATAL(corpus_next_batch(c, b, &err), ST_OK);
    size_t words = 0;
    for (size_t r = 0; r < 3; r++) words += check_tag_row(b, r, word_ids, m->sep_id, all);
    CU_ASSERT_EQUAL(words, 9);
    corpus_close(c);
    corpus_options o;
    corpus_options_default(&o);
    corpus_valid *val = NULL;
    CU_ASSERT_EQUAL_FATAL(corpus_valid_open(f.out, &o, &val, &err), ST_OK);
    CU_ASSERT_EQUAL_FATAL(corpus_valid_batch(val, 0, vb, &err), ST_OK);
    CU_ASSERT_EQUAL(vb->count, 3);
    words = 0;
    for (size_t r = 0; r < 4; r++) words += check_tag_row(vb, r, word_ids, m->sep_id, all);
    CU_ASSERT_EQUAL(words, 9); /* the padding row has none, all -100 */
    corpus_valid_close(val);
    corpus_batch_free(vb);
    corpus_batch_free(b);
    manifest_free(m);
  }
  tok_vocab_free(v);
  fixture_free(&f);
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Runs opt: fails with code, a one-line message holding needle, and no
 * corpus in opt->out_dir. */
static void expect_failure(const shard_options *opt, int code, const char *needle) {
  shard_progress s;
  char *err = NULL;
  int rc = shard_writer_run(opt, &s, &err);
  CU_ASSERT_EQUAL(rc, code);
  CU_ASSERT_PTR_NOT_NULL_FATAL(err);
  if (!strstr(err, needle)) fprintf(stderr, "message '%s' lacks '%s'\n", err, needle);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
  CU_ASSERT_PTR_NULL(strchr(err, '\n'));
  free(err);
  CU_ASSERT(!exists(opt->out_dir));
}

static void test_labelled_errors_name_file_and_line_and_leave_no_corpus(void) {
  fixture f;
  fixture_init(&f, "lab-bad", 1, 1);
  char tsv[600], jsonl[600], conll[600], labels[600], want[1400];
  snprintf(tsv, sizeof tsv, "%s/train.tsv", f.root);
  snprintf(jsonl, sizeof jsonl, "%s/train.jsonl", f.root);
  snprintf(conll, sizeof conll, "%s/tags.conll", f.root);
  snprintf(labels, sizeof labels, "%s/labels.txt", f.root);
  shard_options opt = labelled_options(&f, MANIFEST_TASK_CLASSIFY, tsv, 1, 8);

  write_text(tsv, "a\tthe\nb\tthe and\n\nno tab on this line\n");
  snprintf(want, sizeof want, "%s:4: 1 tab-separated field", tsv);
  expect_failure(&opt, ST_INVALID, want);

  write_text(tsv, "a\tthe\nzz\tthe and\n");
  write_text(labels, "b\na\n");
  opt.labels_path = labels;
  snprintf(want, sizeof want, "%s:2: label \"zz\" is not in the label set %s", tsv, labels);
  expect_failure(&opt, ST_INVALID, want);
  opt.labels_path = NULL;

  write_text(tsv, "a\tthe\nb\t\x01\x02\n");
  snprintf(want, sizeof want, "%s:2: text gives no word piece", tsv);
  expect_failure(&opt, ST_INVALID, want);

  /* Too long for seq_len 8 is found while writing: what was written goes. */
  write_text(tsv, "a\tthe\nb\tthe\nc\tthe\na\ta b c d e f g\n");
  snprintf(want, sizeof want, "%s:4: the text gives 7 word pieces, more than the 6", tsv);
  expect_failure(&opt, ST_INVALID, want);
  opt.truncate = 1;
  fixture_shard(&opt);
  manifest *m = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(manifest_read(f.out, &m, &err), ST_OK);
  CU_ASSERT_EQUAL(m->truncated, 1);
  manifest_free(m);
  harness_rmtree(f.out);
  opt.truncate = 0;

  write_text(jsonl, "{\"text\": \"the\", \"label\": 1}\n{\"text\": \"the\", \"label\": }\n");
  opt.inputs = (const char *const[]){jsonl};
  snprintf(want, sizeof want, "%s:2: not valid JSON", jsonl);
  expect_failure(&opt, ST_INVALID, want);

  opt = labelled_options(&f, MANIFEST_TASK_TAG, conll, 1, 8);
  write_text(conll, "the O\n\nthe O\nthe O\nabing\n");
  snprintf(want, sizeof want, "%s:5: one field \"abing\"", conll);
  expect_failure(&opt, ST_INVALID, want);
  write_text(conll, "the O\n\nabing B\nabing B\nthe O\n\nthe O\n");
  snprintf(want, sizeof want, "%s:3: sentence of 3 words gives 7 word pieces", conll);
  expect_failure(&opt, ST_INVALID, want);

  /* Options that do not fit the task, before anything is read. */
  opt.format = SHARD_FORMAT_TSV;
  expect_failure(&opt, ST_INVALID, "--task tag does not read --format tsv: use conll");
  opt = labelled_options(&f, MANIFEST_TASK_CLASSIFY, tsv, 1, 8);
  opt.valid_fraction = 0.1;
  opt.valid_inputs = (const char *const[]){tsv};
  opt.num_valid_inputs = 1;
  expect_failure(&opt, ST_INVALID, "give one of them");
  opt = fixture_options(&f, 1, 8);
  opt.labels_path = labels;
  expect_failure(&opt, ST_INVALID, "--labels is for labelled corpora");
  opt = labelled_options(&f, MANIFEST_TASK_CLASSIFY, "-", 1, 8);
  expect_failure(&opt, ST_INVALID, "standard input (-) cannot be an input here");

  static volatile sig_atomic_t stop = 1; /* as if Ctrl-C came at once */
  write_text(tsv, "a\tthe\n");
  opt = labelled_options(&f, MANIFEST_TASK_CLASSIFY, tsv, 1, 8);
  opt.stop = &stop;
  expect_failure(&opt, ST_INTERRUPTED, "interrupted");
  fixture_free(&f);
}

/* Replaces the first line of path holding needle with nothing. */
static void drop_line(const char *path, const char *needle) {
  char *text = NULL, *err = NULL;
  size_t len = 0;
  CU_ASSERT_EQUAL_FATAL(file_read_all(path, 1 << 20, &text, &len, &err), ST_OK);
  char *at = strstr(text, needle);
  CU_ASSERT_PTR_NOT_NULL_FATAL(at);
  while (at > text && at[-1] != '\n') at--;
  char *end = strchr(at, '\n') + 1;
  memmove(at, end, strlen(end) + 1);
  write_text(path, text);
  free(text);
}

static void test_pretraining_manifests_without_task_read_as_pretrain(void) {
  fixture f;
  fixture_init(&f, "lab-old", 40, 2);
  shard_options opt = fixture_options(&f, 1, 32);
  fixture_shard(&opt);
  char path[600];
  snprintf(path, sizeof path, "%s/%s", f.out, MANIFEST_FILE);
  manifest *m = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(manifest_read(f.out, &m, &err), ST_OK);
  CU_ASSERT(m->task == MANIFEST_TASK_PRETRAIN && m->num_labels == 0 && !m->labels);
  manifest_free(m);
  drop_line(path, "\"task\":"); /* as every manifest before labelled corpora */
  CU_ASSERT_EQUAL_FATAL(manifest_read(f.out, &m, &err), ST_OK);
  CU_ASSERT_EQUAL(m->task, MANIFEST_TASK_PRETRAIN);
  /* The records say what they are: pretraining records are no classify corpus. */
  shard_reader *r = NULL;
  uint64_t tokens = 0;
  CU_ASSERT_EQUAL_FATAL(shard_reader_open(f.out, m, &m->shards[0], &r, &err), ST_OK);
  m->task = MANIFEST_TASK_CLASSIFY;
  m->num_labels = 2;
  CU_ASSERT_EQUAL(shard_reader_verify(r, m, &tokens, &err), ST_CORRUPT);
  CU_ASSERT(err && strstr(err, "key 0: record is not a classify record"));
  free(err);
  shard_reader_close(r);
  manifest_free(m);
  fixture_free(&f);
}

static const harness_test tests[] = {
    {"test_classify_round_trip_through_leveldb", test_classify_round_trip_through_leveldb},
    {"test_valid_split_is_fixed_by_seed_or_by_file", test_valid_split_is_fixed_by_seed_or_by_file},
    {"test_two_ranks_of_b_read_what_one_rank_of_2b_reads_and_resume_is_exact",
     test_two_ranks_of_b_read_what_one_rank_of_2b_reads_and_resume_is_exact},
    {"test_tag_round_trip_aligns_tags_to_pieces", test_tag_round_trip_aligns_tags_to_pieces},
    {"test_labelled_errors_name_file_and_line_and_leave_no_corpus",
     test_labelled_errors_name_file_and_line_and_leave_no_corpus},
    {"test_pretraining_manifests_without_task_read_as_pretrain",
     test_pretraining_manifests_without_task_read_as_pretrain},
    {NULL, NULL},
};
const harness_suite corpus_labelled_shard_suite = {"labelled_shard", tests};
