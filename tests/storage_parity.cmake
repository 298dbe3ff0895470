# Checkpoint interchange (tests/parity/ckpt_h5py_check.py): a checkpoint that
# ddpt commits opens in h5py with the names, shapes and values written, and
# h5dump reads it. Needs Debian's /usr/bin/python3 with h5py and numpy, and
# h5dump (scripts/install-deps.sh installs them; without them the test fails).
add_executable(ddpt_ckpt_write_sample ${CMAKE_SOURCE_DIR}/tests/parity/ckpt_write_sample.c)
target_link_libraries(ddpt_ckpt_write_sample PRIVATE ddpt)
add_test(NAME storage_ckpt_h5py
         COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/parity/ckpt_h5py_check.py
                 $<TARGET_FILE:ddpt_ckpt_write_sample>)
set_tests_properties(storage_ckpt_h5py PROPERTIES LABELS "parity" TIMEOUT 120)

# Hostile files (tests/parity/ckpt_hostile_check.py): a checkpoint with
# variable-length string attributes (the old format, seed
# tests/fuzz/seeds/ckpt/old-vlen-weights.h5) is refused naming `ddpt ckpt
# upgrade`, which converts it; files crafted with h5py (array or mistyped
# attributes, variable-length, external, virtual datasets, external links,
# unknown filters) are refused with one line before anything is read.
add_executable(ddpt_ckpt_read_path ${CMAKE_SOURCE_DIR}/tests/parity/ckpt_read_path.c)
target_link_libraries(ddpt_ckpt_read_path PRIVATE ddpt)
add_test(NAME storage_ckpt_hostile
         COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/parity/ckpt_hostile_check.py
                 $<TARGET_FILE:ddpt_cli> $<TARGET_FILE:ddpt_ckpt_read_path>
                 ${CMAKE_SOURCE_DIR}/tests/fuzz/seeds/ckpt/old-vlen-weights.h5)
set_tests_properties(storage_ckpt_hostile PROPERTIES LABELS "parity" TIMEOUT 120)
