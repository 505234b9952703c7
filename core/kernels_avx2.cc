// AVX2 + FMA kernels: a 16-lane vector is two 8-lane registers, which keeps the
// reduction order of kernels.h. Only called after a runtime CPU check.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "core/kernels_internal.h"

namespace moe::kernels_avx2 {
namespace {

struct V {
  __m256 lo, hi;
};
constexpr int kMr = 2;
constexpr int kNr = 2;

inline V Zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
inline V LoadF32(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
inline __m256 Bf16x8(const uint16_t* p) {
  const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}
inline V LoadBf16(const uint16_t* p) { return {Bf16x8(p), Bf16x8(p + 8)}; }
inline V LoadF16(const uint16_t* p) {
  return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)))};
}
inline V Fma(V a, V b, V c) {
  return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
}
inline float Reduce(V v) {
  const __m256 s8 = _mm256_add_ps(v.lo, v.hi);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

inline void Reduce4(const V* v, float* out) {
  for (int j = 0; j < 4; ++j) out[j] = Reduce(v[j]);
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
void AddScaledRows(const float* p, int64_t ldp, int64_t np, int64_t m, const float* rows, int64_t stride,
                   int64_t n, float* acc, int64_t ldacc) {
  AddScaledRowsGeneric(p, ldp, np, m, rows, stride, n, acc, ldacc);
}

}  // namespace moe::kernels_avx2
