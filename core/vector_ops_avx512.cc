// AVX-512 versions of core/vector_ops.h (called only after a runtime check).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace moe::vector_ops_avx512 {
namespace {

// exp(x) for x in [-87, 0]: x = k ln2 + r with |r| <= ln2/2 (Cody-Waite),
// exp(r) by a degree-6 polynomial (relative error ~2e-7), times 2^k.
inline __m512 Exp(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, k);
}

}  // namespace

float MaxValue(const float* x, int64_t n) {
  __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
  float out = _mm512_reduce_max_ps(m);
  for (; i < n; ++i) out = x[i] > out ? x[i] : out;
  return out;
}

double SumExp(const float* x, int64_t n, float shift, float scale) {
  const __m512 vs = _mm512_set1_ps(shift), vk = _mm512_set1_ps(scale);
  // Partial sums in f32 lanes, flushed to f64 every 1024 elements so that the
  // f32 accumulation error stays far below the 1e-6 contract.
  double total = 0;
  int64_t i = 0;
  while (i + 16 <= n) {
    __m512 acc = _mm512_setzero_ps();
    const int64_t end = std::min<int64_t>(n - 15, i + 1024);
    for (; i < end; i += 16) acc = _mm512_add_ps(acc, Exp(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vs), vk)));
    total += static_cast<double>(_mm512_reduce_add_ps(acc));
  }
  for (; i < n; ++i) total += std::exp(static_cast<double>((x[i] - shift) * scale));
  return total;
}

void ExpShifted(const float* x, int64_t n, float shift, float scale, float* out) {
  const __m512 vs = _mm512_set1_ps(shift), vk = _mm512_set1_ps(scale);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(out + i, Exp(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vs), vk)));
  }
  for (; i < n; ++i) out[i] = std::exp((x[i] - shift) * scale);
}

int64_t IndicesAbove(const float* x, int64_t n, float threshold, int32_t* out) {
  const __m512 t = _mm512_set1_ps(threshold);
  __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i step = _mm512_set1_epi32(16);
  int64_t k = 0, i = 0;
  for (; i + 16 <= n; i += 16) {
    const __mmask16 m = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), t, _CMP_GT_OQ);
    if (m != 0) {
      _mm512_mask_compressstoreu_epi32(out + k, m, idx);
      k += __builtin_popcount(m);
    }
    idx = _mm512_add_epi32(idx, step);
  }
  for (; i < n; ++i) {
    if (x[i] > threshold) out[k++] = static_cast<int32_t>(i);
  }
  return k;
}

}  // namespace moe::vector_ops_avx512
