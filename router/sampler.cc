#include "router/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace moe {

absl::Status ValidateSamplingOptions(const SamplingOptions& o, int64_t vocab_size) {
  if (!std::isfinite(o.temperature) || o.temperature < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("temperature: must be a finite number >= 0, got ", o.temperature));
  }
  if (o.top_k < 0 || o.top_k > vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k: must be 0 (off) or in [1, ", vocab_size, "], got ", o.top_k));
  }
  if (!(o.top_p > 0 && o.top_p <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("top_p: must be in (0, 1], got ", o.top_p));
  }
  if (o.top_logprobs < 0 || o.top_logprobs > 20) {
    return absl::InvalidArgumentError(absl::StrCat("logprobs: must be in [0, 20], got ", o.top_logprobs));
  }
  return absl::OkStatus();
}

Sampler::Sampler(const SamplingOptions& options) : options_(options) {
  if (options.seed.has_value()) {
    rng_.seed(*options.seed);
  } else {
    std::random_device rd;
    rng_.seed((static_cast<uint64_t>(rd()) << 32) ^ rd());
  }
}

GeneratedToken Sampler::Sample(absl::Span<const float> logits) {
  const std::vector<double> lp = LogSoftmax(logits);
  GeneratedToken tok;
  if (options_.temperature == 0) {
    tok.id = TopLogprobs(lp, 1)[0].first;
  } else {
    tok.id = Draw(logits);
  }
  tok.logprob = lp[tok.id];
  if (options_.top_logprobs > 0) tok.top_logprobs = TopLogprobs(lp, options_.top_logprobs);
  return tok;
}

int32_t Sampler::Draw(absl::Span<const float> logits) {
  const int64_t V = static_cast<int64_t>(logits.size());
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] != logits[b] ? logits[a] > logits[b] : a < b; };
  // Candidate set: top-k by partial selection (all ids when off).
  int64_t k = options_.top_k > 0 ? std::min<int64_t>(options_.top_k, V) : V;
  ids_.resize(V);
  std::iota(ids_.begin(), ids_.end(), 0);
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  double total = 0;  // softmax normaliser of the raw logits over the whole vocabulary
  for (int64_t i = 0; i < V; ++i) total += std::exp(static_cast<double>(logits[i]) - max_logit);
  if (options_.top_p < 1) {
    // Grow a sorted prefix until it holds top_p of the mass: partial sorts only.
    int64_t m = std::min<int64_t>(k, 64);
    for (;;) {
      std::partial_sort(ids_.begin(), ids_.begin() + m, ids_.end(), by_logit);
      double mass = 0;
      int64_t cut = m;
      for (int64_t i = 0; i < m; ++i) {
        mass += std::exp(static_cast<double>(logits[ids_[i]]) - max_logit) / total;
        if (mass >= options_.top_p) {
          cut = i + 1;
          break;
        }
      }
      if (cut < m || m == k) {
        k = std::min(k, cut);
        break;
      }
      m = std::min(k, m * 4);
    }
  } else if (k < V) {
    std::nth_element(ids_.begin(), ids_.begin() + k, ids_.end(), by_logit);
    std::sort(ids_.begin(), ids_.begin() + k);
  }
  // Temperature on the survivors, then draw.
  probs_.resize(k);
  double sum = 0;
  for (int64_t i = 0; i < k; ++i) {
    probs_[i] = std::exp((static_cast<double>(logits[ids_[i]]) - max_logit) / options_.temperature);
    sum += probs_[i];
  }
  std::uniform_real_distribution<double> u(0.0, sum);
  double r = u(rng_);
  for (int64_t i = 0; i < k; ++i) {
    r -= probs_[i];
    if (r < 0) return ids_[i];
  }
  return ids_[k - 1];
}

}  // namespace moe
