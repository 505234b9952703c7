// ExpertWorkerServer: a running expert worker: its shard of the experts
// (loaded and prefaulted), the compute thread, and the gRPC server with
// health. What main.cc starts, and what tests and benchmarks start in-process.
//
// Start-up order: load the weights, then listen, then report health SERVING,
// so that nobody is ever routed to a worker whose weights are still paging in.
//
// Thread-safety: Wait and Shutdown may be called from different threads.
#ifndef MOE_EXPERT_WORKER_WORKER_SERVER_H_
#define MOE_EXPERT_WORKER_WORKER_SERVER_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/checkpoint.h"
#include "expert_worker/expert_executor.h"
#include "experts/expert_runner.h"
#include "experts/expert_shard.h"
#include "experts/nccl_bootstrap.h"
#include "proto/rpc_util.h"

namespace moe {

class ExpertWorkerService;

struct ExpertWorkerOptions {
  // "HOST:PORT"; port 0 lets the OS choose (see address()).
  std::string listen_address = "127.0.0.1:0";
  // When set, the bound address is written here once the worker serves.
  std::string address_file;
  // Kernel threads, counting the compute thread; 0: every CPU available.
  int compute_threads = 0;
  // See CpuExpertOptions: where the kernel pool's helpers run, and how
  // many threads a request for one expert uses (0: the whole pool).
  std::vector<int> pool_cpus;
  int lone_expert_threads = 0;
  // Where the experts run: "cpu" or "cuda:N" (experts/cuda_expert_runner.h).
  std::string device = "cpu";
  // TLS; with a CA, clients (routers) must present a certificate it issued.
  rpc::TlsConfig tls;
  // Answers JoinCommunicator (the NCCL transport) when set, instead of the
  // worker's own NCCL joiner (workers on a GPU); not owned. For tests.
  nccl::Joiner* nccl_joiner = nullptr;
};

class ExpertWorkerServer {
 public:
  // Serves `keys` of `checkpoint` (which must outlive the server). An empty
  // `keys` means every expert.
  static absl::StatusOr<std::unique_ptr<ExpertWorkerServer>> Start(const Checkpoint& checkpoint,
                                                                   std::vector<ExpertKey> keys,
                                                                   const ExpertWorkerOptions& options);
  // Opens `model_dir` and serves the experts `spec` selects (see expert_spec.h).
  static absl::StatusOr<std::unique_ptr<ExpertWorkerServer>> Start(const std::string& model_dir,
                                                                   absl::string_view spec,
                                                                   const ExpertWorkerOptions& options);
  // Shuts down (if not done yet) and joins the compute thread.
  ~ExpertWorkerServer();

  const std::string& address() const { return server_->address(); }
  const ExpertRunner& runner() const { return executor_->runner(); }

  // Blocks until Shutdown.
  void Wait() { server_->Wait(); }
  // Health NOT_SERVING, then stops accepting calls; in-flight calls get
  // `grace` to finish.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));
  // Graceful drain (SIGTERM): health NOT_SERVING at once, new exchanges
  // refused with UNAVAILABLE, those in flight finish (up to `timeout`).
  void Drain(std::chrono::milliseconds timeout);

 private:
  ExpertWorkerServer() = default;

  std::unique_ptr<Checkpoint> owned_checkpoint_;  // when started from a directory
  // Destroyed in reverse order: the server first, then the service it calls,
  // then the executor the service posts to.
  std::unique_ptr<ExpertExecutor> executor_;
  std::unique_ptr<nccl::Joiner> joiner_;  // the worker's own NCCL joiner (on a GPU)
  std::unique_ptr<ExpertWorkerService> service_;
  std::unique_ptr<rpc::RunningServer> server_;
};

}  // namespace moe

#endif  // MOE_EXPERT_WORKER_WORKER_SERVER_H_
