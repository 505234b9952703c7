// One Generate/Complete call through the gateway: turns the public request
// into a router request and the router's token stream into text deltas.
// Internal to gateway_service.cc.
#ifndef MOE_GATEWAY_GENERATE_CALL_H_
#define MOE_GATEWAY_GENERATE_CALL_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "gateway/tokenizer/tokenizer.h"
#include "moe/internal/v1/router.pb.h"
#include "moe/v1/inference.pb.h"

namespace moe {

// Validates a public request and builds the router request (tokenizing text).
// INVALID_ARGUMENT naming the field.
absl::StatusOr<moe::internal::v1::RouterGenerateRequest> BuildRouterRequest(
    const moe::v1::GenerateRequest& request, const tokenizer::Tokenizer& tokenizer,
    const moe::v1::ModelInfo& info, const std::string& request_id);

// Converts router messages to public ones, detokenizing incrementally.
class ResponseTranslator {
 public:
  ResponseTranslator(const tokenizer::Tokenizer* tokenizer, bool skip_special_tokens, std::string request_id)
      : decoder_(tokenizer, skip_special_tokens), request_id_(std::move(request_id)) {}
  // The public message for one router message; true in `*final` for the last.
  absl::StatusOr<moe::v1::GenerateResponse> Translate(const moe::internal::v1::RouterGenerateResponse& in,
                                                      bool* final);

 private:
  tokenizer::StreamDecoder decoder_;
  std::string request_id_;
};

}  // namespace moe

#endif  // MOE_GATEWAY_GENERATE_CALL_H_
