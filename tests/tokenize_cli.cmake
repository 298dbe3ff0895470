# ddpt tokenize as a command (tests/tokenize_cli.py): output independent of
# --threads on several 1 MiB chunks, ids and tokens agreeing, long tokens
# written whole, --out atomic, write and input failures reported.
add_test(NAME tokenizer_cli
         COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/tokenize_cli.py
                 $<TARGET_FILE:ddpt_cli> ${CMAKE_BINARY_DIR}/tokenizer-cli)
set_tests_properties(tokenizer_cli PROPERTIES LABELS "e2e" TIMEOUT 300)
