# Third-party dependencies of h3co, as IMPORTED targets by full path (made by
# h3coFindDependencies.cmake, which the installed h3coConfig.cmake uses too; it also
# picks the stack: ngtcp2 0.12 + nghttp3 0.8, or 1.x + 1.x), plus the one thing only
# the build tree does: compile
#
#   h3co_ngtcp2_crypto_boringssl (+ alias h3co::ngtcp2_crypto_boringssl)
#                           STATIC: ngtcp2's BoringSSL crypto helper, compiled
#                           from the ngtcp2 source of the same version as the
#                           ngtcp2 found (H3CO_NGTCP2_SOURCE_DIR)
#
# and print what was found: "h3co: ngtcp2 <version>, nghttp3 <version>, BoringSSL <version>".
#
# Never link libngtcp2_crypto_gnutls: it exports the same ngtcp2_crypto_*
# symbols as the helper built here.

include_guard(GLOBAL)

include(GNUInstallDirs)   # CMAKE_INSTALL_INCLUDEDIR in the helper's install interface
include("${CMAKE_CURRENT_LIST_DIR}/h3coFindDependencies.cmake")

# --- check: <openssl/ssl.h> must be BoringSSL's, and link/run -----------------
if(NOT DEFINED H3CO_HAVE_BORINGSSL_HEADERS)
  include(CheckCXXSourceCompiles)
  include(CMakePushCheckState)
  cmake_push_check_state(RESET)
  set(CMAKE_REQUIRED_LIBRARIES h3co::boringssl_ssl)
  set(CMAKE_REQUIRED_QUIET ON)
  check_cxx_source_compiles([=[
#include <openssl/ssl.h>
#ifndef OPENSSL_IS_BORINGSSL
#error "openssl/ssl.h is not BoringSSL's (OpenSSL headers won)"
#endif
int main() { SSL_CTX *ctx = SSL_CTX_new(TLS_method()); SSL_CTX_free(ctx); return 0; }
]=] H3CO_HAVE_BORINGSSL_HEADERS)
  cmake_pop_check_state()
  if(NOT H3CO_HAVE_BORINGSSL_HEADERS)
    unset(H3CO_HAVE_BORINGSSL_HEADERS CACHE)
    message(FATAL_ERROR "h3co: compiling '#include <openssl/ssl.h>' against "
                        "${H3CO_BORINGSSL_INCLUDE_DIR} did not give BoringSSL "
                        "(OPENSSL_IS_BORINGSSL undefined) or did not link. See "
                        "CMakeFiles/CMakeError.log.")
  endif()
  message(STATUS "h3co: BoringSSL headers take precedence over OpenSSL's - ok")
endif()

# --- the versions ----------------------------------------------------------------
# BoringSSL has no release numbers: its API version, and the Debian package that
# installed the headers when there is one.
set(_h3co_boringssl "API ${H3CO_BORINGSSL_API_VERSION}")
find_program(H3CO_DPKG_QUERY dpkg-query)
mark_as_advanced(H3CO_DPKG_QUERY)
if(H3CO_DPKG_QUERY)
  execute_process(COMMAND "${H3CO_DPKG_QUERY}" -S "${H3CO_BORINGSSL_INCLUDE_DIR}/openssl/base.h"
                  OUTPUT_VARIABLE _h3co_pkg ERROR_QUIET RESULT_VARIABLE _h3co_rc)
  if(_h3co_rc EQUAL 0 AND _h3co_pkg MATCHES "^([^:, ]+)")
    set(_h3co_pkg "${CMAKE_MATCH_1}")
    execute_process(COMMAND "${H3CO_DPKG_QUERY}" -W "-f=\${Version}" "${_h3co_pkg}"
                    OUTPUT_VARIABLE _h3co_pkg_version ERROR_QUIET RESULT_VARIABLE _h3co_rc)
    if(_h3co_rc EQUAL 0 AND _h3co_pkg_version)
      string(APPEND _h3co_boringssl " (${_h3co_pkg} ${_h3co_pkg_version})")
    endif()
  endif()
endif()
message(STATUS "h3co: ngtcp2 ${H3CO_NGTCP2_VERSION}, nghttp3 ${H3CO_NGHTTP3_VERSION}, BoringSSL ${_h3co_boringssl}")
unset(_h3co_boringssl)
unset(_h3co_pkg)
unset(_h3co_pkg_version)
unset(_h3co_rc)

# --- ngtcp2's BoringSSL crypto helper, from the ngtcp2 source of the same version ----
# Where the source is, unless -DH3CO_NGTCP2_SOURCE_DIR=<dir> says:
#   <ngtcp2 prefix>/src/ngtcp2-<version>  when it exists: the stack prefix made by
#                                         scripts/bootstrap.sh --stack 1.x
#   .deps/ngtcp2-src                      otherwise: Debian's source package of the
#                                         installed libngtcp2-dev, fetched here if missing
#                                         (cmake/fetch-ngtcp2-source.sh)
get_filename_component(_h3co_ngtcp2_prefix "${H3CO_NGTCP2_INCLUDE_DIR}" DIRECTORY)
set(_h3co_auto_source_dir "${PROJECT_SOURCE_DIR}/.deps/ngtcp2-src")
if(EXISTS "${_h3co_ngtcp2_prefix}/src/ngtcp2-${H3CO_NGTCP2_VERSION}/crypto/boringssl/boringssl.c")
  set(_h3co_auto_source_dir "${_h3co_ngtcp2_prefix}/src/ngtcp2-${H3CO_NGTCP2_VERSION}")
endif()
# A source dir this file chose before, for another stack, follows the stack.
if(DEFINED _H3CO_NGTCP2_SOURCE_DIR_AUTO AND H3CO_NGTCP2_SOURCE_DIR STREQUAL _H3CO_NGTCP2_SOURCE_DIR_AUTO)
  set_property(CACHE H3CO_NGTCP2_SOURCE_DIR PROPERTY VALUE "${_h3co_auto_source_dir}")
endif()
set(_H3CO_NGTCP2_SOURCE_DIR_AUTO "${_h3co_auto_source_dir}" CACHE INTERNAL "")
set(H3CO_NGTCP2_SOURCE_DIR "${_h3co_auto_source_dir}"
    CACHE PATH "Extracted ngtcp2 source tree of the same version as the ngtcp2 found (for its crypto/boringssl helper)")
unset(_h3co_ngtcp2_prefix)
unset(_h3co_auto_source_dir)

if(NOT EXISTS "${H3CO_NGTCP2_SOURCE_DIR}/crypto/boringssl/boringssl.c" AND NOT H3CO_STACK_PREFIX
   AND H3CO_NGTCP2_SOURCE_DIR STREQUAL "${PROJECT_SOURCE_DIR}/.deps/ngtcp2-src")
  message(STATUS "h3co: fetching ngtcp2 source package into ${H3CO_NGTCP2_SOURCE_DIR}")
  execute_process(
    COMMAND "${CMAKE_CURRENT_LIST_DIR}/fetch-ngtcp2-source.sh" "${H3CO_NGTCP2_SOURCE_DIR}"
    RESULT_VARIABLE _h3co_fetch_result)
  if(NOT _h3co_fetch_result EQUAL 0)
    message(WARNING "h3co: cmake/fetch-ngtcp2-source.sh exited with '${_h3co_fetch_result}'")
  endif()
endif()
if(NOT EXISTS "${H3CO_NGTCP2_SOURCE_DIR}/crypto/boringssl/boringssl.c")
  message(FATAL_ERROR
    "h3co: no ngtcp2 source in H3CO_NGTCP2_SOURCE_DIR=${H3CO_NGTCP2_SOURCE_DIR} (needed for "
    "the BoringSSL crypto helper, crypto/boringssl/boringssl.c + crypto/shared.c).\n"
    "Run ./scripts/bootstrap.sh (Debian 12's ngtcp2 0.12; needs the Debian mirrors reachable "
    "once) or ./scripts/bootstrap.sh --stack 1.x (then -DH3CO_STACK_PREFIX=<h3co>/.deps/stack-1.x/usr), "
    "or point -DH3CO_NGTCP2_SOURCE_DIR=<dir> at an extracted ngtcp2 ${H3CO_NGTCP2_VERSION} source tree.")
endif()
# The helper uses ngtcp2's private headers (lib/ngtcp2_net.h, ...): its source must be of
# exactly the version of the library and headers found.
file(STRINGS "${H3CO_NGTCP2_SOURCE_DIR}/CMakeLists.txt" _h3co_line REGEX "^project\\(ngtcp2 ")
string(REGEX REPLACE "^.*VERSION +([0-9.]+).*$" "\\1" _h3co_source_version "${_h3co_line}")
if(NOT _h3co_source_version STREQUAL H3CO_NGTCP2_VERSION)
  message(FATAL_ERROR
    "h3co: the ngtcp2 source in ${H3CO_NGTCP2_SOURCE_DIR} is version '${_h3co_source_version}', "
    "but the ngtcp2 found (${H3CO_NGTCP2_INCLUDE_DIR}) is ${H3CO_NGTCP2_VERSION}. Point "
    "-DH3CO_NGTCP2_SOURCE_DIR=<dir> at an ngtcp2 ${H3CO_NGTCP2_VERSION} source tree.")
endif()
unset(_h3co_line)
unset(_h3co_source_version)

# What ngtcp2's own build would write into config.h here (its CMakeLists.txt makes these
# checks). Only byte-order helpers in lib/ngtcp2_net.h and crypto/boringssl/boringssl.c
# depend on them; HAVE_CONFIG_H stays unset.
if(NOT DEFINED _H3CO_NGTCP2_CONFIG_DEFINES)
  include(CheckIncludeFile)
  include(CheckSymbolExists)
  include(CMakePushCheckState)
  cmake_push_check_state(RESET)
  set(CMAKE_REQUIRED_QUIET ON)
  set(_h3co_defines "")
  foreach(_h3co_header arpa/inet.h netinet/in.h byteswap.h endian.h sys/endian.h)
    string(MAKE_C_IDENTIFIER "HAVE_${_h3co_header}" _h3co_macro)
    string(TOUPPER "${_h3co_macro}" _h3co_macro)
    check_include_file("${_h3co_header}" ${_h3co_macro})
    if(${_h3co_macro})
      list(APPEND _h3co_defines "${_h3co_macro}=1")
    endif()
  endforeach()
  check_symbol_exists(be64toh "endian.h" H3CO_HAVE_BE64TOH)
  check_symbol_exists(bswap_64 "byteswap.h" H3CO_HAVE_BSWAP_64)
  if(H3CO_HAVE_BE64TOH)
    list(APPEND _h3co_defines "HAVE_DECL_BE64TOH=1")
  else()
    list(APPEND _h3co_defines "HAVE_DECL_BE64TOH=0")
  endif()
  if(H3CO_HAVE_BSWAP_64)
    list(APPEND _h3co_defines "HAVE_DECL_BSWAP_64=1")
  else()
    list(APPEND _h3co_defines "HAVE_DECL_BSWAP_64=0")
  endif()
  if(CMAKE_C_BYTE_ORDER STREQUAL "BIG_ENDIAN")
    list(APPEND _h3co_defines "WORDS_BIGENDIAN=1")
  endif()
  cmake_pop_check_state()
  set(_H3CO_NGTCP2_CONFIG_DEFINES "${_h3co_defines}" CACHE INTERNAL
      "config.h defines for ngtcp2's crypto helper")
  unset(_h3co_defines)
  unset(_h3co_header)
  unset(_h3co_macro)
endif()

if(NOT TARGET h3co_ngtcp2_crypto_boringssl)
  add_library(h3co_ngtcp2_crypto_boringssl STATIC
    "${H3CO_NGTCP2_SOURCE_DIR}/crypto/boringssl/boringssl.c"
    "${H3CO_NGTCP2_SOURCE_DIR}/crypto/shared.c")
  add_library(h3co::ngtcp2_crypto_boringssl ALIAS h3co_ngtcp2_crypto_boringssl)
  # Third-party C code: no warning flags; the config.h defines found above (HAVE_CONFIG_H
  # stays unset).
  # Its public headers are SYSTEM for consumers so -Werror never trips on them.
  # Installed, its two public headers go to <includedir>/h3co-ngtcp2-crypto/ngtcp2/
  # (cmake/h3coInstall.cmake): a directory of h3co's own, so that an install into
  # /usr never collides with a distribution's ngtcp2 crypto headers.
  # (An imported target's include directories are SYSTEM for its consumers anyway.)
  target_include_directories(h3co_ngtcp2_crypto_boringssl SYSTEM PUBLIC
    "$<BUILD_INTERFACE:${H3CO_NGTCP2_SOURCE_DIR}/crypto/includes>")
  target_include_directories(h3co_ngtcp2_crypto_boringssl PUBLIC
    "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/h3co-ngtcp2-crypto>")
  target_include_directories(h3co_ngtcp2_crypto_boringssl PRIVATE
    "${H3CO_NGTCP2_SOURCE_DIR}/crypto"
    "${H3CO_NGTCP2_SOURCE_DIR}/lib")
  target_compile_definitions(h3co_ngtcp2_crypto_boringssl PRIVATE ${_H3CO_NGTCP2_CONFIG_DEFINES})
  # BoringSSL first: linked before anything else so its -isystem dir comes first.
  target_link_libraries(h3co_ngtcp2_crypto_boringssl PUBLIC
    h3co::boringssl_ssl h3co::boringssl_crypto h3co::ngtcp2)
  # Exported (and installed) as h3co::ngtcp2_crypto_boringssl, like the alias.
  set_target_properties(h3co_ngtcp2_crypto_boringssl PROPERTIES
    POSITION_INDEPENDENT_CODE ON
    EXPORT_NAME ngtcp2_crypto_boringssl)
endif()
