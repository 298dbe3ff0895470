# ddpt predict against PyTorch (tests/parity/predict_parity.py): checkpoints
# of tiny BERTs with classification, token-classification and CRF heads,
# written with h5py in the documented format (no ddpt finetune involved);
# classify probabilities within 1e-5 of PyTorch's float64 softmax (texts,
# pairs, longest_first truncation), tags equal to PyTorch's argmax or a
# numpy Viterbi, spans as conlleval chunks them, --batch changing nothing,
# and one-line refusals (pretraining checkpoint, vocab mismatch, bad lines).
# Needs Debian's /usr/bin/python3 with python3-torch, h5py and numpy.
add_test(NAME predict_parity
         COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/parity/predict_parity.py $<TARGET_FILE:ddpt_cli>)
set_tests_properties(predict_parity PROPERTIES LABELS "parity" TIMEOUT 300)

# ddpt predict on checkpoints from ddpt finetune (tests/predict_e2e.sh):
# prediction over the validation file scores exactly what fine-tuning's own
# evaluation scored (classify pairs cut to the corpus's --seq-len: the same
# correct count; tag with the CRF: the same token accuracy and entity F1),
# so predict builds the inputs training built.
add_test(NAME predict_e2e
         COMMAND ${CMAKE_SOURCE_DIR}/tests/predict_e2e.sh $<TARGET_FILE:ddpt_cli>)
set_tests_properties(predict_e2e PROPERTIES LABELS "e2e" TIMEOUT 300)
