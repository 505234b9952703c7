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
// out[j] = Reduce(v[j]) for j < 4: the same additions of the same operands
// as Reduce, the four vectors' trees side by side in one register (about a
// third of the instructions of four Reduce calls).
inline void Reduce4(const V* v, float* out) {
  // Halves: 128-bit chunks [0, 1] + [2, 3] of each vector, two vectors per register.
  const __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(v[0], v[1], _MM_SHUFFLE(1, 0, 1, 0)),
                                  _mm512_shuffle_f32x4(v[0], v[1], _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(v[2], v[3], _MM_SHUFFLE(1, 0, 1, 0)),
                                  _mm512_shuffle_f32x4(v[2], v[3], _MM_SHUFFLE(3, 2, 3, 2)));
  // Quarters: chunk 0 + chunk 1 of each half; chunk j now holds vector j's four sums.
  const __m512 s4 = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, _MM_SHUFFLE(2, 0, 2, 0)),
                                  _mm512_shuffle_f32x4(ab, cd, _MM_SHUFFLE(3, 1, 3, 1)));
  // Within each chunk: lanes 0, 1 + lanes 2, 3, then lane 0 + lane 1.
  const __m512 s2 = _mm512_add_ps(s4, _mm512_permute_ps(s4, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 s1 = _mm512_add_ps(s2, _mm512_permute_ps(s2, _MM_SHUFFLE(1, 1, 1, 1)));
  const __m512 lane0s = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), s1);
  _mm_storeu_ps(out, _mm512_castps512_ps128(lane0s));
}

#include "core/kernels_impl.h"

}  // namespace

void MatMulColumns(const float* x, int64_t m, int64_t ldx, const void* w, DType dt, int64_t K,
                   float* y, int64_t ldy, int64_t n0, int64_t n1) {
  MatMulColumnsAnyType(x, m, ldx, w, dt, K, y, ldy, n0, n1);
}
float Dot(const float* a, const float* b, int64_t n) { return DotF32(a, b, n); }
void DotRows(const float* q, const float* rows, int64_t stride, int64_t m, int64_t n, float* out) {
  DotRowsF32(q, rows, stride, m, n, out);
}

namespace {

// Up to 8 × 16 columns held in registers while the rows stream past.
template <int NV>
void AddScaledRowsBlock(const float* p, int64_t m, const float* rows, int64_t stride, int64_t n, float* acc) {
  __m512 a[NV];
  __mmask16 mask[NV];
#pragma GCC unroll 8
  for (int c = 0; c < NV; ++c) {
    const int64_t left = n - c * 16;
    mask[c] = left >= 16 ? __mmask16{0xffff} : static_cast<__mmask16>((1u << left) - 1);
    a[c] = _mm512_maskz_loadu_ps(mask[c], acc + c * 16);
  }
  for (int64_t j = 0; j < m; ++j) {
    const __m512 pj = _mm512_set1_ps(p[j]);
    const float* r = rows + j * stride;
#pragma GCC unroll 8
    for (int c = 0; c < NV; ++c) a[c] = _mm512_add_ps(a[c], _mm512_mul_ps(pj, _mm512_maskz_loadu_ps(mask[c], r + c * 16)));
  }
#pragma GCC unroll 8
  for (int c = 0; c < NV; ++c) _mm512_mask_storeu_ps(acc + c * 16, mask[c], a[c]);
}

}  // namespace

void AddScaledRows(const float* p, int64_t m, const float* rows, int64_t stride, int64_t n, float* acc) {
  // The same multiply, then add, per element as the generic version (lanes
  // are columns, which never mix), so the same bits.
  for (int64_t d0 = 0; d0 < n; d0 += 128) {
    const int64_t w = std::min<int64_t>(128, n - d0);
    switch ((w + 15) / 16) {
      case 1: AddScaledRowsBlock<1>(p, m, rows + d0, stride, w, acc + d0); break;
      case 2: AddScaledRowsBlock<2>(p, m, rows + d0, stride, w, acc + d0); break;
      case 3: AddScaledRowsBlock<3>(p, m, rows + d0, stride, w, acc + d0); break;
      case 4: AddScaledRowsBlock<4>(p, m, rows + d0, stride, w, acc + d0); break;
      case 5: AddScaledRowsBlock<5>(p, m, rows + d0, stride, w, acc + d0); break;
      case 6: AddScaledRowsBlock<6>(p, m, rows + d0, stride, w, acc + d0); break;
      case 7: AddScaledRowsBlock<7>(p, m, rows + d0, stride, w, acc + d0); break;
      default: AddScaledRowsBlock<8>(p, m, rows + d0, stride, w, acc + d0); break;
    }
  }
}

}  // namespace moe::kernels_avx512
