// TLS for every gRPC connection of the cluster, and the HTTP API.
//
// One TlsConfig per process, loaded from PEM files and checked at start-up
// (every file readable and parseable, the key belonging to the certificate,
// the certificate within its validity period), so that a bad file stops the
// process with a message naming the flag and the file instead of failing
// every handshake later.
//
//   servers   --tls-cert + --tls-key: serve TLS with this certificate.
//             --tls-ca: also require client certificates issued by this CA
//             (mutual TLS between gateway, router and expert workers).
//   clients   TLS when a CA, a certificate or `tls` is given: the server's
//             certificate is verified against --tls-ca (the system's roots
//             without it), and --tls-cert/--tls-key are presented as the
//             client certificate. --tls-server-name overrides the name
//             checked in the server's certificate (default: the host of the
//             address dialled).
//
// The internal services are both: the router serves gateways and dials
// workers, and presents the same certificate in both roles.
//
// gRPC re-reads the three files every `reload_interval_s` (--tls-reload-
// interval-s), so a renewed certificate (a cert-manager renewal, an updated
// Kubernetes Secret volume) is used for new connections without a restart.
// Files that stop parsing are ignored (gRPC logs it) and the last good ones
// stay in use. The gateway's HTTPS listener does the same with its
// certificate and key (gateway/reloading_certificate.h).
#ifndef MOE_PROTO_TLS_H_
#define MOE_PROTO_TLS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace moe::rpc {

struct TlsFiles {
  std::string cert_file;    // PEM certificate chain (leaf first)
  std::string key_file;     // PEM private key of the leaf
  std::string ca_file;      // PEM CA certificates that peers must chain to
  std::string server_name;  // clients: name expected in the server's certificate
  bool client_tls = false;  // clients: TLS even with no file (system roots)
  unsigned reload_interval_s = 60;  // how often gRPC re-reads the files
};

struct TlsConfig {
  bool enabled = false;  // false: plaintext everywhere
  std::string cert_pem, key_pem, ca_pem;
  TlsFiles files;  // where they came from (the HTTP server reads the files itself)

  bool has_identity() const { return !cert_pem.empty(); }
  bool has_ca() const { return !ca_pem.empty(); }
};

// Which side the files configure; decides what is required.
enum class TlsRole {
  kServer,  // cert and key, or nothing; a CA needs both (client verification)
  kClient,  // any subset; a cert needs its key
};

// Reads and checks the files. INVALID_ARGUMENT naming the flag (--tls-cert,
// --tls-key, --tls-ca) and the path on any problem. All empty: plaintext.
absl::StatusOr<TlsConfig> LoadTls(const TlsFiles& files, TlsRole role);

// Insecure credentials when !tls.enabled. With a CA, clients must present a
// certificate it issued (`verify_clients`, the default for internal
// services); without one, no client certificate is asked for.
std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const TlsConfig& tls, bool verify_clients = true);
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const TlsConfig& tls);

// "https" or "http", for printing addresses.
inline const char* HttpScheme(const TlsConfig& tls) { return tls.enabled ? "https" : "http"; }

}  // namespace moe::rpc

#endif  // MOE_PROTO_TLS_H_
