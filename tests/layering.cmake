# The build, not only a grep, keeps MPI in comm/ and HDF5 in storage/
# (CMakeLists.txt, modules). Each probe compiles one `#include <mpi.h>` or
# `#include <hdf5.h>` with exactly one module's properties (or, for "users",
# with what libddpt hands to cli/, tests and bench). Test layering_build
# builds every probe: the owner's must compile, every other must fail on
# that header. LevelDB and utf8proc live in /usr/include, where no include
# path can hide them; tests/check_layering.sh covers those.
set(ddpt_layering_probes)
foreach(header mpi hdf5)
  file(CONFIGURE OUTPUT ${CMAKE_BINARY_DIR}/layering/${header}.c
       CONTENT "#include <${header}.h>\nint layering_probe_${header};\n")
  foreach(module util corpus comm storage trainer users)
    set(probe layering_${module}_${header})
    add_library(${probe} OBJECT EXCLUDE_FROM_ALL ${CMAKE_BINARY_DIR}/layering/${header}.c)
    if(module STREQUAL "users")
      target_link_libraries(${probe} PRIVATE ddpt)
    else()
      foreach(prop INCLUDE_DIRECTORIES COMPILE_DEFINITIONS COMPILE_OPTIONS LINK_LIBRARIES)
        get_target_property(value ddpt_${module} ${prop})
        if(value)
          set_property(TARGET ${probe} PROPERTY ${prop} "${value}")
        endif()
      endforeach()
    endif()
    list(APPEND ddpt_layering_probes ${probe})
  endforeach()
endforeach()
# Commas, not semicolons: add_test would split a CMake list into arguments.
string(REPLACE ";" "," ddpt_layering_probes "${ddpt_layering_probes}")
add_test(NAME layering_build
         COMMAND ${CMAKE_COMMAND} -DBUILD_DIR=${CMAKE_BINARY_DIR} -DPROBES=${ddpt_layering_probes}
                 -DOWNERS=layering_comm_mpi,layering_storage_hdf5
                 -P ${CMAKE_SOURCE_DIR}/tests/lib/layering_build.cmake)
set_tests_properties(layering_build PROPERTIES TIMEOUT 300)
