// moe-router: serves moe.internal.v1.Router for one model.
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "core/command_line.h"
#include "glog/logging.h"
#include "proto/rpc_util.h"
#include "proto/tls_flags.h"
#include "router/router.h"

ABSL_FLAG(std::string, model, "", "Model directory (Hugging Face layout).");
ABSL_FLAG(std::string, workers, "local",
          "Comma-separated expert-worker addresses, or 'local' for in-process experts.");
ABSL_FLAG(std::string, expert_device, "cpu",
          "With --workers=local: where the experts run, cpu or cuda:N (weights uploaded to GPU N at start).");
ABSL_FLAG(std::string, device, "cpu",
          "Where the dense model and the KV cache live: cpu or cuda:N (weights uploaded to GPU N at start; "
          "--kv-cache-bytes is then device memory).");
ABSL_FLAG(std::string, expert_transport, "grpc",
          "How MoE-layer rows reach the experts: grpc, or nccl (GPU buffers over NCCL, gRPC for control; needs "
          "--device cuda:N with remote workers on GPUs, or --workers local --expert-device cuda:N).");
ABSL_FLAG(std::string, listen, "127.0.0.1:0", "Address to serve on (port 0: chosen by the OS).");
ABSL_FLAG(std::string, address_file, "", "Write the bound address to this file once serving.");
ABSL_FLAG(int, threads, 0, "Compute threads (0: all available CPUs).");
ABSL_FLAG(int64_t, dispatch_deadline_ms, 5000, "Deadline of one MoE-layer exchange with a worker, ms.");
ABSL_FLAG(int64_t, connect_deadline_ms, 10000, "Deadline for reaching the workers at start-up, ms.");
ABSL_FLAG(std::string, metrics_listen, "", "HTTP address serving GET /metrics (e.g. 127.0.0.1:9100; empty: none).");
ABSL_FLAG(std::string, metrics_address_file, "", "Write the bound metrics address to this file.");
ABSL_FLAG(int, max_running_seqs, 64, "Sequences decoded together in one step.");
ABSL_FLAG(int64_t, max_batch_tokens, 4096, "Most new tokens (prompt + decode) in one step.");
ABSL_FLAG(int, max_waiting_requests, 1024, "Requests that may wait for admission (beyond: RESOURCE_EXHAUSTED).");
ABSL_FLAG(int64_t, max_waiting_tokens, int64_t{1} << 20,
          "Prompt tokens that may wait for admission, summed (beyond: RESOURCE_EXHAUSTED).");
ABSL_FLAG(int64_t, kv_block_size, 16, "Tokens per KV-cache block.");
ABSL_FLAG(int64_t, kv_cache_bytes, int64_t{1} << 30,
          "KV-cache capacity in bytes: its memory budget (pages are committed as blocks are first used, "
          "and the prefix cache keeps them, so plan for all of it to become resident).");
ABSL_FLAG(int, drain_timeout_s, 30,
          "On SIGTERM/SIGINT: seconds requests in flight may take to finish (new ones are refused, health says "
          "NOT_SERVING); then what is left ends with UNAVAILABLE. A second signal exits at once.");
ABSL_FLAG(bool, prefix_caching, true,
          "Reuse the KV blocks of a repeated prefix (--noprefix_caching / --prefix-caching=false: off).");

int main(int argc, char** argv) {
  moe::rpc::BlockTerminationSignals();
  absl::SetProgramUsageMessage("moe-router --model DIR --workers ADDR,ADDR,...|local --listen ADDR");
  moe::NormalizedArgs args(argc, argv);
  absl::ParseCommandLine(args.argc(), args.argv());
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;

  moe::RouterOptions options;
  options.model_dir = absl::GetFlag(FLAGS_model);
  if (options.model_dir.empty()) {
    std::cerr << "moe-router: --model is required\n";
    return 2;
  }
  const std::string workers = absl::GetFlag(FLAGS_workers);
  if (workers != "local") {
    for (absl::string_view w : absl::StrSplit(workers, ',', absl::SkipWhitespace())) options.worker_addresses.emplace_back(w);
    if (options.worker_addresses.empty()) {
      std::cerr << "moe-router: --workers: give addresses or 'local'\n";
      return 2;
    }
  }
  options.listen_address = absl::GetFlag(FLAGS_listen);
  options.address_file = absl::GetFlag(FLAGS_address_file);
  options.metrics_listen_address = absl::GetFlag(FLAGS_metrics_listen);
  options.metrics_address_file = absl::GetFlag(FLAGS_metrics_address_file);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.expert_device = absl::GetFlag(FLAGS_expert_device);
  options.device = absl::GetFlag(FLAGS_device);
  options.expert_transport = absl::GetFlag(FLAGS_expert_transport);
  options.dispatch_deadline_ms = absl::GetFlag(FLAGS_dispatch_deadline_ms);
  options.connect_deadline_ms = absl::GetFlag(FLAGS_connect_deadline_ms);
  options.engine.max_running_seqs = absl::GetFlag(FLAGS_max_running_seqs);
  options.engine.max_batch_tokens = absl::GetFlag(FLAGS_max_batch_tokens);
  options.engine.max_waiting_requests = absl::GetFlag(FLAGS_max_waiting_requests);
  options.engine.max_waiting_tokens = absl::GetFlag(FLAGS_max_waiting_tokens);
  options.engine.kv_cache.block_size_tokens = absl::GetFlag(FLAGS_kv_block_size);
  options.engine.kv_cache.capacity_bytes = absl::GetFlag(FLAGS_kv_cache_bytes);
  options.engine.kv_cache.enable_prefix_caching = absl::GetFlag(FLAGS_prefix_caching);
  if (options.threads < 0 || options.dispatch_deadline_ms <= 0 || options.connect_deadline_ms <= 0 ||
      options.engine.max_running_seqs < 1 || options.engine.max_batch_tokens < 1 ||
      options.engine.max_waiting_requests < 0 || options.engine.max_waiting_tokens < 0) {
    std::cerr << "moe-router: --threads and waiting limits must be >= 0, deadlines and batch limits >= 1\n";
    return 2;
  }
  const int drain_timeout_s = absl::GetFlag(FLAGS_drain_timeout_s);
  if (drain_timeout_s < 0 || drain_timeout_s > 3600) {
    std::cerr << "moe-router: --drain_timeout_s must be in [0, 3600], got " << drain_timeout_s << "\n";
    return 2;
  }
  auto tls = moe::rpc::TlsFromFlags(moe::rpc::TlsRole::kServer);
  if (!tls.ok()) {
    std::cerr << "moe-router: " << tls.status().message() << "\n";
    return 2;
  }
  options.tls = *std::move(tls);

  auto router = moe::Router::Create(options);
  if (!router.ok()) {
    std::cerr << "moe-router: " << router.status().message() << "\n";
    return 1;
  }
  const int sig = moe::rpc::WaitForTerminationSignal();
  LOG(INFO) << "signal " << sig << ": draining (signal again to exit at once)";
  moe::rpc::ExitOnSecondSignal("moe-router");
  (*router)->Drain(absl::Seconds(drain_timeout_s));
  (*router)->Shutdown();
  return 0;
}
