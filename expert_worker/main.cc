// moe-expert-worker: serves a shard of a MoE model's routed experts over gRPC
// (moe.internal.v1.ExpertWorker, plus grpc.health.v1.Health).
//
//   moe-expert-worker --model DIR --experts SPEC --listen ADDR
//                     [--address-file PATH] [--threads N]
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "core/command_line.h"
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

int main(int argc, char** argv) {
  moe::rpc::BlockTerminationSignals();  // before any thread starts
  absl::SetProgramUsageMessage(
      "moe-expert-worker --model DIR --experts SPEC --listen ADDR [--address-file PATH] [--threads N]\n"
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
  auto tls = moe::rpc::TlsFromFlags(moe::rpc::TlsRole::kServer);
  if (!tls.ok()) {
    std::cerr << "moe-expert-worker: " << tls.status().message() << "\n";
    return 2;
  }
  options.tls = *std::move(tls);
  auto worker = moe::ExpertWorkerServer::Start(absl::GetFlag(FLAGS_model), absl::GetFlag(FLAGS_experts), options);
  if (!worker.ok()) {
    std::cerr << "moe-expert-worker: " << worker.status().message() << "\n";
    return 1;
  }
  const int sig = moe::rpc::WaitForTerminationSignal();
  LOG(INFO) << "expert worker: signal " << sig << ", shutting down";
  (*worker)->Shutdown();
  worker->reset();
  return 0;
}
