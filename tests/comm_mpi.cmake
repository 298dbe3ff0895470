# MPI tests: the comm/ unit tests under mpirun with 2, 3 and 4 ranks (and
# once over TCP, the transport between machines), and a rank killed mid-run.
# --allow-run-as-root and --oversubscribe are set here so the tests run as
# root on a 2-core machine.
set(DDPT_MPIRUN ${MPIEXEC_EXECUTABLE} --allow-run-as-root --oversubscribe)
foreach(np 2 3 4)
  add_test(NAME comm_mpi_np${np} COMMAND ${DDPT_MPIRUN} -np ${np} $<TARGET_FILE:test_comm>)
endforeach()
add_test(NAME comm_mpi_tcp COMMAND ${DDPT_MPIRUN} --mca btl tcp,self -np 3 $<TARGET_FILE:test_comm>)
set_tests_properties(comm_mpi_np2 comm_mpi_np3 comm_mpi_np4 comm_mpi_tcp PROPERTIES LABELS "mpi" TIMEOUT 120)
# In a world of one comm/ makes no MPI call past MPI_Init, so the sanitizer
# pass of scripts/test.sh (ctest -L "unit|sanitize") runs these too: the
# collectives and the gradient reducer with 2 and 3 ranks, shared memory
# and TCP.
set_tests_properties(comm_mpi_np2 comm_mpi_np3 comm_mpi_tcp PROPERTIES LABELS "mpi;sanitize")

add_executable(comm_soak ${CMAKE_SOURCE_DIR}/tests/mpi/comm_soak.c)
target_link_libraries(comm_soak PRIVATE ddpt)
add_test(NAME comm_rank_killed_ends_job
         COMMAND ${CMAKE_SOURCE_DIR}/tests/comm_kill.sh ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:comm_soak>)
set_tests_properties(comm_rank_killed_ends_job PROPERTIES LABELS "mpi" TIMEOUT 90)
