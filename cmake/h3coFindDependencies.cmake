# The third-party libraries h3co links, as IMPORTED targets by full path. Shared by
# the build tree (included from h3coDependencies.cmake) and the installed package
# (included from h3coConfig.cmake), so a find_package(h3co) consumer gets exactly
# the targets an add_subdirectory() consumer gets:
#
#   h3co::ngtcp2            libngtcp2.so         (libngtcp2-dev 0.12.1)
#   h3co::nghttp3           libnghttp3.so        (libnghttp3-dev 0.8.0)
#   h3co::boringssl_crypto  android/libcrypto.so (android-libboringssl-dev)
#   h3co::boringssl_ssl     android/libssl.so    (links h3co::boringssl_crypto)
#   h3co::asio              header-only Asio     (libasio-dev 1.22.1) + Threads
#   Threads::Threads
#
# Inputs (all optional):
#   H3CO_BORINGSSL_LIBRARY_DIR / H3CO_BORINGSSL_INCLUDE_DIR  cache paths; the
#       installed config presets their defaults to what h3co was built with.
#   _h3co_find_mode  "config" inside h3coConfig.cmake: a missing dependency then
#       sets h3co_FOUND to FALSE with h3co_NOT_FOUND_MESSAGE (find_package's way
#       of saying "not found") instead of stopping the configure.
#
# BoringSSL vs OpenSSL 3: libssl-dev installs /usr/include/openssl too. The
# Android headers live in /usr/include/android/openssl; imported targets' include
# directories are -isystem directories, which GCC and Clang search BEFORE the
# default system directories (/usr/include), so <openssl/ssl.h> resolves to
# BoringSSL.

# No include_guard: the file is idempotent (every target is guarded), and a
# second find_package(h3co) in a sibling directory must see its targets again.

macro(_h3co_dependency_missing what)
  if(_h3co_find_mode STREQUAL "config")
    set(h3co_FOUND FALSE)
    set(h3co_NOT_FOUND_MESSAGE "h3co: ${what} not found. On Debian 12: apt-get install libngtcp2-dev libnghttp3-dev android-libboringssl-dev libasio-dev")
    return()
  else()
    message(FATAL_ERROR "h3co: ${what} not found. On Debian 12 run scripts/bootstrap.sh "
                        "(libngtcp2-dev libnghttp3-dev android-libboringssl-dev libasio-dev).")
  endif()
endmacro()

if(_h3co_find_mode STREQUAL "config")
  include(CMakeFindDependencyMacro)
  find_dependency(Threads)   # returns from this file with h3co_FOUND FALSE if missing
else()
  find_package(Threads REQUIRED)
endif()

if(CMAKE_LIBRARY_ARCHITECTURE)
  set(_h3co_multiarch_libdir "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}")
else()
  set(_h3co_multiarch_libdir "/usr/lib/x86_64-linux-gnu")
endif()
if(NOT DEFINED _h3co_default_boringssl_library_dir)
  set(_h3co_default_boringssl_library_dir "${_h3co_multiarch_libdir}/android")
endif()
if(NOT DEFINED _h3co_default_boringssl_include_dir)
  set(_h3co_default_boringssl_include_dir "/usr/include/android")
endif()

set(H3CO_BORINGSSL_LIBRARY_DIR "${_h3co_default_boringssl_library_dir}"
    CACHE PATH "Directory holding Android BoringSSL's libssl.so/libcrypto.so")
set(H3CO_BORINGSSL_INCLUDE_DIR "${_h3co_default_boringssl_include_dir}"
    CACHE PATH "Directory holding Android BoringSSL's openssl/*.h")

# --- ngtcp2 / nghttp3 / Asio -----------------------------------------------------
find_path(H3CO_NGTCP2_INCLUDE_DIR ngtcp2/ngtcp2.h)
find_library(H3CO_NGTCP2_LIBRARY NAMES ngtcp2)
find_path(H3CO_NGHTTP3_INCLUDE_DIR nghttp3/nghttp3.h)
find_library(H3CO_NGHTTP3_LIBRARY NAMES nghttp3)
find_path(H3CO_ASIO_INCLUDE_DIR asio.hpp)
mark_as_advanced(H3CO_NGTCP2_INCLUDE_DIR H3CO_NGTCP2_LIBRARY H3CO_NGHTTP3_INCLUDE_DIR
                 H3CO_NGHTTP3_LIBRARY H3CO_ASIO_INCLUDE_DIR)

foreach(_h3co_v H3CO_NGTCP2_INCLUDE_DIR H3CO_NGTCP2_LIBRARY
                H3CO_NGHTTP3_INCLUDE_DIR H3CO_NGHTTP3_LIBRARY H3CO_ASIO_INCLUDE_DIR)
  if(NOT ${_h3co_v})
    _h3co_dependency_missing("${_h3co_v}")
  endif()
endforeach()

# --- BoringSSL (Android build shipped by Debian) ------------------------------
find_library(H3CO_BORINGSSL_SSL_LIBRARY NAMES ssl
             PATHS "${H3CO_BORINGSSL_LIBRARY_DIR}" NO_DEFAULT_PATH)
find_library(H3CO_BORINGSSL_CRYPTO_LIBRARY NAMES crypto
             PATHS "${H3CO_BORINGSSL_LIBRARY_DIR}" NO_DEFAULT_PATH)
mark_as_advanced(H3CO_BORINGSSL_SSL_LIBRARY H3CO_BORINGSSL_CRYPTO_LIBRARY)
if(NOT H3CO_BORINGSSL_SSL_LIBRARY OR NOT H3CO_BORINGSSL_CRYPTO_LIBRARY
   OR NOT EXISTS "${H3CO_BORINGSSL_INCLUDE_DIR}/openssl/ssl.h")
  _h3co_dependency_missing("Android BoringSSL (${H3CO_BORINGSSL_LIBRARY_DIR}, ${H3CO_BORINGSSL_INCLUDE_DIR})")
endif()

# --- the imported targets ----------------------------------------------------------
# GLOBAL in the build tree (visible to every directory of a super-project); in the
# installed config they are ordinary directory-scoped imported targets, as find
# modules make them (CMAKE_FIND_PACKAGE_TARGETS_GLOBAL promotes them if wanted).
if(_h3co_find_mode STREQUAL "config")
  set(_h3co_global "")
else()
  set(_h3co_global GLOBAL)
endif()

# _h3co_import_shared(TARGET LIBRARY INCLUDE_DIR [LINK_OPTIONS ...] [LINK_LIBRARIES ...]): one
# imported shared library, unless an earlier include (find_package twice, add_subdirectory)
# made it already.
function(_h3co_import_shared target library include_dir)
  cmake_parse_arguments(PARSE_ARGV 3 arg "" "" "LINK_OPTIONS;LINK_LIBRARIES")
  if(TARGET ${target})
    return()
  endif()
  add_library(${target} SHARED IMPORTED ${_h3co_global})
  set_target_properties(${target} PROPERTIES
    IMPORTED_LOCATION "${library}"
    INTERFACE_INCLUDE_DIRECTORIES "${include_dir}"
    INTERFACE_LINK_OPTIONS "${arg_LINK_OPTIONS}"
    INTERFACE_LINK_LIBRARIES "${arg_LINK_LIBRARIES}")
endfunction()

_h3co_import_shared(h3co::ngtcp2 "${H3CO_NGTCP2_LIBRARY}" "${H3CO_NGTCP2_INCLUDE_DIR}")
_h3co_import_shared(h3co::nghttp3 "${H3CO_NGHTTP3_LIBRARY}" "${H3CO_NGHTTP3_INCLUDE_DIR}")
# The Android libraries are not on the loader path: the RUNPATH entry is added through
# INTERFACE_LINK_OPTIONS so that it is present in build-tree AND installed binaries of every
# consumer (CMake's own build-tree rpath would be dropped on install).
_h3co_import_shared(h3co::boringssl_crypto "${H3CO_BORINGSSL_CRYPTO_LIBRARY}" "${H3CO_BORINGSSL_INCLUDE_DIR}"
  LINK_OPTIONS "LINKER:-rpath,${H3CO_BORINGSSL_LIBRARY_DIR}" "LINKER:--enable-new-dtags")
_h3co_import_shared(h3co::boringssl_ssl "${H3CO_BORINGSSL_SSL_LIBRARY}" "${H3CO_BORINGSSL_INCLUDE_DIR}"
  LINK_LIBRARIES h3co::boringssl_crypto)

if(NOT TARGET h3co::asio)
  add_library(h3co::asio INTERFACE IMPORTED ${_h3co_global})
  set_target_properties(h3co::asio PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${H3CO_ASIO_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "Threads::Threads")
endif()

unset(_h3co_global)
