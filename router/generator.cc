#include "router/generator.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace moe {

std::vector<std::pair<int32_t, double>> TopLogprobs(absl::Span<const double> logprobs, int k) {
  k = std::clamp<int>(k, 0, static_cast<int>(logprobs.size()));
  std::vector<int32_t> ids(logprobs.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) {
    return logprobs[a] != logprobs[b] ? logprobs[a] > logprobs[b] : a < b;
  });
  std::vector<std::pair<int32_t, double>> out;
  for (int i = 0; i < k; ++i) out.emplace_back(ids[i], logprobs[ids[i]]);
  return out;
}

absl::Status GenerateGreedy(ForwardPass& forward, const ModelConfig& config,
                            absl::Span<const int32_t> prompt, const GreedyOptions& options,
                            const std::function<void(const GeneratedToken&)>& on_token) {
  if (prompt.empty()) return absl::InvalidArgumentError("prompt: at least one token id is required");
  if (options.max_tokens < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_tokens: must be >= 1, got ", options.max_tokens));
  }
  if (options.top_logprobs < 0 || options.top_logprobs > 20) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_logprobs: must be in [0, 20], got ", options.top_logprobs));
  }
  const int64_t context = config.max_position_embeddings > 0
                              ? config.max_position_embeddings
                              : static_cast<int64_t>(prompt.size()) + options.max_tokens;
  std::unique_ptr<KvCache> cache = KvCache::ForTokens(config, context);
  SequenceKv kv(cache.get());
  std::vector<float> logits;
  std::vector<int32_t> next(prompt.begin(), prompt.end());
  for (int step = 0; step < options.max_tokens; ++step) {
    SequenceInput in{&kv, next};
    RETURN_IF_ERROR(forward.Forward({&in, 1}, &logits));
    const std::vector<double> lp = LogSoftmax(logits);
    GeneratedToken tok;
    const auto best = TopLogprobs(lp, std::max(1, options.top_logprobs));
    tok.id = best[0].first;
    tok.logprob = best[0].second;
    if (options.top_logprobs > 0) tok.top_logprobs = best;
    on_token(tok);
    if (options.stop_at_eos &&
        std::find(config.eos_token_ids.begin(), config.eos_token_ids.end(), tok.id) !=
            config.eos_token_ids.end()) {
      break;
    }
    if (config.max_position_embeddings > 0 && kv.length() >= config.max_position_embeddings) break;
    next.assign(1, tok.id);
  }
  return absl::OkStatus();
}

}  // namespace moe
