# Several "machines" on one (tests/multihost/): network namespaces joined by
# a switch (a bridge, or netns_hub for delayed links), links shaped to a rate
# and a delay, mpirun starting one Open MPI daemon in each
# through an rsh agent, ranks talking TCP. 2 hosts x 1 rank = 1 host x 2
# ranks bit for bit; a killed host ends the job within 30 s, named. Skipped
# (exit 77, "skipped: needs CAP_NET_ADMIN") where namespaces cannot be made;
# multihost_skip_without_caps proves that path. About 10 s.
add_test(NAME multihost_train
         COMMAND ${CMAKE_SOURCE_DIR}/tests/multihost/train_hosts.sh $<TARGET_FILE:ddpt_cli> ${MPIEXEC_EXECUTABLE}
                 $<TARGET_FILE:netns_hub>)
set_tests_properties(multihost_train PROPERTIES LABELS "mpi;multihost" TIMEOUT 180 SKIP_RETURN_CODE 77)
add_test(NAME multihost_skip_without_caps
         COMMAND ${CMAKE_SOURCE_DIR}/tests/multihost/skip_without_caps.sh $<TARGET_FILE:ddpt_cli>
                 ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:netns_hub>)
set_tests_properties(multihost_skip_without_caps PROPERTIES LABELS "multihost" TIMEOUT 60)

# The gradient reduction benchmark (bench/allreduce.c, run across the
# namespaced hosts by bench/allreduce_netns.py). Its ctest only proves that
# it reduces correctly (every rank checks every sum) on 2 and 3 ranks, with
# a last bucket shorter than the rest; timings are not pass/fail.
add_executable(bench_allreduce ${CMAKE_SOURCE_DIR}/bench/allreduce.c)
target_link_libraries(bench_allreduce PRIVATE ddpt)
foreach(np 2 3)
  add_test(NAME bench_allreduce_sums_np${np}
           COMMAND ${MPIEXEC_EXECUTABLE} --allow-run-as-root --oversubscribe -np ${np}
                   $<TARGET_FILE:bench_allreduce> 100000:30000:2 4096:4096:1)
  set_tests_properties(bench_allreduce_sums_np${np} PROPERTIES LABELS "mpi" TIMEOUT 60)
endforeach()

# The delaying switch (tests/multihost/netns_hub.c) that hosts.sh puts
# between the hosts when a link needs a delay: this kernel has no netem.
add_executable(netns_hub ${CMAKE_SOURCE_DIR}/tests/multihost/netns_hub.c)
target_link_libraries(netns_hub PRIVATE ddpt)
