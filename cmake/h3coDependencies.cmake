# Third-party dependencies of h3co on Debian 12, as IMPORTED targets by full path
# (made by h3coFindDependencies.cmake, which the installed h3coConfig.cmake uses
# too), plus the one thing only the build tree does: compile
#
#   h3co_ngtcp2_crypto_boringssl (+ alias h3co::ngtcp2_crypto_boringssl)
#                           STATIC: ngtcp2's BoringSSL crypto helper, compiled
#                           from Debian's ngtcp2 source package
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

# --- ngtcp2's BoringSSL crypto helper from Debian's ngtcp2 source package ----
set(H3CO_NGTCP2_SOURCE_DIR "${PROJECT_SOURCE_DIR}/.deps/ngtcp2-src"
    CACHE PATH "Extracted ngtcp2 source tree (Debian source package, same version as libngtcp2-dev)")

if(NOT EXISTS "${H3CO_NGTCP2_SOURCE_DIR}/crypto/boringssl/boringssl.c")
  message(STATUS "h3co: fetching ngtcp2 source package into ${H3CO_NGTCP2_SOURCE_DIR}")
  execute_process(
    COMMAND "${CMAKE_CURRENT_LIST_DIR}/fetch-ngtcp2-source.sh" "${H3CO_NGTCP2_SOURCE_DIR}"
    RESULT_VARIABLE _h3co_fetch_result)
  if(NOT _h3co_fetch_result EQUAL 0
     OR NOT EXISTS "${H3CO_NGTCP2_SOURCE_DIR}/crypto/boringssl/boringssl.c")
    message(FATAL_ERROR
      "h3co: could not get ngtcp2's source (needed for the BoringSSL crypto helper, "
      "crypto/boringssl/boringssl.c + crypto/shared.c). cmake/fetch-ngtcp2-source.sh "
      "exited with '${_h3co_fetch_result}'.\n"
      "Run ./scripts/bootstrap.sh (needs the Debian mirrors reachable once), or point "
      "-DH3CO_NGTCP2_SOURCE_DIR=<dir> at an extracted ngtcp2 source tree of the "
      "same version as libngtcp2-dev.")
  endif()
endif()

if(NOT TARGET h3co_ngtcp2_crypto_boringssl)
  add_library(h3co_ngtcp2_crypto_boringssl STATIC
    "${H3CO_NGTCP2_SOURCE_DIR}/crypto/boringssl/boringssl.c"
    "${H3CO_NGTCP2_SOURCE_DIR}/crypto/shared.c")
  add_library(h3co::ngtcp2_crypto_boringssl ALIAS h3co_ngtcp2_crypto_boringssl)
  # Third-party C code: no warning flags, no defines (HAVE_CONFIG_H stays unset).
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
  # BoringSSL first: linked before anything else so its -isystem dir comes first.
  target_link_libraries(h3co_ngtcp2_crypto_boringssl PUBLIC
    h3co::boringssl_ssl h3co::boringssl_crypto h3co::ngtcp2)
  # Exported (and installed) as h3co::ngtcp2_crypto_boringssl, like the alias.
  set_target_properties(h3co_ngtcp2_crypto_boringssl PROPERTIES
    POSITION_INDEPENDENT_CODE ON
    EXPORT_NAME ngtcp2_crypto_boringssl)
endif()
