// GeneratedToken: one token a sequence produced (or a prompt token scored),
// with its log-probability and the most likely alternatives.
#ifndef MOE_ROUTER_GENERATED_TOKEN_H_
#define MOE_ROUTER_GENERATED_TOKEN_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/types/span.h"

namespace moe {

struct GeneratedToken {
  int32_t id = 0;
  double logprob = 0;  // log-softmax of the raw logits
  std::vector<std::pair<int32_t, double>> top_logprobs;  // highest first
};

// The k most likely ids of a log-probability row, highest first (ties: lower id first).
std::vector<std::pair<int32_t, double>> TopLogprobs(absl::Span<const double> logprobs, int k);

}  // namespace moe

#endif  // MOE_ROUTER_GENERATED_TOKEN_H_
