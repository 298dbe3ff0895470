# Training dynamics against PyTorch (tests/parity/train_dynamics.py): the same
# small BERT trained on the same batches for 400 steps by `ddpt train` with
# its defaults and by torch.optim.AdamW with HuggingFace's recipe ends within
# 0.05 nats of eval loss. About 1.5 minutes on 2 idle cores, one thread each
# side; labelled slow, and run in CI like every test.
add_test(NAME train_dynamics_pytorch
         COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/parity/train_dynamics.py $<TARGET_FILE:ddpt_cli>)
set_tests_properties(train_dynamics_pytorch PROPERTIES LABELS "parity;slow" TIMEOUT 1200)
