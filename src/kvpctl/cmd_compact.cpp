// kvpctl compact POOL: drops duplicate records (keeping the first of each key) and a
// partial tail, through the engine under its exclusive lock, and says what it changed.
#include <optional>
#include <vector>

#include "commands.hpp"
#include "raw_pool.hpp"
#include "record_format.hpp"

namespace kvpctl {
namespace {

// What compact reports about a pool: its size and record count, its later duplicates (the
// records compact drops) and its partial tail. Streamed: only the duplicates are kept.
struct PoolSummary {
    bool exists = false;
    boost::filesystem::path path;
    std::uint64_t size = 0;
    std::size_t records = 0;
    std::vector<RawRecord> duplicates;
    std::optional<RawTail> tail;
};

PoolSummary summarize(const Context& ctx, kvp::PoolId pool) {
    PoolSummary summary;
    RawPoolVisitor visitor;
    visitor.begin = [&](const RawPoolHeader& header) {
        summary.exists = header.exists;
        summary.path = header.path;
        summary.size = header.size;
    };
    visitor.record = [&](const RawRecord& rec) {
        ++summary.records;
        if (rec.duplicate_of) {
            summary.duplicates.push_back(rec);
        }
    };
    visitor.tail = [&](const RawTail& tail) { summary.tail = tail; };
    scan_raw_pool(ctx.pool_dir, pool, ctx.lock_timeout, visitor);
    return summary;
}

}  // namespace

int cmd_compact(const Context& ctx, kvp::PoolId pool) {
    require_pool_directory(ctx);
    const std::string name(kvp::pool_name(pool));
    std::ostream& out = *ctx.out;

    // What there is to do, read as it is before the change (for the report only: the
    // engine decides again under its exclusive lock).
    const PoolSummary before = summarize(ctx, pool);
    if (!before.exists) {
        out << name << ": no pool file (" << before.path.string() << "), nothing to do\n";
        return kExitOk;
    }
    const std::size_t duplicates = before.duplicates.size();
    if (duplicates == 0 && !before.tail) {
        out << name << ": nothing to compact, " << plural(before.records, "record", "records")
            << '\n';
        return kExitOk;
    }

    auto directory = open_pool_directory(ctx, false);
    const std::size_t dropped = directory.pool(pool).compact();
    const PoolSummary after = summarize(ctx, pool);

    if (dropped == duplicates) {
        for (const auto& rec : before.duplicates) {
            out << name << ": dropped #" << rec.index << ' ' << escape(rec.key, true) << " = "
                << escape(rec.value, true) << " (duplicate of #" << *rec.duplicate_of << ")\n";
        }
    } else {
        // Another writer changed the pool between the look above and the compaction.
        out << name << ": the pool changed while compacting; the engine dropped "
            << plural(dropped, "duplicate record", "duplicate records") << '\n';
    }
    if (before.tail && !after.tail) {
        out << name << ": cut a partial record of "
            << plural(before.tail->bytes.size(), "byte", "bytes") << " at offset "
            << before.tail->offset << '\n';
    }
    out << name << ": compacted: " << before.records << " -> "
        << plural(after.records, "record", "records") << ", " << before.size << " -> "
        << plural(after.size, "byte", "bytes") << '\n';
    return kExitOk;
}

}  // namespace kvpctl
