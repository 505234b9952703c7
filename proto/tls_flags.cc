#include "proto/tls_flags.h"

#include <algorithm>
#include <string>

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain. Servers serve TLS with it; on internal connections (gateway to router, router to "
          "workers) it is also this process's client certificate. Needs --tls-key.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert.");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA certificates. Peers' certificates must chain to them: the servers this process dials, and (mutual "
          "TLS, router and expert worker) the clients of its gRPC server.");
ABSL_FLAG(int, tls_reload_interval_s, 60,
          "How often the TLS files are read again, seconds: renewed certificates are used for new connections "
          "without a restart.");
ABSL_FLAG(std::string, tls_server_name, "",
          "Name expected in the certificates of the servers this process dials (default: the host dialled).");

namespace moe::rpc {

TlsFiles TlsFilesFromFlags() {
  TlsFiles f;
  f.cert_file = absl::GetFlag(FLAGS_tls_cert);
  f.key_file = absl::GetFlag(FLAGS_tls_key);
  f.ca_file = absl::GetFlag(FLAGS_tls_ca);
  f.server_name = absl::GetFlag(FLAGS_tls_server_name);
  f.reload_interval_s = static_cast<unsigned>(std::max(1, absl::GetFlag(FLAGS_tls_reload_interval_s)));
  return f;
}

absl::StatusOr<TlsConfig> TlsFromFlags(TlsRole role, bool client_tls) {
  TlsFiles files = TlsFilesFromFlags();
  files.client_tls = client_tls;
  return LoadTls(files, role);
}

}  // namespace moe::rpc
