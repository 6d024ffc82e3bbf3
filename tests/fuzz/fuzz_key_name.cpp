// Key <-> file name (docs/behaviour.md §6): every name decodes to at most one key, and that key
// encodes back to exactly the name; every storable key encodes to a name a directory can
// hold (no '/', no NUL, not "." or "..") that decodes back to the key.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "key_name.hpp"

using kvpfuzz::printable;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    // The input as a file name.
    if (const auto key = kvp::name_to_key(input)) {
        FUZZ_CHECK(!key->empty(), "name " + printable(input) + " decoded to an empty key");
        FUZZ_CHECK(kvp::key_to_name(*key) == input, "name " + printable(input) + " decodes to " +
                                                        printable(*key) + " which encodes to " +
                                                        printable(kvp::key_to_name(*key)));
        FUZZ_CHECK(
            input.find('/') == std::string_view::npos && input.find('\0') == std::string_view::npos,
            "a name with '/' or NUL decoded: " + printable(input));
        FUZZ_CHECK(input != "." && input != "..", "a directory entry decoded as a key");
    }

    // The input as a key.
    const std::string name = kvp::key_to_name(input);
    const std::size_t specials = [&] {
        std::size_t n = 0;
        for (const char c : input) {
            n += (c == '%' || c == '/') ? 1 : 0;
        }
        return n;
    }();
    if (input != "." && input != "..") {
        FUZZ_CHECK(name.size() == input.size() + 2 * specials,
                   "only '%' and '/' grow: " + printable(input) + " -> " + printable(name));
    }
    FUZZ_CHECK(name.find('/') == std::string::npos, "a name holds '/': " + printable(name));
    FUZZ_CHECK(name != "." && name != "..", "key " + printable(input) + " named a dir entry");
    if (!input.empty() && input.find('\0') == std::string_view::npos) {
        const auto back = kvp::name_to_key(name);
        FUZZ_CHECK(back.has_value(),
                   "key " + printable(input) + " -> name " + printable(name) + " does not decode");
        FUZZ_CHECK(*back == input, "key " + printable(input) + " -> " + printable(name) + " -> " +
                                       printable(*back));
    }
    return 0;
}
