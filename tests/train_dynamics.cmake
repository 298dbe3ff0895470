# Training dynamics against PyTorch (tests/parity/train_dynamics.py): the same
# small BERT trained on the same batches for 400 steps by `ddpt train` with
# its defaults and by torch.optim.AdamW with HuggingFace's recipe ends within
# 0.05 nats of eval loss. About 1.5 minutes on 2 idle cores, one thread each
# side; labelled slow, and run in CI like every test.
add_test(NAME train_dynamics_pytorch
         COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/parity/train_dynamics.py $<TARGET_FILE:ddpt_cli>)
set_tests_properties(train_dynamics_pytorch PROPERTIES LABELS "parity;slow" TIMEOUT 1200)

# The same with train.precision = bf16 against ddpt in fp32 (issue 17): the
# two runs see the same batches, masks and dropout; their eval losses agree
# within 0.05 nats (measured 0.0003). About 30 s on 2 loaded cores. On a CPU
# without native bf16 the bf16 products are emulated (DDPT_TEST_BF16_EMULATE).
add_test(NAME train_dynamics_bf16
         COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/parity/train_dynamics.py $<TARGET_FILE:ddpt_cli>
                 --ddpt-set train.precision=bf16 --reference ddpt-fp32)
set_tests_properties(train_dynamics_bf16 PROPERTIES LABELS "parity;slow" TIMEOUT 1200)
