# Several "machines" on one (tests/multihost/): network namespaces joined by
# a bridge, links shaped by tc, mpirun starting one Open MPI daemon in each
# through an rsh agent, ranks talking TCP. 2 hosts x 1 rank = 1 host x 2
# ranks bit for bit; a killed host ends the job within 30 s, named. Skipped
# (exit 77, "skipped: needs CAP_NET_ADMIN") where namespaces cannot be made;
# multihost_skip_without_caps proves that path. About 10 s.
add_test(NAME multihost_train
         COMMAND ${CMAKE_SOURCE_DIR}/tests/multihost/train_hosts.sh $<TARGET_FILE:ddpt_cli> ${MPIEXEC_EXECUTABLE})
set_tests_properties(multihost_train PROPERTIES LABELS "mpi;multihost" TIMEOUT 180 SKIP_RETURN_CODE 77)
add_test(NAME multihost_skip_without_caps
         COMMAND ${CMAKE_SOURCE_DIR}/tests/multihost/skip_without_caps.sh $<TARGET_FILE:ddpt_cli>
                 ${MPIEXEC_EXECUTABLE})
set_tests_properties(multihost_skip_without_caps PROPERTIES LABELS "multihost" TIMEOUT 60)
