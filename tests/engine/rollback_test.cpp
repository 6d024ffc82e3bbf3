// A change that fails part-way puts the pool file back exactly as it was (docs/behaviour.md §2,
// "A failed change leaves nothing behind"): every change is failed at each of its write
// steps in turn (file_io's injection seam: ENOSPC, EFBIG or EIO at step n), and the file's
// bytes afterwards must equal those before, byte for byte, old size included. Then the same
// pool object carries on with the change, which must land as if nothing had happened.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <functional>
#include <string>
#include <vector>

#include "file_io.hpp"
#include "pool_file.hpp"
#include "test_support.hpp"

namespace {

using kvptest::encode_records;
using kvptest::read_file;
using kvptest::Rec;

class RollbackTest : public kvptest::PoolDirTest {
  protected:
    void TearDown() override {
        kvp::inject_write_failure(0, 0);
        kvptest::PoolDirTest::TearDown();
    }
    [[nodiscard]] kvp::PoolFile open_pool() const { return {pool(), kvp::PoolOptions{}}; }
};

// Bytes that exercise every write path: a value crossing a page boundary (both old and new
// values long: the staged rewrite), duplicates (moved records on delete), an unterminated
// neighbour and a partial tail (cut before the first write).
std::string tricky_pool() {
    std::string bytes = encode_records({{"a", "1"},
                                        {"long", std::string(2000, 'L')},
                                        {"dup", "first"},
                                        {"b", "2"},
                                        {"dup", "second"},
                                        {"c", std::string(1500, 'C')},
                                        {"dup", "third"}});
    bytes += std::string(700, 'T');  // partial tail
    return bytes;
}

struct Change {
    const char* name;
    std::function<void(kvp::PoolFile&)> run;
};

std::vector<Change> changes() {
    return {
        {"append", [](kvp::PoolFile& p) { p.set("new", "v"); }},
        {"in place", [](kvp::PoolFile& p) { p.set("a", "changed"); }},
        {"staged", [](kvp::PoolFile& p) { p.set("long", std::string(1900, 'M')); }},
        {"set drops duplicates", [](kvp::PoolFile& p) { p.set("dup", "only"); }},
        {"remove", [](kvp::PoolFile& p) { (void)p.remove("dup"); }},
        {"remove first", [](kvp::PoolFile& p) { (void)p.remove("a"); }},
        {"rename to new", [](kvp::PoolFile& p) { (void)p.rename("b", "B"); }},
        {"rename over", [](kvp::PoolFile& p) { (void)p.rename("c", "dup"); }},
        {"create", [](kvp::PoolFile& p) { (void)p.create_if_absent("touched"); }},
        {"compact", [](kvp::PoolFile& p) { (void)p.compact(); }},
        {"update",
         [](kvp::PoolFile& p) {
             (void)p.update(
                 "c", [](const std::string* v) { return std::optional<std::string>(*v + "+"); });
         }},
    };
}

TEST_F(RollbackTest, AChangeFailedAtAnyWriteStepLeavesThePoolByteIdentical) {
    for (const int err : {ENOSPC, EFBIG, EIO}) {
        for (const Change& change : changes()) {
            SCOPED_TRACE(std::string(change.name) + " / " + std::strerror(err));
            kvptest::write_file(pool(), tricky_pool());
            kvp::PoolFile pf = open_pool();
            (void)pf.snapshot();  // a warm cache, as in the daemon
            int step = 0;
            for (;; ++step) {
                ASSERT_LT(step, 64) << "the change never completed";
                const std::string before = read_file(pool());
                kvp::inject_write_failure(step, err);
                const int got = kvptest::errno_of([&] { change.run(pf); });
                kvp::inject_write_failure(0, 0);
                if (got == 0) {
                    break;  // step n was past the change's last write: it went through
                }
                EXPECT_EQ(got, err) << "step " << step;
                ASSERT_EQ(read_file(pool()), before) << "step " << step << " left the pool changed";
            }
            EXPECT_GT(step, 0);
            // After the last failure the change went through whole: the pool reads as a fresh
            // pool object reads it.
            kvp::PoolFile fresh = open_pool();
            EXPECT_EQ(pf.list(), fresh.list());
        }
    }
}

TEST_F(RollbackTest, AFileSizeLimitUndoesThePartialAppendAndReportsEFBIG) {
    const std::string before = encode_records({{"k0", "v"}, {"k1", "v"}, {"k2", "v"}, {"k3", "v"}});
    kvptest::write_file(pool(), before);
    // In a child: the limit and SIGXFSZ's disposition are the process's.
    const int status = kvptest::run_in_child([&] {
        std::signal(SIGXFSZ, SIG_IGN);
        const struct rlimit limit {
            12 * 1024, 12 * 1024
        };  // `ulimit -f 12`: the record lands half
        if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) {
            return 10;
        }
        kvp::PoolFile pf({pool(), kvp::PoolOptions{}});
        const int got = kvptest::errno_of([&] { pf.set("New", "x"); });
        return got == EFBIG ? 0 : 11;
    });
    EXPECT_EQ(status, 0);
    EXPECT_EQ(read_file(pool()), before);
}

}  // namespace
