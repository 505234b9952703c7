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

}  // namespace moe

#endif  // MOE_CORE_VECTOR_OPS_H_
