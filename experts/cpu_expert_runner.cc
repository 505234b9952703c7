#include "experts/cpu_expert_runner.h"

#include <algorithm>
#include <cstring>

#include "core/status_macros.h"

namespace moe {

CpuExpertRunner::CpuExpertRunner(std::unique_ptr<ExpertShard> shard, const CpuExpertOptions& options)
    : owned_shard_(std::move(shard)),
      shard_(owned_shard_.get()),
      owned_pool_(std::make_unique<ThreadPool>(options.compute_threads, options.pool_cpus)),
      lone_pool_(options.lone_expert_threads > 0 ? std::make_unique<ThreadPool>(options.lone_expert_threads)
                                                 : nullptr),
      pool_(owned_pool_.get()) {}

CpuExpertRunner::CpuExpertRunner(const ExpertShard* shard, ThreadPool* pool) : shard_(shard), pool_(pool) {}

void CpuExpertRunner::Idle() {
  if (owned_pool_ != nullptr) owned_pool_->Quiesce();
}

absl::Status CpuExpertRunner::Run(const ExpertRows& v, void* out_bytes) {
  const int64_t h = v.hidden, n = v.num_rows;
  const size_t row_bytes = static_cast<size_t>(h) * sizeof(float);
  const char* in = static_cast<const char*>(v.x);
  char* out = static_cast<char*>(out_bytes);
  const int64_t repeat = std::max<int64_t>(v.repeat, 1);
  order_.clear();
  for (int64_t r = 0; r < n; ++r) order_.emplace_back(v.expert_ids[r], r);
  std::sort(order_.begin(), order_.end());  // by expert, rows in request order
  groups_.clear();
  for (size_t begin = 0; begin < order_.size();) {
    size_t end = begin;
    while (end < order_.size() && order_[end].first == order_[begin].first) ++end;
    groups_.push_back({begin, end});
    begin = end;
  }
  if (groups_.empty()) return absl::OkStatus();
  if (groups_.size() > scratch_.size()) scratch_.resize(groups_.size());
  // Each expert's rows gathered, every expert of the call run in the same two
  // parallel loops (SwiGluFfns), then the outputs scattered. The experts of a
  // call write disjoint rows of `out`.
  tasks_.clear();
  for (size_t g = 0; g < groups_.size(); ++g) {
    const auto [begin, end] = groups_[g];
    const int64_t m = static_cast<int64_t>(end - begin);
    ASSIGN_OR_RETURN(const FfnWeights* w, shard_->Find(v.layer, static_cast<int>(order_[begin].first)));
    GroupScratch& s = scratch_[g];
    s.x.resize(m * h);
    s.y.resize(m * h);
    for (int64_t i = 0; i < m; ++i) {
      std::memcpy(&s.x[i * h], in + (order_[begin + i].second / repeat) * row_bytes, row_bytes);
    }
    tasks_.push_back({w, s.x.data(), m, s.y.data(), &s.ffn});
  }
  // A lone expert keeps to the lone-expert pool (a worker's own CPUs).
  ThreadPool* pool = groups_.size() == 1 && lone_pool_ != nullptr ? lone_pool_.get() : pool_;
  int64_t most_rows = 0;
  for (const FfnTask& t : tasks_) most_rows = std::max(most_rows, t.m);
  if (groups_.size() == 1 || most_rows <= kSharedRows || pool == nullptr || pool->num_threads() < 2) {
    // Few rows per expert (decode): reading the weights is the whole cost, so
    // the threads share every expert's rows, and none waits long at the end.
    SwiGluFfns(tasks_.data(), static_cast<int>(tasks_.size()), pool);
  } else {
    // Many rows per expert (prefill): each expert whole on one thread, its
    // input rows staying in that thread's cache; threads take experts
    // largest first.
    order_tasks_.resize(tasks_.size());
    for (size_t g = 0; g < tasks_.size(); ++g) order_tasks_[g] = g;
    std::stable_sort(order_tasks_.begin(), order_tasks_.end(),
                     [&](size_t a, size_t b) { return tasks_[a].m > tasks_[b].m; });
    pool->ParallelFor(static_cast<int64_t>(tasks_.size()), 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) SwiGluFfns(&tasks_[order_tasks_[i]], 1, nullptr);
    });
  }
  for (size_t g = 0; g < groups_.size(); ++g) {
    const auto [begin, end] = groups_[g];
    const std::vector<float>& y = scratch_[g].y;
    for (size_t i = 0; i < end - begin; ++i) {
      std::memcpy(out + order_[begin + i].second * row_bytes, &y[i * h], row_bytes);
    }
  }
  return absl::OkStatus();
}

}  // namespace moe
