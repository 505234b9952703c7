// Sampler: turns one row of logits into the next token, per sequence.
//
// Order (fixed, documented): top-k -> top-p -> temperature -> draw. Top-k and
// top-p select on the probabilities of the raw logits and never sort the whole
// vocabulary. temperature == 0 is greedy (ties go to the lower id). Each
// sequence owns its random generator, seeded from `seed` when given, so the
// same request draws the same tokens whatever else is in the batch.
#ifndef MOE_ROUTER_SAMPLER_H_
#define MOE_ROUTER_SAMPLER_H_

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "router/generator.h"

namespace moe {

struct SamplingOptions {
  float temperature = 1.0f;  // 0: greedy
  int top_k = 0;             // 0: off
  float top_p = 1.0f;        // (0, 1]
  std::optional<uint64_t> seed;
  int top_logprobs = 0;      // 0..20 alternatives reported per token
  bool ignore_eos = false;
};

// INVALID_ARGUMENT naming the field and its allowed range.
absl::Status ValidateSamplingOptions(const SamplingOptions& options, int64_t vocab_size);

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options);
  // The chosen token, its log-probability under the raw logits, and the
  // top_logprobs alternatives (highest first).
  GeneratedToken Sample(absl::Span<const float> logits);

 private:
  int32_t Draw(absl::Span<const float> logits);

  SamplingOptions options_;
  std::mt19937_64 rng_;
  std::vector<int32_t> ids_;  // scratch
  std::vector<double> probs_;
};

}  // namespace moe

#endif  // MOE_ROUTER_SAMPLER_H_
