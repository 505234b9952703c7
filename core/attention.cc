#include "core/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/container/inlined_vector.h"

#include "core/kernels.h"

namespace moe {

void PagedAttentionHeads(const float* q, int64_t nq, int64_t hd, int64_t n, const PagedKvHead& kv, float scale,
                         float* scores, float* out) {
  const int64_t bs = kv.block_size;
  auto key_block = [&](int64_t b) { return kv.base + static_cast<int64_t>(kv.table[b]) * kv.block_stride; };
  // Query i's scores are scores[i * n, (i + 1) * n): every key block's tile
  // serves all the queries.
  for (int64_t j0 = 0, b = 0; j0 < n; j0 += bs, ++b) {
    DotRows(q, hd, nq, key_block(b), kv.row_stride, std::min(bs, n - j0), hd, scores + j0, n);
  }
  absl::InlinedVector<float, 16> sums(nq);
  for (int64_t i = 0; i < nq; ++i) {
    float* s = scores + i * n;
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n; ++j) {
      s[j] *= scale;
      mx = std::max(mx, s[j]);
    }
    float sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      s[j] = std::exp(s[j] - mx);
      sum += s[j];
    }
    sums[i] = sum;
  }
  // Weighted sum of the values, block by block (the same terms in the same
  // order whatever the block size or the number of queries; kernels.h
  // AddScaledRows).
  std::fill(out, out + nq * hd, 0.0f);
  for (int64_t j0 = 0, b = 0; j0 < n; j0 += bs, ++b) {
    AddScaledRows(scores + j0, n, nq, std::min(bs, n - j0), key_block(b) + kv.value_offset, kv.row_stride, hd, out,
                  hd);
  }
  for (int64_t i = 0; i < nq; ++i) {
    const float inv = 1.0f / sums[i];
    for (int64_t d = 0; d < hd; ++d) out[i * hd + d] *= inv;
  }
}

}  // namespace moe
