# The chaos test (tests/chaos/chaos.py, issue 16): bert-tiny on 1, 2 or 4
# ranks (4 micro-batches a step), killed at random (SIGKILL of a rank,
# SIGTERM to all, SIGKILL inside a checkpoint write) and resumed until 40
# steps; the final /params and /optim equal the uninterrupted 2-rank run's
# bit for bit. At least 5 kills here; the long
# mode runs by hand:
#   DDPT_CHAOS_KILLS=100 DDPT_CHAOS_STEPS=400 /usr/bin/python3 tests/chaos/chaos.py \
#     build/ddpt mpirun tests/lib/even_corpus.sh $(mktemp -d)
add_test(NAME chaos_kill_resume
         COMMAND sh -c "dir=$(mktemp -d) && /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/chaos/chaos.py $0 $1 $2 \"$dir\"; rc=$?; rm -rf \"$dir\"; exit $rc"
                 $<TARGET_FILE:ddpt_cli> ${MPIEXEC_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/lib/even_corpus.sh)
set_tests_properties(chaos_kill_resume PROPERTIES LABELS "mpi;slow" TIMEOUT 900)
