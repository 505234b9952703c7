#include "experts/nccl_watchdog.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace moe::nccl {
namespace {

std::string Names(const std::vector<int>& workers, const WatchdogOptions& o) {
  std::vector<std::string> names;
  for (int w : workers) {
    names.push_back(w >= 0 && w < static_cast<int>(o.worker_names.size()) ? o.worker_names[w]
                                                                          : absl::StrCat("worker ", w));
  }
  return names.empty() ? std::string("(none pending)") : absl::StrJoin(names, ", ");
}

}  // namespace

absl::Status WaitForExchange(Exchange& exchange, int layer, const WatchdogOptions& o) {
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + o.deadline;
  absl::Time next_health = start + absl::Milliseconds(10);
  int polls = 0;
  for (;;) {
    absl::Status error;
    switch (exchange.Poll(&error)) {
      case Exchange::State::kDone:
        return absl::OkStatus();
      case Exchange::State::kFailed: {
        const std::vector<int> pending = exchange.PendingWorkers();
        exchange.Abort();
        return absl::UnavailableError(absl::StrCat("NCCL exchange of layer ", layer, " failed with ",
                                                   Names(pending, o), ": ", error.message()));
      }
      case Exchange::State::kRunning:
        break;
    }
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      const std::vector<int> pending = exchange.PendingWorkers();
      exchange.Abort();
      return absl::UnavailableError(absl::StrCat("NCCL exchange of layer ", layer, ": ", Names(pending, o),
                                                 " did not complete within the dispatch deadline of ",
                                                 absl::FormatDuration(o.deadline), "; communicator aborted"));
    }
    if (o.worker_up && now >= next_health) {
      next_health = now + absl::Milliseconds(10);
      for (int w : exchange.PendingWorkers()) {
        if (!o.worker_up(w)) {
          exchange.Abort();
          return absl::UnavailableError(absl::StrCat("NCCL exchange of layer ", layer, ": ", Names({w}, o),
                                                     " is down (gRPC health); communicator aborted"));
        }
      }
    }
    // Spin briefly (a GPU exchange takes microseconds), then sleep between polls.
    if (++polls > 200) {
      absl::SleepFor(std::min(o.poll_interval, deadline - absl::Now()));
    } else {
      std::this_thread::yield();
    }
  }
}

absl::StatusOr<Communicator*> CommunicatorKeeper::Get() {
  if (current_ == nullptr) {
    absl::StatusOr<std::unique_ptr<Communicator>> built = build_(next_generation_);
    if (!built.ok()) return built.status();
    current_ = std::move(*built);
    ++next_generation_;
    ++builds_;
  }
  return current_.get();
}

void CommunicatorKeeper::MarkBroken() { current_.reset(); }

}  // namespace moe::nccl
