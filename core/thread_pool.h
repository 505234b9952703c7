// ThreadPool: a fixed set of threads for data-parallel loops in the kernels.
//
// ParallelFor splits [0, n) into chunks that the calling thread and the
// workers take from a shared counter. Which thread runs a chunk never changes
// a result: every kernel computes each output element entirely inside one
// chunk. Workers spin briefly after a loop (decode issues thousands of short
// loops per second) and then sleep, so an idle pool costs no CPU.
//
// A worker joins a loop only while it is open; once the caller has taken the
// last chunk it closes the loop and waits only for the workers that joined.
// So a worker that is asleep or descheduled (CPUs shared with other
// processes, such as expert workers next to a router) never delays a loop: the
// threads that run do its share.
//
// Thread-safety: ParallelFor may be called by one thread at a time (the engine
// thread that owns the pool); nested calls from inside `fn` run inline.
#ifndef MOE_CORE_THREAD_POOL_H_
#define MOE_CORE_THREAD_POOL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace moe {

class ThreadPool {
 public:
  // `num_threads` counts the caller: 1 means everything runs inline.
  // 0 picks the number of CPUs in `helper_cpus`, or when that is empty the
  // number the calling thread may use. The helper threads run on
  // `helper_cpus` when it is not empty (they otherwise inherit the calling
  // thread's CPUs); the caller's own CPUs are left alone.
  explicit ThreadPool(int num_threads = 0, std::vector<int> helper_cpus = {});
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) on disjoint chunks covering [0, n), each at most
  // `chunk` long (the last may be shorter). Returns when all chunks are done.
  void ParallelFor(int64_t n, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn);

  // Idle workers stop spinning and sleep now instead of after the usual spin:
  // for when the caller is about to wait on something else (a remote expert
  // exchange) and the CPUs are better left to other processes. The next
  // ParallelFor wakes them.
  void Quiesce();

  // Chunk size that gives every thread about `chunks_per_thread` chunks.
  int64_t ChunkFor(int64_t n, int chunks_per_thread = 4) const;

  // Counters since construction (benchmarks): parallel loops run, how many
  // of them a helper joined, and the caller's time after its last chunk
  // waiting for joined helpers to finish theirs.
  struct Stats {
    int64_t loops = 0, joined_loops = 0, waited_loops = 0, wait_ns = 0;
  };
  Stats stats() const {
    return Stats{loops_.load(), joined_loops_.load(), waited_loops_.load(), wait_ns_.load()};
  }

 private:
  void WorkerLoop();
  void RunChunks();

  // state_ packs the loop's epoch (high 32 bits), a closed flag (bit 31) and
  // how many workers joined it (low 31 bits).
  static constexpr uint64_t kClosed = uint64_t{1} << 31;
  static constexpr uint64_t kJoinedMask = kClosed - 1;
  static uint32_t EpochOf(uint64_t state) { return static_cast<uint32_t>(state >> 32); }

  std::vector<std::thread> workers_;
  // The current loop; written by the caller before it opens the next epoch,
  // read by workers only after they joined it.
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int64_t chunk_ = 1;
  std::atomic<int64_t> next_chunk_{0};
  std::atomic<uint64_t> state_{kClosed};
  std::atomic<int> finished_{0};  // joined workers done with the current loop
  std::atomic<bool> stop_{false};
  std::atomic<int> sleeping_{0};
  // Sleeping workers wait on mu_ for a new epoch; opening one wakes them by
  // releasing mu_ (absl::Mutex re-evaluates its waiters' conditions then).
  absl::Mutex mu_;
  std::atomic<bool> in_loop_{false};
  std::atomic<bool> quiesce_{false};
  std::atomic<int64_t> loops_{0}, joined_loops_{0}, waited_loops_{0}, wait_ns_{0};
};

}  // namespace moe

#endif  // MOE_CORE_THREAD_POOL_H_
