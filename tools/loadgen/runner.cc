#include "tools/loadgen/runner.h"

#include <algorithm>
#include <cmath>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "tools/loadgen/arrivals.h"

namespace moe::loadgen {

namespace {

constexpr auto kProgressPeriod = std::chrono::milliseconds(100);
constexpr int kWarmupOpenLoopConcurrency = 4;

}  // namespace

Runner::Runner(Backend* backend, Workload* workload, RunOptions options)
    : backend_(backend), workload_(workload), options_(std::move(options)) {}

void Runner::Issue(bool warmup, double scheduled_s) {
  RequestSpec spec = workload_->Next();
  spec.index = next_index_++;
  spec.warmup = warmup;
  spec.scheduled_s = scheduled_s;
  {
    absl::MutexLock lock(&mu_);
    ++in_flight_;
  }
  backend_->Start(spec, origin_, [this](RequestRecord record) {
    absl::MutexLock lock(&mu_);
    --in_flight_;
    ++done_;
    if (!record.warmup) {
      ++done_measured_;
      if (!record.ok) ++failed_measured_;
    }
    records_.push_back(std::move(record));
  });
}

bool Runner::WaitForSlot(Clock::time_point at, int cap, Clock::time_point end) {
  for (;;) {
    const Clock::time_point now = Clock::now();
    Clock::time_point wake = std::min(end, now < at ? at : Clock::time_point::max());
    if (options_.progress != nullptr) wake = std::min(wake, now + kProgressPeriod);
    bool completion = false;
    {
      absl::MutexLock lock(&mu_);
      const bool slot = cap <= 0 || in_flight_ < cap;
      if (now >= at && slot) return true;
      if (now >= end) return false;
      if (now >= at) {
        // Waiting for a slot: sleep until a completion (or the end, or the
        // next progress frame).
        const int64_t seen = done_;
        auto completed = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_ != seen; };
        if (wake == Clock::time_point::max()) {
          mu_.Await(absl::Condition(&completed));
          completion = true;
        } else {
          completion = mu_.AwaitWithTimeout(absl::Condition(&completed), absl::FromChrono(wake - now));
        }
      }
    }
    // Waiting for the arrival time: sleep without the lock.
    if (Clock::now() < at) std::this_thread::sleep_until(wake);
    // After a completion the freed slot is refilled first, then drawn.
    if (!completion) DrawProgress(/*force=*/false);
  }
}

void Runner::Drain() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
      if (options_.progress == nullptr) {
        mu_.Await(absl::Condition(&idle));
        return;
      }
      if (mu_.AwaitWithTimeout(absl::Condition(&idle), absl::FromChrono(kProgressPeriod))) return;
    }
    DrawProgress(/*force=*/false);
  }
}

void Runner::DrawProgress(bool force) {
  if (options_.progress == nullptr) return;
  const Clock::time_point now = Clock::now();
  if (!force && now - last_draw_ < kProgressPeriod) return;
  last_draw_ = now;
  int in_flight;
  int64_t done, failed, done_warmup;
  {
    absl::MutexLock lock(&mu_);
    in_flight = in_flight_;
    done_warmup = done_ - done_measured_;
    done = done_measured_;
    failed = failed_measured_;
  }
  constexpr int kWidth = 30;
  std::string line;
  if (!measuring_) {
    line = absl::StrFormat("warm-up: %d/%d requests done, %d in flight", done_warmup, options_.warmup_requests, in_flight);
  } else {
    const double elapsed = std::chrono::duration<double>(now - measured_start_).count();
    double fraction = 0;
    if (options_.num_requests > 0) fraction = static_cast<double>(done) / static_cast<double>(options_.num_requests);
    if (options_.duration_s > 0) fraction = std::max(fraction, elapsed / options_.duration_s);
    fraction = std::clamp(fraction, 0.0, 1.0);
    const int filled = static_cast<int>(std::round(fraction * kWidth));
    line = absl::StrCat("[", std::string(filled, '#'), std::string(kWidth - filled, '.'), "] ",
                        absl::StrFormat("%3.0f%% | %d done", fraction * 100, done));
    if (options_.num_requests > 0) absl::StrAppend(&line, "/", options_.num_requests);
    absl::StrAppend(&line, absl::StrFormat(" | %d failed | %d in flight | %.1f s", failed, in_flight, elapsed));
  }
  std::fprintf(options_.progress, "\r%s\033[K", line.c_str());
  std::fflush(options_.progress);
}

RunResult Runner::Run() {
  origin_ = Clock::now();
  RunResult result;
  const bool open_loop = options_.request_rate_per_s > 0;

  if (options_.warmup_requests > 0) {
    const int cap = options_.concurrency > 0 ? options_.concurrency : (open_loop ? kWarmupOpenLoopConcurrency : 1);
    for (int i = 0; i < options_.warmup_requests; ++i) {
      WaitForSlot(Clock::now(), cap, Clock::time_point::max());
      Issue(/*warmup=*/true, SecondsSince(origin_, Clock::now()));
    }
    Drain();
  }
  {
    absl::MutexLock lock(&mu_);
    for (const RequestRecord& r : records_) result.warmup_failed += r.ok ? 0 : 1;
  }
  if (options_.before_measured) options_.before_measured();

  measuring_ = true;
  measured_start_ = Clock::now();
  const Clock::time_point end =
      options_.duration_s > 0
          ? measured_start_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options_.duration_s))
          : Clock::time_point::max();
  ArrivalProcess arrivals(ArrivalOptions{options_.request_rate_per_s, options_.burstiness, options_.seed});
  result.traffic = open_loop ? arrivals.Describe() : absl::StrCat("closed loop, ", options_.concurrency, " clients");
  if (open_loop && options_.concurrency > 0) absl::StrAppend(&result.traffic, ", at most ", options_.concurrency, " in flight");

  double next_arrival_s = SecondsSince(origin_, measured_start_);
  while (options_.num_requests <= 0 || issued_measured_ < options_.num_requests) {
    if (open_loop) {
      const Clock::time_point at =
          origin_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(next_arrival_s));
      if (at >= end) break;
      if (!WaitForSlot(at, options_.concurrency, end)) break;
      Issue(/*warmup=*/false, next_arrival_s);
      next_arrival_s += arrivals.NextGapSeconds();
    } else {
      if (!WaitForSlot(Clock::now(), options_.concurrency, end)) break;
      Issue(/*warmup=*/false, SecondsSince(origin_, Clock::now()));
    }
    ++issued_measured_;
    DrawProgress(/*force=*/false);
  }
  Drain();
  DrawProgress(/*force=*/true);
  if (options_.progress != nullptr) std::fprintf(options_.progress, "\n");
  if (options_.after_measured) options_.after_measured();

  absl::MutexLock lock(&mu_);
  result.records = std::move(records_);
  return result;
}

}  // namespace moe::loadgen
