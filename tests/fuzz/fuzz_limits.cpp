// The key and value validators (limits.hpp) against the contract's limits computed
// independently (fuzz_support.cpp): a violation is reported exactly when one is crossed,
// the one reported is one really crossed, and its errno is the contract's.
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "limits.hpp"

using kvp::Violation;
using kvpfuzz::Judgement;
using kvpfuzz::printable;

namespace {

void check_reported(Violation v, const Judgement& j, bool is_key, const std::string& what) {
    FUZZ_CHECK((v == Violation::none) == j.ok, what + ": engine says " + kvp::describe(v));
    switch (v) {
        case Violation::none:
            return;
        case Violation::empty_key:
            FUZZ_CHECK(is_key && j.empty, what);
            break;
        case Violation::contains_nul:
            FUZZ_CHECK(j.nul, what);
            break;
        case Violation::too_long_bytes:
        case Violation::too_long_utf16:
            FUZZ_CHECK(j.too_long, what);
            break;
        case Violation::invalid_utf8:
            FUZZ_CHECK(j.bad_utf8, what);
            break;
    }
    const int e = is_key ? kvp::key_errno(v) : kvp::value_errno(v);
    const bool length = v == Violation::too_long_bytes || v == Violation::too_long_utf16;
    const int want = length ? (is_key ? ENAMETOOLONG : EFBIG) : EINVAL;
    FUZZ_CHECK(e == want, what + ": errno " + std::to_string(e));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    const bool valid = kvpfuzz::ref_valid_utf8(text);
    FUZZ_CHECK(kvp::valid_utf8(text) == valid, "valid_utf8 of " + printable(text));
    if (valid) {
        FUZZ_CHECK(kvp::utf16_units(text) == kvpfuzz::ref_utf16_units(text),
                   "utf16_units of " + printable(text));
    }

    for (const auto limits : {kvp::Limits::host, kvp::Limits::pool}) {
        const auto ref =
            limits == kvp::Limits::host ? kvpfuzz::RefLimits::host : kvpfuzz::RefLimits::pool;
        const std::string tag = limits == kvp::Limits::host ? " (host) " : " (pool) ";
        check_reported(kvp::check_key(text, limits), kvpfuzz::judge_key(text, ref), true,
                       "key" + tag + printable(text));
        const Judgement value = kvpfuzz::judge_value(text, ref);
        check_reported(kvp::check_value(text, limits), value, false,
                       "value" + tag + printable(text));
        // A write() refuses at once only what is too long; UTF-8 waits for the commit.
        if (!value.nul) {
            const Violation v = kvp::check_value_length(text, limits);
            FUZZ_CHECK((v != Violation::none) == value.too_long,
                       "check_value_length" + tag + printable(text));
        }
    }
    return 0;
}
