// Gateway: the gateway process as a library. Loads the tokenizer, connects to
// the routers, serves moe.v1.Inference (with health and reflection) and,
// when asked, the OpenAI-compatible HTTP API (http_server.h) in front of it.
#ifndef MOE_GATEWAY_GATEWAY_H_
#define MOE_GATEWAY_GATEWAY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "gateway/api_keys.h"
#include "gateway/gateway_service.h"
#include "gateway/http_server.h"
#include "gateway/router_pool.h"
#include "gateway/tokenizer/tokenizer.h"
#include "proto/rpc_util.h"

namespace moe {

struct GatewayOptions {
  std::string model_dir;  // tokenizer.json (+ tokenizer_config.json) are read from here
  std::vector<std::string> router_addresses;
  std::string listen_address = "127.0.0.1:0";
  std::string address_file;
  int64_t connect_deadline_ms = 30000;  // waiting for a router at start-up
  GatewayServiceOptions service;  // its api_keys is set from api_keys_file
  // Keys clients must present (one per line, '#' comments); empty: no
  // authentication. Applies to gRPC and HTTP alike; health stays open.
  std::string api_keys_file;
  // OpenAI-compatible HTTP API: off when empty; "127.0.0.1:0" picks a port.
  std::string http_listen_address;
  HttpServerOptions http;  // listen_address and TLS files are taken from here
  // TLS: with a certificate, gRPC and HTTP are served over TLS with it, and
  // it is the client certificate toward the routers; the CA verifies the
  // routers.
  rpc::TlsConfig tls;
  // When set (PEM file), clients of the public gRPC and HTTP APIs must
  // present a certificate issued by one of these CAs.
  std::string tls_client_ca_file;
};

class Gateway {
 public:
  // Health turns SERVING when this returns (tokenizer loaded, a router answered).
  static absl::StatusOr<std::unique_ptr<Gateway>> Create(const GatewayOptions& options);
  ~Gateway();
  const std::string& address() const { return server_->address(); }
  // "host:port" of the HTTP API; empty when it is off.
  std::string http_address() const { return http_ != nullptr ? http_->address() : std::string(); }
  // Graceful drain (SIGTERM): health NOT_SERVING at once, new requests
  // refused with UNAVAILABLE (HTTP 503), open ones run to completion for up
  // to `timeout_ms`. Shutdown then ends what is left (UNAVAILABLE).
  void Drain(int64_t timeout_ms);
  void Shutdown();

 private:
  Gateway() = default;
  // Health: SERVING while not draining and some router can serve.
  void UpdateServing();
  absl::Mutex health_mu_;
  bool draining_ ABSL_GUARDED_BY(health_mu_) = false;
  bool routers_available_ ABSL_GUARDED_BY(health_mu_) = false;
  rpc::RunningServer* serving_server_ ABSL_GUARDED_BY(health_mu_) = nullptr;
  std::unique_ptr<ApiKeys> api_keys_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<RouterPool> routers_;
  std::unique_ptr<GatewayService> service_;
  std::unique_ptr<rpc::RunningServer> server_;
  std::unique_ptr<HttpServer> http_;  // after server_: its handlers call into it
};

}  // namespace moe

#endif  // MOE_GATEWAY_GATEWAY_H_
