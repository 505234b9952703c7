// HttpServer: the OpenAI-compatible HTTP API of the gateway (cpp-httplib, in
// the gateway process): POST /v1/completions and /v1/chat/completions
// (streamed as server-sent events with `stream: true`), GET /v1/models,
// GET /health.
//
// Request path: an HTTP request is translated (openai_request.h) into a
// moe.v1.GenerateRequest and sent to the gateway's own gRPC service through
// an in-process channel (grpc::Server::InProcessChannel). Why that instead of
// driving RouterCall/ResponseTranslator directly: the gRPC service already
// owns validation, tokenization, router choice, stop strings, best_of,
// deadlines, cancellation and flow control, written as non-blocking
// reactors; HTTP handlers (cpp-httplib runs one blocking thread per
// connection) can simply block on a synchronous client call, so there is one
// implementation of the request path and nothing to keep in step. The cost
// is a protobuf copy per message, which is small next to a decode step.
//
// Auth: with API keys, /v1/* need `Authorization: Bearer KEY` (checked here
// first, so a bad key is a 401 before any other error, and forwarded as gRPC
// metadata, where the service checks it again); /health stays open.
//
// Thread-safety: Start/Shutdown from one thread; handlers run on the
// server's pool threads and share only immutable state.
#ifndef MOE_GATEWAY_HTTP_SERVER_H_
#define MOE_GATEWAY_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/api_keys.h"
#include "gateway/chat_template/chat_template.h"
#include "gateway/reloading_certificate.h"
#include "gateway/router_pool.h"
#include "gateway/tokenizer/tokenizer.h"
#include "grpcpp/grpcpp.h"
#include "moe/v1/inference.pb.h"
#include "proto/tls.h"

namespace httplib {
class Server;
}

namespace moe {

struct HttpServerOptions {
  std::string listen_address = "127.0.0.1:0";  // port 0: chosen by the OS
  // When set, the bound address ("127.0.0.1:PORT") is written here once
  // listening (how launchers and tests learn an OS-chosen port).
  std::string address_file;
  // Connections served at once: each open stream holds a thread for its
  // whole length, so this bounds concurrent HTTP requests (more wait).
  int num_threads = 64;
  // Deadline of the gateway call behind each HTTP request, ms.
  int64_t request_deadline_ms = 600000;
  size_t max_body_bytes = 32 << 20;
  // Each router's answer in /health, ms.
  int64_t health_check_timeout_ms = 1000;
  // HTTPS with this certificate chain and key (PEM files) when set. With
  // tls_client_ca_file, clients must present a certificate it issued.
  std::string tls_cert_file, tls_key_file, tls_client_ca_file;
  // How often the certificate files are checked for a renewal.
  int tls_reload_interval_s = 60;
};

// What the HTTP API serves from; every pointer must outlive the server.
struct HttpApiBackend {
  std::shared_ptr<grpc::Channel> gateway_channel;  // in-process channel to the gateway's own service
  const tokenizer::Tokenizer* tokenizer = nullptr;  // token strings in logprobs
  moe::v1::ModelInfo model_info;                    // model id, workers
  absl::StatusOr<chat::ChatTemplate> chat_template = absl::NotFoundError("no chat template loaded");
  const ApiKeys* api_keys = nullptr;                // null: no authentication
  // /health asks these routers (GetLoad) whether they can serve and how
  // they see their expert workers; the gateway never dials workers itself.
  RouterPool* routers = nullptr;
  // False while the gateway drains: /health answers 503.
  std::function<bool()> accepting;
  std::function<std::string()> render_metrics;      // GET /metrics (open, like /health); unset: no /metrics
};

class HttpServer {
 public:
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                           HttpApiBackend backend);
  ~HttpServer();

  const std::string& address() const { return address_; }
  // Stops accepting; returns once every handler has returned (open streams
  // end when the gateway's gRPC server cancels their calls).
  void StopAccepting();
  void Join();

 private:
  class Handlers;
  HttpServer() = default;

  std::unique_ptr<Handlers> handlers_;
  std::unique_ptr<ReloadingCertificate> certificate_;  // HTTPS; outlives server_'s SSL_CTX
  std::unique_ptr<httplib::Server> server_;
  std::thread listener_;
  std::string address_;
};

}  // namespace moe

#endif  // MOE_GATEWAY_HTTP_SERVER_H_
