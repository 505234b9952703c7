// CpuExpertRunner: the ExpertRunner of a CPU-resident ExpertShard.
//
// Rows are grouped by expert (sorted, so each expert's weights are read once
// per call, its rows in request order); one expert's rows run on the whole
// pool (or the lone-expert pool). Several experts with at most 16 rows each
// (decode) share the pool's threads row by row (SwiGluFfns); with more rows,
// each runs whole on one thread, largest first. Kernels follow the reduction-order contract of
// core/kernels.h, so neither the grouping nor the thread count changes a bit
// of any row.
//
// Thread-safety: Run from one thread at a time (it owns the scratch).
#ifndef MOE_EXPERTS_CPU_EXPERT_RUNNER_H_
#define MOE_EXPERTS_CPU_EXPERT_RUNNER_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/thread_pool.h"
#include "experts/expert_runner.h"
#include "experts/expert_shard.h"

namespace moe {

struct CpuExpertOptions {
  // Kernel threads, counting the calling thread; 0: every CPU the process may
  // use (those of pool_cpus when given).
  int compute_threads = 0;
  // CPUs of the pool's helper threads; empty: those of the constructing thread.
  std::vector<int> pool_cpus;
  // Threads for a call whose rows all go to one expert, counting the calling
  // thread; 0: the whole pool. Their helpers run where the constructing thread
  // runs. A worker with CPUs of its own on a shared host sets this to their
  // number, so that a lone expert stays on them while several experts of one
  // call still spread over the pool.
  int lone_expert_threads = 0;
};

class CpuExpertRunner : public ExpertRunner {
 public:
  // Owns the shard and its thread pools (an expert worker).
  CpuExpertRunner(std::unique_ptr<ExpertShard> shard, const CpuExpertOptions& options);
  // Shares a shard and a pool owned elsewhere (in-process experts next to the
  // router's dense model); `pool` may be null (serial).
  CpuExpertRunner(const ExpertShard* shard, ThreadPool* pool);

  const ExpertShard& shard() const { return *shard_; }

  const ModelConfig& config() const override { return shard_->config(); }
  bool Holds(int layer, int expert) const override { return shard_->Holds(layer, expert); }
  std::vector<ExpertKey> keys() const override { return shard_->keys(); }
  int64_t weight_bytes() const override { return shard_->weight_bytes(); }
  std::string_view weight_dtype() const override { return DTypeName(shard_->weight_dtype()); }
  std::string device() const override { return "cpu"; }
  absl::Status Run(const ExpertRows& rows, void* out) override;
  void Idle() override;

 private:
  std::unique_ptr<ExpertShard> owned_shard_;
  const ExpertShard* shard_;
  std::unique_ptr<ThreadPool> owned_pool_, lone_pool_;
  ThreadPool* pool_;  // null: serial

  std::vector<std::pair<uint32_t, int64_t>> order_;  // (expert, row), sorted
  std::vector<std::pair<size_t, size_t>> groups_;     // [begin, end) of order_ per expert
  struct GroupScratch {
    std::vector<float> x, y;  // gathered rows and their outputs
    FfnScratch ffn;
  };
  std::vector<GroupScratch> scratch_;  // per group
  std::vector<FfnTask> tasks_;         // per group
  std::vector<size_t> order_tasks_;    // largest first, when experts run whole on one thread each
  // Up to this many rows per expert, a call's experts share the threads row
  // by row; above it, each runs whole on one thread.
  static constexpr int64_t kSharedRows = 16;
};

}  // namespace moe

#endif  // MOE_EXPERTS_CPU_EXPERT_RUNNER_H_
