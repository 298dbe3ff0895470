# PyTorch parity of the fine-tuning models (tests/parity/task_parity.py): the
# same weights and labelled batch through BertForSequenceClassification and
# BertForTokenClassification (+ CRF) in float64 give ddpt's loss, logits,
# decoded tags and every parameter gradient.
add_executable(task_parity ${CMAKE_SOURCE_DIR}/tests/parity/task_parity.c)
target_link_libraries(task_parity PRIVATE ddpt)
add_test(NAME task_parity_pytorch
         COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/parity/task_parity.py
                 $<TARGET_FILE:task_parity>)
set_tests_properties(task_parity_pytorch PROPERTIES LABELS "parity" TIMEOUT 300)
