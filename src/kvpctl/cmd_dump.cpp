// kvpctl dump [--json] [POOL]: every record as it is in the file, in file order: empty
// keys, duplicates, unterminated fields and a partial tail included.
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "limits.hpp"
#include "raw_pool.hpp"
#include "record_format.hpp"

namespace kvpctl {

namespace {

std::string hex(std::string_view bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const char c : bytes) {
        const auto b = static_cast<unsigned char>(c);
        out += kDigits[b >> 4];
        out += kDigits[b & 0x0F];
    }
    return out;
}

// JSON strings must be UTF-8: a field that is not gets U+FFFD in "key"/"value" (by the
// dump's replace handler) and its exact bytes in "key_hex"/"value_hex".
void put_string(nlohmann::ordered_json& obj, const char* name, const std::string& text) {
    obj[name] = text;
    if (!kvp::valid_utf8(text)) {
        obj[std::string(name) + "_hex"] = hex(text);
    }
}

void dump_json(const RawPool& pool, nlohmann::ordered_json& out) {
    const std::string name(kvp::pool_name(pool.id));
    for (const auto& rec : pool.records) {
        nlohmann::ordered_json obj;
        obj["pool"] = name;
        obj["index"] = rec.index;
        obj["offset"] = rec.offset;
        put_string(obj, "key", rec.key);
        put_string(obj, "value", rec.value);
        obj["partial"] = false;
        obj["duplicate_of"] =
            rec.duplicate_of ? nlohmann::ordered_json(*rec.duplicate_of) : nullptr;
        obj["key_unterminated"] = rec.key_unterminated;
        obj["value_unterminated"] = rec.value_unterminated;
        out.push_back(std::move(obj));
    }
    if (pool.tail) {
        nlohmann::ordered_json obj;
        obj["pool"] = name;
        obj["index"] = pool.tail->index;
        obj["offset"] = pool.tail->offset;
        put_string(obj, "key", pool.tail->key());
        put_string(obj, "value", pool.tail->value());
        obj["partial"] = true;
        obj["bytes"] = pool.tail->bytes.size();
        out.push_back(std::move(obj));
    }
}

void dump_text(const RawPool& pool, std::ostream& out) {
    const std::string name(kvp::pool_name(pool.id));
    if (!pool.exists) {
        out << "# " << name << ": " << pool.path.string() << " does not exist\n";
        return;
    }
    out << "# " << name << ": " << pool.path.string() << ", "
        << plural(pool.records.size(), "record", "records") << ", "
        << plural(pool.size, "byte", "bytes") << '\n';
    for (const auto& rec : pool.records) {
        out << name << " #" << rec.index << ' ' << escape(rec.key, true) << " = "
            << escape(rec.value, true);
        std::vector<std::string> notes;
        if (rec.key.empty()) {
            notes.emplace_back("empty key: not listed");
        }
        if (rec.duplicate_of) {
            notes.push_back("duplicate of #" + std::to_string(*rec.duplicate_of));
        }
        if (rec.key_unterminated) {
            notes.emplace_back("key field has no NUL");
        }
        if (rec.value_unterminated) {
            notes.emplace_back("value field has no NUL");
        }
        for (std::size_t i = 0; i < notes.size(); ++i) {
            out << (i == 0 ? "  (" : ", ") << notes[i];
        }
        out << (notes.empty() ? "" : ")") << '\n';
    }
    if (pool.tail) {
        out << name << " #" << pool.tail->index << ' ' << escape(pool.tail->key(), true) << " = "
            << escape(pool.tail->value(), true) << "  (partial record: " << pool.tail->bytes.size()
            << " of " << kvp::kRecordSize << " bytes)\n";
    }
}

}  // namespace

int cmd_dump(const Context& ctx, const std::optional<kvp::PoolId>& pool, bool json) {
    require_pool_directory(ctx);
    nlohmann::ordered_json array = nlohmann::ordered_json::array();
    for (const kvp::PoolId id : selected_pools(pool)) {
        const RawPool raw = read_raw_pool(ctx.pool_dir, id, ctx.lock_timeout);
        if (json) {
            dump_json(raw, array);
        } else {
            dump_text(raw, *ctx.out);
        }
    }
    if (json) {
        *ctx.out << array.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
                 << '\n';
    }
    return kExitOk;
}

}  // namespace kvpctl
