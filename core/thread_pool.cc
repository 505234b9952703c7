#include "core/thread_pool.h"

#include <sched.h>

#include <algorithm>
#include <chrono>

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

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) num_threads = AvailableCpus();
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    epoch_.fetch_add(1);
  }
  cv_.notify_all();
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
  pending_workers_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  epoch_.fetch_add(1, std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  }
  RunChunks();
  // Workers normally finish within microseconds of the caller; when the CPUs
  // are oversubscribed a descheduled worker is waited for with yields.
  for (int spins = 0; pending_workers_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < 4096) {
      CpuRelax();
    } else {
      std::this_thread::yield();
    }
  }
  in_loop_.store(false, std::memory_order_relaxed);
}

void ThreadPool::WorkerLoop() {
  uint64_t seen = 0;
  for (;;) {
    auto spin_until = std::chrono::steady_clock::now() + kSpinTime;
    uint64_t e;
    int spins = 0;
    while ((e = epoch_.load(std::memory_order_acquire)) == seen) {
      CpuRelax();
      if (++spins < 256) continue;
      spins = 0;
      if (std::chrono::steady_clock::now() < spin_until && !quiesce_.load(std::memory_order_relaxed)) continue;
      std::unique_lock<std::mutex> lock(mu_);
      sleeping_.fetch_add(1, std::memory_order_seq_cst);
      cv_.wait(lock, [&] { return epoch_.load(std::memory_order_seq_cst) != seen; });
      sleeping_.fetch_sub(1, std::memory_order_seq_cst);
      spin_until = std::chrono::steady_clock::now() + kSpinTime;
    }
    seen = e;
    if (stop_.load()) return;
    RunChunks();
    pending_workers_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

ThreadPool* DefaultThreadPool() {
  static ThreadPool* pool = new ThreadPool(0);
  return pool;
}

}  // namespace moe
