#include "core/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/kernels.h"

namespace moe {

void PagedAttentionHead(const float* q, int64_t hd, int64_t n, const PagedKvHead& kv, float scale, float* scores,
                        float* out) {
  constexpr int64_t kLanes = 16;
  typedef float Lanes4 __attribute__((vector_size(4 * sizeof(float))));
  const int64_t bs = kv.block_size;
  auto key_block = [&](int64_t b) { return kv.base + static_cast<int64_t>(kv.table[b]) * kv.block_stride; };
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j0 = 0, b = 0; j0 < n; j0 += bs, ++b) {
    const float* keys = key_block(b);
    const int64_t m = std::min(bs, n - j0);
    for (int64_t j = 0; j < m; ++j) {
      scores[j0 + j] = Dot(q, keys + j * kv.row_stride, hd) * scale;
      mx = std::max(mx, scores[j0 + j]);
    }
  }
  float sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    scores[j] = std::exp(scores[j] - mx);
    sum += scores[j];
  }
  // Weighted sum of the values, 16 dimensions at a time held in registers
  // (four 4-lane accumulators: registers on every 128-bit SIMD target).
  for (int64_t d0 = 0; d0 < hd; d0 += kLanes) {
    if (hd - d0 >= kLanes) {
      Lanes4 a0 = {}, a1 = {}, a2 = {}, a3 = {};
      for (int64_t j0 = 0, b = 0; j0 < n; j0 += bs, ++b) {
        const float* vals = key_block(b) + kv.value_offset + d0;
        const int64_t m = std::min(bs, n - j0);
        for (int64_t j = 0; j < m; ++j) {
          const float* v = vals + j * kv.row_stride;
          const float p = scores[j0 + j];
          Lanes4 v0, v1, v2, v3;
          std::memcpy(&v0, v, sizeof(v0));
          std::memcpy(&v1, v + 4, sizeof(v1));
          std::memcpy(&v2, v + 8, sizeof(v2));
          std::memcpy(&v3, v + 12, sizeof(v3));
          a0 += p * v0;
          a1 += p * v1;
          a2 += p * v2;
          a3 += p * v3;
        }
      }
      std::memcpy(out + d0, &a0, sizeof(a0));
      std::memcpy(out + d0 + 4, &a1, sizeof(a1));
      std::memcpy(out + d0 + 8, &a2, sizeof(a2));
      std::memcpy(out + d0 + 12, &a3, sizeof(a3));
    } else {
      for (int64_t d = d0; d < hd; ++d) {
        float acc = 0.0f;
        for (int64_t j = 0; j < n; ++j) {
          acc += scores[j] * (key_block(j / bs) + kv.value_offset)[(j % bs) * kv.row_stride + d];
        }
        out[d] = acc;
      }
    }
  }
  const float inv = 1.0f / sum;
  for (int64_t d = 0; d < hd; ++d) out[d] *= inv;
}

}  // namespace moe
