// kvpctl compact POOL: drops duplicate records (keeping the first of each key) and a
// partial tail, through the engine under its exclusive lock, and says what it changed.
#include "commands.hpp"
#include "raw_pool.hpp"
#include "record_format.hpp"

namespace kvpctl {

int cmd_compact(const Context& ctx, kvp::PoolId pool) {
    require_pool_directory(ctx);
    const std::string name(kvp::pool_name(pool));
    std::ostream& out = *ctx.out;

    // What there is to do, read as it is before the change (for the report only: the
    // engine decides again under its exclusive lock).
    const RawPool before = read_raw_pool(ctx.pool_dir, pool, ctx.lock_timeout);
    if (!before.exists) {
        out << name << ": no pool file (" << before.path.string() << "), nothing to do\n";
        return kExitOk;
    }
    std::size_t duplicates = 0;
    for (const auto& rec : before.records) {
        if (rec.duplicate_of) {
            ++duplicates;
        }
    }
    if (duplicates == 0 && !before.tail) {
        out << name << ": nothing to compact, "
            << plural(before.records.size(), "record", "records") << '\n';
        return kExitOk;
    }

    auto directory = open_pool_directory(ctx, false);
    const std::size_t dropped = directory.pool(pool).compact();
    const RawPool after = read_raw_pool(ctx.pool_dir, pool, ctx.lock_timeout);

    if (dropped == duplicates) {
        for (const auto& rec : before.records) {
            if (rec.duplicate_of) {
                out << name << ": dropped #" << rec.index << ' ' << escape(rec.key, true) << " = "
                    << escape(rec.value, true) << " (duplicate of #" << *rec.duplicate_of << ")\n";
            }
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
    out << name << ": compacted: " << before.records.size() << " -> "
        << plural(after.records.size(), "record", "records") << ", " << before.size << " -> "
        << plural(after.size, "byte", "bytes") << '\n';
    return kExitOk;
}

}  // namespace kvpctl
