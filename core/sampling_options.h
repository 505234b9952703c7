// SamplingOptions: the per-request decoding controls, their defaults
// (OpenAI/vLLM conventions) and their validation. Shared by the gateway
// (which validates public requests) and the router (which applies them).
#ifndef MOE_CORE_SAMPLING_OPTIONS_H_
#define MOE_CORE_SAMPLING_OPTIONS_H_

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace moe {

// Most samples one request may ask for (n, and best_of at the gateway);
// the gateway's --max-n may only lower it.
inline constexpr uint32_t kMaxSamplesPerRequest = 16;

struct SamplingOptions {
  float temperature = 1.0f;         // >= 0; 0: greedy
  int top_k = 0;                    // 0: off; else 1..vocab
  float top_p = 1.0f;               // (0, 1]
  float min_p = 0.0f;               // [0, 1]
  float typical_p = 1.0f;           // [0, 1]; 1: off
  float repetition_penalty = 1.0f;  // (0, 2]; 1: off
  float presence_penalty = 0.0f;    // [-2, 2]
  float frequency_penalty = 0.0f;   // [-2, 2]
  std::vector<std::pair<int64_t, float>> logit_bias;  // id -> bias in [-100, 100] (64 bits: a uint32 id never wraps)
  std::optional<uint64_t> seed;
  uint64_t sample_index = 0;  // which of the n samples of one request (< kMaxSamplesPerRequest)
  int top_logprobs = 0;       // 0..20 alternatives reported per token
  bool ignore_eos = false;
  int min_tokens = 0;         // end tokens are masked until this many were generated
};

// INVALID_ARGUMENT naming the field and its allowed range.
absl::Status ValidateSamplingOptions(const SamplingOptions& options, int64_t vocab_size);

}  // namespace moe

#endif  // MOE_CORE_SAMPLING_OPTIONS_H_
