// kvpctl dump [--json] [POOL]: every record as it is in the file, in file order: empty
// keys, duplicates, unterminated fields and a partial tail included.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <string_view>

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

nlohmann::ordered_json record_json(const std::string& name, const RawRecord& rec) {
    nlohmann::ordered_json obj;
    obj["pool"] = name;
    obj["index"] = rec.index;
    obj["offset"] = rec.offset;
    put_string(obj, "key", rec.key);
    put_string(obj, "value", rec.value);
    obj["partial"] = false;
    obj["duplicate_of"] = rec.duplicate_of ? nlohmann::ordered_json(*rec.duplicate_of) : nullptr;
    obj["key_unterminated"] = rec.key_unterminated;
    obj["value_unterminated"] = rec.value_unterminated;
    return obj;
}

nlohmann::ordered_json tail_json(const std::string& name, const RawTail& tail) {
    nlohmann::ordered_json obj;
    obj["pool"] = name;
    obj["index"] = tail.index;
    obj["offset"] = tail.offset;
    put_string(obj, "key", tail.key());
    put_string(obj, "value", tail.value());
    obj["partial"] = true;
    obj["bytes"] = tail.bytes.size();
    return obj;
}

// The JSON array, written one element at a time (the same text as dumping it whole with an
// indent of 2), so memory does not grow with the pool.
class JsonArrayWriter {
  public:
    explicit JsonArrayWriter(std::ostream& out) : out_(out) {}
    void add(const nlohmann::ordered_json& element) {
        out_ << (count_++ == 0 ? "[\n" : ",\n");
        const std::string text =
            element.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
        std::size_t start = 0;
        while (start <= text.size()) {
            const std::size_t end = std::min(text.find('\n', start), text.size());
            out_ << "  " << std::string_view(text).substr(start, end - start);
            if (end < text.size()) {
                out_ << '\n';
            }
            start = end + 1;
        }
    }
    void finish() { out_ << (count_ == 0 ? "[]\n" : "\n]\n"); }

  private:
    std::ostream& out_;
    std::size_t count_ = 0;
};

void dump_json(const Context& ctx, kvp::PoolId id, JsonArrayWriter& writer) {
    const std::string name(kvp::pool_name(id));
    RawPoolVisitor visitor;
    visitor.begin = [](const RawPoolHeader&) {};
    visitor.record = [&](const RawRecord& rec) { writer.add(record_json(name, rec)); };
    visitor.tail = [&](const RawTail& tail) { writer.add(tail_json(name, tail)); };
    scan_raw_pool(ctx.pool_dir, id, ctx.lock_timeout, visitor);
}

void dump_text(const Context& ctx, kvp::PoolId id, std::ostream& out) {
    const std::string name(kvp::pool_name(id));
    RawPoolVisitor visitor;
    visitor.begin = [&](const RawPoolHeader& header) {
        if (!header.exists) {
            out << "# " << name << ": " << header.path.string() << " does not exist\n";
            return;
        }
        out << "# " << name << ": " << header.path.string() << ", "
            << plural(header.size / kvp::kRecordSize, "record", "records") << ", "
            << plural(header.size, "byte", "bytes") << '\n';
    };
    visitor.record = [&](const RawRecord& rec) {
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
    };
    visitor.tail = [&](const RawTail& tail) {
        out << name << " #" << tail.index << ' ' << escape(tail.key(), true) << " = "
            << escape(tail.value(), true) << "  (partial record: " << tail.bytes.size() << " of "
            << kvp::kRecordSize << " bytes)\n";
    };
    scan_raw_pool(ctx.pool_dir, id, ctx.lock_timeout, visitor);
}

}  // namespace

int cmd_dump(const Context& ctx, const std::optional<kvp::PoolId>& pool, bool json) {
    require_pool_directory(ctx);
    JsonArrayWriter writer(*ctx.out);
    for (const kvp::PoolId id : selected_pools(pool)) {
        if (json) {
            dump_json(ctx, id, writer);
        } else {
            dump_text(ctx, id, *ctx.out);
        }
    }
    if (json) {
        writer.finish();
    }
    return kExitOk;
}

}  // namespace kvpctl
