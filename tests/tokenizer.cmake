# Tokenizer parity with google-research/bert's FullTokenizer (through the
# independent Python reference in tests/parity/), cased and uncased, on the
# fortunes texts, hand cases, random bytes and every code point; and the
# tokenizer benchmark (bench/tokenize.sh runs it; timings are not pass/fail).
foreach(mode uncased cased)
  add_test(NAME tokenizer_parity_${mode}
           COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/parity/tokenizer_parity.py
                   $<TARGET_FILE:ddpt_cli> ${CMAKE_BINARY_DIR}/tokenizer-parity-${mode} ${mode})
  set_tests_properties(tokenizer_parity_${mode} PROPERTIES
    LABELS "parity" TIMEOUT 900)
endforeach()

add_executable(bench_tokenize ${CMAKE_SOURCE_DIR}/bench/tokenize.c)
target_link_libraries(bench_tokenize PRIVATE ddpt)
