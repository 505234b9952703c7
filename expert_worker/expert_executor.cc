#include "expert_worker/expert_executor.h"


#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace moe {

absl::Status ValidateExpertRows(const ExpertRowsView& v, const ExpertRunner& runner) {
  const ModelConfig& c = runner.config();
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
    if (!runner.Holds(static_cast<int>(v.layer), static_cast<int>(e))) {
      return absl::InvalidArgumentError(absl::StrCat("this worker does not hold expert ", e, " of layer ",
                                                     v.layer, " (expert_ids[", r, "])"));
    }
  }
  return absl::OkStatus();
}

ExpertExecutor::ExpertExecutor(std::unique_ptr<ExpertRunner> runner)
    : runner_(std::move(runner)), thread_([this] { Loop(); }) {}

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
  if (queue_.empty()) runner_->Idle();
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
  ids_.assign(v.expert_ids.begin(), v.expert_ids.end());
  ExpertRows rows;
  rows.layer = static_cast<int>(v.layer);
  rows.hidden = v.hidden_size;
  rows.num_rows = v.num_rows;
  rows.x = v.rows.data();
  rows.expert_ids = ids_.data();
  return runner_->Run(rows, out);
}

}  // namespace moe
