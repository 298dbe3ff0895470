/* libFuzzer target for corpus/tokenizer: any bytes, lowercasing on and off,
 * through tok_encode and tok_split. Checks that ids stay inside the vocab,
 * that the counters add up, and that a newline separates exactly:
 * tokens(A "\n" B) = tokens(A) followed by tokens(B). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corpus/tokenizer.h"
#include "corpus/vocab.h"

static const char *const fuzz_vocab_lines[] = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "e", "i", "s", "##a", "##b", "##e",
    "##i", "##s", "the", "##ing", "un", "##aff", "##able", "σ", "ς", "ο", "##ς", "##σ", "中", "文",
    "，", ".", "!", "é", "##é", "😀", "ab", "##ab", "aaaa", "##aaaa", NULL};

static tok_vocab *fuzz_vocab;
static tokenizer *fuzz_tok[2];

static void fuzz_init(void) {
  char path[] = "/tmp/ddpt-fuzz-vocab-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) abort();
  FILE *f = fdopen(fd, "w");
  for (const char *const *l = fuzz_vocab_lines; *l; l++) fprintf(f, "%s\n", *l);
  fclose(f);
  char *err = NULL;
  if (tok_vocab_load(path, &fuzz_vocab, &err) != 0) abort();
  unlink(path);
  for (int lower = 0; lower < 2; lower++)
    if (tok_create(fuzz_vocab, lower, &fuzz_tok[lower], &err) != 0) abort();
}

static int fuzz_count_word(void *ctx, const char *word, size_t len, size_t chars) {
  if (len == 0 || chars == 0 || chars > len) abort();
  (void)word;
  (*(size_t *)ctx)++;
  return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  if (!fuzz_vocab) fuzz_init();
  const char *text = (const char *)data;
  for (int lower = 0; lower < 2; lower++) {
    tokenizer *t = fuzz_tok[lower];
    tok_ids all = {0}, parts = {0};
    tok_stats st = {0};
    if (tok_encode(t, text, size, &all, &st, NULL) != 0) abort();
    if (st.bytes_in != size || st.tokens != all.len || st.unk > st.tokens ||
        st.invalid_utf8_bytes > size)
      abort();
    for (size_t i = 0; i < all.len; i++)
      if (all.ids[i] < 0 || (size_t)all.ids[i] >= tok_vocab_size(fuzz_vocab)) abort();
    const char *nl = memchr(text, '\n', size);
    if (nl) {
      size_t head = (size_t)(nl - text);
      if (tok_encode(t, text, head, &parts, NULL, NULL) != 0 ||
          tok_encode(t, nl + 1, size - head - 1, &parts, NULL, NULL) != 0)
        abort();
      if (parts.len != all.len ||
          (all.len > 0 && memcmp(parts.ids, all.ids, all.len * sizeof *all.ids) != 0))
        abort();
    }
    size_t words = 0;
    if (tok_split(t, text, size, fuzz_count_word, &words, NULL, NULL) != 0) abort();
    if (words > all.len) abort();
    tok_ids_free(&all);
    tok_ids_free(&parts);
  }
  return 0;
}
