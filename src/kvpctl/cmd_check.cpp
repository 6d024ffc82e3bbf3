// kvpctl check [POOL]: names every problem of a pool file with its record index:
// duplicate keys, a partial tail, fields without a NUL, keys or values that are not UTF-8.
// Exit 1 when it finds any.
#include "commands.hpp"
#include "limits.hpp"
#include "raw_pool.hpp"
#include "record_format.hpp"

namespace kvpctl {

namespace {

// Prints the problems of one pool and returns how many it found.
std::size_t check_pool(const RawPool& pool, std::ostream& out) {
    const std::string name(kvp::pool_name(pool.id));
    if (!pool.exists) {
        out << name << ": no pool file (" << pool.path.string() << ")\n";
        return 0;
    }
    std::size_t problems = 0;
    const auto problem = [&](std::size_t index) -> std::ostream& {
        ++problems;
        return out << name << " #" << index << ": ";
    };
    for (const auto& rec : pool.records) {
        if (rec.duplicate_of) {
            problem(rec.index) << "duplicate of key " << escape(rec.key, true) << " (first record #"
                               << *rec.duplicate_of << "; this one is never read)\n";
        }
        if (rec.key_unterminated) {
            problem(rec.index) << "key field has no NUL terminator (" << kvp::kKeyFieldSize
                               << " bytes)\n";
        }
        if (rec.value_unterminated) {
            problem(rec.index) << "value field has no NUL terminator (" << kvp::kValueFieldSize
                               << " bytes)\n";
        }
        if (!kvp::valid_utf8(rec.key)) {
            problem(rec.index) << "key is not valid UTF-8: " << escape(rec.key, true) << '\n';
        }
        if (!kvp::valid_utf8(rec.value)) {
            problem(rec.index) << "value of " << escape(rec.key, true)
                               << " is not valid UTF-8: " << escape(rec.value, true) << '\n';
        }
    }
    if (pool.tail) {
        problem(pool.tail->index) << "partial record at offset " << pool.tail->offset << ": "
                                  << pool.tail->bytes.size() << " of " << kvp::kRecordSize
                                  << " bytes (ignored when reading)\n";
    }
    const std::size_t count = pool.records.size();
    if (problems == 0) {
        out << name << ": ok, " << plural(count, "record", "records") << '\n';
    } else {
        out << name << ": " << plural(problems, "problem", "problems") << " in "
            << plural(count, "record", "records") << (pool.tail ? " and a partial tail" : "")
            << '\n';
    }
    return problems;
}

}  // namespace

int cmd_check(const Context& ctx, const std::optional<kvp::PoolId>& pool) {
    require_pool_directory(ctx);
    std::size_t problems = 0;
    for (const kvp::PoolId id : selected_pools(pool)) {
        problems += check_pool(read_raw_pool(ctx.pool_dir, id, ctx.lock_timeout), *ctx.out);
    }
    return problems == 0 ? kExitOk : kExitNegative;
}

}  // namespace kvpctl
