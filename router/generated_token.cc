#include "router/generated_token.h"

#include <algorithm>
#include <numeric>

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

}  // namespace moe
