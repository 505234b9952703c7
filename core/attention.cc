#include "core/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/container/inlined_vector.h"

#include "core/kernels.h"

namespace moe {

void PagedAttention(const float* q, int64_t num_tokens, int64_t num_heads, int64_t hd, int64_t n,
                    const PagedKvHead& kv, float scale, float* scores, float* out) {
  const int64_t bs = kv.block_size;
  const int64_t nq = num_tokens * num_heads;
  const int64_t last = n + num_tokens - 1;  // positions the last token sees
  auto key_block = [&](int64_t b) { return kv.base + static_cast<int64_t>(kv.table[b]) * kv.block_stride; };
  // Query i's scores are scores[i * last, i * last + its count): every key
  // block's tile serves all the queries (the few scores past a query's own
  // count are computed and never read).
  for (int64_t j0 = 0, b = 0; j0 < last; j0 += bs, ++b) {
    DotRows(q, hd, nq, key_block(b), kv.row_stride, std::min(bs, last - j0), hd, scores + j0, last);
  }
  absl::InlinedVector<float, 16> sums(nq);
  for (int64_t i = 0; i < nq; ++i) {
    float* s = scores + i * last;
    const int64_t count = n + i / num_heads;
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < count; ++j) {
      s[j] *= scale;
      mx = std::max(mx, s[j]);
    }
    float sum = 0;
    for (int64_t j = 0; j < count; ++j) {
      s[j] = std::exp(s[j] - mx);
      sum += s[j];
    }
    sums[i] = sum;
  }
  // Weighted sum of the values in position order (kernels.h AddScaledRows:
  // the same terms in the same order however the positions and queries are
  // split over calls): positions 0..n-1 for every query, block by block,
  // then each later position for the tokens that see it.
  std::fill(out, out + nq * hd, 0.0f);
  for (int64_t j0 = 0, b = 0; j0 < n; j0 += bs, ++b) {
    AddScaledRows(scores + j0, last, nq, std::min(bs, n - j0), key_block(b) + kv.value_offset, kv.row_stride, hd,
                  out, hd);
  }
  for (int64_t j = n; j < last; ++j) {
    const int64_t first = (j - n + 1) * num_heads;  // the first query that sees position j
    const float* value = key_block(j / bs) + (j % bs) * kv.row_stride + kv.value_offset;
    AddScaledRows(scores + first * last + j, last, nq - first, 1, value, kv.row_stride, hd, out + first * hd, hd);
  }
  for (int64_t i = 0; i < nq; ++i) {
    const float inv = 1.0f / sums[i];
    for (int64_t d = 0; d < hd; ++d) out[i * hd + d] *= inv;
  }
}

}  // namespace moe
