# End-to-end corpus tests through the ddpt executable, run by Debian's own
# /usr/bin/python3 (which has plyvel): fortunes -> vocab -> shards ->
# sample/verify, and the shards read back by plyvel from the documented
# record format. scripts/install-deps.sh installs what they need.
add_test(NAME corpus_e2e_fortunes
         COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/corpus/e2e_shard_fortunes.py
                 $<TARGET_FILE:ddpt_cli>)
set_tests_properties(corpus_e2e_fortunes PROPERTIES LABELS "e2e" TIMEOUT 120)
add_test(NAME corpus_plyvel_records
         COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/corpus/plyvel_records.py
                 $<TARGET_FILE:ddpt_cli>)
set_tests_properties(corpus_plyvel_records PROPERTIES LABELS "e2e" TIMEOUT 60)
add_test(NAME corpus_e2e_inputs
         COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/corpus/e2e_inputs.py
                 $<TARGET_FILE:ddpt_cli>)
set_tests_properties(corpus_e2e_inputs PROPERTIES LABELS "e2e" TIMEOUT 60)
# One corpus, many readers (issue 19, issue 16 rows 6, 7, 10): trains and a
# verify at once read what each reads alone, a read-only bind mount trains
# and verifies, nothing is written into the corpus, edited manifests and a
# damaged table are refused naming the shard or file. Needs root (mount).
add_test(NAME corpus_readers
         COMMAND ${CMAKE_SOURCE_DIR}/tests/corpus_readers.sh $<TARGET_FILE:ddpt_cli>)
set_tests_properties(corpus_readers PROPERTIES LABELS "e2e" TIMEOUT 180)
# One line-length limit for ddpt shard and ddpt tokenize (issue 16 row 14).
add_test(NAME corpus_line_limit
         COMMAND ${CMAKE_SOURCE_DIR}/tests/corpus_line_limit.sh $<TARGET_FILE:ddpt_cli>)
set_tests_properties(corpus_line_limit PROPERTIES LABELS "e2e" TIMEOUT 60)
