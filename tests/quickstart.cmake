# The quickstart's pretraining text (tests/quickstart/split.py): validation
# documents held out before English is repeated, none of them trained on, the
# mixing weight as declared, and ddpt shard --valid taking the split as it is.
# The whole quickstart is CI's (.ci/run), not a test's.
add_test(NAME quickstart_split
         COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/quickstart/split.py $<TARGET_FILE:ddpt_cli>)
set_tests_properties(quickstart_split PROPERTIES LABELS "e2e" TIMEOUT 120)
