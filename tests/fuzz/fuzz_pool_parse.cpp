// Pool parsing from arbitrary bytes (docs/behaviour.md §2): the record codec, the snapshot index
// and the engine's chunked reading of a real file all agree with an independent decoder;
// garbage after a field's NUL never shows; a partial tail is ignored and left alone.
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "pool_file.hpp"
#include "pool_snapshot.hpp"
#include "record_format.hpp"

using kvpfuzz::printable;
using kvpfuzz::Rec;

namespace {

void check_codec(std::string_view bytes, const std::vector<Rec>& expected) {
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const std::span<const char, kvp::kRecordSize> raw(bytes.data() + i * kvp::kRecordSize,
                                                          kvp::kRecordSize);
        const kvp::Record r = kvp::decode_record(raw);
        FUZZ_CHECK(r.key == expected[i].key && r.value == expected[i].value,
                   "record " + std::to_string(i) + ": key " + printable(r.key));
        FUZZ_CHECK(kvp::field_unterminated(raw.first(kvp::kKeyFieldSize)) ==
                       (r.key.size() == kvp::kKeyFieldSize),
                   "field_unterminated disagrees with the key's length");
        if (r.key.size() < kvp::kKeyFieldSize && r.value.size() < kvp::kValueFieldSize) {
            const kvp::RecordBytes again = kvp::encode_record(r.key, r.value);
            const std::string_view again_view(again.data(), again.size());
            FUZZ_CHECK(again_view == kvpfuzz::encode_record(r.key, r.value),
                       "encode_record is not the zero-filled record");
            FUZZ_CHECK(kvp::decode_record(again) == r, "encode/decode round trip");
        } else {
            bool threw = false;
            try {
                (void)kvp::encode_record(r.key, r.value);
            } catch (const std::length_error&) {
                threw = true;
            }
            FUZZ_CHECK(threw, "an unterminated field was encoded");
        }
    }
}

void check_snapshot(const kvp::PoolSnapshot& snap, const std::vector<Rec>& expected,
                    std::size_t file_size) {
    FUZZ_CHECK(snap.records().size() == expected.size(),
               std::to_string(snap.records().size()) + " records read, " +
                   std::to_string(expected.size()) + " whole records in the file");
    for (std::size_t i = 0; i < expected.size(); ++i) {
        FUZZ_CHECK(snap.records()[i].record.key == expected[i].key &&
                       snap.records()[i].record.value == expected[i].value,
                   "record " + std::to_string(i) + " read wrong");
    }
    FUZZ_CHECK(snap.file_size() == file_size, "file size");
    FUZZ_CHECK(snap.partial_tail() == (file_size % kvpfuzz::kRecord != 0), "partial tail");

    const auto first = kvpfuzz::first_values(expected);
    FUZZ_CHECK(snap.key_count() == first.size(), "key count");
    for (const auto& [key, value] : first) {
        const kvp::SnapshotRecord* found = snap.find(key);
        FUZZ_CHECK(found != nullptr && found->record.value == value,
                   "find(" + printable(key) + ") is not the first record's value");
    }
    FUZZ_CHECK(snap.find("") == nullptr, "an empty key was found");
    std::vector<std::string> listed;
    std::set<std::string> seen;
    for (const std::size_t i : snap.listing()) {
        FUZZ_CHECK(i < expected.size(), "listing index out of range");
        const std::string& key = snap.records()[i].record.key;
        FUZZ_CHECK(!key.empty() && seen.insert(key).second, "listing shows a key twice");
        FUZZ_CHECK(first.at(key) == snap.records()[i].record.value,
                   "listing points at a later duplicate");
        listed.push_back(key);
    }
    FUZZ_CHECK(seen.size() == first.size(), "listing misses keys");
    // File order of first occurrences.
    std::vector<std::string> order;
    std::set<std::string> had;
    for (const Rec& r : expected) {
        if (!r.key.empty() && had.insert(r.key).second) {
            order.push_back(r.key);
        }
    }
    FUZZ_CHECK(order == listed, "listing is not in file order");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const std::vector<Rec> expected = kvpfuzz::decode_records(input);
    check_codec(input, expected);

    std::vector<kvp::SnapshotRecord> records;
    for (const Rec& r : expected) {
        records.push_back({kvp::Record{r.key, r.value}, {}});
    }
    const kvp::PoolSnapshot built(std::move(records), true, size, {}, 1);
    check_snapshot(built, expected, size);
    const kvp::PoolSnapshot copied(built);
    check_snapshot(copied, expected, size);

    // The engine reading the bytes from a real file. The first byte may put the input
    // behind 60-70 empty-key records, so that records straddle the reader's chunks.
    std::string file(input);
    std::vector<Rec> in_file = expected;
    if (size > 0 && data[0] % 4 == 0) {
        const std::size_t pad = 60 + data[0] % 11;
        file.insert(0, std::string(pad * kvpfuzz::kRecord, '\0'));
        in_file.insert(in_file.begin(), pad, Rec{});
    }
    const std::string path = kvpfuzz::scratch_dir() + "/.kvp_pool_0";
    kvpfuzz::write_whole(path, file);
    {
        // Kept for the process (closing inotify descriptors is slow); the rewrite above
        // must reach it through its change detection.
        static kvp::PoolFile pool(path, kvp::PoolOptions{std::chrono::milliseconds(1000), false});
        const auto snap = pool.snapshot();
        FUZZ_CHECK(snap->exists(), "the file exists");
        check_snapshot(*snap, in_file, file.size());
        const auto keys = pool.list();
        FUZZ_CHECK(keys.size() == snap->key_count(), "list() size");
        for (const auto& [key, value] : kvpfuzz::first_values(in_file)) {
            const auto got = pool.get(key);
            FUZZ_CHECK(got.has_value() && *got == value, "get(" + printable(key) + ")");
        }
    }
    FUZZ_CHECK(kvpfuzz::read_whole(path) == file, "reading changed the file");
    return 0;
}
