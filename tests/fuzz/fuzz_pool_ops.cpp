// The engine's operations on a fuzzed pool (docs/behaviour.md §2, §5): the input builds a pool file
// on tmpfs (structured records with garbage after the NULs, duplicates, empty keys,
// unterminated fields, a partial tail — or raw bytes) and then a sequence of PoolFile
// operations, with now and then another writer editing the file behind the engine's back.
// After every step the file is held against a model kept independently of the engine:
//   - a refused operation throws the contract's errno and leaves the file byte-identical,
//   - get/list answer the first record of each key, as the file says,
//   - after set/rename the key has exactly one record and it is zero-filled,
//   - records of keys the operation did not name are untouched (as decoded values),
//   - a file the engine changed holds whole records only.
#include <fcntl.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "error.hpp"
#include "fuzz_support.hpp"
#include "pool_file.hpp"

using kvpfuzz::printable;
using kvpfuzz::Rec;

namespace {

const std::vector<std::string>& palette() {
    static const std::vector<std::string> keys = {
        "a",
        "b",
        "c",
        "%",
        "a/b",
        ".",
        "..",
        "",
        "\xff\xfe",             // invalid UTF-8
        "\xc3\xa9t\xc3\xa9",    // "été"
        std::string(254, 'h'),  // the host's limit
        std::string(255, 'h'),
        std::string(511, 'p'),  // the format's limit
        std::string(512, 'q'),  // over it; also what an unterminated key field reads as
        std::string("nul\0in", 6),
        "CLOUD_INIT|1700000000|start|init-network/check-cache|0f6c",
    };
    return keys;
}

std::string pick_key(FuzzedDataProvider& in, const std::vector<std::string>& known) {
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {
        case 0:
            return in.ConsumeRandomLengthString(24);
        case 1:
            if (!known.empty()) {
                return known[in.ConsumeIntegralInRange<std::size_t>(0, known.size() - 1)];
            }
            [[fallthrough]];
        default:
            return palette()[in.ConsumeIntegralInRange<std::size_t>(0, palette().size() - 1)];
    }
}

std::string pick_value(FuzzedDataProvider& in) {
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
        case 0:
            return std::string(1022, 'v');
        case 1:
            return std::string(1023, 'v');
        case 2:
            return std::string(2047, 'w');
        case 3:
            return std::string(2048, 'w');
        case 4:
            return std::string(in.ConsumeIntegralInRange<std::size_t>(0, 600), '\xe2');
        default:
            return in.ConsumeRandomLengthString(40);
    }
}

// A record as another writer may leave it: the strings, then garbage after their NULs.
std::string messy_record(FuzzedDataProvider& in, const std::string& key, const std::string& value) {
    const char fill = static_cast<char>(in.ConsumeIntegral<std::uint8_t>());
    return kvpfuzz::encode_record_cut(key, value, fill);
}

std::string build_pool(FuzzedDataProvider& in) {
    if (in.ConsumeBool()) {
        return in.ConsumeBytesAsString(in.ConsumeIntegralInRange<std::size_t>(0, 4 * 2560 + 9));
    }
    std::string bytes;
    const int n = in.ConsumeIntegralInRange<int>(0, 8);
    for (int i = 0; i < n; ++i) {
        const std::string key = pick_key(in, {});
        bytes += messy_record(in, key, in.ConsumeRandomLengthString(30));
    }
    if (in.ConsumeIntegralInRange<int>(0, 3) == 0) {
        bytes += std::string(in.ConsumeIntegralInRange<std::size_t>(1, 2559), 'T');
    }
    return bytes;
}

std::vector<std::string> keys_in(const std::vector<Rec>& records) {
    std::vector<std::string> keys;
    for (const Rec& r : records) {
        keys.push_back(r.key);
    }
    return keys;
}

std::multiset<Rec> others(const std::vector<Rec>& records, const std::set<std::string>& named) {
    std::multiset<Rec> out;
    for (const Rec& r : records) {
        if (r.key.empty() || named.count(r.key) == 0) {
            out.insert(r);
        }
    }
    return out;
}

std::string show(const std::vector<Rec>& records) {
    std::string out;
    for (const Rec& r : records) {
        out += "\n    " + printable(r.key, 40) + " = " + printable(r.value, 40);
    }
    return out;
}

std::size_t count_key(const std::vector<Rec>& records, const std::string& key) {
    return static_cast<std::size_t>(
        std::count_if(records.begin(), records.end(), [&](const Rec& r) { return r.key == key; }));
}

// The expected errno for a key/value under `limits`, 0 when acceptable. Several crossed
// limits allow several answers; `alternatives` gets them all.
std::set<int> key_errnos(const std::string& key, kvpfuzz::RefLimits limits) {
    const auto j = kvpfuzz::judge_key(key, limits);
    std::set<int> e;
    if (j.too_long)
        e.insert(ENAMETOOLONG);
    if (j.empty || j.nul || j.bad_utf8)
        e.insert(EINVAL);
    return e;
}
std::set<int> value_errnos(const std::string& value, kvpfuzz::RefLimits limits) {
    const auto j = kvpfuzz::judge_value(value, limits);
    std::set<int> e;
    if (j.too_long)
        e.insert(EFBIG);
    if (j.nul || j.bad_utf8)
        e.insert(EINVAL);
    return e;
}

void direct_edit(FuzzedDataProvider& in, const std::string& path, const std::string& bytes,
                 const std::vector<std::string>& known) {
    // Another writer (hv_kvp_daemon, cloud-init) on its own descriptor: a whole record
    // appended, or one rewritten in place. Only on whole-record files.
    if (bytes.size() % kvpfuzz::kRecord != 0) {
        return;
    }
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        return;
    }
    const std::string key = pick_key(in, known);
    const std::string rec = messy_record(in, key, in.ConsumeRandomLengthString(30));
    const std::size_t n = bytes.size() / kvpfuzz::kRecord;
    const std::size_t at = in.ConsumeIntegralInRange<std::size_t>(0, n);
    const ssize_t w =
        ::pwrite(fd, rec.data(), rec.size(), static_cast<off_t>(at * kvpfuzz::kRecord));
    FUZZ_CHECK(w == static_cast<ssize_t>(rec.size()), "direct write");
    ::close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const std::string path = kvpfuzz::scratch_dir() + "/.kvp_pool_1";
    const bool create = in.ConsumeBool();
    if (in.ConsumeIntegralInRange<int>(0, 7) == 0) {
        ::unlink(path.c_str());
    } else {
        kvpfuzz::write_whole(path, build_pool(in));
    }

    // The PoolFile objects live as long as the process: closing an inotify descriptor waits
    // for an RCU grace period (~10-20 ms), which would slow the fuzzer a hundredfold. Each
    // input rewrites the file first, so what an object cached before is stale and must be
    // dropped through the change detection, as it is when another writer changes a pool.
    static kvp::PoolFile creating(path, kvp::PoolOptions{std::chrono::milliseconds(2000), true});
    static kvp::PoolFile plain(path, kvp::PoolOptions{std::chrono::milliseconds(2000), false});
    kvp::PoolFile& pool = create ? creating : plain;
    bool exists = false;
    std::string before = kvpfuzz::read_whole(path, &exists);

    const int steps = in.ConsumeIntegralInRange<int>(1, 12);
    for (int step = 0; step < steps && in.remaining_bytes() > 0; ++step) {
        const std::vector<Rec> records = kvpfuzz::decode_records(before);
        const std::map<std::string, std::string> model = kvpfuzz::first_values(records);
        const std::vector<std::string> known = keys_in(records);
        const bool host = in.ConsumeBool();
        const auto limits = host ? kvp::Limits::host : kvp::Limits::pool;
        const auto ref = host ? kvpfuzz::RefLimits::host : kvpfuzz::RefLimits::pool;
        const int op = in.ConsumeIntegralInRange<int>(0, 7);

        std::set<int> allowed;        // errnos the operation may fail with (empty: must succeed)
        std::set<std::string> named;  // keys the operation may change
        std::optional<std::pair<std::string, std::string>> one;  // key that must hold one record
        std::map<std::string, std::string> expect = model;
        std::string what;
        int err = 0;
        std::optional<bool> answer;
        std::optional<bool> want_answer;
        bool may_change = true;
        try {
            switch (op) {
                case 0: {
                    const std::string key = pick_key(in, known);
                    const std::string value = pick_value(in);
                    what = "set(" + printable(key) + ", " + printable(value) + ")";
                    allowed = key_errnos(key, ref);
                    if (allowed.empty()) {
                        allowed = value_errnos(value, ref);
                    }
                    named = {key};
                    one.emplace(key, value);
                    expect[key] = value;
                    if (!exists && !create) {
                        allowed.insert(ENOENT);
                    }
                    pool.set(key, value, limits);
                    break;
                }
                case 1: {
                    const std::string key = pick_key(in, known);
                    what = "create_if_absent(" + printable(key) + ")";
                    allowed = key_errnos(key, ref);
                    named = {key};
                    want_answer = model.count(key) == 0;
                    may_change = *want_answer;
                    expect.emplace(key, "");
                    if (!exists && !create) {
                        allowed.insert(ENOENT);
                    }
                    answer = pool.create_if_absent(key, limits);
                    break;
                }
                case 2: {
                    const std::string key = pick_key(in, known);
                    what = "remove(" + printable(key) + ")";
                    named = {key};
                    want_answer = model.count(key) != 0;
                    may_change = *want_answer;
                    expect.erase(key);
                    answer = pool.remove(key);
                    break;
                }
                case 3: {
                    const std::string from = pick_key(in, known);
                    const std::string to = pick_key(in, known);
                    what = "rename(" + printable(from) + ", " + printable(to) + ")";
                    allowed = key_errnos(to, ref);
                    named = {from, to};
                    want_answer = model.count(from) != 0;
                    may_change = *want_answer && from != to;
                    if (may_change) {
                        expect[to] = model.at(from);
                        expect.erase(from);
                        one.emplace(to, model.at(from));
                    }
                    answer = pool.rename(from, to, limits);
                    break;
                }
                case 4: {
                    what = "compact()";
                    std::size_t dups = 0;
                    for (const auto& [key, value] : model) {
                        dups += count_key(records, key) - 1;
                    }
                    named = {};
                    for (const auto& [key, value] : model) {
                        named.insert(key);  // checked below instead: one record each
                    }
                    const std::size_t dropped = pool.compact();
                    FUZZ_CHECK(dropped == dups, "compact dropped " + std::to_string(dropped) +
                                                    ", the pool had " + std::to_string(dups) +
                                                    " duplicates");
                    break;
                }
                case 5: {
                    const std::string key = pick_key(in, known);
                    what = "get(" + printable(key) + ")";
                    may_change = false;
                    const auto got = pool.get(key);
                    const auto it = model.find(key);
                    FUZZ_CHECK(got.has_value() == (it != model.end() && !key.empty()), what);
                    if (got) {
                        FUZZ_CHECK(*got == it->second, what + " = " + printable(*got) +
                                                           ", the file says " +
                                                           printable(it->second));
                    }
                    break;
                }
                case 6: {
                    what = "list()";
                    may_change = false;
                    const auto keys = pool.list();
                    const std::set<std::string> listed(keys.begin(), keys.end());
                    FUZZ_CHECK(listed.size() == keys.size(), "list() repeats a key");
                    std::set<std::string> want;
                    for (const auto& [key, value] : model) {
                        want.insert(key);
                    }
                    FUZZ_CHECK(listed == want, "list() differs from the file's keys");
                    break;
                }
                default: {
                    what = "direct edit";
                    direct_edit(in, path, before, known);
                    before = kvpfuzz::read_whole(path, &exists);
                    continue;  // the model is re-read from the file at the next step
                }
            }
        } catch (const kvp::Error& e) {
            err = e.errno_value();
        }

        const std::string after = kvpfuzz::read_whole(path, &exists);
        const std::vector<Rec> now = kvpfuzz::decode_records(after);
        if (err != 0) {
            FUZZ_CHECK(allowed.count(err) == 1, what + " failed with errno " + std::to_string(err) +
                                                    " (" + std::strerror(err) + ")");
            FUZZ_CHECK(after == before, what + " failed but changed the file");
            continue;
        }
        FUZZ_CHECK(allowed.empty() || op == 2 || op == 4 || op == 5 || op == 6,
                   what + " succeeded; expected errno " + std::to_string(*allowed.begin()));
        if (answer) {
            FUZZ_CHECK(*answer == *want_answer, what + " returned " + std::to_string(*answer));
        }
        if (!may_change) {
            FUZZ_CHECK(after == before, what + " changed the file");
        }
        if (after != before) {
            FUZZ_CHECK(
                after.size() % kvpfuzz::kRecord == 0,
                what + " left a partial record (" + std::to_string(after.size()) + " bytes)");
        }
        if (op <= 4) {
            FUZZ_CHECK(kvpfuzz::first_values(now) == expect,
                       what + ": the file's keys/values are not what the operation asked" +
                           "\n  before:" + show(records) + "\n  after:" + show(now));
            FUZZ_CHECK(others(now, named) == others(records, named),
                       what + " touched records of other keys\n  before:" + show(records) +
                           "\n  after:" + show(now));
        }
        if (one) {
            FUZZ_CHECK(count_key(now, one->first) == 1,
                       what + ": " + std::to_string(count_key(now, one->first)) + " records of " +
                           printable(one->first));
            for (std::size_t i = 0; i < now.size(); ++i) {
                // A record the engine wrote is zero-filled; one it left alone (the value
                // was already right) keeps its bytes, garbage included.
                const std::string_view rec =
                    std::string_view(after).substr(i * kvpfuzz::kRecord, kvpfuzz::kRecord);
                const bool untouched =
                    before.size() >= (i + 1) * kvpfuzz::kRecord &&
                    std::string_view(before).substr(i * kvpfuzz::kRecord, kvpfuzz::kRecord) == rec;
                if (now[i].key == one->first && !untouched) {
                    FUZZ_CHECK(kvpfuzz::zero_filled(rec),
                               what + ": the written record is not zero-filled");
                }
            }
        }
        if (op == 4) {
            for (const auto& [key, value] : expect) {
                FUZZ_CHECK(count_key(now, key) == 1,
                           "compact left duplicates of " + printable(key));
            }
        }
        before = after;
    }

    // Another reader, last used for the previous input, agrees with the file.
    static kvp::PoolFile cold(path, kvp::PoolOptions{std::chrono::milliseconds(2000), false});
    for (const auto& [key, value] : kvpfuzz::first_values(kvpfuzz::decode_records(before))) {
        const auto got = cold.get(key);
        FUZZ_CHECK(got.has_value() && *got == value, "cold get(" + printable(key) + ")");
    }
    return 0;
}
