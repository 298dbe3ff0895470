/* test_corpus: corpus/ (tokenizer, vocab, shards, reader). */
#include "harness_impl.h"

extern const harness_suite corpus_library_suite;
extern const harness_suite corpus_tokenizer_suite;
extern const harness_suite corpus_vocab_suite;

int main(void) {
  const harness_suite *suites[] = {&corpus_library_suite, &corpus_tokenizer_suite, &corpus_vocab_suite, NULL};
  return harness_run(suites);
}
