# A training step's loss and gradients are the same bits on 1 and 2
# threads under every OpenBLAS kernel ddpt may run on x86: the ones
# blas_kernel_for_cpu picks (Cooperlake, SkylakeX, Haswell, Sandybridge),
# OpenBLAS's own pick on AMD (Zen) and its fallback (Prescott). How an
# sgemm sums depends on the kernel (trainer/layers.c, gemm_split), and
# OpenBLAS picks the kernel when it loads, so each runs test_trainer's test
# in a process of its own (tests/blas_kernel_test.sh); kernels this CPU
# cannot run are skipped with the reason.
foreach(kernel Prescott Sandybridge Haswell Zen SkylakeX Cooperlake)
  add_test(NAME test_trainer_threads_bit_identical_${kernel}
           COMMAND ${CMAKE_SOURCE_DIR}/tests/blas_kernel_test.sh ${kernel} $<TARGET_FILE:test_trainer>
                   test_step_is_bit_identical_for_one_and_two_threads)
  set_tests_properties(test_trainer_threads_bit_identical_${kernel} PROPERTIES
    SKIP_RETURN_CODE 77 LABELS "unit" TIMEOUT 120)
endforeach()
