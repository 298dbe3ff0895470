# PyTorch parity of the fine-tuning heads (tests/parity/heads_parity.py):
# classifier + cross-entropy with ignored labels, and the CRF's NLL,
# gradients and Viterbi paths, on the same numbers as torch (autograd in
# float64). Needs Debian's /usr/bin/python3 with python3-torch and numpy.
add_executable(heads_parity ${CMAKE_SOURCE_DIR}/tests/parity/heads_parity.c)
target_link_libraries(heads_parity PRIVATE ddpt)
add_test(NAME heads_parity_pytorch
         COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/parity/heads_parity.py
                 $<TARGET_FILE:heads_parity>)
set_tests_properties(heads_parity_pytorch PROPERTIES LABELS "parity" TIMEOUT 120)
