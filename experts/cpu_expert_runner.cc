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
  if (groups_.size() > scratch_.size()) scratch_.resize(groups_.size());
  // One expert's rows: gathered, run, scattered. The experts of a call write
  // disjoint rows of `out`.
  auto run_group = [&](size_t g, ThreadPool* pool) -> absl::Status {
    const auto [begin, end] = groups_[g];
    const int64_t m = static_cast<int64_t>(end - begin);
    GroupScratch& s = scratch_[g];
    s.x.resize(m * h);
    s.y.resize(m * h);
    for (int64_t i = 0; i < m; ++i) {
      std::memcpy(&s.x[i * h], in + (order_[begin + i].second / repeat) * row_bytes, row_bytes);
    }
    RETURN_IF_ERROR(shard_->Run(v.layer, static_cast<int>(order_[begin].first), s.x.data(), m, s.y.data(), pool,
                                &s.ffn));
    for (int64_t i = 0; i < m; ++i) std::memcpy(out + order_[begin + i].second * row_bytes, &s.y[i * h], row_bytes);
    return absl::OkStatus();
  };
  if (groups_.empty()) return absl::OkStatus();
  if (groups_.size() == 1) return run_group(0, lone_pool_ != nullptr ? lone_pool_.get() : pool_);
  if (pool_ == nullptr || pool_->num_threads() < 2) {
    for (size_t g = 0; g < groups_.size(); ++g) RETURN_IF_ERROR(run_group(g, nullptr));
    return absl::OkStatus();
  }
  // Several experts: each runs whole on one thread, the threads taking
  // experts from a shared counter (largest first). No thread waits inside an
  // expert for another that the OS descheduled, which matters where workers
  // share CPUs with each other and with the router.
  std::stable_sort(groups_.begin(), groups_.end(),
                   [](const auto& a, const auto& b) { return a.second - a.first > b.second - b.first; });
  status_.assign(groups_.size(), absl::OkStatus());
  pool_->ParallelFor(static_cast<int64_t>(groups_.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t g = b; g < e; ++g) status_[g] = run_group(g, nullptr);
  });
  for (const absl::Status& st : status_) RETURN_IF_ERROR(st);
  return absl::OkStatus();
}

}  // namespace moe
