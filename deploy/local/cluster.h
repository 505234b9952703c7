// LocalCluster: N expert workers, a router and a gateway as child processes
// on loopback (what `moe-cluster up` and scripts/run-local.sh run).
#ifndef MOE_DEPLOY_LOCAL_CLUSTER_H_
#define MOE_DEPLOY_LOCAL_CLUSTER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "deploy/local/process_group.h"
#include "proto/tls.h"

namespace moe {

struct LocalClusterOptions {
  std::string model_dir;
  int num_workers = 2;        // expert e of every layer goes to share e mod N; 0 = experts in the router
  // Copies of each share: worker k (of num_workers * replicas) holds share
  // k mod num_workers, so every expert is on `replicas` workers and the
  // router fails over between them.
  int replicas = 1;
  // When set, one worker per entry with that --experts spec (e.g. "1,2" or
  // "mod:0/2"), instead of num_workers x replicas.
  std::vector<std::string> worker_specs;
  // Worker k runs its experts on worker_devices[k % size] ("cpu", "cuda:N");
  // empty: every worker on the CPU.
  std::vector<std::string> worker_devices;
  // The router's --device: where its dense model and KV cache run ("cpu", "cuda:N").
  std::string router_device = "cpu";
  int gateway_port = 0;       // 0: chosen by the OS
  int http_port = -1;         // the gateway's OpenAI-compatible HTTP API on 127.0.0.1; -1: off, 0: chosen by the OS
  std::string bin_dir;        // where moe-expert-worker, moe-router, moe-gateway are
  int worker_threads = 1;     // compute threads per worker process
  // Worker i gets a CPU of its own (the i-th this process may use, modulo
  // their number) for its serving threads, and runs under SCHED_BATCH:
  // `moe-expert-worker --cpus=C --batch-scheduling`. For one host shared by
  // every process (docs/dispatch.md).
  bool place_workers = false;
  int router_threads = 0;     // 0: all CPUs
  std::string run_dir;        // address files and logs; a fresh temp dir when empty
  int64_t startup_timeout_ms = 120000;
  // Every process's --drain-timeout-s: on Stop (SIGTERM), requests in flight
  // get this long to finish; processes still alive 3 s later are killed.
  int drain_timeout_s = 2;
  std::vector<std::string> extra_router_flags;
  std::vector<std::string> extra_gateway_flags;
  // PEM files given to every process as --tls-cert/--tls-key/--tls-ca (and
  // --tls-server-name): TLS on every listener and mutual TLS between gateway,
  // router and workers. Empty: plaintext.
  rpc::TlsFiles tls;
};

class LocalCluster {
 public:
  explicit LocalCluster(LocalClusterOptions options) : options_(std::move(options)) {}
  ~LocalCluster() { Stop(); }

  // Starts everything and waits until each process reports SERVING. On error
  // every started child is stopped and the message names the process (and
  // points at its log).
  absl::Status Up();
  const LocalClusterOptions& options() const { return options_; }
  const std::string& gateway_address() const { return gateway_address_; }
  // "127.0.0.1:PORT" of the HTTP API; empty when http_port is -1.
  const std::string& gateway_http_address() const { return gateway_http_address_; }
  const std::string& router_address() const { return router_address_; }
  const std::vector<std::string>& worker_addresses() const { return worker_addresses_; }
  const std::string& run_dir() const { return run_dir_; }
  ProcessGroup& processes() { return processes_; }
  void Stop();

  // Supervision (call every ~100 ms, or when SIGCHLD arrives): reaps exited
  // children; an expert worker that died is started again on its address,
  // after a back-off (100 ms, doubling to 5 s; reset after 10 s of running),
  // and the router takes it back when it serves. Returns the lines to report
  // ("worker-1 exited (signal 9); restarting in 100 ms"). An error when the
  // router or the gateway exited: the cluster cannot serve without them.
  absl::StatusOr<std::vector<std::string>> Supervise();
  // Worker restarts so far.
  int restarts() const { return restarts_; }

 private:
  absl::StatusOr<std::string> StartAndWait(const std::string& name, std::vector<std::string> argv);
  // --drain-timeout-s and the TLS files, which every process gets.
  void AddCommonFlags(std::vector<std::string>* argv) const;
  struct WorkerProcess {
    std::string name;
    std::vector<std::string> argv;  // with --listen set to its address once known
    std::chrono::steady_clock::time_point started;
    std::chrono::steady_clock::time_point restart_at;  // pending restart, when set
    bool pending_restart = false;
    std::chrono::milliseconds backoff{100};
  };
  std::vector<WorkerProcess> workers_;
  int restarts_ = 0;

  LocalClusterOptions options_;
  rpc::TlsConfig tls_;  // the launcher's own health checks
  ProcessGroup processes_;
  std::string run_dir_;
  std::string gateway_address_, gateway_http_address_, router_address_;
  std::vector<std::string> worker_addresses_;
};

// The directory of the running executable.
std::string SelfDirectory();

}  // namespace moe

#endif  // MOE_DEPLOY_LOCAL_CLUSTER_H_
