# Corpus benchmarks (bench/corpus_*): built with the tests, run by hand or by
# bench/corpus_bench.sh; not registered with ctest, since timings are not
# pass/fail.
add_executable(bench_corpus_reader ${CMAKE_SOURCE_DIR}/bench/corpus_reader.c)
target_link_libraries(bench_corpus_reader PRIVATE ddpt)
