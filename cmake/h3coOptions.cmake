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

# h3co_target_sanitize(<target>): ASan + UBSan when H3CO_SANITIZE is ON.
function(h3co_target_sanitize tgt)
  if(H3CO_SANITIZE)
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
