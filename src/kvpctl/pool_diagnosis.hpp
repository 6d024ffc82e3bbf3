#pragma once
// What kvpctl says when the user points it at the wrong thing: a directory that holds no pool
// file, a pool file that is not whole records, a key given as the file name a mount shows.
// kvpfs logs each of these; kvpctl says them on stderr.

#include <string>

#include "common.hpp"

namespace kvpctl {

// Throws kvp::Error(ENOENT) unless ctx.pool_dir is a directory holding at least one of the
// five pool files: a command that reads or removes keys in a directory that is no pool
// directory (`--pool-dir /etc`) would otherwise answer "empty" or "no key".
void require_pool_files(const Context& ctx);
// Whether ctx.pool_dir holds anything under one of the five pool file names.
[[nodiscard]] bool holds_pool_files(const Context& ctx);

// Warnings on ctx.err when `pool`'s file is not one: shorter than one record, not a whole
// number of records (a partial record every reader ignores), or text (its first key field
// holds no NUL). The command goes on: what it reads is what every KVP reader reads.
void warn_not_a_pool_file(const Context& ctx, kvp::PoolId pool);

// " (...)" when `key` is absent but reads as a file name of the mount (`a%2Fb` for the key
// `a/b`): kvpctl takes keys as they are. "" otherwise.
[[nodiscard]] std::string file_name_hint(const std::string& key);

}  // namespace kvpctl
