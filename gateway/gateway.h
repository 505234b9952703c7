// Gateway: the gateway process as a library. Loads the tokenizer, connects to
// the routers, serves moe.v1.Inference (with health and reflection).
#ifndef MOE_GATEWAY_GATEWAY_H_
#define MOE_GATEWAY_GATEWAY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/gateway_service.h"
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
  GatewayServiceOptions service;
};

class Gateway {
 public:
  // Health turns SERVING when this returns (tokenizer loaded, a router answered).
  static absl::StatusOr<std::unique_ptr<Gateway>> Create(const GatewayOptions& options);
  ~Gateway();
  const std::string& address() const { return server_->address(); }
  void Shutdown();

 private:
  Gateway() = default;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<RouterPool> routers_;
  std::unique_ptr<GatewayService> service_;
  std::unique_ptr<rpc::RunningServer> server_;
};

}  // namespace moe

#endif  // MOE_GATEWAY_GATEWAY_H_
