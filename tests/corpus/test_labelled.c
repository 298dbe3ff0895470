/* corpus/labelled: TSV, JSON lines and CoNLL lines parsed or refused with
 * the reason, label sets in byte (or numeric) order or fixed by a file,
 * longest-first truncation as HuggingFace's, and tags aligned to the first
 * word piece (or to every piece). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus/labelled.h"
#include "corpus/record.h"
#include "corpus/vocab.h"
#include "harness.h"
#include "test_shard_fixture.h"
#include "util/status.h"

static int view_is(const char *s, size_t len, const char *want) {
  return s && len == strlen(want) && memcmp(s, want, len) == 0;
}

/* The message of a failed call, checked for needle, freed, *errp reset. */
static void expect_message(int rc, char **errp, const char *needle) {
  char *err = *errp;
  *errp = NULL;
  CU_ASSERT_EQUAL(rc, ST_INVALID);
  CU_ASSERT_PTR_NOT_NULL_FATAL(err);
  if (!strstr(err, needle)) fprintf(stderr, "message '%s' lacks '%s'\n", err, needle);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
  free(err);
}

static int tsv(const char *line, lab_example *ex, char **err) {
  return lab_parse_tsv(line, strlen(line), ex, err);
}

static void test_tsv_reads_single_texts_pairs_and_blank_lines(void) {
  lab_example ex;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(tsv("pos\tI liked it", &ex, &err), ST_OK);
  CU_ASSERT(!ex.blank && !ex.pair);
  CU_ASSERT(view_is(ex.label, ex.label_len, "pos"));
  CU_ASSERT(view_is(ex.text[0], ex.text_len[0], "I liked it"));
  CU_ASSERT_EQUAL_FATAL(tsv(" entail \tA man sleeps.\tSomeone rests.\r", &ex, &err), ST_OK);
  CU_ASSERT(ex.pair);
  CU_ASSERT(view_is(ex.label, ex.label_len, "entail")); /* whitespace around a label trimmed */
  CU_ASSERT(view_is(ex.text[0], ex.text_len[0], "A man sleeps."));
  CU_ASSERT(view_is(ex.text[1], ex.text_len[1], "Someone rests.")); /* the CR dropped */
  CU_ASSERT_EQUAL_FATAL(tsv("  \r", &ex, &err), ST_OK);
  CU_ASSERT(ex.blank);
}

static void test_tsv_refuses_malformed_lines_saying_why(void) {
  lab_example ex;
  char *err = NULL;
  expect_message(tsv("pos I liked it", &ex, &err), &err, "1 tab-separated field:");
  expect_message(tsv("pos\ta\tb\tc", &ex, &err), &err, "4 tab-separated fields");
  expect_message(tsv(" \tsome text", &ex, &err), &err, "empty label");
  expect_message(tsv("pos\t  ", &ex, &err), &err, "empty text");
  expect_message(tsv("pos\tfirst\t", &ex, &err), &err, "empty text_b");
}

static int jsonl(lab_jsonl *j, const char *line, lab_example *ex, char **err) {
  return lab_parse_jsonl(j, line, strlen(line), ex, err);
}

static void test_jsonl_reads_string_and_integer_labels_and_pairs(void) {
  lab_jsonl j = {0};
  lab_example ex;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(jsonl(&j, "{\"text\": \"caf\\u00e9 ok\", \"label\": \"pos\"}", &ex, &err),
                        ST_OK);
  CU_ASSERT(!ex.pair && view_is(ex.label, ex.label_len, "pos"));
  CU_ASSERT(view_is(ex.text[0], ex.text_len[0], "caf\xc3\xa9 ok")); /* escapes decoded */
  CU_ASSERT_EQUAL_FATAL(jsonl(&j, "{\"idx\": 7, \"text\": \"a\", \"text_b\": \"b\", \"label\": 2}",
                              &ex, &err), ST_OK);
  CU_ASSERT(ex.pair && view_is(ex.text[1], ex.text_len[1], "b"));
  CU_ASSERT(view_is(ex.label, ex.label_len, "2")); /* an integer names the label "2" */
  CU_ASSERT_EQUAL_FATAL(jsonl(&j, "{\"text\": \"a\", \"text_b\": null, \"label\": -1}  \r", &ex,
                              &err), ST_OK);
  CU_ASSERT(!ex.pair && view_is(ex.label, ex.label_len, "-1"));
  CU_ASSERT_EQUAL_FATAL(jsonl(&j, "", &ex, &err), ST_OK);
  CU_ASSERT(ex.blank);
  lab_jsonl_free(&j);
}

static void test_jsonl_refuses_bad_lines_saying_why(void) {
  lab_jsonl j = {0};
  lab_example ex;
  static const char *const cases[][2] = {
      {"{\"text\": \"a\", \"label\": ", "not valid JSON"},
      {"[\"a\", 1]", "not a JSON object"},
      {"{\"text\": \"a\", \"label\": 1} {}", "text after the JSON value"},
      {"{\"label\": \"pos\"}", "\"text\" is missing"},
      {"{\"text\": 5, \"label\": \"pos\"}", "\"text\" is not a string"},
      {"{\"text\": \" \", \"label\": \"pos\"}", "\"text\" is empty"},
      {"{\"text\": \"a\", \"text_b\": \"\", \"label\": \"pos\"}", "\"text_b\" is empty"},
      {"{\"text\": \"a\", \"label\": 1.5}", "\"label\" 1.5 is not an integer"},
      {"{\"text\": \"a\", \"label\": true}", "\"label\" is neither a string nor a number"},
      {"{\"text\": \"a\"}", "\"label\" is missing"},
      {"{\"text\": \"a\", \"label\": \"\"}", "\"label\" is empty"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char *err = NULL;
    expect_message(jsonl(&j, cases[i][0], &ex, &err), &err, cases[i][1]);
  }
  lab_jsonl_free(&j);
  CU_ASSERT_EQUAL(lab_detect_format("dev.jsonl"), SHARD_FORMAT_JSONL);
  CU_ASSERT_EQUAL(lab_detect_format("dir/train.json"), SHARD_FORMAT_JSONL);
  CU_ASSERT_EQUAL(lab_detect_format("train.tsv"), SHARD_FORMAT_TSV);
  CU_ASSERT_EQUAL(lab_detect_format("json"), SHARD_FORMAT_TSV);
}

static int conll(const char *line, lab_conll_line *c, char **err) {
  return lab_parse_conll(line, strlen(line), c, err);
}

static void test_conll_takes_the_first_column_as_word_and_the_last_as_tag(void) {
  lab_conll_line c;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(conll("EU NNP B-NP B-ORG", &c, &err), ST_OK);
  CU_ASSERT_EQUAL(c.kind, LAB_CONLL_WORD);
  CU_ASSERT(view_is(c.word, c.word_len, "EU") && view_is(c.tag, c.tag_len, "B-ORG"));
  CU_ASSERT_EQUAL_FATAL(conll("\xe4\xb8\xad\tB\r", &c, &err), ST_OK);
  CU_ASSERT(view_is(c.word, c.word_len, "\xe4\xb8\xad") && view_is(c.tag, c.tag_len, "B"));
  CU_ASSERT_EQUAL_FATAL(conll(" \t ", &c, &err), ST_OK);
  CU_ASSERT_EQUAL(c.kind, LAB_CONLL_BREAK);
  CU_ASSERT_EQUAL_FATAL(conll("-DOCSTART- -X- -X- O", &c, &err), ST_OK);
  CU_ASSERT_EQUAL(c.kind, LAB_CONLL_DOCSTART);
  expect_message(conll("lonely  ", &c, &err), &err, "one field \"lonely\"");
}

static void add_all(lab_labels *l, const char *const *names, size_t n) {
  char *err = NULL;
  for (size_t i = 0; i < n; i++)
    CU_ASSERT_EQUAL(lab_labels_add(l, names[i], strlen(names[i]), &err), ST_OK);
}

static void expect_order(const lab_labels *l, const char *const *want, size_t n) {
  CU_ASSERT_EQUAL_FATAL(l->n, n);
  for (size_t i = 0; i < n; i++) {
    CU_ASSERT_STRING_EQUAL(l->names[i], want[i]);
    CU_ASSERT_EQUAL(lab_labels_find(l, want[i], strlen(want[i])), (int32_t)i);
  }
}

static void test_label_set_sorts_by_bytes_or_integers_by_value(void) {
  lab_labels l = {0};
  const char *words[] = {"b", "\xc3\xa9", "a", "B", "b", "a"};
  add_all(&l, words, 6);
  lab_labels_sort(&l);
  const char *bytes[] = {"B", "a", "b", "\xc3\xa9"};
  expect_order(&l, bytes, 4);
  CU_ASSERT_EQUAL(lab_labels_find(&l, "c", 1), -1);
  lab_labels_free(&l);

  const char *ints[] = {"10", "2", "-1", "0", "-12", "2"};
  add_all(&l, ints, 6);
  lab_labels_sort(&l);
  const char *by_value[] = {"-12", "-1", "0", "2", "10"};
  expect_order(&l, by_value, 5);
  lab_labels_free(&l);

  const char *mixed[] = {"10", "2", "02"}; /* "02" is no integer's text: byte order */
  add_all(&l, mixed, 3);
  lab_labels_sort(&l);
  const char *mixed_order[] = {"02", "10", "2"};
  expect_order(&l, mixed_order, 3);
  char *err = NULL;
  expect_message(lab_labels_add(&l, "\xff", 1, &err), &err, "is not UTF-8 text");
  lab_labels_free(&l);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text, f);
  fclose(f);
}

static void test_label_file_fixes_ids_and_names_bad_lines(void) {
  char *root = harness_tmpdir("labels");
  char path[512];
  snprintf(path, sizeof path, "%s/labels.txt", root);
  write_file(path, "O\nB-PER\n I-PER \r\n");
  lab_labels l = {0};
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(lab_labels_load(&l, path, &err), ST_OK);
  const char *want[] = {"O", "B-PER", "I-PER"}; /* the file's order, not sorted */
  expect_order(&l, want, 3);
  CU_ASSERT(l.fixed);
  lab_labels_free(&l);
  char where[600];
  write_file(path, "O\nB-PER\nO\n");
  snprintf(where, sizeof where, "%s:3: label \"O\" again (first on line 1)", path);
  expect_message(lab_labels_load(&l, path, &err), &err, where);
  lab_labels_free(&l);
  write_file(path, "O\n\nB\n");
  snprintf(where, sizeof where, "%s:2: empty line", path);
  expect_message(lab_labels_load(&l, path, &err), &err, where);
  lab_labels_free(&l);
  harness_rmtree(root);
  free(root);
}

static const int32_t A[] = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
static const int32_t B[] = {20, 21, 22, 23, 24};

static void test_build_example_truncates_longest_first_as_huggingface(void) {
  lab_seq_config c = {.seq_len = 8, .truncate = 1, .cls_id = 2, .sep_id = 3, .unk_id = 1};
  int32_t ids[8];
  size_t n, split;
  int truncated;
  char *err = NULL;
  /* 5 + 5 pieces, room for 5: HuggingFace's longest_first keeps 3 + 2 (a
   * tie takes from b first). */
  CU_ASSERT_EQUAL_FATAL(lab_build_example(&c, A, 5, B, 5, 1, ids, &n, &split, &truncated, &err),
                        ST_OK);
  const int32_t want[] = {2, 10, 11, 12, 3, 20, 21, 3};
  CU_ASSERT(truncated && n == 8 && split == 5);
  CU_ASSERT_EQUAL(memcmp(ids, want, sizeof want), 0);
  /* 10 + 1: the longer loses everything over the shorter first: 4 + 1. */
  CU_ASSERT_EQUAL_FATAL(lab_build_example(&c, A, 10, B, 1, 1, ids, &n, &split, &truncated, &err),
                        ST_OK);
  const int32_t want2[] = {2, 10, 11, 12, 13, 3, 20, 3};
  CU_ASSERT(n == 8 && split == 6 && memcmp(ids, want2, sizeof want2) == 0);
  /* A single text keeps its first seq_len - 2 pieces. */
  CU_ASSERT_EQUAL_FATAL(lab_build_example(&c, A, 10, NULL, 0, 0, ids, &n, &split, &truncated,
                                          &err), ST_OK);
  CU_ASSERT(truncated && n == 8 && split == 8 && ids[6] == 15 && ids[7] == 3);
  /* What fits is left alone. */
  CU_ASSERT_EQUAL_FATAL(lab_build_example(&c, A, 3, B, 2, 1, ids, &n, &split, &truncated, &err),
                        ST_OK);
  CU_ASSERT(!truncated && n == 8);
  c.truncate = 0;
  expect_message(lab_build_example(&c, A, 5, B, 1, 1, ids, &n, &split, &truncated, &err), &err,
                 "the pair gives 6 word pieces, more than the 5 that fit in --seq-len 8: use "
                 "--truncate");
}

static void test_sentence_tags_first_pieces_or_all_pieces(void) {
  fixture f;
  fixture_init(&f, "lab-sent", 1, 1);
  tok_vocab *v = NULL;
  tokenizer *t = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(tok_vocab_load(f.vocab, &v, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(tok_create(v, 1, &t, &err), ST_OK);
  int32_t the = tok_vocab_find(v, "the", 3), a = tok_vocab_find(v, "a", 1);
  int32_t hb = tok_vocab_find_cont(v, "b", 1), ing = tok_vocab_find_cont(v, "ing", 3);
  for (int all = 0; all <= 1; all++) {
    lab_seq_config c = {.seq_len = 16, .label_all_pieces = all, .cls_id = 2, .sep_id = 3,
                        .unk_id = 1};
    lab_sentence s = {0};
    tok_stats st = {0};
    /* "The" -> the; "abing" -> a ##b ##ing; "\x01" -> no piece: [UNK]. */
    CU_ASSERT_EQUAL(lab_sentence_add_word(&s, &c, t, "The", 3, 4, &st, &err), ST_OK);
    CU_ASSERT_EQUAL(lab_sentence_add_word(&s, &c, t, "abing", 5, 5, &st, &err), ST_OK);
    CU_ASSERT_EQUAL(lab_sentence_add_word(&s, &c, t, "\x01", 1, 6, &st, &err), ST_OK);
    CU_ASSERT_EQUAL(lab_sentence_add_word(&s, &c, t, "a", 1, 0, &st, &err), ST_OK);
    int32_t ids[16], tags[16];
    size_t n;
    int truncated;
    CU_ASSERT_EQUAL_FATAL(lab_sentence_finish(&s, &c, ids, tags, &n, &truncated, &err), ST_OK);
    const int32_t want_ids[] = {2, the, a, hb, ing, 1, a, 3};
    const int32_t I = RECORD_IGNORE_LABEL;
    const int32_t first[] = {I, 4, 5, I, I, 6, 0, I}, every[] = {I, 4, 5, 5, 5, 6, 0, I};
    CU_ASSERT_EQUAL_FATAL(n, 8);
    CU_ASSERT(!truncated);
    CU_ASSERT_EQUAL(memcmp(ids, want_ids, sizeof want_ids), 0);
    CU_ASSERT_EQUAL(memcmp(tags, all ? every : first, sizeof first), 0);
    CU_ASSERT_EQUAL(st.unk, 1);
    CU_ASSERT(s.words == 0 && s.pieces.len == 0); /* ready for the next sentence */
    /* 7 pieces where 6 fit (seq_len 8): refused, or cut with truncate. */
    c.seq_len = 8;
    for (int k = 0; k < 3; k++) lab_sentence_add_word(&s, &c, t, "abing", 5, 5, &st, &err);
    expect_message(lab_sentence_finish(&s, &c, ids, tags, &n, &truncated, &err), &err,
                   "sentence of 3 words gives 9 word pieces, more than the 6 that fit");
    c.truncate = 1;
    CU_ASSERT_EQUAL(lab_sentence_finish(&s, &c, ids, tags, &n, &truncated, &err), ST_OK);
    CU_ASSERT(truncated && n == 8 && ids[7] == 3 && tags[7] == I && ids[6] == ing);
    lab_sentence_free(&s);
  }
  tok_free(t);
  tok_vocab_free(v);
  fixture_free(&f);
}

static const harness_test tests[] = {
    {"test_tsv_reads_single_texts_pairs_and_blank_lines",
     test_tsv_reads_single_texts_pairs_and_blank_lines},
    {"test_tsv_refuses_malformed_lines_saying_why", test_tsv_refuses_malformed_lines_saying_why},
    {"test_jsonl_reads_string_and_integer_labels_and_pairs",
     test_jsonl_reads_string_and_integer_labels_and_pairs},
    {"test_jsonl_refuses_bad_lines_saying_why", test_jsonl_refuses_bad_lines_saying_why},
    {"test_conll_takes_the_first_column_as_word_and_the_last_as_tag",
     test_conll_takes_the_first_column_as_word_and_the_last_as_tag},
    {"test_label_set_sorts_by_bytes_or_integers_by_value",
     test_label_set_sorts_by_bytes_or_integers_by_value},
    {"test_label_file_fixes_ids_and_names_bad_lines",
     test_label_file_fixes_ids_and_names_bad_lines},
    {"test_build_example_truncates_longest_first_as_huggingface",
     test_build_example_truncates_longest_first_as_huggingface},
    {"test_sentence_tags_first_pieces_or_all_pieces",
     test_sentence_tags_first_pieces_or_all_pieces},
    {NULL, NULL},
};
const harness_suite corpus_labelled_suite = {"labelled", tests};
