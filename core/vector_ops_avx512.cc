// AVX-512 versions of core/vector_ops.h (called only after a runtime check).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
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

#include "core/vector_ops_scalar.h"

}  // namespace

float MaxValue(const float* x, int64_t n) {
  __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
  return MaxValueFrom(x, i, n, _mm512_reduce_max_ps(m));
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
  ExpShiftedFrom(x, i, n, shift, scale, out);
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
  return IndicesAboveFrom(x, i, n, threshold, out, k);
}

// The compressing stores below compress into a register and store all 16
// lanes (a compress straight to memory is slow on some cores): the callers'
// buffers have room for n, and the write position never passes the read one.

int64_t SelectAbove(const float* x, int64_t n, float threshold, int32_t* ids, float* values, float* lo, float* hi) {
  const __m512 t = _mm512_set1_ps(threshold);
  __m512 vlo = _mm512_set1_ps(std::numeric_limits<float>::infinity());
  __m512 vhi = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i step = _mm512_set1_epi32(16);
  int64_t k = 0, i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __mmask16 m = _mm512_cmp_ps_mask(v, t, _CMP_GT_OQ);
    if (m != 0) {
      _mm512_storeu_si512(ids + k, _mm512_maskz_compress_epi32(m, idx));
      _mm512_storeu_ps(values + k, _mm512_maskz_compress_ps(m, v));
      vlo = _mm512_mask_min_ps(vlo, m, vlo, v);
      vhi = _mm512_mask_max_ps(vhi, m, vhi, v);
      k += __builtin_popcount(m);
    }
    idx = _mm512_add_epi32(idx, step);
  }
  *lo = _mm512_reduce_min_ps(vlo);
  *hi = _mm512_reduce_max_ps(vhi);
  return SelectAboveFrom(x, i, n, threshold, ids, values, k, lo, hi);
}

void ExpShiftedWide(const float* x, int64_t n, float shift, float scale, double* out) {
  const __m512 vs = _mm512_set1_ps(shift), vk = _mm512_set1_ps(scale);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 e = Exp(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vs), vk));
    _mm512_storeu_pd(out + i, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    _mm512_storeu_pd(out + i + 8, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)));
  }
  ExpShiftedWideFrom(x, i, n, shift, scale, out);
}

double SumAnyOrder(const double* x, int64_t n) {
  __m512d a = _mm512_setzero_pd(), b = _mm512_setzero_pd();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a = _mm512_add_pd(a, _mm512_loadu_pd(x + i));
    b = _mm512_add_pd(b, _mm512_loadu_pd(x + i + 8));
  }
  double s = _mm512_reduce_add_pd(_mm512_add_pd(a, b));
  for (; i < n; ++i) s += x[i];
  return s;
}

void BucketIndices(const float* v, int64_t n, float hi, float scale, uint16_t last, uint16_t* out) {
  const float top = static_cast<float>(last);
  const __m512 vhi = _mm512_set1_ps(hi), vscale = _mm512_set1_ps(scale), vtop = _mm512_set1_ps(top);
  const __m512 neg_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(v + i);
    __m512 b = _mm512_mul_ps(_mm512_sub_ps(vhi, x), vscale);
    b = _mm512_mask_mov_ps(b, _mm512_cmp_ps_mask(x, neg_inf, _CMP_EQ_OQ), vtop);
    b = _mm512_min_ps(b, vtop);  // the second operand when b is NaN, as b < top ? b : top
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm512_cvtepi32_epi16(_mm512_cvttps_epi32(b)));
  }
  BucketIndicesFrom(v, i, n, hi, scale, last, out);
}

int64_t IndicesEqual(const uint16_t* x, int64_t n, uint16_t value, int32_t* out) {
  const __m512i want = _mm512_set1_epi16(static_cast<int16_t>(value));
  int64_t k = 0, i = 0;
  for (; i + 32 <= n; i += 32) {
    uint32_t m = _mm512_cmpeq_epi16_mask(_mm512_loadu_si512(x + i), want);
    for (; m != 0; m &= m - 1) out[k++] = static_cast<int32_t>(i + __builtin_ctz(m));
  }
  return IndicesEqualFrom(x, i, n, value, out, k);
}

int64_t KeepThroughLogitOrder(const float* values, int32_t* ids, double* weights, int64_t n, float logit, int32_t id) {
  const int32_t cut = OrderedBits(logit);
  const __m512i vcut = _mm512_set1_epi32(cut), vid = _mm512_set1_epi32(id);
  const __m512i flip = _mm512_set1_epi32(0x7fffffff);
  int64_t out = 0, i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i bits = _mm512_castps_si512(_mm512_add_ps(_mm512_loadu_ps(values + i), _mm512_setzero_ps()));
    const __m512i ordered = _mm512_mask_xor_epi32(bits, _mm512_movepi32_mask(bits), bits, flip);
    const __m512i id16 = _mm512_loadu_si512(ids + i);
    const __m512d w_lo = _mm512_loadu_pd(weights + i), w_hi = _mm512_loadu_pd(weights + i + 8);
    const __mmask16 keep = _mm512_cmpgt_epi32_mask(ordered, vcut) |
                           (_mm512_cmpeq_epi32_mask(ordered, vcut) & _mm512_cmple_epi32_mask(id16, vid));
    _mm512_storeu_si512(ids + out, _mm512_maskz_compress_epi32(keep, id16));
    const __mmask8 keep_lo = static_cast<__mmask8>(keep), keep_hi = static_cast<__mmask8>(keep >> 8);
    _mm512_storeu_pd(weights + out, _mm512_maskz_compress_pd(keep_lo, w_lo));
    out += __builtin_popcount(keep_lo);
    _mm512_storeu_pd(weights + out, _mm512_maskz_compress_pd(keep_hi, w_hi));
    out += __builtin_popcount(keep_hi);
  }
  return KeepThroughLogitOrderFrom(values, ids, weights, i, n, cut, id, out);
}

}  // namespace moe::vector_ops_avx512
