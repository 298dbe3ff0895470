# ddpt installed like a real tool (issue 15). tests/install.sh: `cmake
# --install` into a temporary prefix, then the installed ddpt, scripts,
# configs, man page and completion run with the source and build trees
# hidden (about 5 s). tests/install_deb.sh: `cpack -G DEB`, apt-get install
# of the .deb, ddpt from PATH, apt-get purge (about 50 s on the shared
# 2-core machine). Both need root (exit 77: skipped otherwise); install_deb
# changes the machine's packages while it runs and restores them, so it
# runs alone (RUN_SERIAL): no other test sees a ddpt on PATH come and go.
add_test(NAME install COMMAND ${CMAKE_SOURCE_DIR}/tests/install.sh ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
set_tests_properties(install PROPERTIES LABELS "cli" TIMEOUT 300 SKIP_RETURN_CODE 77)
add_test(NAME install_deb COMMAND ${CMAKE_SOURCE_DIR}/tests/install_deb.sh ${CMAKE_BINARY_DIR})
set_tests_properties(install_deb PROPERTIES LABELS "slow;system" TIMEOUT 600 SKIP_RETURN_CODE 77
                     RUN_SERIAL TRUE)
