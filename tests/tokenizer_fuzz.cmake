# libFuzzer targets in tests/fuzz/ (clang only, -DDDPT_FUZZ=ON): each links
# the util and corpus objects, which are instrumented for coverage and built
# with AddressSanitizer and UBSan. Run one for a bounded time with e.g.
#   build-fuzz/fuzz_tokenizer -max_total_time=60 build-fuzz/fuzz-corpus
if(DDPT_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "ddpt: -DDDPT_FUZZ=ON needs clang: configure with CC=clang")
  endif()
  set(ddpt_fuzz_flags -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_compile_options(ddpt_util PRIVATE -fsanitize=fuzzer-no-link ${ddpt_fuzz_flags})
  target_compile_options(ddpt_corpus PRIVATE -fsanitize=fuzzer-no-link ${ddpt_fuzz_flags})
  file(GLOB ddpt_fuzz_sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/*.c)
  foreach(src ${ddpt_fuzz_sources})
    get_filename_component(name ${src} NAME_WE)
    add_executable(${name} ${src} $<TARGET_OBJECTS:ddpt_util> $<TARGET_OBJECTS:ddpt_corpus>)
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR}/generated)
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer ${ddpt_fuzz_flags})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer ${ddpt_fuzz_flags})
    target_link_libraries(${name} PRIVATE OpenSSL::Crypto leveldb::leveldb PkgConfig::UTF8PROC
                          ddpt_cjson Threads::Threads m)
  endforeach()
endif()
