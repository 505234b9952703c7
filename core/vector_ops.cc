#include "core/vector_ops.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace moe {
namespace vector_ops_avx512 {
float MaxValue(const float* x, int64_t n);
double SumExp(const float* x, int64_t n, float shift, float scale);
int64_t IndicesAbove(const float* x, int64_t n, float threshold, int32_t* out);
void ExpShifted(const float* x, int64_t n, float shift, float scale, float* out);
int64_t SelectAbove(const float* x, int64_t n, float threshold, int32_t* ids, float* values, float* lo, float* hi);
void ExpShiftedWide(const float* x, int64_t n, float shift, float scale, double* out);
double SumAnyOrder(const double* x, int64_t n);
void BucketIndices(const float* v, int64_t n, float hi, float scale, uint16_t last, uint16_t* out);
int64_t IndicesEqual(const uint16_t* x, int64_t n, uint16_t value, int32_t* out);
int64_t KeepThroughLogitOrder(const float* values, int32_t* ids, double* weights, int64_t n, float logit, int32_t id);
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

const bool kHasAvx512 = HasAvx512();
bool use_avx512 = kHasAvx512;  // changed only by tests

#include "core/vector_ops_scalar.h"

}  // namespace

float MaxValue(const float* x, int64_t n) {
  if (use_avx512) return vector_ops_avx512::MaxValue(x, n);
  return MaxValueFrom(x, 0, n, -std::numeric_limits<float>::infinity());
}

double SumExp(const float* x, int64_t n, float shift, float scale) {
  if (use_avx512) return vector_ops_avx512::SumExp(x, n, shift, scale);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp((x[i] - shift) * scale);
  return s;
}

void ExpShifted(const float* x, int64_t n, float shift, float scale, float* out) {
  if (use_avx512) return vector_ops_avx512::ExpShifted(x, n, shift, scale, out);
  ExpShiftedFrom(x, 0, n, shift, scale, out);
}

int64_t IndicesAbove(const float* x, int64_t n, float threshold, int32_t* out) {
  if (use_avx512) return vector_ops_avx512::IndicesAbove(x, n, threshold, out);
  return IndicesAboveFrom(x, 0, n, threshold, out, 0);
}

int64_t SelectAbove(const float* x, int64_t n, float threshold, int32_t* ids, float* values, float* lo, float* hi) {
  if (use_avx512) return vector_ops_avx512::SelectAbove(x, n, threshold, ids, values, lo, hi);
  *lo = std::numeric_limits<float>::infinity();
  *hi = -std::numeric_limits<float>::infinity();
  return SelectAboveFrom(x, 0, n, threshold, ids, values, 0, lo, hi);
}

void ExpShiftedWide(const float* x, int64_t n, float shift, float scale, double* out) {
  if (use_avx512) return vector_ops_avx512::ExpShiftedWide(x, n, shift, scale, out);
  ExpShiftedWideFrom(x, 0, n, shift, scale, out);
}

double SumAnyOrder(const double* x, int64_t n) {
  if (use_avx512) return vector_ops_avx512::SumAnyOrder(x, n);
  double part[4] = {0, 0, 0, 0};  // independent chains: the adder's throughput, not its latency
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (int k = 0; k < 4; ++k) part[k] += x[i + k];
  }
  for (; i < n; ++i) part[0] += x[i];
  return (part[0] + part[1]) + (part[2] + part[3]);
}

void BucketIndices(const float* v, int64_t n, float hi, float scale, uint16_t last, uint16_t* out) {
  if (use_avx512) return vector_ops_avx512::BucketIndices(v, n, hi, scale, last, out);
  BucketIndicesFrom(v, 0, n, hi, scale, last, out);
}

int64_t IndicesEqual(const uint16_t* x, int64_t n, uint16_t value, int32_t* out) {
  if (use_avx512) return vector_ops_avx512::IndicesEqual(x, n, value, out);
  return IndicesEqualFrom(x, 0, n, value, out, 0);
}

int64_t KeepThroughLogitOrder(const float* values, int32_t* ids, double* weights, int64_t n, float logit, int32_t id) {
  if (use_avx512) return vector_ops_avx512::KeepThroughLogitOrder(values, ids, weights, n, logit, id);
  return KeepThroughLogitOrderFrom(values, ids, weights, 0, n, OrderedBits(logit), id, 0);
}

bool SetVectorOpsAvx512ForTesting(bool on) {
  if (on && !kHasAvx512) return false;
  use_avx512 = on;
  return true;
}

}  // namespace moe
