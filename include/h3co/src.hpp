// The engine's non-template code, compiled once, and the library's templates instantiated for the
// default executor (asio::any_io_executor). With H3CO_SEPARATE_COMPILATION defined for every file
// that includes h3co, include this header in exactly one source file of the program (or link the
// CMake target h3co::h3co_compiled, which is that file). See detail/config.hpp.
#pragma once

#if !defined(H3CO_SEPARATE_COMPILATION)
#error "<h3co/src.hpp> is for H3CO_SEPARATE_COMPILATION builds; without it h3co is header-only"
#endif

#include <h3co/detail/impl/server_endpoint.ipp>
#include <h3co/detail/impl/session.ipp>
#include <h3co/detail/impl/stream_machine.ipp>
#include <h3co/detail/impl/tls_context.ipp>
#include <h3co/detail/impl/tls_peer.ipp>
#include <h3co/detail/impl/versions.ipp>

#include <h3co/h3co.hpp>

namespace h3co {
template class basic_connection<asio::any_io_executor>;
template class basic_client<asio::any_io_executor>;
template void basic_client<asio::any_io_executor>::launch<basic_pipe_reader<asio::any_io_executor>>(
    std::shared_ptr<basic_client<asio::any_io_executor>::shared>, h3co::request,
    std::optional<basic_pipe_reader<asio::any_io_executor>>, basic_client<asio::any_io_executor>::response_op);
template class basic_http_stream<asio::any_io_executor>;
template class basic_request_stream<asio::any_io_executor>;
template class basic_pipe_reader<asio::any_io_executor>;
template class basic_pipe_writer<asio::any_io_executor>;
template class basic_server<asio::any_io_executor>;
template class basic_server_request<asio::any_io_executor>;
template class basic_response<asio::any_io_executor>;

namespace detail {
template class connection_driver<asio::any_io_executor>;
template class client_session<asio::any_io_executor>;
template class server_session<asio::any_io_executor>;
template class server_core<asio::any_io_executor>;
template asio::awaitable<std::pair<std::error_code, std::shared_ptr<client_session<asio::any_io_executor>>>,
                         asio::any_io_executor>
connect_attempts<asio::any_io_executor>(asio::any_io_executor, std::string, std::uint16_t, std::shared_ptr<tls_context>,
                                        connection_options);
template void launch_connect<asio::any_io_executor>(asio::any_io_executor, std::string, std::uint16_t,
                                                    std::shared_ptr<tls_context>, connection_options,
                                                    pending_op<std::error_code, basic_connection<asio::any_io_executor>>);
template asio::awaitable<void, asio::any_io_executor>
pump_body<asio::any_io_executor, basic_pipe_reader<asio::any_io_executor>>(basic_pipe_reader<asio::any_io_executor>,
                                                                        basic_http_stream<asio::any_io_executor>);
}  // namespace detail
}  // namespace h3co
