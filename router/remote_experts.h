// RemoteExpertBackend: the routed experts of every MoE layer computed by
// expert-worker processes over gRPC (moe.internal.v1.ExpertWorker).
//
// Connect asks every worker what it holds and refuses to start unless every
// (layer, expert) of the model is held by some worker. Compute sends each
// worker that has rows ONE request per layer, all concurrently, and waits for
// every reply (or the per-layer deadline). By default each request is one
// callback unary RunExperts call, whose deadline gRPC enforces. The
// alternative transport is one persistent ExpertStream per worker (a write
// and a read per layer); on loopback neither is clearly faster
// (docs/dispatch.md). The stream's per-layer deadline is enforced here: a
// late exchange cancels the stream, which is reopened on the next call; an
// exchange that fails on a stream opened before (e.g. to a worker since
// restarted) is retried once on a fresh stream within the same deadline.
//
// An expert held by several workers goes to the first of them, in the order
// given, that has not failed recently; results are bitwise the same whichever
// computes it.
//
// Workers may restart at the same address: channels reconnect by themselves
// (back-off at most 1 s, see rpc::MakeChannel) and nothing broken is cached,
// so Compute succeeds again as soon as the channel is back. While a worker's
// channel is known to be failing (TRANSIENT_FAILURE) a request to it fails at
// once (UNAVAILABLE) instead of waiting for the deadline; otherwise requests
// wait for a (re)connecting worker within the deadline.
//
// Thread-safety: Compute is called by one thread at a time (the engine
// thread); Stats and worker_addresses may be called from any thread.
#ifndef MOE_ROUTER_REMOTE_EXPERTS_H_
#define MOE_ROUTER_REMOTE_EXPERTS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/expert_backend.h"
#include "core/metrics.h"
#include "core/model_config.h"
#include "proto/tls.h"

namespace moe {

enum class ExpertTransport {
  kUnary,   // one RunExperts call per worker per layer
  kStream,  // one persistent ExpertStream per worker
};

struct RemoteExpertsOptions {
  // "HOST:PORT" of each worker; the order decides which of several workers
  // holding the same expert is asked first.
  std::vector<std::string> worker_addresses;
  // Deadline of one layer's exchange with the workers, ms.
  int64_t dispatch_deadline_ms = 5000;
  // Deadline for reaching every worker at start-up (GetInfo), ms; workers
  // still starting within it are waited for.
  int64_t connect_deadline_ms = 10000;
  // How the per-layer requests travel; failures and results are the same.
  ExpertTransport transport = ExpertTransport::kUnary;
  // TLS to the workers (this router's certificate is its client certificate).
  rpc::TlsConfig tls;
};

class RemoteExpertBackend : public ExpertBackend {
 public:
  // Asks every worker what it holds (GetInfo, concurrently, with deadline).
  // UNAVAILABLE naming the address of an unreachable worker;
  // FAILED_PRECONDITION naming a worker whose model or dimensions disagree
  // with `config`, or the first (layer, expert) no worker holds.
  static absl::StatusOr<std::unique_ptr<RemoteExpertBackend>> Connect(const ModelConfig& config,
                                                                      const RemoteExpertsOptions& options);
  ~RemoteExpertBackend() override;

  // One request per worker that has rows, sent concurrently. UNAVAILABLE
  // naming the worker and the layer when a worker fails or misses the
  // deadline; INTERNAL naming the worker when its reply is malformed.
  absl::Status Compute(const ExpertBatch& batch, float* outputs) override;
  bool ComputesElsewhere() const override { return true; }

  const std::vector<std::string>& worker_addresses() const { return options_.worker_addresses; }

  struct WorkerStats {
    std::string address;
    uint64_t calls = 0;           // per-layer exchanges (failed ones too)
    uint64_t bytes_sent = 0;      // serialized request bytes
    uint64_t bytes_received = 0;  // serialized reply bytes
    double total_latency_s = 0;   // sum over calls of send-to-reply time
    double total_worker_queue_s = 0;    // of which the worker waited for its compute thread
    double total_worker_compute_s = 0;  // of which the worker computed
    uint64_t failures = 0;        // exchanges that failed or missed the deadline
    bool up = true;               // the last exchange succeeded (true before any)
    Histogram::Snapshot latency;  // send-to-reply time of every exchange
  };
  std::vector<WorkerStats> Stats() const;

 private:
  struct Worker;
  struct Call;
  class Stream;
  RemoteExpertBackend(const ModelConfig& config, const RemoteExpertsOptions& options);
  // The worker that gets `expert` of `layer` now.
  int Pick(int layer, int expert) const;
  // Send `calls` and wait until each has a status (OK, or the failure).
  void RunUnary(const std::vector<Call*>& calls);
  void RunStreams(const std::vector<Call*>& calls);
  // Starts the exchanges of `calls` on their workers' streams and waits for
  // them until `deadline`; cancels the late ones.
  void ExchangeOnStreams(const std::vector<Call*>& calls, absl::Time deadline);

  const ModelConfig config_;
  const RemoteExpertsOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;
  // owners_[layer * num_experts + expert]: indices of the workers holding it, in option order.
  std::vector<std::vector<int>> owners_;
  absl::Mutex mu_;  // guards the exchanges in flight (pending_ and the streams' flags)
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t step_ = 0;  // requests sent, for the workers' logs
  // Unary transport: the engine thread waits on this queue itself, so that
  // a reply wakes it directly (no hand-off from a gRPC callback thread).
  std::unique_ptr<grpc::CompletionQueue> cq_;
  // Compute scratch (engine thread only).
  std::vector<std::vector<int64_t>> choices_of_worker_;
};

}  // namespace moe

#endif  // MOE_ROUTER_REMOTE_EXPERTS_H_
