# `ddpt model info` and `ddpt bench train` end to end, with the OpenBLAS
# kernel selection (tests/model_cli.sh).
add_test(NAME model_cli COMMAND ${CMAKE_SOURCE_DIR}/tests/model_cli.sh $<TARGET_FILE:ddpt_cli>)
set_tests_properties(model_cli PROPERTIES LABELS "cli" TIMEOUT 120)
