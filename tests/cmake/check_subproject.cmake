# Checks shared by the add_subdirectory and FetchContent consumers: as a
# sub-project h3co builds none of its own examples, tests or benchmarks and adds
# no install rules unless asked, and it gives the same targets as find_package.
foreach(_opt H3CO_BUILD_TESTS H3CO_BUILD_EXAMPLES H3CO_BUILD_BENCH H3CO_INSTALL)
  if(${_opt})
    message(FATAL_ERROR "${_opt} is ON in a sub-project build; it must default to OFF")
  endif()
endforeach()
foreach(_t h3co_tests bodystream_server h3upload)
  if(TARGET ${_t})
    message(FATAL_ERROR "h3co added its own target ${_t} to a consumer's build")
  endif()
endforeach()
foreach(_t h3co::h3co h3co::ngtcp2_crypto_boringssl h3co::ngtcp2 h3co::nghttp3
           h3co::boringssl_ssl h3co::boringssl_crypto)
  if(NOT TARGET ${_t})
    message(FATAL_ERROR "h3co as a sub-project did not define ${_t}")
  endif()
endforeach()
# The consumer builds against the same ngtcp2/nghttp3 stack as the h3co build that runs the test
# (-DH3CO_STACK_PREFIX passed through), so each stack's test pass checks its own consumers.
if(DEFINED H3CO_EXPECTED_STACK)
  get_directory_property(_h3co_stack DIRECTORY "${H3CO_SOURCE_DIR}" DEFINITION H3CO_STACK)
  if(NOT _h3co_stack STREQUAL H3CO_EXPECTED_STACK)
    message(FATAL_ERROR "h3co as a sub-project uses stack '${_h3co_stack}', expected '${H3CO_EXPECTED_STACK}'")
  endif()
  message(STATUS "h3co as a sub-project on stack ${_h3co_stack}")
endif()
