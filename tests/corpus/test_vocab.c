/* corpus/vocab and the vocab trainer: vocab.txt loading (ids, line ends,
 * every bad file with its one-line error), training (layout, [UNK] rate,
 * determinism), and the `ddpt tokenize` / `ddpt vocab` commands' failures:
 * a clear line, a non-zero exit, no partial output file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corpus/tokenizer.h"
#include "corpus/vocab.h"
#include "corpus/vocab_train.h"
#include "harness.h"
#include "util/status.h"

static char *write_file(const char *dir, const char *name, const char *data, size_t len) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *path = malloc(n);
  snprintf(path, n, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  fwrite(data, 1, len, f);
  fclose(f);
  return path;
}

static int load_error(const char *data, size_t len, int *code, char **msg) {
  char *dir = harness_tmpdir("vocab");
  char *path = write_file(dir, "vocab.txt", data, len);
  tok_vocab *v = NULL;
  *msg = NULL;
  *code = tok_vocab_load(path, &v, msg);
  tok_vocab_free(v);
  free(path);
  harness_rmtree(dir);
  free(dir);
  return *code;
}

static void test_ids_are_line_numbers_with_lf_crlf_and_cr(void) {
  char *dir = harness_tmpdir("vocab");
  static const char data[] = "a\r\nb\n##c\r[UNK]\n";
  char *path = write_file(dir, "vocab.txt", data, sizeof data - 1);
  tok_vocab *v = NULL;
  CU_ASSERT_EQUAL_FATAL(tok_vocab_load(path, &v, NULL), ST_OK);
  CU_ASSERT_EQUAL(tok_vocab_size(v), 4);
  CU_ASSERT_EQUAL(tok_vocab_find(v, "a", 1), 0);
  CU_ASSERT_EQUAL(tok_vocab_find(v, "b", 1), 1);
  CU_ASSERT_EQUAL(tok_vocab_find(v, "##c", 3), 2);
  CU_ASSERT_EQUAL(tok_vocab_find_cont(v, "c", 1), 2);
  CU_ASSERT_EQUAL(tok_vocab_find_cont(v, "a", 1), -1);
  CU_ASSERT_EQUAL(tok_vocab_find(v, "c", 1), -1);
  CU_ASSERT_EQUAL(tok_vocab_find(v, "[UNK]", 5), 3);
  CU_ASSERT_STRING_EQUAL(tok_vocab_token(v, 2), "##c");
  /* sha256sum of the same 17 bytes, computed outside ddpt. */
  CU_ASSERT_STRING_EQUAL(tok_vocab_sha256_hex(v),
                         "7565d987650d5d06af872c1cb2e90c983ba312575f400633da3cbb1898c939de");
  tok_vocab_free(v);
  tok_vocab_free(NULL);
  free(path);
  harness_rmtree(dir);
  free(dir);
}

static void test_missing_vocab_is_an_io_error_naming_the_file(void) {
  tok_vocab *v = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL(tok_vocab_load("/nonexistent/vocab.txt", &v, &err), ST_IO);
  CU_ASSERT_PTR_NOT_NULL_FATAL(err);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/vocab.txt"));
  CU_ASSERT_PTR_NULL(strchr(err, '\n'));
  free(err);
}

static void test_empty_vocab_is_rejected(void) {
  int code;
  char *msg;
  load_error("", 0, &code, &msg);
  CU_ASSERT_EQUAL(code, ST_INVALID);
  CU_ASSERT(msg && strstr(msg, "empty"));
  free(msg);
}

static void test_vocab_without_unk_is_rejected(void) {
  int code;
  char *msg;
  load_error("[PAD]\nhello\n", 12, &code, &msg);
  CU_ASSERT_EQUAL(code, ST_INVALID);
  CU_ASSERT(msg && strstr(msg, "[UNK]"));
  free(msg);
}

static void test_duplicate_lines_are_rejected_with_both_line_numbers(void) {
  int code;
  char *msg;
  static const char data[] = "[UNK]\nfoo\n##bar\nbaz\n##bar\n";
  load_error(data, sizeof data - 1, &code, &msg);
  CU_ASSERT_EQUAL(code, ST_INVALID);
  CU_ASSERT(msg && strstr(msg, "lines 3 and 5"));
  free(msg);
}

static void test_invalid_utf8_and_overlong_lines_are_rejected(void) {
  int code;
  char *msg;
  load_error("[UNK]\nab\xff\n", 10, &code, &msg);
  CU_ASSERT_EQUAL(code, ST_INVALID);
  CU_ASSERT(msg && strstr(msg, "line 2"));
  free(msg);
  char big[TOK_VOCAB_MAX_TOKEN + 20];
  memcpy(big, "[UNK]\n", 6);
  memset(big + 6, 'x', sizeof big - 6);
  load_error(big, sizeof big, &code, &msg);
  CU_ASSERT_EQUAL(code, ST_INVALID);
  CU_ASSERT(msg && strstr(msg, "line 2"));
  free(msg);
}

/* ---------------------------------------------------------------- training */

static const char train_text[] =
    "the quick brown fox jumps over the lazy dog\n"
    "the quicker browner foxes jumped over the lazier dogs\n"
    "深度学习模型，深度学习！BERT模型2019年\n"
    "Café naïve café naive\n";

static tok_vocab_trainer *trained(int lowercase, size_t size, const char *const **tokens,
                                  size_t *n, tok_vocab_summary *sum) {
  tok_vocab_trainer *tr = NULL;
  CU_ASSERT_EQUAL_FATAL(tok_vocab_trainer_create(lowercase, &tr, NULL), ST_OK);
  for (int i = 0; i < 3; i++)
    CU_ASSERT_EQUAL(tok_vocab_trainer_add(tr, train_text, sizeof train_text - 1, NULL), ST_OK);
  CU_ASSERT_EQUAL_FATAL(tok_vocab_trainer_train(tr, size, 1, tokens, n, sum, NULL), ST_OK);
  return tr;
}

static int has_token(const char *const *tokens, size_t n, const char *t) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(tokens[i], t) == 0) return 1;
  return 0;
}

static void test_trained_vocab_starts_with_specials_and_holds_every_character(void) {
  const char *const *tok;
  size_t n;
  tok_vocab_summary sum;
  tok_vocab_trainer *tr = trained(1, 200, &tok, &n, &sum);
  static const char *const specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  CU_ASSERT_FATAL(n >= 5);
  for (int i = 0; i < 5; i++) CU_ASSERT_STRING_EQUAL(tok[i], specials[i]);
  /* Characters (lowercased, accents stripped), "##" forms except for CJK
   * ideographs and punctuation, which never occur inside a word. */
  CU_ASSERT(has_token(tok, n, "q") && has_token(tok, n, "##q"));
  CU_ASSERT(has_token(tok, n, "z") && has_token(tok, n, "##z"));
  CU_ASSERT(has_token(tok, n, "深") && !has_token(tok, n, "##深"));
  CU_ASSERT(has_token(tok, n, "，") && !has_token(tok, n, "##，"));
  CU_ASSERT(!has_token(tok, n, "é") && !has_token(tok, n, "C"));
  /* Frequent words are learned as whole pieces. */
  CU_ASSERT(has_token(tok, n, "the"));
  CU_ASSERT(has_token(tok, n, "over"));
  CU_ASSERT(n <= 200);
  CU_ASSERT_EQUAL(n, sum.specials + sum.chars + sum.cont_chars + sum.merges);
  tok_vocab_trainer_free(tr);
}

static void test_trained_vocab_leaves_no_unk_on_its_training_text(void) {
  const char *const *tok;
  size_t n;
  tok_vocab_summary sum;
  tok_vocab_trainer *tr = trained(0, 120, &tok, &n, &sum);
  char *dir = harness_tmpdir("vocab");
  size_t len = 0;
  for (size_t i = 0; i < n; i++) len += strlen(tok[i]) + 1;
  char *data = malloc(len + 1), *p = data;
  for (size_t i = 0; i < n; i++) p += sprintf(p, "%s\n", tok[i]);
  char *path = write_file(dir, "vocab.txt", data, len);
  tok_vocab *v = NULL;
  CU_ASSERT_EQUAL_FATAL(tok_vocab_load(path, &v, NULL), ST_OK);
  tokenizer *t = NULL;
  CU_ASSERT_EQUAL_FATAL(tok_create(v, 0, &t, NULL), ST_OK);
  tok_ids ids = {0};
  tok_stats st = {0};
  CU_ASSERT_EQUAL(tok_encode(t, train_text, sizeof train_text - 1, &ids, &st, NULL), ST_OK);
  CU_ASSERT(st.tokens > 20);
  CU_ASSERT_EQUAL(st.unk, 0);
  tok_ids_free(&ids);
  tok_free(t);
  tok_vocab_free(v);
  free(data);
  free(path);
  harness_rmtree(dir);
  free(dir);
  tok_vocab_trainer_free(tr);
}

static void test_training_twice_gives_the_same_vocab(void) {
  const char *const *a, *const *b;
  size_t na, nb;
  tok_vocab_summary sum;
  tok_vocab_trainer *ta = trained(1, 150, &a, &na, &sum);
  tok_vocab_trainer *tb = trained(1, 150, &b, &nb, &sum);
  CU_ASSERT_EQUAL_FATAL(na, nb);
  for (size_t i = 0; i < na; i++) CU_ASSERT_STRING_EQUAL(a[i], b[i]);
  tok_vocab_trainer_free(ta);
  tok_vocab_trainer_free(tb);
}

static void test_size_below_the_alphabet_is_an_error(void) {
  tok_vocab_trainer *tr = NULL;
  CU_ASSERT_EQUAL_FATAL(tok_vocab_trainer_create(1, &tr, NULL), ST_OK);
  CU_ASSERT_EQUAL(tok_vocab_trainer_add(tr, train_text, sizeof train_text - 1, NULL), ST_OK);
  const char *const *tok;
  size_t n;
  char *err = NULL;
  CU_ASSERT_EQUAL(tok_vocab_trainer_train(tr, 10, 1, &tok, &n, NULL, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "--size"));
  free(err);
  tok_vocab_trainer_free(tr);
}

/* ------------------------------------------------------------ the commands */

static int run_ddpt(const char *args, char **out) {
  char cmd[32768];
  snprintf(cmd, sizeof cmd, "%s %s", harness_ddpt_bin(), args);
  return harness_run_capture(cmd, 1, out);
}

static int one_line_naming(const char *out, const char *name) {
  const char *nl = strchr(out, '\n');
  return strstr(out, name) != NULL && nl && nl[1] == '\0';
}

static void test_tokenize_bad_vocab_files_fail_with_one_line(void) {
  char *dir = harness_tmpdir("tokcli");
  char *in = write_file(dir, "in.txt", "hello\n", 6);
  char *empty = write_file(dir, "empty.txt", "", 0);
  char *nounk = write_file(dir, "nounk.txt", "hello\n", 6);
  char *dup = write_file(dir, "dup.txt", "[UNK]\nhello\nhello\n", 18);
  const char *bad[] = {"/nonexistent/v.txt", empty, nounk, dup};
  for (int i = 0; i < 4; i++) {
    char args[16384], *out = NULL;
    snprintf(args, sizeof args, "tokenize --vocab %s --out %s/out.txt %s", bad[i], dir, in);
    CU_ASSERT_EQUAL(run_ddpt(args, &out), 1);
    CU_ASSERT(one_line_naming(out, bad[i]));
    /* Say what came instead: a sanitizer's report under load, or a
     * second line from ddpt, look alike to the assertion. */
    if (!one_line_naming(out, bad[i])) fprintf(stderr, "tokenize --vocab %s printed:\n%s\n", bad[i], out);
    free(out);
    snprintf(args, sizeof args, "%s/out.txt", dir);
    CU_ASSERT_NOT_EQUAL(access(args, F_OK), 0);
  }
  free(in), free(empty), free(nounk), free(dup);
  harness_rmtree(dir);
  free(dir);
}

static void test_tokenize_50mb_line_and_unreadable_input_leave_no_output(void) {
  char *dir = harness_tmpdir("tokcli");
  char *vocab = write_file(dir, "vocab.txt", "[UNK]\na\n##a\n", 12);
  size_t big = (size_t)50 << 20;
  char *line = malloc(big);
  memset(line, 'a', big);
  memcpy(line, "a a\n", 4);
  char *huge = write_file(dir, "huge.txt", line, big);
  free(line);
  char args[16384], out_path[2048], *out = NULL;
  snprintf(out_path, sizeof out_path, "%s/out.txt", dir);
  snprintf(args, sizeof args, "tokenize --vocab %s --out %s %s", vocab, out_path, huge);
  CU_ASSERT_EQUAL(run_ddpt(args, &out), 1);
  CU_ASSERT(one_line_naming(out, huge));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "line 2"));
  free(out);
  CU_ASSERT_NOT_EQUAL(access(out_path, F_OK), 0);
  snprintf(args, sizeof args, "tokenize --vocab %s --out %s %s", vocab, out_path, dir);
  CU_ASSERT_EQUAL(run_ddpt(args, &out), 1);
  CU_ASSERT(one_line_naming(out, dir));
  free(out);
  CU_ASSERT_NOT_EQUAL(access(out_path, F_OK), 0);
  free(vocab), free(huge);
  harness_rmtree(dir);
  free(dir);
}

static void test_tokenize_keeps_one_output_line_per_input_line(void) {
  char *dir = harness_tmpdir("tokcli");
  char *vocab = write_file(dir, "vocab.txt", "[PAD]\n[UNK]\nhi\n", 15);
  static const char text[] = "hi\n\n \x00\xff\nHi there\nhi";
  char *in = write_file(dir, "in.txt", text, sizeof text - 1);
  char args[16384], *out = NULL;
  snprintf(args, sizeof args, "tokenize --vocab %s %s", vocab, in);
  CU_ASSERT_EQUAL(run_ddpt(args, &out), 0);
  CU_ASSERT_STRING_EQUAL(out, "hi\n\n\nhi [UNK]\nhi\n");
  free(out);
  snprintf(args, sizeof args, "tokenize --cased --ids --vocab %s < %s", vocab, in);
  CU_ASSERT_EQUAL(run_ddpt(args, &out), 0);
  CU_ASSERT_STRING_EQUAL(out, "2\n\n\n1 1\n2\n");
  free(out);
  free(vocab), free(in);
  harness_rmtree(dir);
  free(dir);
}

static void test_vocab_command_writes_a_loadable_vocab_and_fails_cleanly(void) {
  char *dir = harness_tmpdir("vocabcli");
  char sub[2048];
  snprintf(sub, sizeof sub, "%s/texts", dir);
  CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0755), 0);
  free(write_file(sub, "a.txt", train_text, sizeof train_text - 1));
  char args[16384], out_path[2048], *out = NULL;
  snprintf(out_path, sizeof out_path, "%s/vocab.txt", dir);
  snprintf(args, sizeof args, "vocab --size 100 --out %s %s", out_path, sub);
  CU_ASSERT_EQUAL(run_ddpt(args, &out), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "[UNK] is 0.0000%"));
  free(out);
  tok_vocab *v = NULL;
  CU_ASSERT_EQUAL(tok_vocab_load(out_path, &v, NULL), ST_OK);
  if (v) CU_ASSERT_STRING_EQUAL(tok_vocab_token(v, 4), "[MASK]");
  tok_vocab_free(v);
  /* A failed run leaves the old vocab as it was, and no temporary beside it. */
  char *before = NULL, *after = NULL, ls[4096];
  snprintf(ls, sizeof ls, "cat %s", out_path);
  CU_ASSERT_EQUAL(harness_run_capture(ls, 0, &before), 0);
  snprintf(args, sizeof args, "vocab --size 8 --out %s %s", out_path, sub);
  CU_ASSERT_EQUAL(run_ddpt(args, &out), 1);
  free(out);
  CU_ASSERT_EQUAL(harness_run_capture(ls, 0, &after), 0);
  CU_ASSERT_STRING_EQUAL(before, after);
  free(before), free(after);
  snprintf(ls, sizeof ls, "ls -A %s", dir);
  CU_ASSERT_EQUAL(harness_run_capture(ls, 0, &out), 0);
  CU_ASSERT_STRING_EQUAL(out, "texts\nvocab.txt\n");
  free(out);
  remove(out_path);
  /* Too small for the alphabet, and an unreadable input: no file. */
  snprintf(args, sizeof args, "vocab --size 8 --out %s %s", out_path, sub);
  CU_ASSERT_EQUAL(run_ddpt(args, &out), 1);
  CU_ASSERT(one_line_naming(out, "--size"));
  free(out);
  snprintf(args, sizeof args, "vocab --size 100 --out %s %s/missing.txt", out_path, dir);
  CU_ASSERT_EQUAL(run_ddpt(args, &out), 1);
  CU_ASSERT(one_line_naming(out, "missing.txt"));
  free(out);
  CU_ASSERT_NOT_EQUAL(access(out_path, F_OK), 0);
  harness_rmtree(dir);
  free(dir);
}

static const harness_test tests[] = {
    {"test_ids_are_line_numbers_with_lf_crlf_and_cr", test_ids_are_line_numbers_with_lf_crlf_and_cr},
    {"test_missing_vocab_is_an_io_error_naming_the_file", test_missing_vocab_is_an_io_error_naming_the_file},
    {"test_empty_vocab_is_rejected", test_empty_vocab_is_rejected},
    {"test_vocab_without_unk_is_rejected", test_vocab_without_unk_is_rejected},
    {"test_duplicate_lines_are_rejected_with_both_line_numbers",
     test_duplicate_lines_are_rejected_with_both_line_numbers},
    {"test_invalid_utf8_and_overlong_lines_are_rejected", test_invalid_utf8_and_overlong_lines_are_rejected},
    {"test_trained_vocab_starts_with_specials_and_holds_every_character",
     test_trained_vocab_starts_with_specials_and_holds_every_character},
    {"test_trained_vocab_leaves_no_unk_on_its_training_text",
     test_trained_vocab_leaves_no_unk_on_its_training_text},
    {"test_training_twice_gives_the_same_vocab", test_training_twice_gives_the_same_vocab},
    {"test_size_below_the_alphabet_is_an_error", test_size_below_the_alphabet_is_an_error},
    {"test_tokenize_bad_vocab_files_fail_with_one_line", test_tokenize_bad_vocab_files_fail_with_one_line},
    {"test_tokenize_50mb_line_and_unreadable_input_leave_no_output",
     test_tokenize_50mb_line_and_unreadable_input_leave_no_output},
    {"test_tokenize_keeps_one_output_line_per_input_line",
     test_tokenize_keeps_one_output_line_per_input_line},
    {"test_vocab_command_writes_a_loadable_vocab_and_fails_cleanly",
     test_vocab_command_writes_a_loadable_vocab_and_fails_cleanly},
    {NULL, NULL},
};
const harness_suite corpus_vocab_suite = {"vocab", tests};
