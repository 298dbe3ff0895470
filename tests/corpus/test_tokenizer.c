/* corpus/tokenizer: the rules of BERT's FullTokenizer one by one, on inputs
 * a user meets. Every expected output is written by hand from the rules in
 * docs/tokenizer.md (and tokenization.py), not produced by the code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus/tokenizer.h"
#include "corpus/vocab.h"
#include "harness.h"

/* A vocab made of the given lines, written to a temporary file and loaded. */
static tok_vocab *vocab_of(const char *const *lines) {
  char *dir = harness_tmpdir("tokvocab");
  char path[4096];
  snprintf(path, sizeof path, "%s/vocab.txt", dir);
  FILE *f = fopen(path, "wb");
  for (const char *const *l = lines; *l; l++) fprintf(f, "%s\n", *l);
  fclose(f);
  tok_vocab *v = NULL;
  char *err = NULL;
  int rc = tok_vocab_load(path, &v, &err);
  if (rc != 0) fprintf(stderr, "vocab_of: %s\n", err);
  free(err);
  harness_rmtree(dir);
  free(dir);
  return v;
}

/* The tokens of len bytes of text, joined by single spaces (malloc'd). */
static char *tokens_of(const tok_vocab *v, int lowercase, const char *text, size_t len,
                       tok_stats *stats) {
  tokenizer *t = NULL;
  tok_ids ids = {0};
  CU_ASSERT_EQUAL_FATAL(tok_create(v, lowercase, &t, NULL), 0);
  CU_ASSERT_EQUAL_FATAL(tok_encode(t, text, len, &ids, stats, NULL), 0);
  size_t cap = 16;
  for (size_t i = 0; i < ids.len; i++) cap += strlen(tok_vocab_token(v, ids.ids[i])) + 1;
  char *out = malloc(cap);
  out[0] = '\0';
  for (size_t i = 0; i < ids.len; i++) {
    if (i) strcat(out, " ");
    strcat(out, tok_vocab_token(v, ids.ids[i]));
  }
  tok_ids_free(&ids);
  tok_free(t);
  return out;
}

#define ASSERT_TOKENS(v, lower, text, expected)                                 \
  do {                                                                         \
    char *got_ = tokens_of((v), (lower), (text), strlen(text), NULL);          \
    if (strcmp(got_, (expected)) != 0)                                         \
      fprintf(stderr, "\n  input %s\n  got      [%s]\n  expected [%s]\n", #text, got_, (expected)); \
    CU_ASSERT_STRING_EQUAL(got_, (expected));                                  \
    free(got_);                                                                \
  } while (0)

static const char *const base_vocab[] = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "cafe", "naive", "Café", "naïve", "istanbul",
    "İstanbul", "οδος", "σα", "σ", ".", "，", "！", "你", "好", "世", "界", "❤", "😀", "i", "bert",
    "BERT", "模", "型", "2019", "20", "##19", "年", "[", "31", "##m", "##red", "0", "zero",
    "##width", "a", "##a", "b", "##b", "c", "d", "##d", "un", "##aff", "##able", "$", "^", "`", "a¥b", "𠀀",
    "𠀁", "한국어", "\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab", "한", "x", "y", "ς", NULL};

static void test_accents_are_stripped_only_when_lowercasing(void) {
  tok_vocab *v = vocab_of(base_vocab);
  ASSERT_TOKENS(v, 1, "Café naïve", "cafe naive");
  /* Decomposed input (e + U+0301) lowercases and strips the same way. */
  ASSERT_TOKENS(v, 1, "Cafe\xcc\x81", "cafe");
  ASSERT_TOKENS(v, 0, "Café naïve", "Café naïve");
  ASSERT_TOKENS(v, 0, "cafe naive", "cafe naive");
  tok_vocab_free(v);
}

static void test_turkish_dotted_capital_i_lowercases_to_i(void) {
  tok_vocab *v = vocab_of(base_vocab);
  /* str.lower() gives i + U+0307 (full case mapping); U+0307 is Mn. */
  ASSERT_TOKENS(v, 1, "İstanbul", "istanbul");
  ASSERT_TOKENS(v, 0, "İstanbul", "İstanbul");
  tok_vocab_free(v);
}

static void test_capital_sigma_lowercases_to_final_sigma_at_word_end(void) {
  tok_vocab *v = vocab_of(base_vocab);
  ASSERT_TOKENS(v, 1, "ΟΔΟΣ", "οδος");
  ASSERT_TOKENS(v, 1, "ΣΑ", "σα");
  /* Nothing cased before it: not final. */
  ASSERT_TOKENS(v, 1, "Σ", "σ");
  /* '.' is case-ignorable, so the Σ is still at the end of the word; the
   * punctuation split happens after lowercasing. */
  ASSERT_TOKENS(v, 1, "ΟΔΟΣ.", "οδος .");
  tok_vocab_free(v);
}

static void test_full_width_punctuation_and_cjk_are_split(void) {
  tok_vocab *v = vocab_of(base_vocab);
  ASSERT_TOKENS(v, 1, "你好，世界！", "你 好 ， 世 界 ！");
  ASSERT_TOKENS(v, 0, "你好，世界！", "你 好 ， 世 界 ！");
  /* Full-width letters are neither punctuation nor changed by NFD. */
  ASSERT_TOKENS(v, 1, "ＡＢＣ", "[UNK]");
  tok_vocab_free(v);
}

static void test_emoji_variation_selector_is_stripped_only_when_lowercasing(void) {
  tok_vocab *v = vocab_of(base_vocab);
  /* U+2764 U+FE0F: the selector is Mn, dropped with the accents. */
  ASSERT_TOKENS(v, 1, "I ❤️ BERT 😀", "i ❤ bert 😀");
  ASSERT_TOKENS(v, 0, "I ❤️ BERT 😀", "[UNK] [UNK] BERT 😀");
  tok_vocab_free(v);
}

static void test_cjk_extension_b_is_split_but_hangul_and_kana_are_not(void) {
  tok_vocab *v = vocab_of(base_vocab);
  ASSERT_TOKENS(v, 0, "𠀀𠀁", "𠀀 𠀁");
  ASSERT_TOKENS(v, 0, "한국어", "한국어");
  ASSERT_TOKENS(v, 0, "カタカナ", "[UNK]");
  tok_vocab_free(v);
}

static void test_hangul_decomposes_to_jamo_when_lowercasing(void) {
  tok_vocab *v = vocab_of(base_vocab);
  /* NFD turns the syllable into three conjoining jamo (Lo, kept). */
  ASSERT_TOKENS(v, 1, "한", "\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab");
  ASSERT_TOKENS(v, 0, "한", "한");
  tok_vocab_free(v);
}

static void test_mixed_latin_cjk_and_digits(void) {
  tok_vocab *v = vocab_of(base_vocab);
  ASSERT_TOKENS(v, 1, "BERT模型2019年", "bert 模 型 2019 年");
  ASSERT_TOKENS(v, 0, "BERT模型2019年", "BERT 模 型 2019 年");
  ASSERT_TOKENS(v, 1, "BERT模型2119年", "bert 模 型 [UNK] 年");
  tok_vocab_free(v);
}

static void test_ansi_escape_sequences_lose_esc_and_split_at_brackets(void) {
  tok_vocab *v = vocab_of(base_vocab);
  ASSERT_TOKENS(v, 1, "\x1b[31mred\x1b[0m", "[ 31 ##m ##red [ 0 ##m");
  tok_vocab_free(v);
}

static void test_zero_width_characters_are_dropped_without_splitting(void) {
  tok_vocab *v = vocab_of(base_vocab);
  ASSERT_TOKENS(v, 1, "zero\u200bwidth", "zero ##width");
  ASSERT_TOKENS(v, 1, "zero\u200dwidth", "zero ##width");
  ASSERT_TOKENS(v, 1, "\ufeffzero\u00adwidth", "zero ##width");
  tok_vocab_free(v);
}

static void test_nbsp_ideographic_space_and_line_separator_split_words(void) {
  tok_vocab *v = vocab_of(base_vocab);
  ASSERT_TOKENS(v, 1, "a\u00a0b\u3000c\u2028d", "a b c d");
  ASSERT_TOKENS(v, 1, "  a\t\tb\r\n", "a b");
  tok_vocab_free(v);
}

static void test_control_characters_are_dropped_not_split(void) {
  tok_vocab *v = vocab_of(base_vocab);
  /* BEL and vertical tab are Cc: dropped, so they join their neighbours;
   * only \t \n \r count as whitespace. */
  ASSERT_TOKENS(v, 1, "a\ab\tc\vd", "a ##b c ##d");
  ASSERT_TOKENS(v, 1, "un\aaff\x7f" "able", "un ##aff ##able");
  tok_vocab_free(v);
}

static void test_word_of_250_characters_is_one_unk(void) {
  tok_vocab *v = vocab_of(base_vocab);
  char word[251];
  memset(word, 'a', 250);
  word[250] = '\0';
  ASSERT_TOKENS(v, 1, word, "[UNK]");
  /* 200 characters is still WordPiece'd: a, then 199 times ##a. */
  word[200] = '\0';
  char *got = tokens_of(v, 1, word, 200, NULL);
  size_t pieces = 1;
  for (const char *p = got; *p; p++) pieces += *p == ' ';
  CU_ASSERT_EQUAL(pieces, 200);
  CU_ASSERT_EQUAL(strncmp(got, "a ##a ##a", 9), 0);
  free(got);
  tok_vocab_free(v);
}

static void test_empty_and_blank_lines_give_no_tokens(void) {
  tok_vocab *v = vocab_of(base_vocab);
  ASSERT_TOKENS(v, 1, "", "");
  ASSERT_TOKENS(v, 1, " \t\r\n\u3000", "");
  ASSERT_TOKENS(v, 1, "\xcc\x81", "");
  tok_vocab_free(v);
}

static void test_nul_and_invalid_utf8_are_dropped_and_counted(void) {
  tok_vocab *v = vocab_of(base_vocab);
  static const char text[] = "un\0aff\xff\xfe" "able \xe4\xb8 x \xed\xa0\x80y \xc0\xaf";
  tok_stats st = {0};
  char *got = tokens_of(v, 1, text, sizeof text - 1, &st);
  /* Truncated sequence, surrogate and overlong: every byte of them goes. */
  CU_ASSERT_STRING_EQUAL(got, "un ##aff ##able x y");
  CU_ASSERT_EQUAL(st.invalid_utf8_bytes, 2 + 2 + 3 + 2);
  CU_ASSERT_EQUAL(st.bytes_in, sizeof text - 1);
  CU_ASSERT_EQUAL(st.tokens, 5);
  CU_ASSERT_EQUAL(st.unk, 0);
  free(got);
  tok_vocab_free(v);
}

static void test_wordpiece_takes_the_longest_match_first(void) {
  tok_vocab *v = vocab_of(base_vocab);
  ASSERT_TOKENS(v, 1, "unaffable", "un ##aff ##able");
  static const char *const with_unaff[] = {"[UNK]", "un", "unaff", "##aff", "##able", NULL};
  tok_vocab *w = vocab_of(with_unaff);
  ASSERT_TOKENS(w, 1, "unaffable", "unaff ##able");
  tok_vocab_free(w);
  tok_vocab_free(v);
}

static void test_word_with_an_unmatched_piece_is_one_unk(void) {
  tok_vocab *v = vocab_of(base_vocab);
  tok_stats st = {0};
  char *got = tokens_of(v, 1, "unaffablez a", 12, &st);
  CU_ASSERT_STRING_EQUAL(got, "[UNK] a");
  CU_ASSERT_EQUAL(st.tokens, 2);
  CU_ASSERT_EQUAL(st.unk, 1);
  free(got);
  tok_vocab_free(v);
}

static void test_ascii_symbols_count_as_punctuation(void) {
  tok_vocab *v = vocab_of(base_vocab);
  /* $ is Sc, ^ and ` are Sk in Unicode, yet BERT's ASCII ranges split them;
   * ¥ (Sc) outside ASCII is not punctuation. */
  ASSERT_TOKENS(v, 1, "a$b^c`d", "a $ b ^ c ` d");
  ASSERT_TOKENS(v, 1, "a¥b", "a¥b");
  tok_vocab_free(v);
}

static void test_ids_follow_vocab_lines_and_unk_is_found_by_name(void) {
  /* bert-base-uncased keeps [UNK] at id 100; here it is at 3. */
  static const char *const lines[] = {"x", "##y", "[PAD]", "[UNK]", NULL};
  tok_vocab *v = vocab_of(lines);
  tokenizer *t = NULL;
  tok_ids ids = {0};
  CU_ASSERT_EQUAL_FATAL(tok_create(v, 1, &t, NULL), 0);
  CU_ASSERT_EQUAL(tok_encode(t, "xy q X", 6, &ids, NULL, NULL), 0);
  CU_ASSERT_EQUAL(ids.len, 4);
  if (ids.len == 4) {
    CU_ASSERT_EQUAL(ids.ids[0], 0);
    CU_ASSERT_EQUAL(ids.ids[1], 1);
    CU_ASSERT_EQUAL(ids.ids[2], 3);
    CU_ASSERT_EQUAL(ids.ids[3], 0);
  }
  /* tok_encode appends. */
  CU_ASSERT_EQUAL(tok_encode(t, "x", 1, &ids, NULL, NULL), 0);
  CU_ASSERT_EQUAL(ids.len, 5);
  tok_ids_free(&ids);
  CU_ASSERT_EQUAL(ids.len, 0);
  tok_free(t);
  tok_free(NULL);
  tok_vocab_free(v);
}

typedef struct words_seen {
  char text[256];
  size_t count;
} words_seen;

static int collect_word(void *ctx, const char *word, size_t len, size_t chars) {
  words_seen *w = ctx;
  (void)chars;
  if (w->count++) strcat(w->text, "|");
  strncat(w->text, word, len);
  return 0;
}

static void test_split_gives_basic_tokenizer_words_without_a_vocab(void) {
  tokenizer *t = NULL;
  CU_ASSERT_EQUAL_FATAL(tok_create(NULL, 1, &t, NULL), 0);
  words_seen w = {{0}, 0};
  const char *text = "Héllo, 世界! don't";
  CU_ASSERT_EQUAL(tok_split(t, text, strlen(text), collect_word, &w, NULL, NULL), 0);
  CU_ASSERT_STRING_EQUAL(w.text, "hello|,|世|界|!|don|'|t");
  tok_free(t);
}

static const harness_test tests[] = {
    {"test_accents_are_stripped_only_when_lowercasing", test_accents_are_stripped_only_when_lowercasing},
    {"test_turkish_dotted_capital_i_lowercases_to_i", test_turkish_dotted_capital_i_lowercases_to_i},
    {"test_capital_sigma_lowercases_to_final_sigma_at_word_end",
     test_capital_sigma_lowercases_to_final_sigma_at_word_end},
    {"test_full_width_punctuation_and_cjk_are_split", test_full_width_punctuation_and_cjk_are_split},
    {"test_emoji_variation_selector_is_stripped_only_when_lowercasing",
     test_emoji_variation_selector_is_stripped_only_when_lowercasing},
    {"test_cjk_extension_b_is_split_but_hangul_and_kana_are_not",
     test_cjk_extension_b_is_split_but_hangul_and_kana_are_not},
    {"test_hangul_decomposes_to_jamo_when_lowercasing", test_hangul_decomposes_to_jamo_when_lowercasing},
    {"test_mixed_latin_cjk_and_digits", test_mixed_latin_cjk_and_digits},
    {"test_ansi_escape_sequences_lose_esc_and_split_at_brackets",
     test_ansi_escape_sequences_lose_esc_and_split_at_brackets},
    {"test_zero_width_characters_are_dropped_without_splitting",
     test_zero_width_characters_are_dropped_without_splitting},
    {"test_nbsp_ideographic_space_and_line_separator_split_words",
     test_nbsp_ideographic_space_and_line_separator_split_words},
    {"test_control_characters_are_dropped_not_split", test_control_characters_are_dropped_not_split},
    {"test_word_of_250_characters_is_one_unk", test_word_of_250_characters_is_one_unk},
    {"test_empty_and_blank_lines_give_no_tokens", test_empty_and_blank_lines_give_no_tokens},
    {"test_nul_and_invalid_utf8_are_dropped_and_counted", test_nul_and_invalid_utf8_are_dropped_and_counted},
    {"test_wordpiece_takes_the_longest_match_first", test_wordpiece_takes_the_longest_match_first},
    {"test_word_with_an_unmatched_piece_is_one_unk", test_word_with_an_unmatched_piece_is_one_unk},
    {"test_ascii_symbols_count_as_punctuation", test_ascii_symbols_count_as_punctuation},
    {"test_ids_follow_vocab_lines_and_unk_is_found_by_name",
     test_ids_follow_vocab_lines_and_unk_is_found_by_name},
    {"test_split_gives_basic_tokenizer_words_without_a_vocab",
     test_split_gives_basic_tokenizer_words_without_a_vocab},
    {NULL, NULL},
};
const harness_suite corpus_tokenizer_suite = {"tokenizer", tests};
