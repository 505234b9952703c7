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

int64_t SelectAbove(const float* x, int64_t n, float threshold, int32_t* ids, float* values, float* lo, float* hi) {
  if (kAvx512) return vector_ops_avx512::SelectAbove(x, n, threshold, ids, values, lo, hi);
  float l = std::numeric_limits<float>::infinity(), h = -l;
  int64_t k = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] > threshold) {
      ids[k] = static_cast<int32_t>(i);
      values[k++] = x[i];
      l = x[i] < l ? x[i] : l;
      h = x[i] > h ? x[i] : h;
    }
  }
  *lo = l;
  *hi = h;
  return k;
}

void ExpShiftedWide(const float* x, int64_t n, float shift, float scale, double* out) {
  if (kAvx512) return vector_ops_avx512::ExpShiftedWide(x, n, shift, scale, out);
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<double>(std::exp((x[i] - shift) * scale));
}

double SumAnyOrder(const double* x, int64_t n) {
  if (kAvx512) return vector_ops_avx512::SumAnyOrder(x, n);
  double part[4] = {0, 0, 0, 0};  // independent chains: the adder's throughput, not its latency
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (int k = 0; k < 4; ++k) part[k] += x[i + k];
  }
  for (; i < n; ++i) part[0] += x[i];
  return (part[0] + part[1]) + (part[2] + part[3]);
}

void BucketIndices(const float* v, int64_t n, float hi, float scale, uint16_t last, uint16_t* out) {
  if (kAvx512) return vector_ops_avx512::BucketIndices(v, n, hi, scale, last, out);
  const float top = static_cast<float>(last);
  for (int64_t i = 0; i < n; ++i) {
    // (hi - v) * scale is >= 0 for a finite v <= hi; NaN lands in the last bucket too.
    const float b = v[i] == -std::numeric_limits<float>::infinity() ? top : (hi - v[i]) * scale;
    out[i] = static_cast<uint16_t>(static_cast<int>(b < top ? b : top));
  }
}

int64_t IndicesEqual(const uint16_t* x, int64_t n, uint16_t value, int32_t* out) {
  if (kAvx512) return vector_ops_avx512::IndicesEqual(x, n, value, out);
  int64_t k = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] == value) out[k++] = static_cast<int32_t>(i);
  }
  return k;
}

namespace {

// A float's bits as an integer that orders like the float (-0 as +0).
int32_t OrderedBits(float v) {
  v += 0.0f;
  int32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  return bits >= 0 ? bits : bits ^ 0x7fffffff;
}

}  // namespace

int64_t KeepThroughLogitOrder(const float* values, int32_t* ids, double* weights, int64_t n, float logit, int32_t id) {
  if (kAvx512) return vector_ops_avx512::KeepThroughLogitOrder(values, ids, weights, n, logit, id);
  const int32_t cut = OrderedBits(logit);
  int64_t out = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t o = OrderedBits(values[i]);
    const bool keep = o > cut || (o == cut && ids[i] <= id);
    // Branch-free: on flat logits the test is a coin toss for a predictor.
    ids[out] = ids[i];
    weights[out] = weights[i];
    out += static_cast<int64_t>(keep);
  }
  return out;
}

}  // namespace moe
