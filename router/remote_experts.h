// RemoteExpertBackend: the routed experts of every MoE layer computed by
// expert-worker processes over gRPC (moe.internal.v1.ExpertWorker).
//
// Connect asks every worker what it holds and refuses to start unless every
// (layer, expert) of the model is held by some worker. Compute sends each
// worker that has rows ONE request per layer, all concurrently, and waits for
// every reply (or the per-layer deadline). Each request is one unary
// RunExperts call on gRPC's asynchronous completion-queue API, which the
// engine thread drains itself (a reply wakes it directly, with no hand-off
// from a callback thread); gRPC enforces the deadline. A persistent stream
// per worker was measured as no faster on loopback and removed
// (docs/dispatch.md).
//
// Replicas: workers may hold overlapping sets of experts. Each step, the
// rows of each expert go to one healthy worker holding it, spread by load
// (the expert with the most rows first, to the replica with the fewest rows
// so far; ties in the order given). When an exchange fails or misses its
// deadline, its experts' rows are sent again, in the same step, to another
// healthy replica (each retry round with a deadline of its own), so the step
// succeeds with bitwise the same outputs: a worker's result for a row does
// not depend on which other rows it computes. Only when no replica of an
// expert is left does Compute fail, UNAVAILABLE naming those experts.
//
// Health: a worker whose exchange failed is unhealthy and gets no rows; a
// background monitor probes every worker (grpc.health.v1) — unhealthy ones
// every health_probe_interval_ms, healthy ones every 5 such intervals — and
// as soon as an unhealthy worker answers SERVING it gets a fresh channel
// (no reconnect back-off left to wait out) and rows again. A healthy worker
// that stops answering probes becomes unhealthy without waiting for traffic.
// A step that finds an expert with no healthy replica first asks the
// unhealthy holders once, on a new connection (a refused one fails at once),
// and takes back any that serves; otherwise it fails at once (UNAVAILABLE)
// rather than waiting for a deadline again, so a stopped worker delays a
// request by at most one deadline.
//
// Thread-safety: Compute is called by one thread at a time (the engine
// thread); Stats and worker_addresses may be called from any thread.
#ifndef MOE_ROUTER_REMOTE_EXPERTS_H_
#define MOE_ROUTER_REMOTE_EXPERTS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
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

struct RemoteExpertsOptions {
  // "HOST:PORT" of each worker; the order decides which of several workers
  // holding the same expert is asked first.
  std::vector<std::string> worker_addresses;
  // Deadline of one layer's exchange with the workers, ms.
  int64_t dispatch_deadline_ms = 5000;
  // Deadline for reaching every worker at start-up (GetInfo), ms; workers
  // still starting within it are waited for.
  int64_t connect_deadline_ms = 10000;
  // TLS to the workers (this router's certificate is its client certificate).
  rpc::TlsConfig tls;
  // How often unhealthy workers are probed (healthy ones: 5x less often), ms;
  // an unhealthy worker's probe has this deadline, a healthy one's 10x (at
  // least 1 s), so that a busy host does not make a worker look dead.
  int64_t health_probe_interval_ms = 100;
  // Called from the monitor thread when "every expert has a healthy worker"
  // changes (true at start). May be empty.
  std::function<void(bool serviceable)> on_serviceable_change;
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

  // Every (layer, expert) has a healthy worker.
  bool Serviceable() const;
  // Times rows were sent again to another replica after a failure, and the
  // retry exchanges that carried them.
  uint64_t failovers() const { return failovers_.load(); }
  uint64_t retries() const { return retries_.load(); }

  struct WorkerStats {
    std::string address;
    uint64_t calls = 0;           // per-layer exchanges (failed ones too)
    uint64_t bytes_sent = 0;      // serialized request bytes
    uint64_t bytes_received = 0;  // serialized reply bytes
    double total_latency_s = 0;   // sum over calls of send-to-reply time
    double total_worker_queue_s = 0;    // of which the worker waited for its compute thread
    double total_worker_compute_s = 0;  // of which the worker computed
    uint64_t failures = 0;        // exchanges that failed or missed the deadline
    bool up = true;               // healthy: the last exchange or probe succeeded
    std::string last_error;       // why it is not healthy (empty when it is)
    Histogram::Snapshot latency;  // send-to-reply time of every exchange
  };
  std::vector<WorkerStats> Stats() const;

 private:
  struct Worker;
  struct Call;
  RemoteExpertBackend(const ModelConfig& config, const RemoteExpertsOptions& options);
  // Assigns each expert of `experts` (rows waiting) a healthy worker holding
  // it, not in `tried[expert]`, with the fewest rows so far; -1 when none.
  void Assign(int layer, const std::vector<int>& experts);
  // Marks worker `w` healthy or not (engine thread and monitor).
  void SetHealthy(int w, bool healthy, const std::string& why);
  void MonitorLoop();
  // Engine thread: asks an unhealthy worker's health now; when it serves,
  // gives it a fresh channel and marks it healthy.
  bool ProbeNow(int w);
  // Engine thread: swaps in the channels the monitor made for recovered workers.
  void TakeFreshChannels();
  // Every expert of `layer` (or of every layer, with -1) covered by a healthy worker.
  bool Covered(int layer) const;
  // Send `calls` and wait until each has a status (OK, or the failure).
  void RunUnary(const std::vector<Call*>& calls);

  const ModelConfig config_;
  const RemoteExpertsOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;
  // owners_[layer * num_experts + expert]: indices of the workers holding it, in option order.
  std::vector<std::vector<int>> owners_;
  uint64_t step_ = 0;  // requests sent, for the workers' logs
  // The engine thread waits on this queue itself, so that a reply wakes it
  // directly (no hand-off from a gRPC callback thread).
  std::unique_ptr<grpc::CompletionQueue> cq_;
  // Compute scratch (engine thread only).
  std::vector<std::vector<int64_t>> choices_of_expert_;  // per expert: choice indices (token * top_k + k)
  std::vector<int> assigned_;                            // per expert: the worker sending it this round, or -1
  std::vector<uint64_t> tried_;                          // per expert: bit w = worker w tried this step
  std::vector<int64_t> rows_of_worker_;                  // rows assigned this step, for spreading

  std::atomic<uint64_t> failovers_{0}, retries_{0};
  // The monitor thread and how it stops.
  absl::Mutex monitor_mu_;
  bool stop_monitor_ ABSL_GUARDED_BY(monitor_mu_) = false;
  std::thread monitor_;
};

}  // namespace moe

#endif  // MOE_ROUTER_REMOTE_EXPERTS_H_
