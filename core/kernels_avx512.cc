// AVX-512 kernels (compiled with -mavx512f -mavx512bw -mavx512vl -mfma -mf16c;
// only called after a runtime CPU check).
// GCC 12 reports its own _mm512_undefined_* helpers as uninitialised when
// they are inlined here (a known false positive); silence it for this file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "core/dtype.h"
#include "core/kernels_internal.h"

namespace moe::kernels_avx512 {
namespace {

using V = __m512;
constexpr int kMr = 6;
constexpr int kNr = 4;

inline V Zero() { return _mm512_setzero_ps(); }
inline V LoadF32(const float* p) { return _mm512_loadu_ps(p); }
inline V LoadBf16(const uint16_t* p) {
  const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}
inline V LoadF16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline V Fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
inline float Reduce(V v) {
  const __m256 lo = _mm512_castps512_ps256(v);
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
  const __m256 s8 = _mm256_add_ps(lo, hi);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

#include "core/kernels_impl.h"

}  // namespace

void MatMulColumns(const float* x, int64_t m, int64_t ldx, const void* w, DType dt, int64_t K,
                   float* y, int64_t ldy, int64_t n0, int64_t n1) {
  MatMulColumnsAnyType(x, m, ldx, w, dt, K, y, ldy, n0, n1);
}
float Dot(const float* a, const float* b, int64_t n) { return DotF32(a, b, n); }

}  // namespace moe::kernels_avx512
