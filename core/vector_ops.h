// Whole-vocabulary passes of the sampler: maximum, sum of exponentials, and
// selection above a threshold. Each is one streaming pass, SIMD where the CPU
// has AVX-512 (chosen at run time), so sampling never sorts the vocabulary.
#ifndef MOE_CORE_VECTOR_OPS_H_
#define MOE_CORE_VECTOR_OPS_H_

#include <cstdint>

namespace moe {

// max_i x[i]; -inf for n == 0.
float MaxValue(const float* x, int64_t n);

// sum_i exp((x[i] - shift) * scale). With shift >= max(x) and scale > 0 every
// term is in [0, 1]; relative error below 1e-6.
double SumExp(const float* x, int64_t n, float shift, float scale);

// out[i] = exp((x[i] - shift) * scale), same accuracy as SumExp.
void ExpShifted(const float* x, int64_t n, float shift, float scale, float* out);

// Writes the indices i (increasing) with x[i] > threshold to `out` (room for n)
// and returns how many.
int64_t IndicesAbove(const float* x, int64_t n, float threshold, int32_t* out);

// IndicesAbove that also writes the selected values, values[k] = x[ids[k]]
// (room for n), and their lowest and highest to *lo and *hi (+inf and -inf
// when nothing is selected).
int64_t SelectAbove(const float* x, int64_t n, float threshold, int32_t* ids, float* values, float* lo, float* hi);

// ExpShifted's values, widened to double: out[i] = double(ExpShifted(x)[i]).
void ExpShiftedWide(const float* x, int64_t n, float shift, float scale, double* out);

// The sum of x[0..n) added in an unspecified order (for bounds: within
// (n - 1) * eps of the exact sum, relative, for non-negative terms).
double SumAnyOrder(const double* x, int64_t n);

// Top-p's histogram bucket of each value: out[i] = min(last, trunc((hi -
// v[i]) * scale)), and `last` for -inf.
void BucketIndices(const float* v, int64_t n, float hi, float scale, uint16_t last, uint16_t* out);

// Writes the indices i (increasing) with x[i] == value to `out` (room for n)
// and returns how many.
int64_t IndicesEqual(const uint16_t* x, int64_t n, uint16_t value, int32_t* out);

// Keeps, in place and in their order, the entries i whose (values[i], ids[i])
// comes at or before (logit, id) in (logit descending, id ascending) order
// (-0 and +0 compare equal); returns how many. ids and weights move
// together; values is only read.
int64_t KeepThroughLogitOrder(const float* values, int32_t* ids, double* weights, int64_t n, float logit, int32_t id);

// Tests only: true picks the AVX-512 versions (where the CPU has them),
// false the portable ones. Returns whether that choice is now in effect.
// Not for use while another thread calls these functions.
bool SetVectorOpsAvx512ForTesting(bool on);

}  // namespace moe

#endif  // MOE_CORE_VECTOR_OPS_H_
