# ddpt train end to end on Debian's fortunes (tests/train_e2e.sh): vocab,
# shards, a few hundred bert-tiny steps twice; the loss falls, evaluation
# runs, metrics.jsonl parses, the plot is written, the runs are identical.
add_test(NAME train_e2e_fortunes
         COMMAND ${CMAKE_SOURCE_DIR}/tests/train_e2e.sh $<TARGET_FILE:ddpt_cli> ${CMAKE_SOURCE_DIR})
set_tests_properties(train_e2e_fortunes PROPERTIES LABELS "e2e" TIMEOUT 600)

# mpirun ddpt train: 2, 3, 4 ranks equal one rank with the whole batch, over
# shared memory and TCP; dropout runs repeat exactly; a killed rank ends the job.
add_test(NAME train_mpi_equivalence
         COMMAND ${CMAKE_SOURCE_DIR}/tests/train_mpi.sh $<TARGET_FILE:ddpt_cli> ${MPIEXEC_EXECUTABLE})
# Also in the sanitizer pass (label sanitize, scripts/test.sh): the training
# loop, the reducer and the watchdog under ASan + UBSan on 2-4 ranks.
set_tests_properties(train_mpi_equivalence PROPERTIES LABELS "mpi;sanitize" TIMEOUT 600)

# Exact resume: straight vs stopped-and-resumed, another world size, SIGTERM,
# damaged checkpoints, kill -9 during a write (tests/train_resume.sh).
add_test(NAME train_resume_exact
         COMMAND ${CMAKE_SOURCE_DIR}/tests/train_resume.sh $<TARGET_FILE:ddpt_cli> ${MPIEXEC_EXECUTABLE})
set_tests_properties(train_resume_exact PROPERTIES LABELS "mpi" TIMEOUT 900)

# ddpt train's bad inputs fail at start with one line (tests/train_bad_input.sh).
add_test(NAME train_bad_input COMMAND ${CMAKE_SOURCE_DIR}/tests/train_bad_input.sh $<TARGET_FILE:ddpt_cli>)
set_tests_properties(train_bad_input PROPERTIES LABELS "e2e" TIMEOUT 120)

# precision = bf16 (tests/train_bf16.sh): 2 ranks x b = 1 rank x 2b to fp32
# reduction order, bit-identical resume, checkpoints across precisions, and
# the one-line refusal without native bf16. About 20 s.
add_test(NAME train_bf16
         COMMAND ${CMAKE_SOURCE_DIR}/tests/train_bf16.sh $<TARGET_FILE:ddpt_cli> ${MPIEXEC_EXECUTABLE})
set_tests_properties(train_bf16 PROPERTIES LABELS "mpi" TIMEOUT 600)

# Exact on any number of ranks (tests/train_exact.sh): 1 x 4, 2 x 2 and 4 x 1
# micro-batches give the same bits; a resume on another world derives the
# accumulation, or is refused naming the rank counts that fit. About 15 s.
add_test(NAME train_exact_across_worlds
         COMMAND ${CMAKE_SOURCE_DIR}/tests/train_exact.sh $<TARGET_FILE:ddpt_cli> ${MPIEXEC_EXECUTABLE})
set_tests_properties(train_exact_across_worlds PROPERTIES LABELS "mpi" TIMEOUT 300)

# ZeRO-1 (tests/train_zero.sh): zero = 1 ends bit-identical to zero = 0 on
# 1, 2, 3 and 4 ranks, and its checkpoints resume across modes and rank
# counts bit for bit. About 10 s.
add_test(NAME train_zero
         COMMAND ${CMAKE_SOURCE_DIR}/tests/train_zero.sh $<TARGET_FILE:ddpt_cli> ${MPIEXEC_EXECUTABLE})
set_tests_properties(train_zero PROPERTIES LABELS "mpi" TIMEOUT 300)
