// The baseline: a file that includes <asio.hpp> and runs an io_context.
#include <asio.hpp>

int main() {
    asio::io_context io;
    io.run();
}
