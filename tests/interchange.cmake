# Models in and out (issue 14), checked with a safetensors reader/writer and
# a TensorFlow tensor-bundle writer written in tests/parity/ from the formats'
# specs, not from ddpt's C code, and the PyTorch BERT of
# tests/parity/bert_reference.py (tests/parity/interchange_check.py):
# `ddpt export` of a trained checkpoint loads strictly into PyTorch and
# predicts what `ddpt fill-mask` prints (within 1e-5), bf16/f16 exports are
# the f32 one rounded to nearest even; F32/BF16/F16, legacy-named, unprefixed
# and sharded HF directories and a two-shard TF bundle with Adam slots import
# exactly; import -> export -> import is bit-identical; bad files fail with
# one line and write nothing. About 10 s.
add_test(NAME interchange_pytorch
         COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/parity/interchange_check.py $<TARGET_FILE:ddpt_cli>)
set_tests_properties(interchange_pytorch PROPERTIES LABELS "parity" TIMEOUT 300)
