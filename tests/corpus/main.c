/* test_corpus: corpus/ (tokenizer, vocab, input listing, shards, reader). */
#include "harness_impl.h"

extern const harness_suite corpus_library_suite;
extern const harness_suite corpus_tokenizer_suite, corpus_vocab_suite, corpus_inputs_suite;
extern const harness_suite corpus_record_suite, corpus_order_suite, corpus_mask_suite,
    corpus_packing_suite, corpus_shard_writer_suite, corpus_reader_suite;
extern const harness_suite corpus_record_labels_suite, corpus_labelled_suite,
    corpus_labelled_shard_suite;

int main(void) {
  const harness_suite *suites[] = {&corpus_library_suite, &corpus_record_suite, &corpus_order_suite,
                                     &corpus_mask_suite, &corpus_packing_suite,
                                     &corpus_shard_writer_suite, &corpus_reader_suite, &corpus_tokenizer_suite,
                                     &corpus_vocab_suite, &corpus_inputs_suite,
                                     &corpus_record_labels_suite, &corpus_labelled_suite,
                                     &corpus_labelled_shard_suite, NULL};
  return harness_run(suites);
}
