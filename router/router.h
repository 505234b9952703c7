// Router: the router process as a library. Loads the dense weights, connects
// to the expert workers (or holds every expert in process), runs the engine
// and serves moe.internal.v1.Router. main.cc only parses flags.
#ifndef MOE_ROUTER_ROUTER_H_
#define MOE_ROUTER_ROUTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/checkpoint.h"
#include "core/thread_pool.h"
#include "grammar/constraint.h"
#include "proto/rpc_util.h"
#include "router/engine.h"
#include "router/dense_device.h"

namespace moe {

class RouterService;

struct RouterOptions {
  std::string model_dir;
  // Expert-worker addresses; empty means every expert in this process
  // (`--workers=local`).
  std::vector<std::string> worker_addresses;
  // With local experts: where they run, "cpu" or "cuda:N".
  std::string expert_device = "cpu";
  // Where the dense model (attention, norms, gates, lm_head, the KV cache)
  // runs: "cpu" or "cuda:N" (the KV cache's capacity is then device memory).
  std::string device = "cpu";
  // How MoE-layer rows reach the experts: "grpc" (RunExperts) or "nccl"
  // (router/cuda/nccl_experts.h: GPU buffers over NCCL, gRPC for control).
  // nccl needs the router on a GPU (device) with remote workers, or
  // --expert-device cuda:N with local experts (one rank sending to itself).
  std::string expert_transport = "grpc";
  std::string listen_address = "127.0.0.1:0";
  std::string address_file;  // where to write the bound address, if set
  int threads = 0;           // compute threads; 0 = all CPUs
  int64_t dispatch_deadline_ms = 5000;  // one MoE layer exchange with one worker
  int64_t connect_deadline_ms = 10000;  // asking the workers what they hold, at start-up
  EngineOptions engine;
  // HTTP address serving GET /metrics ("" = none); the bound address goes to
  // metrics_address_file when set.
  std::string metrics_listen_address;
  std::string metrics_address_file;
  // TLS for the gRPC server (with a CA: gateways must present a certificate
  // it issued) and, with the same certificate as client identity, to the
  // expert workers.
  rpc::TlsConfig tls;
};

class Router {
 public:
  // Loads, connects, starts serving. Health turns SERVING when this returns.
  static absl::StatusOr<std::unique_ptr<Router>> Create(const RouterOptions& options);
  ~Router();

  const std::string& address() const;
  Engine& engine() { return *engine_; }
  // Graceful drain (SIGTERM): health turns NOT_SERVING at once, new requests
  // are refused (UNAVAILABLE), requests in flight run to completion for up
  // to `timeout`, then what is left ends with UNAVAILABLE (never OK) and the
  // server stops. Returns the number of requests cut off.
  int64_t Drain(absl::Duration timeout);
  void Shutdown();
  // Prometheus exposition of the router's metrics.
  std::string RenderMetrics() const;

 private:
  Router() = default;

  std::unique_ptr<Checkpoint> checkpoint_;
  std::unique_ptr<class DenseModel> dense_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<class ExpertShard> local_shard_;
  std::unique_ptr<class ExpertRunner> local_runner_;  // local experts on a GPU
  std::unique_ptr<class ExpertBackend> experts_;
  std::unique_ptr<DenseDevice> device_;  // ForwardPass, or the GPU device
  std::unique_ptr<grammar::TokenVocabulary> vocabulary_;  // token bytes, for constraints
  std::unique_ptr<grammar::ConstraintCompiler> constraints_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<RouterService> service_;
  std::unique_ptr<rpc::RunningServer> server_;
  class RemoteExpertBackend* remote_ = nullptr;  // experts_, when remote
  std::unique_ptr<class RouterMetrics> metrics_;
  std::unique_ptr<class MetricsServer> metrics_server_;

  // Health: SERVING while not draining and every expert has a healthy worker.
  void UpdateServing();
  absl::Mutex health_mu_;
  bool draining_ ABSL_GUARDED_BY(health_mu_) = false;
  bool serving_ ABSL_GUARDED_BY(health_mu_) = false;
};

}  // namespace moe

#endif  // MOE_ROUTER_ROUTER_H_
