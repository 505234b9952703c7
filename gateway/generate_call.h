// One Generate/Complete call through the gateway, without the gRPC plumbing:
// validating the public request into a router request, and turning the
// router's token stream (one or more samples) into public messages —
// detokenized deltas that never split a UTF-8 character, stop strings matched
// across token boundaries, best_of selection.
#ifndef MOE_GATEWAY_GENERATE_CALL_H_
#define MOE_GATEWAY_GENERATE_CALL_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/sampling_options.h"
#include "gateway/stop_matcher.h"
#include "gateway/tokenizer/tokenizer.h"
#include "moe/internal/v1/router.pb.h"
#include "moe/v1/inference.pb.h"

namespace moe {

struct RequestLimits {
  int max_n = static_cast<int>(kMaxSamplesPerRequest);  // n and best_of at most this
  int max_stop_strings = 16;  // stop strings per request
};

struct PreparedRequest {
  moe::internal::v1::RouterGenerateRequest router;  // router.n = best_of
  std::string request_id;
  int n = 1;
  int best_of = 1;
  std::vector<std::string> stops;
  bool skip_special_tokens = true;
};

// Validates a public request and builds the router request (tokenizing text).
// INVALID_ARGUMENT naming the field and its allowed range. `streaming`: the
// request came through Generate (best_of > n is only possible with Complete).
absl::StatusOr<PreparedRequest> PrepareRequest(const moe::v1::GenerateRequest& request,
                                               const tokenizer::Tokenizer& tokenizer,
                                               const moe::v1::ModelInfo& info, const std::string& request_id,
                                               const RequestLimits& limits, bool streaming);

// Converts router messages to public ones, per sample.
class ResponseTranslator {
 public:
  ResponseTranslator(const tokenizer::Tokenizer* tokenizer, const PreparedRequest& request);

  struct Output {
    std::optional<moe::v1::GenerateResponse> message;  // for the client, if any
    std::optional<uint32_t> stopped_sample;            // hit a stop string: stop it on the router
    bool all_done = false;                             // every sample has finished
  };
  absl::StatusOr<Output> Translate(const moe::internal::v1::RouterGenerateResponse& in);

  // The unary result: the n best samples (by cumulative log-probability when
  // best_of > n), in rank order.
  moe::v1::CompleteResponse Result() const;

 private:
  struct Sample {
    std::unique_ptr<tokenizer::StreamDecoder> decoder;
    std::unique_ptr<StopMatcher> stop;
    bool done = false;
    uint32_t completion_tokens = 0;
    double cumulative_logprob = 0;
    moe::v1::Choice choice;  // accumulated text and tokens
  };

  std::string request_id_;
  int n_;
  uint32_t prompt_tokens_ = 0;
  std::vector<moe::v1::GeneratedToken> prompt_logprobs_;
  std::vector<Sample> samples_;
  int remaining_;
};

}  // namespace moe

#endif  // MOE_GATEWAY_GENERATE_CALL_H_
