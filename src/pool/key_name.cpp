#include "key_name.hpp"

namespace kvp {

std::string key_to_name(std::string_view key) {
    if (key == ".") {
        return "%2E";
    }
    if (key == "..") {
        return "%2E%2E";
    }
    std::string name;
    name.reserve(key.size());
    for (const char c : key) {
        if (c == '%') {
            name += "%25";
        } else if (c == '/') {
            name += "%2F";
        } else {
            name += c;
        }
    }
    return name;
}

std::optional<std::string> name_to_key(std::string_view name) {
    if (name == "%2E") {
        return std::string(".");
    }
    if (name == "%2E%2E") {
        return std::string("..");
    }
    // "." and ".." are directory entries, never keys: only their escapes name those keys.
    if (name.empty() || name == "." || name == "..") {
        return std::nullopt;
    }
    std::string key;
    key.reserve(name.size());
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        if (c == '/' || c == '\0') {
            return std::nullopt;
        }
        if (c != '%') {
            key += c;
            continue;
        }
        const std::string_view escape = name.substr(i, 3);
        if (escape == "%25") {
            key += '%';
        } else if (escape == "%2F") {
            key += '/';
        } else {
            return std::nullopt;  // only the canonical escapes decode
        }
        i += 2;
    }
    return key;
}

}  // namespace kvp
