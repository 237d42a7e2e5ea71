// How h3co is compiled. By default it is header-only: every engine function is `inline` and its
// definition comes with the header. With H3CO_SEPARATE_COMPILATION defined everywhere, the engine's
// non-template parts are declared only, and compiled once in the one translation unit that includes
// <h3co/src.hpp> (or by linking the CMake target h3co::h3co_compiled). Then no public header
// includes ngtcp2, nghttp3 or BoringSSL, and each file that includes h3co compiles much faster.
// Asio (ASIO_SEPARATE_COMPILATION) and Boost.Beast do the same.
#pragma once

#if defined(H3CO_SEPARATE_COMPILATION)
#define H3CO_DECL
#else
#define H3CO_HEADER_ONLY 1
#define H3CO_DECL inline
#endif
