# ddpt train's failure paths (tests/train_failures.sh): rank 0's evaluation
# failing under mpirun, a corpus rank 0 cannot open, a damaged record on rank
# 1, a checkpoint that cannot be committed; each ends the run non-zero with
# one line and leaves no figures or files from the failed step.
add_test(NAME train_failures
         COMMAND ${CMAKE_SOURCE_DIR}/tests/train_failures.sh $<TARGET_FILE:ddpt_cli> ${MPIEXEC_EXECUTABLE})
# Also in the sanitizer pass: every failure path under ASan + UBSan.
set_tests_properties(train_failures PROPERTIES LABELS "mpi;sanitize" TIMEOUT 600)

# The run directory and the job against a hostile user (issue 16,
# tests/train_failures_run_dir.sh): the run-dir lock, a full file system
# (tmpfs mounts: needs root), a second SIGTERM inside a checkpoint write,
# RUN_DIR/STATUS, and the hang watchdog on a rank stopped with SIGSTOP.
add_test(NAME train_failures_run_dir
         COMMAND ${CMAKE_SOURCE_DIR}/tests/train_failures_run_dir.sh $<TARGET_FILE:ddpt_cli> ${MPIEXEC_EXECUTABLE})
set_tests_properties(train_failures_run_dir PROPERTIES LABELS "mpi" TIMEOUT 600 SKIP_RETURN_CODE 77)

# One training step under valgrind's memcheck (tests/train_valgrind.sh): no
# memory error in the loop, the checkpoint writer or the run directory code.
add_test(NAME train_valgrind COMMAND ${CMAKE_SOURCE_DIR}/tests/train_valgrind.sh $<TARGET_FILE:ddpt_cli>)
set_tests_properties(train_valgrind PROPERTIES LABELS "e2e;slow" TIMEOUT 600)
