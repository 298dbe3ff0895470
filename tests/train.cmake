# ddpt train end to end on Debian's fortunes (tests/train_e2e.sh): vocab,
# shards, a few hundred bert-tiny steps twice; the loss falls, evaluation
# runs, metrics.jsonl parses, the plot is written, the runs are identical.
add_test(NAME train_e2e_fortunes
         COMMAND ${CMAKE_SOURCE_DIR}/tests/train_e2e.sh $<TARGET_FILE:ddpt_cli> ${CMAKE_SOURCE_DIR})
set_tests_properties(train_e2e_fortunes PROPERTIES LABELS "e2e" TIMEOUT 600)
