#include "core/sampling_options.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"

namespace moe {
namespace {

absl::Status OutOfRange(const char* field, const std::string& range, double got) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": must be ", range, ", got ", got));
}

}  // namespace

absl::Status ValidateSamplingOptions(const SamplingOptions& o, int64_t vocab_size) {
  if (!std::isfinite(o.temperature) || o.temperature < 0) {
    return OutOfRange("temperature", "a finite number >= 0", o.temperature);
  }
  if (o.top_k < 0 || o.top_k > vocab_size) {
    return OutOfRange("top_k", absl::StrCat("0 (off) or in [1, ", vocab_size, "]"), o.top_k);
  }
  if (!(o.top_p > 0 && o.top_p <= 1)) return OutOfRange("top_p", "in (0, 1]", o.top_p);
  if (!(o.min_p >= 0 && o.min_p <= 1)) return OutOfRange("min_p", "in [0, 1]", o.min_p);
  if (!(o.typical_p >= 0 && o.typical_p <= 1)) return OutOfRange("typical_p", "in [0, 1]", o.typical_p);
  if (!(o.repetition_penalty > 0 && o.repetition_penalty <= 2)) {
    return OutOfRange("repetition_penalty", "in (0, 2]", o.repetition_penalty);
  }
  if (!(o.presence_penalty >= -2 && o.presence_penalty <= 2)) {
    return OutOfRange("presence_penalty", "in [-2, 2]", o.presence_penalty);
  }
  if (!(o.frequency_penalty >= -2 && o.frequency_penalty <= 2)) {
    return OutOfRange("frequency_penalty", "in [-2, 2]", o.frequency_penalty);
  }
  for (const auto& [id, bias] : o.logit_bias) {
    if (id < 0 || id >= vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("logit_bias: token id ", id, " is outside the vocabulary [0, ", vocab_size, ")"));
    }
    if (!(bias >= -100 && bias <= 100)) {
      return absl::InvalidArgumentError(absl::StrCat("logit_bias: bias of token ", id, " must be in [-100, 100], got ", bias));
    }
  }
  if (o.top_logprobs < 0 || o.top_logprobs > 20) return OutOfRange("logprobs", "in [0, 20]", o.top_logprobs);
  if (o.min_tokens < 0) return OutOfRange("min_tokens", ">= 0", o.min_tokens);
  return absl::OkStatus();
}

}  // namespace moe
