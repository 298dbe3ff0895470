# Run by ctest (tests/layering.cmake): builds each layering probe and checks
# that the owners' compile and every other fails because the header is not
# on its include path (and not for some other reason).
#   cmake -DBUILD_DIR=... -DPROBES=a,b,... -DOWNERS=a,... -P layering_build.cmake
cmake_minimum_required(VERSION 3.25)
string(REPLACE "," ";" probes "${PROBES}")
string(REPLACE "," ";" owners "${OWNERS}")
set(failed 0)
foreach(probe ${probes})
  string(REGEX REPLACE ".*_" "" header "${probe}")
  execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${probe}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(probe IN_LIST owners)
    if(rc EQUAL 0)
      message(STATUS "${probe}: <${header}.h> compiles in its owner")
    else()
      message(SEND_ERROR "${probe}: the owner cannot include <${header}.h>:\n${out}")
      set(failed 1)
    endif()
  elseif(rc EQUAL 0)
    message(SEND_ERROR "${probe}: <${header}.h> compiled outside its owner: "
                       "link ${header}'s target PRIVATE in CMakeLists.txt")
    set(failed 1)
  elseif(out MATCHES "${header}\\.h'?:? (No such file|file not found)")
    message(STATUS "${probe}: <${header}.h> not found, as it should be")
  else()
    message(SEND_ERROR "${probe}: failed, but not on a missing <${header}.h>:\n${out}")
    set(failed 1)
  endif()
endforeach()
if(failed)
  message(FATAL_ERROR "layering_build: see above")
endif()
