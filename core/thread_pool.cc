#include "core/thread_pool.h"

#include <sched.h>

#include <algorithm>
#include <chrono>

#include "core/cpu_affinity.h"
#include "glog/logging.h"

namespace moe {
namespace {

int AvailableCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// How long an idle worker spins before it sleeps: long enough to bridge the
// gap between two kernels of one decode step, short enough not to burn a core.
constexpr auto kSpinTime = std::chrono::microseconds(200);

}  // namespace

ThreadPool::ThreadPool(int num_threads, std::vector<int> helper_cpus) {
  if (num_threads <= 0) num_threads = helper_cpus.empty() ? AvailableCpus() : static_cast<int>(helper_cpus.size());
  for (int i = 1; i < num_threads; ++i) {
    workers_.emplace_back([this, helper_cpus] {
      if (!helper_cpus.empty()) {
        // Best effort: a helper that cannot move still computes correctly.
        if (absl::Status s = BindCurrentThread(helper_cpus); !s.ok()) LOG(WARNING) << "thread pool: " << s;
      }
      WorkerLoop();
    });
  }
}

ThreadPool::~ThreadPool() {
  {
    absl::MutexLock lock(&mu_);  // its release wakes the sleeping workers
    stop_.store(true);
    const uint64_t s = state_.load();
    state_.store((static_cast<uint64_t>(EpochOf(s) + 1) << 32) | kClosed);
  }
  for (auto& t : workers_) t.join();
}

int64_t ThreadPool::ChunkFor(int64_t n, int chunks_per_thread) const {
  const int64_t parts = static_cast<int64_t>(num_threads()) * chunks_per_thread;
  return std::max<int64_t>(1, (n + parts - 1) / parts);
}

void ThreadPool::RunChunks() {
  const int64_t num_chunks = (n_ + chunk_ - 1) / chunk_;
  for (;;) {
    const int64_t c = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    if (c >= num_chunks) break;
    const int64_t begin = c * chunk_;
    (*fn_)(begin, std::min(n_, begin + chunk_));
  }
}

void ThreadPool::Quiesce() { quiesce_.store(true, std::memory_order_relaxed); }

void ThreadPool::ParallelFor(int64_t n, int64_t chunk,
                             const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  quiesce_.store(false, std::memory_order_relaxed);
  chunk = std::max<int64_t>(1, chunk);
  if (workers_.empty() || n <= chunk || in_loop_.load(std::memory_order_relaxed)) {
    for (int64_t b = 0; b < n; b += chunk) fn(b, std::min(n, b + chunk));
    return;
  }
  in_loop_.store(true, std::memory_order_relaxed);
  fn_ = &fn;
  n_ = n;
  chunk_ = chunk;
  next_chunk_.store(0, std::memory_order_relaxed);
  finished_.store(0, std::memory_order_relaxed);
  // Open the loop: a new epoch with nobody joined.
  const uint64_t epoch = EpochOf(state_.load(std::memory_order_relaxed)) + 1;
  state_.store(static_cast<uint64_t>(static_cast<uint32_t>(epoch)) << 32, std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_seq_cst) > 0) {
    // Releasing the lock makes the sleepers re-check their condition.
    absl::MutexLock lock(&mu_);
  }
  RunChunks();
  // Every chunk is taken: close the loop and wait for the workers that joined
  // (they may still be running their last chunk). Workers that did not join
  // by now never touch this loop.
  const int joined = static_cast<int>(state_.fetch_or(kClosed, std::memory_order_acq_rel) & kJoinedMask);
  loops_.fetch_add(1, std::memory_order_relaxed);
  if (joined > 0) joined_loops_.fetch_add(1, std::memory_order_relaxed);
  if (finished_.load(std::memory_order_acquire) != joined) {
    const auto wait_start = std::chrono::steady_clock::now();
    for (int spins = 0; finished_.load(std::memory_order_acquire) != joined; ++spins) {
      if (spins < 128) {
        CpuRelax();
      } else {
        std::this_thread::yield();
      }
    }
    waited_loops_.fetch_add(1, std::memory_order_relaxed);
    wait_ns_.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - wait_start)
                           .count(),
                       std::memory_order_relaxed);
  }
  in_loop_.store(false, std::memory_order_relaxed);
}

void ThreadPool::WorkerLoop() {
  uint32_t seen = 0;
  for (;;) {
    auto spin_until = std::chrono::steady_clock::now() + kSpinTime;
    uint64_t s;
    int spins = 0;
    while (EpochOf(s = state_.load(std::memory_order_acquire)) == seen) {
      CpuRelax();
      if (++spins < 256) continue;
      spins = 0;
      if (std::chrono::steady_clock::now() < spin_until && !quiesce_.load(std::memory_order_relaxed)) continue;
      absl::MutexLock lock(&mu_);
      sleeping_.fetch_add(1, std::memory_order_seq_cst);
      struct NewEpoch {
        const std::atomic<uint64_t>* state;
        uint32_t seen;
        bool operator()() const { return EpochOf(state->load(std::memory_order_seq_cst)) != seen; }
      } new_epoch{&state_, seen};
      mu_.Await(absl::Condition(&new_epoch));
      sleeping_.fetch_sub(1, std::memory_order_seq_cst);
      spin_until = std::chrono::steady_clock::now() + kSpinTime;
    }
    seen = EpochOf(s);
    if (stop_.load()) return;
    // Join the loop unless the caller closed it (or opened a later one).
    bool joined = false;
    while (EpochOf(s) == seen && (s & kClosed) == 0) {
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
        joined = true;
        break;
      }
    }
    if (!joined) continue;
    RunChunks();
    finished_.fetch_add(1, std::memory_order_release);
  }
}

}  // namespace moe
