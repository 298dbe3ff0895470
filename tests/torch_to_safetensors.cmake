# pytorch_model.bin in (issue 14): scripts/torch_to_safetensors.py converts a
# torch.save'd BERT state_dict (tied decoder, int64 position_ids; f32, bf16
# with and without --keep-dtype, --out DIR, sharded .bin) into a
# model.safetensors that safetensors_io reads back bit for bit with the tied
# aliases stored once, and `ddpt import` of it gives /params equal to the
# state_dict exactly; bad inputs are refused in one line, writing nothing
# (tests/parity/torch_to_safetensors_check.py). About 25 s on the shared
# 2-core machine, most of it the eight script runs, each loading torch.
add_test(NAME torch_to_safetensors
         COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/parity/torch_to_safetensors_check.py $<TARGET_FILE:ddpt_cli>)
set_tests_properties(torch_to_safetensors PROPERTIES LABELS "parity" TIMEOUT 300)
