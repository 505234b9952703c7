// moe-health-probe: asks a server's grpc.health.v1 service whether it is
// SERVING; exit 0 if so, 1 if not. Used by the container images' HEALTHCHECK
// and by the multi-host test (Kubernetes pods use the kubelet's built-in gRPC
// probes instead, which ask the same service).
#include <cstdint>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "core/command_line.h"
#include "proto/rpc_util.h"
#include "proto/tls_flags.h"

ABSL_FLAG(std::string, address, "127.0.0.1:50051", "HOST:PORT of the server to ask.");
ABSL_FLAG(int64_t, timeout_ms, 2000, "Deadline of one health check, ms.");
ABSL_FLAG(int64_t, wait_ms, 0, "Keep asking until SERVING or this many ms have passed (0: ask once).");
ABSL_FLAG(bool, tls, false, "Connect with TLS (implied by --tls-ca or --tls-cert).");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("moe-health-probe --address HOST:PORT [--timeout-ms N] [--wait-ms N]");
  moe::NormalizedArgs args(argc, argv);
  absl::ParseCommandLine(args.argc(), args.argv());
  const std::string address = absl::GetFlag(FLAGS_address);
  const int64_t wait_ms = absl::GetFlag(FLAGS_wait_ms);
  auto tls = moe::rpc::TlsFromFlags(moe::rpc::TlsRole::kClient, absl::GetFlag(FLAGS_tls));
  if (!tls.ok()) {
    std::cerr << "moe-health-probe: " << tls.status().message() << "\n";
    return 2;
  }
  if (wait_ms > 0) {
    const absl::Status s = moe::rpc::WaitForServing(address, wait_ms, &*tls);
    if (!s.ok()) {
      std::cerr << "moe-health-probe: " << s.message() << "\n";
      return 1;
    }
  } else if (absl::Status s = moe::rpc::CheckServing(address, absl::GetFlag(FLAGS_timeout_ms), &*tls); !s.ok()) {
    std::cerr << "moe-health-probe: " << s.message() << "\n";
    return 1;
  }
  std::cout << address << " SERVING\n";
  return 0;
}
