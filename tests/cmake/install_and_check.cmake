# cmake -P driver for the "packaging.install" test: installs h3co's build tree
# into a fresh prefix and checks what landed there.
#
#   -DBUILD_DIR=<h3co build tree>  -DPREFIX=<fresh install prefix>
#   -DINCLUDEDIR=<rel>  -DLIBDIR=<rel>  -DBINDIR=<rel>  (GNUInstallDirs values)
#   -DBORINGSSL_LIBRARY_DIR=<dir>  expected in h3upload's and h3get's RUNPATH
#   -DEXPECT_H3UPLOAD=ON|OFF  -DEXPECT_H3GET=ON|OFF
foreach(_v BUILD_DIR PREFIX INCLUDEDIR LIBDIR BINDIR)
  if(NOT DEFINED ${_v})
    message(FATAL_ERROR "install_and_check.cmake: -D${_v}=... missing")
  endif()
endforeach()

file(REMOVE_RECURSE "${PREFIX}")
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}"
                RESULT_VARIABLE _rc OUTPUT_QUIET)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed (${_rc})")
endif()

set(_expected
  "${INCLUDEDIR}/h3co/h3co.hpp"
  "${INCLUDEDIR}/h3co/client.hpp"
  "${INCLUDEDIR}/h3co/detail/session.hpp"
  "${INCLUDEDIR}/h3co-ngtcp2-crypto/ngtcp2/ngtcp2_crypto.h"
  "${INCLUDEDIR}/h3co-ngtcp2-crypto/ngtcp2/ngtcp2_crypto_boringssl.h"
  "${LIBDIR}/libh3co_ngtcp2_crypto_boringssl.a"
  "${LIBDIR}/cmake/h3co/h3coConfig.cmake"
  "${LIBDIR}/cmake/h3co/h3coConfigVersion.cmake"
  "${LIBDIR}/cmake/h3co/h3coTargets.cmake"
  "${LIBDIR}/cmake/h3co/h3coFindDependencies.cmake")
set(_tools)
foreach(_tool h3upload h3get)
  string(TOUPPER "${_tool}" _upper)
  if(EXPECT_${_upper})
    list(APPEND _tools "${_tool}")
    list(APPEND _expected "${BINDIR}/${_tool}")
  endif()
endforeach()
foreach(_f IN LISTS _expected)
  if(NOT EXISTS "${PREFIX}/${_f}")
    message(FATAL_ERROR "not installed: ${_f}")
  endif()
endforeach()

# Only the two BoringSSL crypto headers come from ngtcp2's source package.
file(GLOB _crypto_headers RELATIVE "${PREFIX}/${INCLUDEDIR}/h3co-ngtcp2-crypto/ngtcp2"
     "${PREFIX}/${INCLUDEDIR}/h3co-ngtcp2-crypto/ngtcp2/*")
list(SORT _crypto_headers)
if(NOT _crypto_headers STREQUAL "ngtcp2_crypto.h;ngtcp2_crypto_boringssl.h")
  message(FATAL_ERROR "unexpected crypto headers installed: ${_crypto_headers}")
endif()

# The installed command-line tools find Android BoringSSL through their RUNPATH, and only it.
foreach(_tool IN LISTS _tools)
  file(GET_RUNTIME_DEPENDENCIES EXECUTABLES "${PREFIX}/${BINDIR}/${_tool}"
       RESOLVED_DEPENDENCIES_VAR _resolved UNRESOLVED_DEPENDENCIES_VAR _unresolved)
  if(_unresolved)
    message(FATAL_ERROR "installed ${_tool} has unresolved libraries: ${_unresolved}")
  endif()
  list(FILTER _resolved INCLUDE REGEX "/lib(ssl|crypto)\\.so")
  foreach(_lib IN LISTS _resolved)
    if(DEFINED BORINGSSL_LIBRARY_DIR AND NOT _lib MATCHES "^${BORINGSSL_LIBRARY_DIR}/")
      message(FATAL_ERROR "installed ${_tool} loads ${_lib}, not Android BoringSSL from ${BORINGSSL_LIBRARY_DIR}")
    endif()
  endforeach()
  if(NOT _resolved)
    message(FATAL_ERROR "installed ${_tool} does not load libssl/libcrypto at all?")
  endif()
  message(STATUS "installed ${_tool} loads: ${_resolved}")
endforeach()
message(STATUS "h3co installed into ${PREFIX}: ok")
