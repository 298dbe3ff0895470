# libFuzzer targets in tests/fuzz/ (clang only, -DDDPT_FUZZ=ON): each
# fuzz_<name>.c becomes an executable linking the util, corpus, storage and
# trainer objects (trainer for the config parser), which are instrumented for coverage and built with
# AddressSanitizer and UBSan. They come through static archives, so that a
# target pulls in only the objects it calls. scripts/test.sh runs each for a
# bounded time; by hand, e.g.
#   build-fuzz/fuzz_safetensors -max_total_time=60 build-fuzz/corpus-safetensors tests/fuzz/seeds/safetensors
if(DDPT_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "ddpt: -DDDPT_FUZZ=ON needs clang: configure with CC=clang")
  endif()
  set(ddpt_fuzz_flags -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  # UBSan's alignment and pointer-overflow checks keep clang from
  # vectorizing some `omp simd` loops (trainer/gemm.c's bf16 rounding), and
  # clang reports each as a warning; a fuzz build's speed does not matter.
  foreach(module util corpus storage trainer)
    target_compile_options(ddpt_${module} PRIVATE -fsanitize=fuzzer-no-link ${ddpt_fuzz_flags} -Wno-pass-failed)
  endforeach()
  foreach(module trainer corpus storage util)
    add_library(ddpt_fuzz_${module} STATIC $<TARGET_OBJECTS:ddpt_${module}>)
  endforeach()
  file(GLOB ddpt_fuzz_sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/*.c)
  foreach(src ${ddpt_fuzz_sources})
    get_filename_component(name ${src} NAME_WE)
    add_executable(${name} ${src})
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR}/generated)
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer ${ddpt_fuzz_flags})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer ${ddpt_fuzz_flags})
    target_link_libraries(${name} PRIVATE ddpt_fuzz_trainer ddpt_fuzz_corpus ddpt_fuzz_storage ddpt_fuzz_util
                          OpenSSL::Crypto leveldb::leveldb ddpt_snappy PkgConfig::UTF8PROC hdf5::hdf5 ddpt_cjson
                          ddpt_openblas ddpt_dnnl OpenMP::OpenMP_C PkgConfig::INIH Threads::Threads m)
  endforeach()
endif()
