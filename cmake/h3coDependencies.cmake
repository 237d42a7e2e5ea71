# Third-party dependencies of h3co on Debian 12, as IMPORTED targets by full path:
#
#   h3co::ngtcp2            libngtcp2.so        (libngtcp2-dev 0.12.1)
#   h3co::nghttp3           libnghttp3.so       (libnghttp3-dev 0.8.0)
#   h3co::boringssl_crypto  android/libcrypto.so (android-libboringssl-dev)
#   h3co::boringssl_ssl     android/libssl.so   (links h3co::boringssl_crypto)
#   h3co::asio              header-only Asio (libasio-dev 1.22.1) + Threads
#   h3co_ngtcp2_crypto_boringssl (+ alias h3co::ngtcp2_crypto_boringssl)
#                           STATIC: ngtcp2's BoringSSL crypto helper, compiled
#                           from Debian's ngtcp2 source package
#
# BoringSSL vs OpenSSL 3: libssl-dev installs /usr/include/openssl too. The
# Android headers live in /usr/include/android/openssl and are added as an
# -isystem directory, which GCC and Clang search BEFORE the default system
# directories (/usr/include), so <openssl/ssl.h> resolves to BoringSSL. A
# configure-time check (OPENSSL_IS_BORINGSSL) makes sure of it.
#
# Never link libngtcp2_crypto_gnutls: it exports the same ngtcp2_crypto_*
# symbols as the helper built here.

include_guard(GLOBAL)

find_package(Threads REQUIRED)

if(CMAKE_LIBRARY_ARCHITECTURE)
  set(_h3co_multiarch_libdir "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}")
else()
  set(_h3co_multiarch_libdir "/usr/lib/x86_64-linux-gnu")
endif()

set(H3CO_BORINGSSL_LIBRARY_DIR "${_h3co_multiarch_libdir}/android"
    CACHE PATH "Directory holding Android BoringSSL's libssl.so/libcrypto.so")
set(H3CO_BORINGSSL_INCLUDE_DIR "/usr/include/android"
    CACHE PATH "Directory holding Android BoringSSL's openssl/*.h")

# --- ngtcp2 / nghttp3 ------------------------------------------------------------
find_path(H3CO_NGTCP2_INCLUDE_DIR ngtcp2/ngtcp2.h)
find_library(H3CO_NGTCP2_LIBRARY NAMES ngtcp2)
find_path(H3CO_NGHTTP3_INCLUDE_DIR nghttp3/nghttp3.h)
find_library(H3CO_NGHTTP3_LIBRARY NAMES nghttp3)
find_path(H3CO_ASIO_INCLUDE_DIR asio.hpp)

foreach(_v H3CO_NGTCP2_INCLUDE_DIR H3CO_NGTCP2_LIBRARY
           H3CO_NGHTTP3_INCLUDE_DIR H3CO_NGHTTP3_LIBRARY H3CO_ASIO_INCLUDE_DIR)
  if(NOT ${_v})
    message(FATAL_ERROR "h3co: ${_v} not found. On Debian 12 run scripts/bootstrap.sh "
                        "(libngtcp2-dev libnghttp3-dev libasio-dev).")
  endif()
endforeach()

# --- BoringSSL (Android build shipped by Debian) ------------------------------
find_library(H3CO_BORINGSSL_SSL_LIBRARY NAMES ssl
             PATHS "${H3CO_BORINGSSL_LIBRARY_DIR}" NO_DEFAULT_PATH)
find_library(H3CO_BORINGSSL_CRYPTO_LIBRARY NAMES crypto
             PATHS "${H3CO_BORINGSSL_LIBRARY_DIR}" NO_DEFAULT_PATH)
if(NOT H3CO_BORINGSSL_SSL_LIBRARY OR NOT H3CO_BORINGSSL_CRYPTO_LIBRARY
   OR NOT EXISTS "${H3CO_BORINGSSL_INCLUDE_DIR}/openssl/ssl.h")
  message(FATAL_ERROR "h3co: Android BoringSSL not found in ${H3CO_BORINGSSL_LIBRARY_DIR} / "
                      "${H3CO_BORINGSSL_INCLUDE_DIR}. Run scripts/bootstrap.sh "
                      "(android-libboringssl-dev).")
endif()

if(NOT TARGET h3co::ngtcp2)
  add_library(h3co::ngtcp2 SHARED IMPORTED GLOBAL)
  set_target_properties(h3co::ngtcp2 PROPERTIES
    IMPORTED_LOCATION "${H3CO_NGTCP2_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${H3CO_NGTCP2_INCLUDE_DIR}")

  add_library(h3co::nghttp3 SHARED IMPORTED GLOBAL)
  set_target_properties(h3co::nghttp3 PROPERTIES
    IMPORTED_LOCATION "${H3CO_NGHTTP3_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${H3CO_NGHTTP3_INCLUDE_DIR}")

  # The Android libraries are not on the loader path: the RUNPATH entry is
  # added through INTERFACE_LINK_OPTIONS so that it is present in build-tree
  # AND installed binaries of every consumer (CMake's own build-tree rpath
  # would be dropped on install).
  add_library(h3co::boringssl_crypto SHARED IMPORTED GLOBAL)
  set_target_properties(h3co::boringssl_crypto PROPERTIES
    IMPORTED_LOCATION "${H3CO_BORINGSSL_CRYPTO_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${H3CO_BORINGSSL_INCLUDE_DIR}"
    INTERFACE_LINK_OPTIONS "LINKER:-rpath,${H3CO_BORINGSSL_LIBRARY_DIR};LINKER:--enable-new-dtags")

  add_library(h3co::boringssl_ssl SHARED IMPORTED GLOBAL)
  set_target_properties(h3co::boringssl_ssl PROPERTIES
    IMPORTED_LOCATION "${H3CO_BORINGSSL_SSL_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${H3CO_BORINGSSL_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "h3co::boringssl_crypto")

  add_library(h3co::asio INTERFACE IMPORTED GLOBAL)
  set_target_properties(h3co::asio PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${H3CO_ASIO_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "Threads::Threads")
endif()

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
  target_include_directories(h3co_ngtcp2_crypto_boringssl
    SYSTEM PUBLIC "${H3CO_NGTCP2_SOURCE_DIR}/crypto/includes")
  target_include_directories(h3co_ngtcp2_crypto_boringssl PRIVATE
    "${H3CO_NGTCP2_SOURCE_DIR}/crypto"
    "${H3CO_NGTCP2_SOURCE_DIR}/lib")
  # BoringSSL first: linked before anything else so its -isystem dir comes first.
  target_link_libraries(h3co_ngtcp2_crypto_boringssl PUBLIC
    h3co::boringssl_ssl h3co::boringssl_crypto h3co::ngtcp2)
  set_target_properties(h3co_ngtcp2_crypto_boringssl PROPERTIES
    POSITION_INDEPENDENT_CODE ON)
endif()
