# Labelled corpora (ddpt shard --task classify|tag, issue 13) through the
# ddpt executable, read back by plyvel from the record format documented in
# docs/corpus.md ("Labelled corpora"): ids equal ddpt tokenize's, labels and
# tags where they belong, label counts, corpus verify/info/sample, and bad
# input failing with one line naming file:line (Debian's /usr/bin/python3).
add_test(NAME corpus_plyvel_labelled
         COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/corpus/plyvel_labelled.py
                 $<TARGET_FILE:ddpt_cli>)
set_tests_properties(corpus_plyvel_labelled PROPERTIES LABELS "e2e" TIMEOUT 120)
