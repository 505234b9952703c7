// Greedy generation for one prompt on top of ForwardPass: the engine behind
// `moe-generate` and the golden-parity tests. (Continuous batching and the
// sampler live in the scheduler; this is the single-sequence path.)
#ifndef MOE_ROUTER_GENERATOR_H_
#define MOE_ROUTER_GENERATOR_H_

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "router/forward.h"

namespace moe {

struct GreedyOptions {
  int max_tokens = 16;
  int top_logprobs = 0;     // how many (id, logprob) pairs to report per step, 0..20
  bool stop_at_eos = true;  // end when the model emits one of config.eos_token_ids
};

struct GeneratedToken {
  int32_t id = 0;
  double logprob = 0;  // log-softmax of the raw logits
  std::vector<std::pair<int32_t, double>> top_logprobs;  // highest first
};

// The k most likely ids of a log-probability row, highest first (ties: lower id first).
std::vector<std::pair<int32_t, double>> TopLogprobs(absl::Span<const double> logprobs, int k);

// Prefills `prompt` and decodes greedily, calling `on_token` for each token as
// soon as it is chosen. INVALID_ARGUMENT for an empty prompt or bad options.
absl::Status GenerateGreedy(ForwardPass& forward, const ModelConfig& config,
                            absl::Span<const int32_t> prompt, const GreedyOptions& options,
                            const std::function<void(const GeneratedToken&)>& on_token);

}  // namespace moe

#endif  // MOE_ROUTER_GENERATOR_H_
