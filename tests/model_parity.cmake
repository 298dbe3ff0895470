# PyTorch parity of the BERT model (tests/parity/model_parity.py): the same
# weights and batch give the same loss and gradients in ddpt and in a plain
# torch.nn BERT. Needs Debian's /usr/bin/python3 with python3-torch and
# python3-numpy (scripts/install-deps.sh installs them).
add_executable(model_parity ${CMAKE_SOURCE_DIR}/tests/parity/model_parity.c)
target_link_libraries(model_parity PRIVATE ddpt)
add_test(NAME model_parity_pytorch
         COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/parity/model_parity.py
                 $<TARGET_FILE:model_parity>)
set_tests_properties(model_parity_pytorch PROPERTIES LABELS "parity" TIMEOUT 300)
