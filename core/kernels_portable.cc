// Portable kernels: 16 scalar lanes with std::fma, in the reduction order of
// kernels.h, so results match the SIMD implementations bit for bit.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "core/kernels_internal.h"

namespace moe::kernels_portable {
namespace {

struct V {
  float v[16];
};
constexpr int kMr = 2;
constexpr int kNr = 2;

inline V Zero() { return V{}; }
inline V LoadF32(const float* p) {
  V r;
  for (int l = 0; l < 16; ++l) r.v[l] = p[l];
  return r;
}
inline V LoadBf16(const uint16_t* p) {
  V r;
  for (int l = 0; l < 16; ++l) r.v[l] = Bf16ToF32(p[l]);
  return r;
}
inline V LoadF16(const uint16_t* p) {
  V r;
  for (int l = 0; l < 16; ++l) r.v[l] = F16ToF32(p[l]);
  return r;
}
inline V Fma(const V& a, const V& b, const V& c) {
  V r;
  for (int l = 0; l < 16; ++l) r.v[l] = std::fma(a.v[l], b.v[l], c.v[l]);
  return r;
}
inline float Reduce(const V& a) {
  float s8[8], s4[4];
  for (int l = 0; l < 8; ++l) s8[l] = a.v[l] + a.v[l + 8];
  for (int l = 0; l < 4; ++l) s4[l] = s8[l] + s8[l + 4];
  const float s20 = s4[0] + s4[2];
  const float s21 = s4[1] + s4[3];
  return s20 + s21;
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

}  // namespace moe::kernels_portable
