// Failure handling of the NCCL expert transport, host code over small
// interfaces so that every run tests it against fakes (no GPU, no NCCL).
//
// NCCL has no timeouts: a peer that dies or stalls leaves the others' kernels
// waiting forever. So the router never blocks on an exchange: it posts the
// layer's operations, then WaitForExchange polls them (CUDA events and
// ncclCommGetAsyncError in the real transport) against the dispatch deadline
// and the workers' gRPC health. On a failure, a deadline passed or a pending
// worker reported down, it aborts the communicator (ncclCommAbort ends the
// pending kernels), and the step's requests end with UNAVAILABLE naming the
// worker. CommunicatorKeeper then builds a new communicator (new unique id,
// next generation) when one is next needed, once the workers are back:
// no restart.
//
// Thread-safety: WaitForExchange and CommunicatorKeeper from one thread (the
// engine thread); Exchange::Abort may be called while another thread is
// blocked inside the transport and must release it.
#ifndef MOE_EXPERTS_NCCL_WATCHDOG_H_
#define MOE_EXPERTS_NCCL_WATCHDOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace moe::nccl {

// One posted exchange (one MoE layer), as the watchdog sees it.
class Exchange {
 public:
  enum class State { kRunning, kDone, kFailed };
  virtual ~Exchange() = default;
  // Never blocks. kFailed sets `*error` (the transport's own message).
  virtual State Poll(absl::Status* error) = 0;
  // Ends every pending operation promptly (ncclCommAbort); afterwards Poll
  // never returns kRunning. The communicator is unusable after it.
  virtual void Abort() = 0;
  // The workers (indices) whose part has not completed, for the error.
  virtual std::vector<int> PendingWorkers() const = 0;
};

struct WatchdogOptions {
  // The exchange must complete within this (--dispatch-deadline-ms).
  absl::Duration deadline = absl::Seconds(5);
  // How long to sleep between polls once the first spin is over.
  absl::Duration poll_interval = absl::Microseconds(50);
  // Whether worker w is up by its gRPC health (the router's monitor); a
  // pending worker that is down ends the wait at once. May be empty.
  std::function<bool(int worker)> worker_up;
  // For messages: worker w's address.
  std::vector<std::string> worker_names;
};

// Waits for `exchange`. OK when it completed. Otherwise aborts it and returns
// UNAVAILABLE naming the layer, the pending workers and why (the transport's
// error, the deadline, or a worker reported down). Returns within the
// deadline plus one poll interval plus the abort's own time.
absl::Status WaitForExchange(Exchange& exchange, int layer, const WatchdogOptions& options);

// A communicator as CommunicatorKeeper holds it.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual uint64_t generation() const = 0;
};

// Keeps one communicator: builds it on first use, drops it when an exchange
// failed (MarkBroken), and builds a new one (next generation) on the next use.
class CommunicatorKeeper {
 public:
  // `build(generation)` bootstraps a communicator with every worker (a new
  // unique id over gRPC, every rank joining within its deadline).
  using Builder = std::function<absl::StatusOr<std::unique_ptr<Communicator>>(uint64_t generation)>;
  explicit CommunicatorKeeper(Builder build) : build_(std::move(build)) {}

  // The communicator, built now if there is none. The builder's error when
  // building fails (the next call tries again).
  absl::StatusOr<Communicator*> Get();
  // The current communicator was aborted: the next Get builds another.
  void MarkBroken();
  // Communicators built so far (1 + rebuilds once the first succeeded).
  uint64_t builds() const { return builds_; }

 private:
  Builder build_;
  std::unique_ptr<Communicator> current_;
  uint64_t next_generation_ = 1;
  uint64_t builds_ = 0;
};

}  // namespace moe::nccl

#endif  // MOE_EXPERTS_NCCL_WATCHDOG_H_
