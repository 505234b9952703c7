// Drives a Backend with a Workload: warm-up requests first, then the measured
// phase as an open loop (arrivals at a request rate, Poisson or gamma) or a
// closed loop (N clients back to back), until a request count or a duration;
// then waits for every request in flight. Optionally draws a progress bar.
//
// Threads: Run() is the only scheduler (it owns the workload, the arrival
// process and the progress bar); completions arrive on transport threads and
// only append to the guarded record list.
#ifndef MOE_TOOLS_LOADGEN_RUNNER_H_
#define MOE_TOOLS_LOADGEN_RUNNER_H_

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "tools/loadgen/request.h"
#include "tools/loadgen/workload.h"

namespace moe::loadgen {

struct RunOptions {
  // Open loop at this mean rate (req/s; +infinity: all at once). 0: closed loop.
  double request_rate_per_s = 0;
  double burstiness = 1.0;  // gamma shape of the gaps; 1 = Poisson
  // Closed loop: clients sending back to back. Open loop: the most requests
  // in flight (an arrival waits for a free slot); 0 = no limit.
  int concurrency = 0;
  // The measured phase stops issuing after this many requests (0: no limit)
  // or this long (0: no limit); at least one must be set.
  int64_t num_requests = 0;
  double duration_s = 0;
  // Sent first (with the run's concurrency, or 4 at a time in an open loop)
  // and finished before the measured phase; excluded from the statistics.
  int warmup_requests = 0;
  uint64_t seed = 0;
  // Draws a one-line progress bar (carriage returns) on this stream; null: none.
  std::FILE* progress = nullptr;
  // Runs between the warm-up and the measured phase (e.g. to read the router's
  // counters), and after the measured phase has drained.
  std::function<void()> before_measured;
  std::function<void()> after_measured;
};

struct RunResult {
  std::vector<RequestRecord> records;  // warm-up and measured, in completion order
  int64_t warmup_failed = 0;
  std::string traffic;  // "Poisson, 4.00 req/s", "closed loop, 8 clients", ...
};

class Runner {
 public:
  // `backend` and `workload` must outlive the runner.
  Runner(Backend* backend, Workload* workload, RunOptions options);

  // Blocks until the run is over. Call once.
  RunResult Run();

 private:
  void Issue(bool warmup, double scheduled_s);
  // Waits until `at` has passed and fewer than `cap` (0: any) requests are in
  // flight; false when `end` comes first.
  bool WaitForSlot(Clock::time_point at, int cap, Clock::time_point end);
  void Drain();
  void DrawProgress(bool force);

  Backend* const backend_;
  Workload* const workload_;
  const RunOptions options_;
  Clock::time_point origin_;
  Clock::time_point measured_start_;
  bool measuring_ = false;
  int64_t next_index_ = 0;
  int64_t issued_measured_ = 0;
  Clock::time_point last_draw_;

  absl::Mutex mu_;
  std::vector<RequestRecord> records_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t done_ ABSL_GUARDED_BY(mu_) = 0;  // completions, warm-up included
  int64_t done_measured_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t failed_measured_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace moe::loadgen

#endif  // MOE_TOOLS_LOADGEN_RUNNER_H_
