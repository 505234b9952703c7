// The gRPC transport: moe.v1.Inference/Generate through the callback API (no
// thread per request; gRPC's own threads run the reactions). A token-bearing
// stream message is a token event; usage comes from the last message.
#ifndef MOE_TOOLS_LOADGEN_GRPC_BACKEND_H_
#define MOE_TOOLS_LOADGEN_GRPC_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/loadgen/request.h"
#include "proto/tls.h"

namespace moe::loadgen {

// What synthetic prompts need to know about the served model.
struct ModelFacts {
  std::string model_id;
  uint32_t vocab_size = 0;
  std::vector<uint32_t> eos_token_ids;
};

// GetModelInfo on the gateway at `address`.
// `api_key`, when set, goes out as "authorization: Bearer KEY".
absl::StatusOr<ModelFacts> QueryModelFacts(const std::string& address, int64_t timeout_ms,
                                           const rpc::TlsConfig& tls = {}, const std::string& api_key = "");

class GrpcBackend : public Backend {
 public:
  // One channel to the gateway at `address` (connects lazily).
  static std::unique_ptr<GrpcBackend> Create(const std::string& address, const rpc::TlsConfig& tls = {},
                                             const std::string& api_key = "");
  ~GrpcBackend() override;

  void Start(const RequestSpec& spec, Clock::time_point origin, DoneCallback done) override;
  std::string Describe() const override;

 private:
  struct Impl;
  explicit GrpcBackend(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace moe::loadgen

#endif  // MOE_TOOLS_LOADGEN_GRPC_BACKEND_H_
