# README.md cannot rot (tests/readme_blocks.py): every fenced block of the
# user guide runs on a small corpus, in order, with ddpt train/finetune cut
# to a few steps; the Slurm script and, without transformers, the
# from_pretrained example are syntax-checked only (the test prints which);
# every Troubleshooting message is provoked and matched; a block with a role
# the test does not know fails it. The quickstart and scripts/test.sh
# commands are CI's (.ci/run), not this test's.
add_test(NAME readme_blocks
         COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/readme_blocks.py $<TARGET_FILE:ddpt_cli> ${MPIEXEC_EXECUTABLE})
set_tests_properties(readme_blocks PROPERTIES LABELS "docs;e2e;mpi;slow" TIMEOUT 900)
