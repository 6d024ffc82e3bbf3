// kvpctl check [POOL]: names every problem of a pool file with its record index:
// duplicate keys, a partial tail, fields without a NUL, keys or values that are not UTF-8.
// Exit 1 when it finds any.
#include "commands.hpp"
#include "limits.hpp"
#include "pool_diagnosis.hpp"
#include "raw_pool.hpp"
#include "record_format.hpp"

namespace kvpctl {

namespace {

// Prints the problems of one pool, streaming it, and returns how many it found.
std::size_t check_pool(const Context& ctx, kvp::PoolId id, std::ostream& out) {
    const std::string name(kvp::pool_name(id));
    std::size_t problems = 0;
    std::size_t count = 0;
    bool exists = false;
    bool has_tail = false;
    const auto problem = [&](std::size_t index) -> std::ostream& {
        ++problems;
        return out << name << " #" << index << ": ";
    };
    RawPoolVisitor visitor;
    visitor.begin = [&](const RawPoolHeader& header) {
        exists = header.exists;
        if (!exists) {
            out << name << ": no pool file (" << header.path.string() << ")\n";
        }
    };
    visitor.record = [&](const RawRecord& rec) {
        ++count;
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
    };
    visitor.tail = [&](const RawTail& tail) {
        has_tail = true;
        problem(tail.index) << "partial record at offset " << tail.offset << ": "
                            << tail.bytes.size() << " of " << kvp::kRecordSize
                            << " bytes (ignored when reading)\n";
    };
    scan_raw_pool(ctx.pool_dir, id, ctx.lock_timeout, visitor);
    if (!exists) {
        return 0;
    }
    if (problems == 0) {
        out << name << ": ok, " << plural(count, "record", "records") << '\n';
    } else {
        out << name << ": " << plural(problems, "problem", "problems") << " in "
            << plural(count, "record", "records") << (has_tail ? " and a partial tail" : "")
            << '\n';
    }
    return problems;
}

}  // namespace

int cmd_check(const Context& ctx, const std::optional<kvp::PoolId>& pool) {
    require_pool_files(ctx);
    std::size_t problems = 0;
    for (const kvp::PoolId id : selected_pools(pool)) {
        problems += check_pool(ctx, id, *ctx.out);
    }
    return problems == 0 ? kExitOk : kExitNegative;
}

}  // namespace kvpctl
