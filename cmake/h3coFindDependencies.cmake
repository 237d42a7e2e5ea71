# The third-party libraries h3co links, as IMPORTED targets by full path. Shared by
# the build tree (included from h3coDependencies.cmake) and the installed package
# (included from h3coConfig.cmake), so a find_package(h3co) consumer gets exactly
# the targets an add_subdirectory() consumer gets:
#
#   h3co::ngtcp2            libngtcp2.so         (ngtcp2 0.12 or >= 1.11)
#   h3co::nghttp3           libnghttp3.so        (nghttp3 0.8 or >= 1.8, same stack)
#   h3co::boringssl_crypto  android/libcrypto.so (android-libboringssl-dev)
#   h3co::boringssl_ssl     android/libssl.so    (links h3co::boringssl_crypto)
#   h3co::asio              header-only Asio     (libasio-dev 1.22.1) + Threads
#   Threads::Threads
#
# Two stacks are supported: ngtcp2 0.12 + nghttp3 0.8 (Debian 12's packages) and
# ngtcp2 1.x + nghttp3 1.x (Debian 13's: 1.11 + 1.8). Which one is what is found:
#   H3CO_STACK_PREFIX  (cache PATH, empty by default) a prefix holding include/ngtcp2,
#       include/nghttp3 and lib[/<multiarch>]/lib{ngtcp2,nghttp3}.so; when set, ngtcp2 and
#       nghttp3 are searched there only (scripts/bootstrap.sh --stack 1.x makes
#       .deps/stack-1.x/usr). When empty, CMake's usual search applies (CMAKE_PREFIX_PATH,
#       then the system): a machine with 1.x packages installed needs nothing else.
# A library outside the linker's default directories gets a RUNPATH entry, like Android
# BoringSSL (below), in build-tree and installed binaries alike.
#
# Sets, in the including scope:
#   H3CO_NGTCP2_VERSION, H3CO_NGHTTP3_VERSION   from ngtcp2/version.h, nghttp3/version.h
#   H3CO_STACK                                  "0.12" or "1.x"
#   H3CO_BORINGSSL_API_VERSION                  BORINGSSL_API_VERSION of openssl/base.h
#
# Inputs (all optional):
#   H3CO_STACK_PREFIX, H3CO_BORINGSSL_LIBRARY_DIR / H3CO_BORINGSSL_INCLUDE_DIR  cache
#       paths; the installed config presets their defaults to what h3co was built with.
#   _h3co_built_ngtcp2_version / _h3co_built_nghttp3_version  (installed config) the
#       versions h3co was built with: anything else is "not found", so that a consumer
#       never compiles h3co against another stack than its crypto helper was built for.
#   _h3co_find_mode  "config" inside h3coConfig.cmake: a missing dependency then
#       sets h3co_FOUND to FALSE with h3co_NOT_FOUND_MESSAGE (find_package's way
#       of saying "not found") instead of stopping the configure.
#
# BoringSSL vs OpenSSL 3: libssl-dev installs /usr/include/openssl too. The
# Android headers live in /usr/include/android/openssl; imported targets' include
# directories are -isystem directories, which GCC and Clang search BEFORE the
# default system directories (/usr/include), so <openssl/ssl.h> resolves to
# BoringSSL. The same holds for a stack prefix's <ngtcp2/ngtcp2.h> over a system
# ngtcp2 0.12 in /usr/include.

# No include_guard: the file is idempotent (every target is guarded), and a
# second find_package(h3co) in a sibling directory must see its targets again.

macro(_h3co_dependency_missing what)
  if(_h3co_find_mode STREQUAL "config")
    set(h3co_FOUND FALSE)
    set(h3co_NOT_FOUND_MESSAGE "h3co: ${what} not found. On Debian 12: apt-get install libngtcp2-dev libnghttp3-dev android-libboringssl-dev libasio-dev")
    return()
  else()
    message(FATAL_ERROR "h3co: ${what} not found. On Debian 12 run scripts/bootstrap.sh "
                        "(libngtcp2-dev libnghttp3-dev android-libboringssl-dev libasio-dev), "
                        "or scripts/bootstrap.sh --stack 1.x and -DH3CO_STACK_PREFIX=<h3co>/.deps/stack-1.x/usr.")
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
if(NOT DEFINED _h3co_default_stack_prefix)
  set(_h3co_default_stack_prefix "")
endif()
set(H3CO_STACK_PREFIX "${_h3co_default_stack_prefix}" CACHE PATH
    "Prefix of the ngtcp2 + nghttp3 to use (e.g. <h3co>/.deps/stack-1.x/usr); empty: CMake's usual search")
# A different prefix than the cached results were found with: search again.
if(DEFINED _H3CO_STACK_PREFIX_USED AND NOT _H3CO_STACK_PREFIX_USED STREQUAL H3CO_STACK_PREFIX)
  unset(H3CO_NGTCP2_INCLUDE_DIR CACHE)
  unset(H3CO_NGTCP2_LIBRARY CACHE)
  unset(H3CO_NGHTTP3_INCLUDE_DIR CACHE)
  unset(H3CO_NGHTTP3_LIBRARY CACHE)
endif()
set(_H3CO_STACK_PREFIX_USED "${H3CO_STACK_PREFIX}" CACHE INTERNAL "")

if(H3CO_STACK_PREFIX)
  set(_h3co_stack_inc PATHS "${H3CO_STACK_PREFIX}/include" NO_DEFAULT_PATH)
  set(_h3co_stack_lib PATHS "${H3CO_STACK_PREFIX}/lib/${CMAKE_LIBRARY_ARCHITECTURE}"
                            "${H3CO_STACK_PREFIX}/lib" "${H3CO_STACK_PREFIX}/lib64" NO_DEFAULT_PATH)
else()
  set(_h3co_stack_inc "")
  set(_h3co_stack_lib "")
endif()
find_path(H3CO_NGTCP2_INCLUDE_DIR ngtcp2/ngtcp2.h ${_h3co_stack_inc})
find_library(H3CO_NGTCP2_LIBRARY NAMES ngtcp2 ${_h3co_stack_lib})
find_path(H3CO_NGHTTP3_INCLUDE_DIR nghttp3/nghttp3.h ${_h3co_stack_inc})
find_library(H3CO_NGHTTP3_LIBRARY NAMES nghttp3 ${_h3co_stack_lib})
find_path(H3CO_ASIO_INCLUDE_DIR asio.hpp)
mark_as_advanced(H3CO_NGTCP2_INCLUDE_DIR H3CO_NGTCP2_LIBRARY H3CO_NGHTTP3_INCLUDE_DIR
                 H3CO_NGHTTP3_LIBRARY H3CO_ASIO_INCLUDE_DIR)
unset(_h3co_stack_inc)
unset(_h3co_stack_lib)

foreach(_h3co_v H3CO_NGTCP2_INCLUDE_DIR H3CO_NGTCP2_LIBRARY
                H3CO_NGHTTP3_INCLUDE_DIR H3CO_NGHTTP3_LIBRARY H3CO_ASIO_INCLUDE_DIR)
  if(NOT ${_h3co_v})
    if(H3CO_STACK_PREFIX AND _h3co_v MATCHES "NG")
      _h3co_dependency_missing("${_h3co_v} (in H3CO_STACK_PREFIX=${H3CO_STACK_PREFIX})")
    else()
      _h3co_dependency_missing("${_h3co_v}")
    endif()
  endif()
endforeach()

# _h3co_header_define(VAR FILE MACRO): VAR = the string MACRO is #defined to in FILE.
macro(_h3co_header_define var file macro)
  file(STRINGS "${file}" _h3co_line REGEX "^#define ${macro} ")
  string(REGEX REPLACE "^#define ${macro} +\"?([^\" ]*)\"?.*$" "\\1" ${var} "${_h3co_line}")
  unset(_h3co_line)
endmacro()
_h3co_header_define(H3CO_NGTCP2_VERSION "${H3CO_NGTCP2_INCLUDE_DIR}/ngtcp2/version.h" NGTCP2_VERSION)
_h3co_header_define(H3CO_NGHTTP3_VERSION "${H3CO_NGHTTP3_INCLUDE_DIR}/nghttp3/version.h" NGHTTP3_VERSION)

# The supported pairs: ngtcp2 0.12 + nghttp3 0.8, or ngtcp2 >= 1.11 + nghttp3 >= 1.8
# (ngtcp2 and nghttp3 keep their API within 1.x).
if(H3CO_NGTCP2_VERSION MATCHES "^0\\.12\\." AND H3CO_NGHTTP3_VERSION MATCHES "^0\\.8\\.")
  set(H3CO_STACK "0.12")
elseif(H3CO_NGTCP2_VERSION VERSION_GREATER_EQUAL 1.11 AND H3CO_NGTCP2_VERSION VERSION_LESS 2
       AND H3CO_NGHTTP3_VERSION VERSION_GREATER_EQUAL 1.8 AND H3CO_NGHTTP3_VERSION VERSION_LESS 2)
  set(H3CO_STACK "1.x")
else()
  string(CONCAT _h3co_what
    "a supported ngtcp2 + nghttp3 pair (0.12 + 0.8, or 1.x >= 1.11 + 1.x >= 1.8; found ngtcp2 "
    "'${H3CO_NGTCP2_VERSION}' in ${H3CO_NGTCP2_INCLUDE_DIR} and nghttp3 '${H3CO_NGHTTP3_VERSION}' "
    "in ${H3CO_NGHTTP3_INCLUDE_DIR}: point -DH3CO_STACK_PREFIX=<prefix> at one stack)")
  _h3co_dependency_missing("${_h3co_what}")
endif()
if(DEFINED _h3co_built_ngtcp2_version
   AND NOT (H3CO_NGTCP2_VERSION STREQUAL _h3co_built_ngtcp2_version
            AND H3CO_NGHTTP3_VERSION STREQUAL _h3co_built_nghttp3_version))
  string(CONCAT _h3co_what
    "ngtcp2 ${_h3co_built_ngtcp2_version} + nghttp3 ${_h3co_built_nghttp3_version} (what h3co and "
    "its crypto helper were built with; found ngtcp2 ${H3CO_NGTCP2_VERSION} in "
    "${H3CO_NGTCP2_INCLUDE_DIR}, nghttp3 ${H3CO_NGHTTP3_VERSION} in ${H3CO_NGHTTP3_INCLUDE_DIR})")
  _h3co_dependency_missing("${_h3co_what}")
endif()

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
_h3co_header_define(H3CO_BORINGSSL_API_VERSION "${H3CO_BORINGSSL_INCLUDE_DIR}/openssl/base.h"
                    BORINGSSL_API_VERSION)

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

# _h3co_runpath(VAR LIBRARY): VAR = link options giving LIBRARY's directory a RUNPATH
# entry, or nothing when the directory is one the linker and loader search anyway.
function(_h3co_runpath var library)
  get_filename_component(_dir "${library}" DIRECTORY)
  foreach(_implicit IN LISTS CMAKE_PLATFORM_IMPLICIT_LINK_DIRECTORIES
                             CMAKE_C_IMPLICIT_LINK_DIRECTORIES CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES)
    get_filename_component(_implicit "${_implicit}" REALPATH)
    get_filename_component(_real "${_dir}" REALPATH)
    if(_real STREQUAL _implicit)
      set(${var} "" PARENT_SCOPE)
      return()
    endif()
  endforeach()
  set(${var} "LINKER:-rpath,${_dir}" "LINKER:--enable-new-dtags" PARENT_SCOPE)
endfunction()

# ngtcp2 and nghttp3 of a stack prefix (.deps/stack-1.x) are linked as shared objects with
# a RUNPATH, not as the static libraries Debian also ships: those are built -fPIE, not
# -fPIC, so a consumer building a shared library could not link them ("relocation
# R_X86_64_PC32 against symbol `stderr' can not be used when making a shared object").
_h3co_runpath(_h3co_ngtcp2_rpath "${H3CO_NGTCP2_LIBRARY}")
_h3co_runpath(_h3co_nghttp3_rpath "${H3CO_NGHTTP3_LIBRARY}")
_h3co_import_shared(h3co::ngtcp2 "${H3CO_NGTCP2_LIBRARY}" "${H3CO_NGTCP2_INCLUDE_DIR}"
  LINK_OPTIONS ${_h3co_ngtcp2_rpath})
_h3co_import_shared(h3co::nghttp3 "${H3CO_NGHTTP3_LIBRARY}" "${H3CO_NGHTTP3_INCLUDE_DIR}"
  LINK_OPTIONS ${_h3co_nghttp3_rpath})
unset(_h3co_ngtcp2_rpath)
unset(_h3co_nghttp3_rpath)
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
