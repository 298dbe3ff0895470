# ddpt fill-mask (tests/fill_mask.sh): after 150 bert-tiny steps on repeated
# sentences the taught word comes first with p > 0.9, --json has the
# documented fields, and bad inputs fail with one line.
add_test(NAME fill_mask_e2e
         COMMAND ${CMAKE_SOURCE_DIR}/tests/fill_mask.sh $<TARGET_FILE:ddpt_cli>)
set_tests_properties(fill_mask_e2e PROPERTIES LABELS "e2e" TIMEOUT 300)

# A checkpoint from ddpt train loads into the PyTorch BERT of
# tests/parity/bert_reference.py by name (load_state_dict, the decoder tied
# as in HuggingFace), with and without the NSP head, and PyTorch's MLM
# softmax agrees with ddpt fill-mask: same top-1, probabilities within 1e-4
# (tests/parity/ckpt_torch_load.py; Debian's /usr/bin/python3 with torch and h5py).
add_test(NAME ckpt_torch_load
         COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/parity/ckpt_torch_load.py $<TARGET_FILE:ddpt_cli>)
set_tests_properties(ckpt_torch_load PROPERTIES LABELS "parity" TIMEOUT 300)
