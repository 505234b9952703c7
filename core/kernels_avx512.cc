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
void DotRows(const float* q, int64_t ldq, int64_t nq, const float* rows, int64_t stride, int64_t m, int64_t n,
             float* out, int64_t ldo) {
  DotRowsF32(q, ldq, nq, rows, stride, m, n, out, ldo);
}

namespace {

// NQ queries' NV × 16 columns held in registers while the rows stream past;
// each row's vectors are loaded once for all NQ queries.
template <int NQ, int NV>
void AddScaledRowsBlock(const float* p, int64_t ldp, int64_t m, const float* rows, int64_t stride, int64_t n,
                        float* acc, int64_t ldacc) {
  __m512 a[NQ][NV];
  __mmask16 mask[NV];
#pragma GCC unroll 8
  for (int c = 0; c < NV; ++c) {
    const int64_t left = n - c * 16;
    mask[c] = left >= 16 ? __mmask16{0xffff} : static_cast<__mmask16>((1u << left) - 1);
  }
#pragma GCC unroll 4
  for (int i = 0; i < NQ; ++i)
#pragma GCC unroll 8
    for (int c = 0; c < NV; ++c) a[i][c] = _mm512_maskz_loadu_ps(mask[c], acc + i * ldacc + c * 16);
  for (int64_t j = 0; j < m; ++j) {
    const float* r = rows + j * stride;
    __m512 v[NV];
#pragma GCC unroll 8
    for (int c = 0; c < NV; ++c) v[c] = _mm512_maskz_loadu_ps(mask[c], r + c * 16);
#pragma GCC unroll 4
    for (int i = 0; i < NQ; ++i) {
      const __m512 pj = _mm512_set1_ps(p[i * ldp + j]);
#pragma GCC unroll 8
      for (int c = 0; c < NV; ++c) a[i][c] = _mm512_add_ps(a[i][c], _mm512_mul_ps(pj, v[c]));
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < NQ; ++i)
#pragma GCC unroll 8
    for (int c = 0; c < NV; ++c) _mm512_mask_storeu_ps(acc + i * ldacc + c * 16, mask[c], a[i][c]);
}

// Columns in blocks of 16 * kMaxNv (one query: 128 columns; up to four: 64,
// so that the accumulators and a row's vectors fit the 32 registers).
template <int NQ>
void AddScaledRowsQueries(const float* p, int64_t ldp, int64_t m, const float* rows, int64_t stride, int64_t n,
                          float* acc, int64_t ldacc) {
  constexpr int kMaxNv = NQ == 1 ? 8 : 4;
  for (int64_t d0 = 0; d0 < n; d0 += 16 * kMaxNv) {
    const int64_t w = std::min<int64_t>(16 * kMaxNv, n - d0);
    const float* r = rows + d0;
    float* a = acc + d0;
    switch ((w + 15) / 16) {
      case 1: AddScaledRowsBlock<NQ, 1>(p, ldp, m, r, stride, w, a, ldacc); break;
      case 2: AddScaledRowsBlock<NQ, 2>(p, ldp, m, r, stride, w, a, ldacc); break;
      case 3: AddScaledRowsBlock<NQ, 3>(p, ldp, m, r, stride, w, a, ldacc); break;
      case 4: AddScaledRowsBlock<NQ, 4>(p, ldp, m, r, stride, w, a, ldacc); break;
      case 5: if constexpr (kMaxNv >= 5) AddScaledRowsBlock<NQ, 5>(p, ldp, m, r, stride, w, a, ldacc); break;
      case 6: if constexpr (kMaxNv >= 6) AddScaledRowsBlock<NQ, 6>(p, ldp, m, r, stride, w, a, ldacc); break;
      case 7: if constexpr (kMaxNv >= 7) AddScaledRowsBlock<NQ, 7>(p, ldp, m, r, stride, w, a, ldacc); break;
      default: if constexpr (kMaxNv >= 8) AddScaledRowsBlock<NQ, 8>(p, ldp, m, r, stride, w, a, ldacc); break;
    }
  }
}

}  // namespace

void AddScaledRows(const float* p, int64_t ldp, int64_t np, int64_t m, const float* rows, int64_t stride,
                   int64_t n, float* acc, int64_t ldacc) {
  // The same multiply, then add, per element as the generic version (lanes
  // are columns, which never mix), so the same bits.
  for (int64_t i = 0; i < np; i += 4) {
    const float* pi = p + i * ldp;
    float* ai = acc + i * ldacc;
    switch (std::min<int64_t>(4, np - i)) {
      case 1: AddScaledRowsQueries<1>(pi, ldp, m, rows, stride, n, ai, ldacc); break;
      case 2: AddScaledRowsQueries<2>(pi, ldp, m, rows, stride, n, ai, ldacc); break;
      case 3: AddScaledRowsQueries<3>(pi, ldp, m, rows, stride, n, ai, ldacc); break;
      default: AddScaledRowsQueries<4>(pi, ldp, m, rows, stride, n, ai, ldacc); break;
    }
  }
}

}  // namespace moe::kernels_avx512
