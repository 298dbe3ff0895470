# Continued pretraining from an imported model (issue 14,
# tests/parity/train_init_check.py): `ddpt train --init` from a HuggingFace
# directory, a Google TF checkpoint prefix and a TF bundle after `ddpt
# import` (written by tests/parity's safetensors_io and tf_bundle_writer)
# has, at step 1, the MLM and NSP losses PyTorch computes in float64 for the
# imported weights on the same batch and masks (rebuilt from the sample log,
# plyvel and `ddpt corpus sample --masks`), within 1e-5 relative; the first
# checkpoint records the vocab; a disagreeing [model] size, a corpus sharded
# with another vocab and --init with --resume are refused with one line.
# About 6 s.
add_test(NAME train_init_pytorch
         COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/parity/train_init_check.py $<TARGET_FILE:ddpt_cli>)
set_tests_properties(train_init_pytorch PROPERTIES LABELS "parity" TIMEOUT 300)
