// ExpertExecutor: runs an expert worker's computations one at a time, on the
// worker's ExpertRunner (experts/expert_runner.h), which it owns.
//
// gRPC reactions validate a request (cheap, on the gRPC thread) and Post a
// job that calls Run and finishes the reaction. When nothing else is
// computing, Post runs the job at once on the posting thread: a decode step
// sends one request per layer, and handing it to another thread would add a
// wake-up (measured at 45-115 us per exchange on a shared 2-CPU host) to
// every layer. Otherwise the job waits in a queue for the compute thread.
//
// ExpertRowsView is the wire request seen as plain C++ (no protobuf types), so
// that validation and grouping are testable without gRPC.
//
// Thread-safety: Post may be called from any thread. Run only from inside a
// job (jobs never overlap). runner() is immutable after construction.
#ifndef MOE_EXPERT_WORKER_EXPERT_EXECUTOR_H_
#define MOE_EXPERT_WORKER_EXPERT_EXECUTOR_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "experts/expert_runner.h"

namespace moe {

// One layer's rows for this worker: row r goes through expert expert_ids[r].
struct ExpertRowsView {
  int64_t layer = 0;
  bool dtype_is_f32 = true;  // the only activation type supported so far
  int64_t num_rows = 0;
  int64_t hidden_size = 0;
  absl::string_view rows;  // num_rows * hidden_size little-endian f32
  absl::Span<const uint32_t> expert_ids;
};

// INVALID_ARGUMENT naming the field and both values when the request does not
// fit the runner (dtype, sizes, layer, an expert this worker does not hold).
absl::Status ValidateExpertRows(const ExpertRowsView& rows, const ExpertRunner& runner);

class ExpertExecutor {
 public:
  using Job = absl::AnyInvocable<void(ExpertExecutor& executor)>;

  explicit ExpertExecutor(std::unique_ptr<ExpertRunner> runner);
  // Runs every job already posted, then joins the compute thread.
  ~ExpertExecutor();
  ExpertExecutor(const ExpertExecutor&) = delete;
  ExpertExecutor& operator=(const ExpertExecutor&) = delete;

  const ExpertRunner& runner() const { return *runner_; }
  // Inside a job only: the runner, for work that is not a RunExperts request
  // (the NCCL transport's rows already on the device).
  ExpertRunner& runner_in_job() { return *runner_; }

  // Runs `job` now on this thread if no job is running or queued; otherwise
  // queues it for the compute thread and returns at once.
  void Post(Job job);

  // Inside a job only. Writes num_rows * hidden_size little-endian f32 to
  // `out`: row r = expert_{expert_ids[r]}(rows[r]), unweighted (ExpertRunner::Run).
  // `rows` must have passed ValidateExpertRows.
  absl::Status Run(const ExpertRowsView& rows, char* out);

 private:
  void Loop();
  bool HasWork() const ABSL_SHARED_LOCKS_REQUIRED(mu_) { return (!queue_.empty() && !busy_) || stopping_; }
  // After a job: lets the kernel threads sleep if nothing is queued.
  void AfterJob();

  std::unique_ptr<ExpertRunner> runner_;
  std::vector<uint32_t> ids_;  // expert ids, copied out of the request (aligned)

  mutable absl::Mutex mu_;
  std::deque<Job> queue_ ABSL_GUARDED_BY(mu_);
  bool busy_ ABSL_GUARDED_BY(mu_) = false;  // a job is running (on any thread)
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts after everything above is built
};

}  // namespace moe

#endif  // MOE_EXPERT_WORKER_EXPERT_EXECUTOR_H_
