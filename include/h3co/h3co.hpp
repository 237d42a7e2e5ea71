// h3co: HTTP/3 client and server on Asio coroutines, for streaming request bodies as they are made.
#pragma once

/// \namespace h3co
/// HTTP/3 client and server on Asio coroutines: every public type, function and error code. The
/// engine behind them lives in h3co::detail, which is not part of the API.

#include <h3co/client.hpp>
#include <h3co/client_response.hpp>
#include <h3co/connection.hpp>
#include <h3co/error.hpp>
#include <h3co/http_stream.hpp>
#include <h3co/message.hpp>
#include <h3co/options.hpp>
#include <h3co/pipe.hpp>
#include <h3co/request_stream.hpp>
#include <h3co/response.hpp>
#include <h3co/server.hpp>
#include <h3co/server_request.hpp>
#include <h3co/session_cache.hpp>
#include <h3co/sleep.hpp>
#include <h3co/stats.hpp>
#include <h3co/tls.hpp>
#include <h3co/url.hpp>
#include <h3co/versions.hpp>
