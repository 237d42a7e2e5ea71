# Build options and helper functions for h3co's own targets.
include_guard(GLOBAL)

# h3co_target_warnings(<target>): the warning set every h3co-owned target uses.
function(h3co_target_warnings tgt)
  target_compile_options(${tgt} PRIVATE
    $<$<COMPILE_LANG_AND_ID:CXX,GNU,Clang,AppleClang>:-Wall -Wextra -Werror -Wno-missing-field-initializers>
    # g++ 12 at -O1+: false positive on Asio coroutine frames.
    $<$<COMPILE_LANG_AND_ID:CXX,GNU>:-Wno-mismatched-new-delete>
    $<$<COMPILE_LANG_AND_ID:C,GNU,Clang,AppleClang>:-Wall -Wextra -Werror>)
endfunction()

if((H3CO_TSAN AND H3CO_SANITIZE) OR (H3CO_TSAN AND H3CO_FUZZ))
  message(FATAL_ERROR "h3co: H3CO_TSAN cannot be combined with H3CO_SANITIZE or H3CO_FUZZ "
                      "(ThreadSanitizer and AddressSanitizer exclude each other): use separate build trees")
endif()
if(H3CO_FUZZ AND NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "h3co: H3CO_FUZZ needs clang's libFuzzer, but the C++ compiler is "
                      "${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER}: configure with "
                      "-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++")
endif()

# h3co_target_sanitize(<target>): ASan + UBSan when H3CO_SANITIZE is ON; ThreadSanitizer when
# H3CO_TSAN is ON; with H3CO_FUZZ, libFuzzer's coverage instrumentation plus H3CO_FUZZ_SANITIZERS
# (default ASan + UBSan; the fuzz targets add -fsanitize=fuzzer, libFuzzer's main, themselves).
function(h3co_target_sanitize tgt)
  if(H3CO_FUZZ)
    # -fno-sanitize=function: clang 14's UBSan function check cannot compile coroutines
    # ("Cannot represent a difference across sections", llvm/llvm-project#49689).
    set(_flags -fsanitize=fuzzer-no-link,${H3CO_FUZZ_SANITIZERS} -fno-sanitize=function -fno-omit-frame-pointer
               -fno-sanitize-recover=undefined)
    target_compile_options(${tgt} PRIVATE ${_flags})
    target_link_options(${tgt} PRIVATE -fsanitize=${H3CO_FUZZ_SANITIZERS})
  elseif(H3CO_TSAN)
    set(_flags -fsanitize=thread -fno-omit-frame-pointer)
    target_compile_options(${tgt} PRIVATE ${_flags}
      # g++ 12 warns that TSan ignores the std::atomic_thread_fence in Asio's handler invocation
      # (asio/detail/std_fenced_block.hpp); Asio's queues synchronise with mutexes, which it sees.
      $<$<COMPILE_LANG_AND_ID:CXX,GNU>:-Wno-tsan>)
    target_link_options(${tgt} PRIVATE ${_flags})
  elseif(H3CO_SANITIZE)
    set(_flags -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
    target_compile_options(${tgt} PRIVATE ${_flags}
      # g++ 12 with ASan at -O1: a false -Wmaybe-uninitialized inside Asio's own use_future
      # (asio/impl/use_future.hpp); the plain build keeps the warning.
      $<$<COMPILE_LANG_AND_ID:CXX,GNU>:-Wno-maybe-uninitialized>)
    target_link_options(${tgt} PRIVATE ${_flags})
  endif()
endfunction()

# h3co_setup_target(<target>): warnings + sanitizers; use for every example,
# test and bench executable.
function(h3co_setup_target tgt)
  h3co_target_warnings(${tgt})
  h3co_target_sanitize(${tgt})
endfunction()
