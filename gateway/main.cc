// moe-gateway: serves the public moe.v1.Inference API in front of routers
// (and, with --http-listen, the OpenAI-compatible HTTP API).
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "core/command_line.h"
#include "core/sampling_options.h"
#include "gateway/gateway.h"
#include "glog/logging.h"
#include "proto/rpc_util.h"
#include "proto/tls_flags.h"

ABSL_FLAG(std::string, model, "", "Model directory holding tokenizer.json (and tokenizer_config.json).");
ABSL_FLAG(std::string, routers, "", "Comma-separated router addresses.");
ABSL_FLAG(std::string, listen, "127.0.0.1:0", "Address to serve on (port 0: chosen by the OS).");
ABSL_FLAG(std::string, address_file, "", "Write the bound address to this file once serving.");
ABSL_FLAG(int64_t, connect_deadline_ms, 30000, "How long to wait for a router at start-up, ms.");
ABSL_FLAG(int64_t, request_deadline_ms, 600000, "Deadline of a request whose client set none, ms.");
ABSL_FLAG(int, max_n, static_cast<int>(moe::kMaxSamplesPerRequest),
          "Largest n and best_of a request may ask for (at most the router's limit, 16).");
ABSL_FLAG(std::string, http_listen, "",
          "Serve the OpenAI-compatible HTTP API on this address (e.g. 127.0.0.1:8080; port 0: chosen by the OS). "
          "Empty: no HTTP.");
ABSL_FLAG(std::string, http_address_file, "", "Write the bound HTTP address to this file once serving.");
ABSL_FLAG(int, http_threads, 64, "HTTP connections served at once (each open stream holds one).");
ABSL_FLAG(std::string, api_keys_file, "",
          "File of API keys, one per line ('#' comments). When set, gRPC calls and HTTP /v1/* requests need "
          "'authorization: Bearer KEY'; health stays open.");

ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA certificates: clients of the public gRPC and HTTP APIs must present a certificate they issued "
          "(needs --tls-cert). Without it, clients are not asked for one.");

ABSL_FLAG(int, drain_timeout_s, 30,
          "On SIGTERM/SIGINT: health turns NOT_SERVING, new requests are refused (UNAVAILABLE, HTTP 503) and "
          "open ones get up to this many seconds to finish; then what is left ends with UNAVAILABLE. A second "
          "signal exits at once.");

int main(int argc, char** argv) {
  moe::rpc::BlockTerminationSignals();
  absl::SetProgramUsageMessage("moe-gateway --model DIR --routers ADDR,... --listen ADDR");
  moe::NormalizedArgs args(argc, argv);
  absl::ParseCommandLine(args.argc(), args.argv());
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;

  moe::GatewayOptions options;
  options.model_dir = absl::GetFlag(FLAGS_model);
  for (absl::string_view r : absl::StrSplit(absl::GetFlag(FLAGS_routers), ',', absl::SkipWhitespace())) {
    options.router_addresses.emplace_back(r);
  }
  if (options.model_dir.empty() || options.router_addresses.empty()) {
    std::cerr << "moe-gateway: --model and --routers are required\n";
    return 2;
  }
  options.listen_address = absl::GetFlag(FLAGS_listen);
  options.address_file = absl::GetFlag(FLAGS_address_file);
  options.connect_deadline_ms = absl::GetFlag(FLAGS_connect_deadline_ms);
  options.service.default_request_deadline_ms = absl::GetFlag(FLAGS_request_deadline_ms);
  options.service.limits.max_n = absl::GetFlag(FLAGS_max_n);
  options.http_listen_address = absl::GetFlag(FLAGS_http_listen);
  options.http.address_file = absl::GetFlag(FLAGS_http_address_file);
  options.http.num_threads = absl::GetFlag(FLAGS_http_threads);
  options.http.request_deadline_ms = options.service.default_request_deadline_ms;
  options.api_keys_file = absl::GetFlag(FLAGS_api_keys_file);
  if (options.http.num_threads < 1 || options.http.num_threads > 4096) {
    std::cerr << "moe-gateway: --http-threads must be in [1, 4096]\n";
    return 2;
  }
  if (options.service.limits.max_n < 1 ||
      options.service.limits.max_n > static_cast<int>(moe::kMaxSamplesPerRequest)) {
    std::cerr << "moe-gateway: --max-n must be in [1, " << moe::kMaxSamplesPerRequest << "]\n";
    return 2;
  }
  if (options.connect_deadline_ms <= 0 || options.service.default_request_deadline_ms <= 0) {
    std::cerr << "moe-gateway: deadlines must be >= 1 ms\n";
    return 2;
  }
  auto tls = moe::rpc::TlsFromFlags(moe::rpc::TlsRole::kClient);  // --tls-ca alone: verify the routers only
  if (!tls.ok()) {
    std::cerr << "moe-gateway: " << tls.status().message() << "\n";
    return 2;
  }
  options.tls = *std::move(tls);
  options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  const int drain_timeout_s = absl::GetFlag(FLAGS_drain_timeout_s);
  if (drain_timeout_s < 0 || drain_timeout_s > 3600) {
    std::cerr << "moe-gateway: --drain_timeout_s must be in [0, 3600], got " << drain_timeout_s << "\n";
    return 2;
  }
  auto gateway = moe::Gateway::Create(options);
  if (!gateway.ok()) {
    std::cerr << "moe-gateway: " << gateway.status().message() << "\n";
    return 1;
  }
  const int sig = moe::rpc::WaitForTerminationSignal();
  LOG(INFO) << "signal " << sig << ": draining (signal again to exit at once)";
  moe::rpc::ExitOnSecondSignal("moe-gateway");
  (*gateway)->Drain(int64_t{drain_timeout_s} * 1000);
  (*gateway)->Shutdown();
  return 0;
}
