// gRPC glue shared by every service: the one absl::Status <-> grpc::Status
// mapping, server start-up with explicit message limits, health and
// (optionally) reflection, and client channel settings.
#ifndef MOE_PROTO_RPC_UTIL_H_
#define MOE_PROTO_RPC_UTIL_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "proto/tls.h"

namespace moe::rpc {

// Largest message any of our services sends or accepts (activations of a big
// batch for one layer fit comfortably).
inline constexpr int kMaxMessageBytes = 256 << 20;

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// Where an error came from, told by status and metadata rather than by its
// text: a process marks its error (an absl::Status payload), a server sends
// the mark as trailing metadata kErrorOriginKey, and its client reads it back.
inline constexpr char kErrorOriginKey[] = "moe-error-origin";
inline constexpr char kOriginExpertWorker[] = "expert-worker";
absl::Status WithErrorOrigin(absl::Status status, absl::string_view origin);
// The mark, or "" when there is none.
std::string ErrorOrigin(const absl::Status& status);

struct ServerOptions {
  std::string listen_address;  // "127.0.0.1:0" picks a free port
  bool enable_reflection = false;
  // When set, the bound address ("127.0.0.1:PORT") is written here once the
  // server is listening (how launchers and tests learn OS-chosen ports).
  std::string address_file;
  // TLS (see proto/tls.h); null: plaintext.
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // Full names of the services served ("moe.v1.Inference"), which the health
  // service reports on by name as well as overall ("").
  std::vector<std::string> health_services;
};

// A started server. Health (overall and per named service) reports
// NOT_SERVING until SetServing(true).
class RunningServer {
 public:
  // Starts a server for `services` (not owned; they must outlive the server).
  static absl::StatusOr<std::unique_ptr<RunningServer>> Start(const ServerOptions& options,
                                                               const std::vector<grpc::Service*>& services);
  ~RunningServer();

  const std::string& address() const { return address_; }
  grpc::Server* server() { return server_.get(); }
  void SetServing(bool serving);
  // Blocks until Shutdown() (from another thread or a signal watcher).
  void Wait();
  void Shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));

 private:
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

// A channel with our message limits and reconnect back-off settings;
// plaintext unless `tls` is given and enabled.
// `max_reconnect_backoff_ms` > 0 replaces the default reconnect back-off
// (100 ms growing to 1 s) with a constant one (health probes).
// `own_connection`: the channel does not share gRPC's process-wide
// subchannel (connection) pool, so a new channel really connects anew
// instead of inheriting another channel's reconnect back-off.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address, const TlsConfig* tls = nullptr,
                                           int max_reconnect_backoff_ms = 0, bool own_connection = false);

// Asks `address` (grpc.health.v1, overall service) until it answers SERVING
// or `timeout_ms` passes; DEADLINE_EXCEEDED naming the address and the last
// answer otherwise.
absl::Status WaitForServing(const std::string& address, int64_t timeout_ms, const TlsConfig* tls = nullptr);
// One health check: OK when SERVING; otherwise UNAVAILABLE with what came
// back (the serving status, or the call's error, e.g. a failed handshake).
absl::Status CheckServing(const std::string& address, int64_t timeout_ms, const TlsConfig* tls = nullptr);
// One health check: true when SERVING.
bool IsServing(const std::string& address, int64_t timeout_ms, const TlsConfig* tls = nullptr);

// Deadline `ms` from now.
std::chrono::system_clock::time_point DeadlineIn(int64_t ms);

// Blocks SIGINT/SIGTERM in the calling thread (call first in main, before any
// thread starts) and returns once one arrives; used by the servers' main.cc.
// Also ignores SIGPIPE (IgnoreBrokenPipes).
void BlockTerminationSignals();
// A peer that closes a TLS connection while OpenSSL writes to it raises
// SIGPIPE (OpenSSL writes with write(2), not send(MSG_NOSIGNAL)), which would
// kill the process; with this the write fails with EPIPE instead.
void IgnoreBrokenPipes();
int WaitForTerminationSignal();
// After the first termination signal: a thread that waits for another and
// then exits the process at once (status 1), naming `program`.
void ExitOnSecondSignal(const std::string& program);

}  // namespace moe::rpc

#endif  // MOE_PROTO_RPC_UTIL_H_
