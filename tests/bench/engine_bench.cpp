// kvp_engine_bench: the pool-record engine alone (no FUSE), with Google Benchmark.
// get, set, delete, list and change detection at pool sizes 10, 1,000 and 10,000 records.
// The pool files live in a scratch directory on tmpfs (/dev/shm, or $KVP_BENCH_DIR).

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "pool_file.hpp"
#include "record_format.hpp"
#include "record_reader.hpp"

namespace {

std::string key_of(std::size_t i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "bench_key_%06zu", i);
    return buf;
}

std::string value_of(std::size_t i, int gen) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%c-value-of-%06zu-xxxxxxxxxxxxxxxxxxxx", gen ? 'b' : 'a', i);
    return buf;
}

// A scratch pool file of n records, written with plain I/O; removed with its directory.
class ScratchPool {
  public:
    explicit ScratchPool(std::size_t n) {
        const char* base = std::getenv("KVP_BENCH_DIR");
        dir_ = std::string(base != nullptr ? base : "/dev/shm") + "/kvp-engine-bench.XXXXXX";
        if (::mkdtemp(dir_.data()) == nullptr) {
            std::perror("mkdtemp");
            std::abort();
        }
        path_ = dir_ + "/.kvp_pool_1";
        std::vector<char> bytes;
        bytes.reserve(n * kvp::kRecordSize);
        for (std::size_t i = 0; i < n; ++i) {
            const auto rec = kvp::encode_record(key_of(i), value_of(i, 0));
            bytes.insert(bytes.end(), rec.begin(), rec.end());
        }
        int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 ||
            ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
            std::perror("write pool");
            std::abort();
        }
        ::close(fd);
    }
    ScratchPool(const ScratchPool&) = delete;
    ScratchPool& operator=(const ScratchPool&) = delete;
    ~ScratchPool() {
        ::unlink(path_.c_str());
        ::rmdir(dir_.c_str());
    }
    [[nodiscard]] const std::string& path() const { return path_; }

    // Another process's write: rewrite record i's value in place under a classic fcntl lock
    // (same size; the file's mtime may well stay in the same tick).
    void external_write(std::size_t i, int gen) const {
        int fd = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
        struct flock fl {};
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        ::fcntl(fd, F_SETLKW, &fl);
        const auto rec = kvp::encode_record(key_of(i), value_of(i, gen));
        if (::pwrite(fd, rec.data(), rec.size(), static_cast<off_t>(i * kvp::kRecordSize)) !=
            static_cast<ssize_t>(rec.size())) {
            std::perror("pwrite");
            std::abort();
        }
        fl.l_type = F_UNLCK;
        ::fcntl(fd, F_SETLK, &fl);
        ::close(fd);
    }

  private:
    std::string dir_;
    std::string path_;
};

kvp::PoolOptions options() {
    kvp::PoolOptions o;
    o.create_on_write = true;
    return o;
}

std::size_t stride_for(std::size_t n) {
    return n % 7919 == 0 ? 1 : 7919;
}

void BM_Get(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    ScratchPool scratch(n);
    kvp::PoolFile pool(scratch.path(), options());
    benchmark::DoNotOptimize(pool.snapshot());  // the first load is not what this measures
    std::size_t c = 0;
    for (auto _ : state) {
        auto v = pool.get(key_of((c++ * stride_for(n)) % n));
        benchmark::DoNotOptimize(v);
    }
}

void BM_GetMissing(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    ScratchPool scratch(n);
    kvp::PoolFile pool(scratch.path(), options());
    benchmark::DoNotOptimize(pool.snapshot());
    for (auto _ : state) {
        auto v = pool.get("missing_key");
        benchmark::DoNotOptimize(v);
    }
}

void BM_Set(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    ScratchPool scratch(n);
    kvp::PoolFile pool(scratch.path(), options());
    benchmark::DoNotOptimize(pool.snapshot());
    std::size_t c = 0;
    for (auto _ : state) {
        const std::size_t i = (c * stride_for(n)) % n;
        pool.set(key_of(i), value_of(i, static_cast<int>((c / n + 1) % 2)));
        ++c;
    }
}

// set() while a reader holds the current snapshot (as an open file or directory handle of
// the daemon does): the change cannot edit the shared snapshot in place.
void BM_SetWhileSnapshotHeld(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    ScratchPool scratch(n);
    kvp::PoolFile pool(scratch.path(), options());
    std::size_t c = 0;
    for (auto _ : state) {
        state.PauseTiming();
        auto held = pool.snapshot();
        state.ResumeTiming();
        const std::size_t i = (c * stride_for(n)) % n;
        pool.set(key_of(i), value_of(i, static_cast<int>((c / n + 1) % 2)));
        ++c;
        state.PauseTiming();
        held.reset();  // the reader goes away (freeing the old snapshot, untimed)
        state.ResumeTiming();
    }
}

// Delete one key, then (untimed) put it back, so the pool keeps its size.
void BM_Delete(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    ScratchPool scratch(n);
    kvp::PoolFile pool(scratch.path(), options());
    benchmark::DoNotOptimize(pool.snapshot());
    std::size_t c = 0;
    for (auto _ : state) {
        const std::size_t i = (c++ * stride_for(n)) % n;
        const std::string key = key_of(i);
        benchmark::DoNotOptimize(pool.remove(key));
        state.PauseTiming();
        pool.set(key, value_of(i, 0));
        state.ResumeTiming();
    }
}

void BM_List(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    ScratchPool scratch(n);
    kvp::PoolFile pool(scratch.path(), options());
    benchmark::DoNotOptimize(pool.snapshot());
    for (auto _ : state) {
        auto names = pool.list();
        benchmark::DoNotOptimize(names);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

// Change detection, nothing changed: what every FUSE request pays before answering.
void BM_DetectUnchanged(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    ScratchPool scratch(n);
    kvp::PoolFile pool(scratch.path(), options());
    benchmark::DoNotOptimize(pool.snapshot());
    for (auto _ : state) {
        benchmark::DoNotOptimize(pool.snapshot());
    }
}

// Change detection after another process rewrote one value in place (same size, same
// tick): the snapshot that follows must see it, i.e. notice and reload the file.
void BM_DetectExternalChange(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    ScratchPool scratch(n);
    kvp::PoolFile pool(scratch.path(), options());
    benchmark::DoNotOptimize(pool.snapshot());
    std::size_t c = 0;
    for (auto _ : state) {
        state.PauseTiming();
        const std::size_t i = (c * stride_for(n)) % n;
        const int gen = static_cast<int>((c / n + 1) % 2);
        ++c;
        scratch.external_write(i, gen);
        state.ResumeTiming();
        auto snap = pool.snapshot();
        const auto* rec = snap->find(key_of(i));
        if (rec == nullptr || rec->record.value != value_of(i, gen)) {
            state.SkipWithError("the change was not seen");
            break;
        }
    }
}

// What a content comparison at every operation would cost (docs/behaviour.md §3 says why kvpfs
// does not make one): the whole locked file read and every record compared with the snapshot,
// the way a change reads the file back after its writes (PoolFile::file_holds_cache).
void BM_ContentCompare(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    ScratchPool scratch(n);
    kvp::PoolFile pool(scratch.path(), options());
    const auto snap = pool.snapshot();
    const int fd = ::open(scratch.path().c_str(), O_RDONLY | O_CLOEXEC);
    for (auto _ : state) {
        struct flock fl {};
        fl.l_type = F_RDLCK;
        fl.l_whence = SEEK_SET;
        ::fcntl(fd, F_OFD_SETLK, &fl);
        bool same = true;
        std::size_t i = 0;
        const auto& records = snap->records();
        (void)kvp::read_records(
            fd, "bench", [&](std::span<const char, kvp::kRecordSize> bytes, std::uint64_t) {
                same = same && i < records.size() && kvp::record_holds(bytes, records[i].record);
                ++i;
            });
        fl.l_type = F_UNLCK;
        ::fcntl(fd, F_OFD_SETLK, &fl);
        benchmark::DoNotOptimize(same);
    }
    ::close(fd);
}

#define KVP_SIZES Arg(10)->Arg(1000)->Arg(10000)
BENCHMARK(BM_Get)->KVP_SIZES;
BENCHMARK(BM_GetMissing)->KVP_SIZES;
BENCHMARK(BM_Set)->KVP_SIZES;
BENCHMARK(BM_SetWhileSnapshotHeld)->KVP_SIZES;
BENCHMARK(BM_Delete)->KVP_SIZES;
BENCHMARK(BM_List)->KVP_SIZES;
BENCHMARK(BM_DetectUnchanged)->KVP_SIZES;
BENCHMARK(BM_DetectExternalChange)->KVP_SIZES;
BENCHMARK(BM_ContentCompare)->KVP_SIZES;

}  // namespace

BENCHMARK_MAIN();
