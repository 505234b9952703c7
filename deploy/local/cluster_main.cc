// moe-cluster: runs a whole cluster on loopback.
//   moe-cluster up --model DIR [--workers N] [--port P] [--http-port P] [--api-keys-file F]
//                  [--tls-cert PEM --tls-key PEM [--tls-ca PEM]]
// Starts N expert workers (R copies of each share with --replicas R), a
// router and a gateway, waits until every one reports SERVING, prints the
// gateway address, and supervises them: a worker that dies is started again
// (with back-off) while the router fails over to its replicas; the router or
// the gateway dying stops the cluster. Ctrl-C/SIGTERM stops them all.
#include <signal.h>

#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "core/command_line.h"
#include "deploy/local/cluster.h"
#include "proto/tls_flags.h"

ABSL_FLAG(std::string, model, "", "Model directory (Hugging Face layout).");
ABSL_FLAG(int, workers, 2, "Expert shares: expert e of every layer is in share e mod N (0: experts inside the router).");
ABSL_FLAG(int, replicas, 1, "Worker processes per share (each expert on this many workers; the router fails over).");
ABSL_FLAG(int, port, 0, "Gateway port on 127.0.0.1 (0: chosen by the OS).");
ABSL_FLAG(int, http_port, -1, "Port of the gateway's OpenAI-compatible HTTP API on 127.0.0.1 (0: chosen by the OS; "
                              "-1: no HTTP).");
ABSL_FLAG(std::string, api_keys_file, "", "API keys the gateway requires (one per line; empty: none).");
ABSL_FLAG(std::string, bin_dir, "", "Directory of the moe-* binaries (default: next to moe-cluster, "
                                    "then the build tree).");
ABSL_FLAG(int, worker_threads, 1, "Compute threads per expert worker.");
ABSL_FLAG(bool, place_workers, false,
          "Give worker i a CPU of its own for its serving threads (the i-th CPU, modulo their number) and run "
          "the workers under SCHED_BATCH (moe-expert-worker --cpus, --batch-scheduling).");
ABSL_FLAG(std::string, router_device, "cpu",
          "Where the router's dense model and KV cache run: cpu or cuda:N (moe-router --device).");
ABSL_FLAG(std::string, expert_transport, "grpc",
          "How the router reaches the workers' experts: grpc, or nccl (moe-router --expert-transport; needs "
          "--router-device cuda:N and every worker on its own GPU).");
ABSL_FLAG(std::string, worker_devices, "",
          "Comma-separated devices of the expert workers, worker k on entry k mod count (cpu, cuda:N); "
          "empty: every worker on the CPU.");
ABSL_FLAG(int, router_threads, 0, "Compute threads of the router (0: all CPUs).");
ABSL_FLAG(std::string, run_dir, "", "Directory for address files and logs (default: a fresh temp dir).");
ABSL_FLAG(int64_t, startup_timeout_ms, 120000, "How long each process may take to report SERVING.");
ABSL_FLAG(int, drain_timeout_s, 10,
          "On Ctrl-C/SIGTERM, how long requests in flight may take to finish before the processes stop.");

namespace {

std::string DefaultBinDir() {
  const std::string self = moe::SelfDirectory();
  if (access((self + "/moe-router").c_str(), X_OK) == 0) return self;
  return MOE_BUILD_BIN_DIR;
}

}  // namespace

int main(int argc, char** argv) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  absl::SetProgramUsageMessage("moe-cluster up --model DIR [--workers N] [--port P] [--http-port P]");
  moe::NormalizedArgs args(argc, argv);
  std::vector<char*> positional = absl::ParseCommandLine(args.argc(), args.argv());
  if (positional.size() != 2 || std::string(positional[1]) != "up") {
    std::cerr << "usage: moe-cluster up --model DIR [--workers N] [--port P] [--http-port P]\n";
    return 2;
  }
  moe::LocalClusterOptions options;
  options.model_dir = absl::GetFlag(FLAGS_model);
  options.num_workers = absl::GetFlag(FLAGS_workers);
  options.replicas = absl::GetFlag(FLAGS_replicas);
  options.gateway_port = absl::GetFlag(FLAGS_port);
  options.http_port = absl::GetFlag(FLAGS_http_port);
  if (!absl::GetFlag(FLAGS_api_keys_file).empty()) {
    options.extra_gateway_flags.push_back("--api-keys-file=" + absl::GetFlag(FLAGS_api_keys_file));
  }
  options.bin_dir = absl::GetFlag(FLAGS_bin_dir).empty() ? DefaultBinDir() : absl::GetFlag(FLAGS_bin_dir);
  options.worker_threads = absl::GetFlag(FLAGS_worker_threads);
  options.place_workers = absl::GetFlag(FLAGS_place_workers);
  options.router_threads = absl::GetFlag(FLAGS_router_threads);
  options.router_device = absl::GetFlag(FLAGS_router_device);
  if (const std::string t = absl::GetFlag(FLAGS_expert_transport); t != "grpc") {
    options.extra_router_flags.push_back("--expert-transport=" + t);
  }
  for (absl::string_view d : absl::StrSplit(absl::GetFlag(FLAGS_worker_devices), ',', absl::SkipWhitespace())) {
    options.worker_devices.emplace_back(d);
  }
  if (options.worker_devices.size() > 256) {
    std::cerr << "moe-cluster: --worker-devices: at most 256 entries\n";
    return 2;
  }
  options.run_dir = absl::GetFlag(FLAGS_run_dir);
  options.startup_timeout_ms = absl::GetFlag(FLAGS_startup_timeout_ms);
  options.drain_timeout_s = absl::GetFlag(FLAGS_drain_timeout_s);
  if (options.drain_timeout_s < 0 || options.drain_timeout_s > 3600) {
    std::cerr << "moe-cluster: --drain-timeout-s must be in [0, 3600]\n";
    return 2;
  }
  // Every process gets the same files: one certificate for the whole local
  // cluster (its names must cover 127.0.0.1), and with --tls-ca mutual TLS.
  options.tls = moe::rpc::TlsFilesFromFlags();
  if (options.model_dir.empty()) {
    std::cerr << "moe-cluster: --model is required\n";
    return 2;
  }
  if (options.replicas < 1 || options.replicas > 8 || options.num_workers * options.replicas > 64) {
    std::cerr << "moe-cluster: --replicas must be in [1, 8], and --workers x --replicas at most 64\n";
    return 2;
  }
  if (options.num_workers < 0 || options.num_workers > 256 || options.gateway_port < 0 ||
      options.gateway_port > 65535 || options.http_port < -1 || options.http_port > 65535 ||
      options.worker_threads < 0 || options.router_threads < 0) {
    std::cerr << "moe-cluster: --workers must be in [0, 256], --port in [0, 65535], --http-port in [-1, 65535], "
                 "threads >= 0\n";
    return 2;
  }
  moe::LocalCluster cluster(options);
  if (absl::Status s = cluster.Up(); !s.ok()) {
    std::cerr << "moe-cluster: " << s.message() << "\n";
    return 1;
  }
  std::cout << "workers: " << cluster.worker_addresses().size() << "\n"
            << "router: " << cluster.router_address() << "\n"
            << "gateway: " << cluster.gateway_address() << "\n";
  const bool tls = !options.tls.cert_file.empty();
  if (tls) std::cout << "tls: " << (options.tls.ca_file.empty() ? "on" : "on, mutual between services") << "\n";
  if (!cluster.gateway_http_address().empty()) {
    std::cout << "http: " << cluster.gateway_http_address() << (tls ? " (https)" : "") << "\n";
  }
  std::cout
            << "logs: " << cluster.run_dir() << "\n"
            << "serving; Ctrl-C stops the cluster" << std::endl;
  int code = 0;
  for (;;) {
    siginfo_t info;
    const timespec tick{0, 100 * 1000 * 1000};  // restarts wait for their back-off
    const int sig = sigtimedwait(&set, &info, &tick);
    if (sig == SIGINT || sig == SIGTERM) break;
    absl::StatusOr<std::vector<std::string>> report = cluster.Supervise();
    if (!report.ok()) {
      std::cerr << "moe-cluster: " << report.status().message() << "; stopping the cluster\n";
      code = 1;
      break;
    }
    for (const std::string& line : *report) std::cerr << "moe-cluster: " << line << "\n";
  }
  std::cout << "stopping the cluster" << std::endl;
  cluster.Stop();
  return code;
}
