// The engine's non-template code, compiled once. With H3CO_SEPARATE_COMPILATION defined for every
// file that includes h3co, include this header in exactly one source file of the program (or link
// the CMake target h3co::h3co_compiled, which is that file). See detail/config.hpp.
#pragma once

#if !defined(H3CO_SEPARATE_COMPILATION)
#error "<h3co/src.hpp> is for H3CO_SEPARATE_COMPILATION builds; without it h3co is header-only"
#endif

#include <h3co/detail/impl/session.ipp>
#include <h3co/detail/impl/server_endpoint.ipp>
#include <h3co/detail/impl/stream_machine.ipp>
#include <h3co/detail/impl/tls_context.ipp>
