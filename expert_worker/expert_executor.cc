#include "expert_worker/expert_executor.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace moe {

absl::Status ValidateExpertRows(const ExpertRowsView& v, const ExpertShard& shard) {
  const ModelConfig& c = shard.config();
  if (!v.dtype_is_f32) return absl::InvalidArgumentError("dtype: only ACTIVATION_DTYPE_F32 is supported");
  if (v.hidden_size != c.hidden_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("hidden_size is ", v.hidden_size, ", the model's is ", c.hidden_size));
  }
  if (v.num_rows < 0) return absl::InvalidArgumentError(absl::StrCat("num_rows is ", v.num_rows));
  const uint64_t want = static_cast<uint64_t>(v.num_rows) * static_cast<uint64_t>(v.hidden_size) * 4;
  if (v.rows.size() != want) {
    return absl::InvalidArgumentError(absl::StrCat("rows holds ", v.rows.size(), " bytes; num_rows ", v.num_rows,
                                                   " x hidden_size ", v.hidden_size, " x 4 = ", want));
  }
  if (static_cast<int64_t>(v.expert_ids.size()) != v.num_rows) {
    return absl::InvalidArgumentError(
        absl::StrCat("expert_ids has ", v.expert_ids.size(), " entries for num_rows ", v.num_rows));
  }
  if (v.num_gate_weights != 0 && v.num_gate_weights != v.num_rows) {
    return absl::InvalidArgumentError(absl::StrCat("gate_weights has ", v.num_gate_weights,
                                                   " entries; want 0 or num_rows ", v.num_rows));
  }
  if (v.num_rows == 0) return absl::OkStatus();
  if (v.layer < 0 || v.layer >= c.num_hidden_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer ", v.layer, " is outside the model (", c.num_hidden_layers, " layers)"));
  }
  for (int64_t r = 0; r < v.num_rows; ++r) {
    const uint32_t e = v.expert_ids[r];
    if (e >= static_cast<uint64_t>(c.num_experts)) {
      return absl::InvalidArgumentError(absl::StrCat("expert_ids[", r, "] = ", e, " is outside the model (",
                                                     c.num_experts, " experts)"));
    }
    if (!shard.Holds(static_cast<int>(v.layer), static_cast<int>(e))) {
      return absl::InvalidArgumentError(absl::StrCat("this worker does not hold expert ", e, " of layer ",
                                                     v.layer, " (expert_ids[", r, "])"));
    }
  }
  return absl::OkStatus();
}

ExpertExecutor::ExpertExecutor(std::unique_ptr<ExpertShard> shard, const ExpertExecutorOptions& options)
    : shard_(std::move(shard)),
      options_(options),
      pool_(options.compute_threads, options.pool_cpus),
      lone_pool_(options.lone_expert_threads > 0 ? std::make_unique<ThreadPool>(options.lone_expert_threads)
                                                 : nullptr),
      thread_([this] { Loop(); }) {}

ExpertExecutor::~ExpertExecutor() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void ExpertExecutor::Post(Job job) {
  {
    absl::MutexLock lock(&mu_);
    if (busy_ || !queue_.empty() || stopping_) {
      queue_.push_back(std::move(job));
      return;
    }
    busy_ = true;
  }
  job(*this);
  AfterJob();
}

void ExpertExecutor::AfterJob() {
  absl::MutexLock lock(&mu_);
  // Nothing more to compute until the router's next layer: let the pool's
  // threads sleep instead of spinning on CPUs other processes need. (Under
  // the lock: once busy_ is clear the destructor may proceed.)
  if (queue_.empty()) pool_.Quiesce();
  busy_ = false;  // the compute thread takes whatever was queued meanwhile
}

void ExpertExecutor::Loop() {
  // No polling before sleeping: measured on loopback (docs/dispatch.md), the
  // next layer's request comes later than a useful spin would last, and the
  // spinning thread takes the CPU from the gRPC threads.
  for (;;) {
    Job job;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &ExpertExecutor::HasWork));
      if (queue_.empty() && !busy_) return;  // stopping, and nothing left to run
      if (busy_) {  // stopping while a job runs on a gRPC thread
        mu_.Await(absl::Condition(+[](bool* busy) { return !*busy; }, &busy_));
        if (queue_.empty()) return;
      }
      job = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
    }
    job(*this);
    AfterJob();
  }
}

absl::Status ExpertExecutor::Run(const ExpertRowsView& v, char* out) {
  const int64_t h = v.hidden_size, n = v.num_rows;
  const size_t row_bytes = static_cast<size_t>(h) * sizeof(float);
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
  // One expert's rows: gathered, run, scattered. The experts of a request
  // write disjoint rows of `out`.
  auto run_group = [&](size_t g, ThreadPool* pool) -> absl::Status {
    const auto [begin, end] = groups_[g];
    const int64_t m = static_cast<int64_t>(end - begin);
    GroupScratch& s = scratch_[g];
    s.x.resize(m * h);
    s.y.resize(m * h);
    for (int64_t i = 0; i < m; ++i) std::memcpy(&s.x[i * h], v.rows.data() + order_[begin + i].second * row_bytes, row_bytes);
    RETURN_IF_ERROR(shard_->Run(static_cast<int>(v.layer), static_cast<int>(order_[begin].first), s.x.data(), m,
                                s.y.data(), pool, &s.ffn));
    for (int64_t i = 0; i < m; ++i) std::memcpy(out + order_[begin + i].second * row_bytes, &s.y[i * h], row_bytes);
    return absl::OkStatus();
  };
  if (groups_.empty()) return absl::OkStatus();
  if (groups_.size() == 1) return run_group(0, lone_pool_ != nullptr ? lone_pool_.get() : &pool_);
  if (pool_.num_threads() < 2) {
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
  pool_.ParallelFor(static_cast<int64_t>(groups_.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t g = b; g < e; ++g) status_[g] = run_group(g, nullptr);
  });
  for (const absl::Status& st : status_) RETURN_IF_ERROR(st);
  return absl::OkStatus();
}

}  // namespace moe
