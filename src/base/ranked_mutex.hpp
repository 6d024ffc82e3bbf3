#pragma once
// Mutexes that know their place in the lock order (lock_rank.hpp). Ranked<M> is a drop-in
// for M (std::mutex, std::shared_timed_mutex): std::lock_guard, std::unique_lock and
// std::shared_lock take it as they take M, and std::condition_variable_any waits on it.
// With KVPFS_CHECK_LOCK_ORDER every lock first checks the calling thread's held locks
// (lock_order.cpp) and aborts on a lock taken out of order; without it Ranked<M> is M.

#include <chrono>
#include <mutex>
#include <shared_mutex>

#include "lock_rank.hpp"

namespace kvp {

namespace lock_order {
// The calling thread is about to wait for a lock of `rank`: aborts, naming both locks, when it
// holds one of the same or a later rank.
void check(LockRank rank);
// The calling thread now holds / no longer holds a lock of `rank`.
void acquired(LockRank rank);
void released(LockRank rank);
#ifdef KVPFS_CHECK_LOCK_ORDER
inline constexpr bool kChecked = true;
#else
inline constexpr bool kChecked = false;
#endif
}  // namespace lock_order

// Holds the rank of a lock that is not a mutex (the pool file's flock + fcntl lock) for the
// check, from a successful acquisition to its release.
class HeldRank {
  public:
    explicit HeldRank(LockRank rank) : rank_(rank) {
        if constexpr (lock_order::kChecked) {
            lock_order::check(rank_);
            lock_order::acquired(rank_);
        }
    }
    ~HeldRank() {
        if constexpr (lock_order::kChecked) {
            lock_order::released(rank_);
        }
    }
    HeldRank(const HeldRank&) = delete;
    HeldRank& operator=(const HeldRank&) = delete;
    HeldRank(HeldRank&&) = delete;
    HeldRank& operator=(HeldRank&&) = delete;

  private:
    LockRank rank_;
};

template <typename Mutex>
class Ranked {
  public:
    explicit Ranked(LockRank rank) : rank_(rank) {}
    Ranked(const Ranked&) = delete;
    Ranked& operator=(const Ranked&) = delete;
    Ranked(Ranked&&) = delete;
    Ranked& operator=(Ranked&&) = delete;
    ~Ranked() = default;

    void lock() {
        before_wait();
        mutex_.lock();
        held();
    }
    bool try_lock() { return note(mutex_.try_lock()); }
    void unlock() {
        mutex_.unlock();
        released();
    }

    // Shared locking, where Mutex has it.
    void lock_shared() {
        before_wait();
        mutex_.lock_shared();
        held();
    }
    bool try_lock_shared() { return note(mutex_.try_lock_shared()); }
    void unlock_shared() {
        mutex_.unlock_shared();
        released();
    }

    // Timed locking, where Mutex has it. A bounded wait can deadlock for as long as its bound,
    // so it is checked like lock().
    template <typename Rep, typename Period>
    bool try_lock_for(const std::chrono::duration<Rep, Period>& wait) {
        before_wait();
        return note(mutex_.try_lock_for(wait));
    }
    template <typename Rep, typename Period>
    bool try_lock_shared_for(const std::chrono::duration<Rep, Period>& wait) {
        before_wait();
        return note(mutex_.try_lock_shared_for(wait));
    }

    [[nodiscard]] LockRank rank() const { return rank_; }

  private:
    void before_wait() const {
        if constexpr (lock_order::kChecked) {
            lock_order::check(rank_);
        }
    }
    void held() const {
        if constexpr (lock_order::kChecked) {
            lock_order::acquired(rank_);
        }
    }
    void released() const {
        if constexpr (lock_order::kChecked) {
            lock_order::released(rank_);
        }
    }
    bool note(bool taken) const {
        if (taken) {
            held();
        }
        return taken;
    }

    Mutex mutex_;
    LockRank rank_;
};

using RankedMutex = Ranked<std::mutex>;
using RankedSharedMutex = Ranked<std::shared_timed_mutex>;

}  // namespace kvp
