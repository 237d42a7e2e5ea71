// One libFuzzer target: H3CO_FUZZ_HEADER defines h3co_fuzz::H3CO_FUZZ_TARGET(data, size) (see
// tests/fuzz/CMakeLists.txt for the list). The same functions run the committed corpus and every
// past crash in the ordinary test suite (tests/test_fuzz_corpus.cpp).
#include H3CO_FUZZ_HEADER

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return h3co_fuzz::H3CO_FUZZ_TARGET(data, size);
}
