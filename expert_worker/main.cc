// moe-expert-worker: serves a shard of a MoE model's routed experts over gRPC
// (moe.internal.v1.ExpertWorker, plus grpc.health.v1.Health).
//
//   moe-expert-worker --model DIR --experts SPEC --listen ADDR
//                     [--address-file PATH] [--threads N] [--cpus LIST] [--batch-scheduling]
//                     [--device cpu|cuda:N]
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "core/command_line.h"
#include "core/cpu_affinity.h"
#include "expert_worker/worker_server.h"
#include "glog/logging.h"
#include "proto/rpc_util.h"
#include "proto/tls_flags.h"

ABSL_FLAG(std::string, model, "", "Model directory (Hugging Face layout). Required.");
ABSL_FLAG(std::string, experts, "all",
          "Experts to hold: all | mod:I/N (expert e of every layer with e % N == I) | a comma list of "
          "E, E1-E2 (every layer) and L:E, L:E1-E2 (layer L).");
ABSL_FLAG(std::string, listen, "", "Address to serve on, HOST:PORT (port 0: the OS picks). Required.");
ABSL_FLAG(std::string, address_file, "", "Write the bound HOST:PORT here once serving.");
ABSL_FLAG(int, threads, 0, "Kernel threads, counting the compute thread (0: every available CPU).");
ABSL_FLAG(std::string, device, "cpu",
          "Where the experts run: cpu, or cuda:N (the weights are uploaded to GPU N once, at start).");
ABSL_FLAG(std::string, cpus, "",
          "CPUs of this worker's own, e.g. 0 or 2-3, for a host shared with the router or other workers: "
          "the threads that receive and answer requests run only there, and so does a request for one "
          "expert; the kernel pool's other threads (--threads) still use every CPU, for requests that "
          "need several experts. Empty: no placement.");
ABSL_FLAG(bool, batch_scheduling, false,
          "Run under SCHED_BATCH: the worker's threads do not preempt others (the router) when they wake up. "
          "For hosts shared with the router.");

ABSL_FLAG(int, drain_timeout_s, 30,
          "On SIGTERM/SIGINT: health turns NOT_SERVING, new exchanges are refused (routers retry them on a "
          "replica) and those in flight get up to this many seconds to finish. A second signal exits at once.");

int main(int argc, char** argv) {
  moe::rpc::BlockTerminationSignals();  // before any thread starts
  absl::SetProgramUsageMessage(
      "moe-expert-worker --model DIR --experts SPEC --listen ADDR [--address-file PATH] [--threads N]\n"
      "                  [--cpus LIST] [--batch-scheduling]\n"
      "                  [--tls-cert PEM --tls-key PEM [--tls-ca PEM]]");
  moe::NormalizedArgs args(argc, argv);
  absl::ParseCommandLine(args.argc(), args.argv());
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;

  if (absl::GetFlag(FLAGS_model).empty() || absl::GetFlag(FLAGS_listen).empty()) {
    std::cerr << "moe-expert-worker: --model and --listen are required\n";
    return 2;
  }
  moe::ExpertWorkerOptions options;
  options.listen_address = absl::GetFlag(FLAGS_listen);
  options.address_file = absl::GetFlag(FLAGS_address_file);
  options.compute_threads = absl::GetFlag(FLAGS_threads);
  options.device = absl::GetFlag(FLAGS_device);
  if (options.compute_threads < 0) {
    std::cerr << "moe-expert-worker: --threads is " << options.compute_threads << "; want >= 0\n";
    return 2;
  }
  // Placement before any thread starts: gRPC's threads and the compute
  // thread inherit the CPUs and the policy of this one.
  if (!absl::GetFlag(FLAGS_cpus).empty()) {
    const std::vector<int> allowed = moe::AllowedCpus();
    auto cpus = moe::ParseCpuList(absl::GetFlag(FLAGS_cpus), allowed);
    if (!cpus.ok()) {
      std::cerr << "moe-expert-worker: --cpus=" << absl::GetFlag(FLAGS_cpus) << ": " << cpus.status().message() << "\n";
      return 2;
    }
    if (options.compute_threads == 0) options.compute_threads = static_cast<int>(allowed.size());
    options.pool_cpus = allowed;
    options.lone_expert_threads = static_cast<int>(cpus->size());
    if (absl::Status s = moe::BindCurrentThread(*cpus); !s.ok()) {
      std::cerr << "moe-expert-worker: --cpus: " << s.message() << "\n";
      return 1;
    }
    LOG(INFO) << "expert worker: serving threads on CPUs " << moe::FormatCpuList(*cpus) << ", kernel pool on "
              << moe::FormatCpuList(allowed);
  }
  if (absl::GetFlag(FLAGS_batch_scheduling)) {
    if (absl::Status s = moe::UseBatchScheduling(); !s.ok()) {
      std::cerr << "moe-expert-worker: --batch-scheduling: " << s.message() << "\n";
      return 1;
    }
  }
  auto tls = moe::rpc::TlsFromFlags(moe::rpc::TlsRole::kServer);
  if (!tls.ok()) {
    std::cerr << "moe-expert-worker: " << tls.status().message() << "\n";
    return 2;
  }
  options.tls = *std::move(tls);
  if (absl::GetFlag(FLAGS_drain_timeout_s) < 0 || absl::GetFlag(FLAGS_drain_timeout_s) > 3600) {
    std::cerr << "moe-expert-worker: --drain_timeout_s must be in [0, 3600], got "
              << absl::GetFlag(FLAGS_drain_timeout_s) << "\n";
    return 2;
  }
  auto worker = moe::ExpertWorkerServer::Start(absl::GetFlag(FLAGS_model), absl::GetFlag(FLAGS_experts), options);
  if (!worker.ok()) {
    std::cerr << "moe-expert-worker: " << worker.status().message() << "\n";
    return 1;
  }
  const int sig = moe::rpc::WaitForTerminationSignal();
  LOG(INFO) << "expert worker: signal " << sig << ", draining (signal again to exit at once)";
  moe::rpc::ExitOnSecondSignal("moe-expert-worker");
  (*worker)->Drain(std::chrono::seconds(absl::GetFlag(FLAGS_drain_timeout_s)));
  (*worker)->Shutdown();
  worker->reset();
  return 0;
}
