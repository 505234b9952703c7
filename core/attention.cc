#include "core/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/kernels.h"

namespace moe {

void PagedAttentionHead(const float* q, int64_t hd, int64_t n, const PagedKvHead& kv, float scale, float* scores,
                        float* out) {
  const int64_t bs = kv.block_size;
  auto key_block = [&](int64_t b) { return kv.base + static_cast<int64_t>(kv.table[b]) * kv.block_stride; };
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j0 = 0, b = 0; j0 < n; j0 += bs, ++b) {
    const float* keys = key_block(b);
    const int64_t m = std::min(bs, n - j0);
    DotRows(q, keys, kv.row_stride, m, hd, scores + j0);
    for (int64_t j = j0; j < j0 + m; ++j) {
      scores[j] *= scale;
      mx = std::max(mx, scores[j]);
    }
  }
  float sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    scores[j] = std::exp(scores[j] - mx);
    sum += scores[j];
  }
  // Weighted sum of the values, block by block (the same terms in the same
  // order whatever the block size; kernels.h AddScaledRows).
  std::fill(out, out + hd, 0.0f);
  for (int64_t j0 = 0, b = 0; j0 < n; j0 += bs, ++b) {
    AddScaledRows(scores + j0, std::min(bs, n - j0), key_block(b) + kv.value_offset, kv.row_stride, hd, out);
  }
  const float inv = 1.0f / sum;
  for (int64_t d = 0; d < hd; ++d) out[d] *= inv;
}

}  // namespace moe
