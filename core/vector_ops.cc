#include "core/vector_ops.h"

#include <cmath>
#include <limits>

namespace moe {
namespace vector_ops_avx512 {
float MaxValue(const float* x, int64_t n);
double SumExp(const float* x, int64_t n, float shift, float scale);
int64_t IndicesAbove(const float* x, int64_t n, float threshold, int32_t* out);
void ExpShifted(const float* x, int64_t n, float shift, float scale, float* out);
}  // namespace vector_ops_avx512

namespace {

bool HasAvx512() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}

const bool kAvx512 = HasAvx512();

}  // namespace

float MaxValue(const float* x, int64_t n) {
  if (kAvx512) return vector_ops_avx512::MaxValue(x, n);
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

double SumExp(const float* x, int64_t n, float shift, float scale) {
  if (kAvx512) return vector_ops_avx512::SumExp(x, n, shift, scale);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp((x[i] - shift) * scale);
  return s;
}

void ExpShifted(const float* x, int64_t n, float shift, float scale, float* out) {
  if (kAvx512) return vector_ops_avx512::ExpShifted(x, n, shift, scale, out);
  for (int64_t i = 0; i < n; ++i) out[i] = std::exp((x[i] - shift) * scale);
}

int64_t IndicesAbove(const float* x, int64_t n, float threshold, int32_t* out) {
  if (kAvx512) return vector_ops_avx512::IndicesAbove(x, n, threshold, out);
  int64_t k = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] > threshold) out[k++] = static_cast<int32_t>(i);
  }
  return k;
}

}  // namespace moe
