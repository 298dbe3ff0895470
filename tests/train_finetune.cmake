# mpirun ddpt finetune on generated labelled corpora (tests/train_finetune.sh):
# loading by name, 2 ranks x b = 1 rank x 2b (classify; tag with the CRF),
# exact resume with evaluations, BEST and report.json, bad input in one line.
add_test(NAME train_finetune
         COMMAND ${CMAKE_SOURCE_DIR}/tests/train_finetune.sh $<TARGET_FILE:ddpt_cli> ${MPIEXEC_EXECUTABLE})
set_tests_properties(train_finetune PROPERTIES LABELS "mpi" TIMEOUT 600)
