# Every `ddpt help CMD` lists each flag its parser takes and ends with
# examples, and bash completion completes from it (tests/cli_help.sh; about
# 15 s on the shared 2-core machine: a few hundred ddpt runs).
add_test(NAME cli_help COMMAND ${CMAKE_SOURCE_DIR}/tests/cli_help.sh $<TARGET_FILE:ddpt_cli> ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_help PROPERTIES LABELS "cli" TIMEOUT 300)
