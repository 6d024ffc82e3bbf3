#pragma once
// One function per kvpctl command (cmd_<name>.cpp). Each returns the process exit code
// (common.hpp) and throws kvp::Error when the work cannot be done.

#include <boost/filesystem/path.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "common.hpp"
#include "limits.hpp"
#include "pool_id.hpp"

namespace kvpctl {

// `intrinsic` (auto only): pool 2 as the host sees it, with the intrinsic items the file
// lacks (host_view.hpp).
int cmd_list(const Context& ctx, kvp::PoolId pool, bool intrinsic);
int cmd_get(const Context& ctx, kvp::PoolId pool, const std::string& key, bool intrinsic);
int cmd_set(const Context& ctx, kvp::PoolId pool, const std::string& key, const std::string& value,
            kvp::Limits limits);
// The value of `kvpctl set POOL KEY -` (path "-": stdin) or `--file PATH`: without `raw`,
// exactly one trailing newline is dropped, as a write through the mount in text mode does.
[[nodiscard]] std::string read_value(const std::string& path, bool raw);
int cmd_delete(const Context& ctx, kvp::PoolId pool, const std::string& key);
int cmd_dump(const Context& ctx, const std::optional<kvp::PoolId>& pool, bool json);
int cmd_check(const Context& ctx, const std::optional<kvp::PoolId>& pool);
int cmd_compact(const Context& ctx, kvp::PoolId pool);
int cmd_init(const Context& ctx, const boost::filesystem::path& dir, bool sample);
int cmd_watch(const Context& ctx, const std::optional<kvp::PoolId>& pool);

// What `kvpctl wait` waits for: the key to exist, to have `value`, or to differ from the
// value it had when the wait began (absent counting as a value).
enum class WaitFor { exists, value, change };
struct WaitOptions {
    WaitFor what = WaitFor::exists;
    std::string value;                                 // with WaitFor::value
    std::optional<std::chrono::milliseconds> timeout;  // none: for ever
    bool verbose = false;  // say on stderr what is waited for, once the wait is armed
};
// Exit 0 (the value printed), 1 on timeout, 128 + the signal when SIGINT or SIGTERM ended it.
int cmd_wait(const Context& ctx, kvp::PoolId pool, const std::string& key,
             const WaitOptions& options);

// The command line: parses argv, runs the command, returns the exit code. Everything it
// prints goes to `out` / `err` (tests run it in-process).
int run(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace kvpctl
