// CPU kernels: batched matrix multiply against checkpoint weights (bf16, f16
// or f32, converted on the fly), normalisation and small vector helpers.
//
// Reduction order contract: every dot product of length K is computed as 16
// lane-wise fused multiply-add chains over k = l, l+16, l+32, ... (lanes past
// K contribute 0), then reduced by the fixed tree
//   s8[l] = a[l] + a[l+8], s4[l] = s8[l] + s8[l+4], s2[l] = s4[l] + s4[l+2], s2[0] + s2[1].
// The AVX-512, AVX2 and portable implementations all follow it, so a result
// is bitwise identical whatever the batch size, the tiling, the thread count
// or the instruction set: this is what makes batch and placement invariance hold.
#ifndef MOE_CORE_KERNELS_H_
#define MOE_CORE_KERNELS_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/dtype.h"

namespace moe {

class ThreadPool;

// A row-major [rows, cols] matrix of checkpoint weights; not owned.
struct WeightView {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;

  int64_t nbytes() const { return rows * cols * DTypeSize(dtype); }
};

// y[i * ldy + j] = sum_k x[i * ldx + k] * w[j][k], for i < m and j < w.rows.
// K = w.cols. Work is split over output columns; `pool` may be null.
void MatMul(const float* x, int64_t m, int64_t ldx, const WeightView& w, float* y, int64_t ldy,
            ThreadPool* pool);

// One product of MatMuls: y[i * ldy + j] = x[i * ldx + :] . w[j], i < m, j < w.rows.
struct MatMulTask {
  const float* x = nullptr;
  int64_t m = 0;
  int64_t ldx = 0;
  WeightView w;
  float* y = nullptr;
  int64_t ldy = 0;
};

// Several independent products in one parallel loop (one start and one end
// for the pool instead of one per product, and the threads balance across
// them). Each result is bitwise what MatMul gives.
void MatMuls(const MatMulTask* tasks, int n, ThreadPool* pool);

// The canonical dot product of two f32 vectors (same order as MatMul).
float Dot(const float* a, const float* b, int64_t n);

// out[i * ldo + j] = Dot(q + i * ldq, rows + j * stride, n) for i < nq and
// j < m, bit for bit, several queries and rows per tile (attention's scores;
// the query heads of a grouped-query group share the rows).
void DotRows(const float* q, int64_t ldq, int64_t nq, const float* rows, int64_t stride, int64_t m, int64_t n,
             float* out, int64_t ldo);

// acc[i * ldacc + d] += p[i * ldp + j] * rows[j * stride + d] for i < np
// and d in [0, n), j = 0..m-1 in order, each term a multiply then an add
// (not fused): the same bits on every ISA, however many queries share a
// call and however the rows are split over calls (attention's weighted sum
// of values).
void AddScaledRows(const float* p, int64_t ldp, int64_t np, int64_t m, const float* rows, int64_t stride,
                   int64_t n, float* acc, int64_t ldacc);

// y = x * rsqrt(mean(x^2) + eps) * weight, for each of m rows of length d.
// The weight is a [1, d] (or [d]) view. x and y may alias.
void RmsNorm(const float* x, int64_t m, int64_t d, const WeightView& weight, double eps, float* y);

// Converts row `row` of `w` to f32.
void ConvertRow(const WeightView& w, int64_t row, float* out);

// A SwiGLU feed-forward block (a routed expert, a shared expert or a dense
// MLP layer): gate [ffn, hidden], down [hidden, ffn], up [ffn, hidden].
struct FfnWeights {
  WeightView gate, down, up;
  int64_t nbytes() const { return gate.nbytes() + down.nbytes() + up.nbytes(); }
};

// Intermediate buffers of SwiGluFfn, [m, ffn] each.
struct FfnScratch {
  std::vector<float> gate, up;
};

// out[m, hidden] = down(silu(gate x) * (up x)) for m rows of x[m, hidden].
// Row results do not depend on m (the MatMul contract). x and out must not alias.
void SwiGluFfn(const FfnWeights& w, const float* x, int64_t m, float* out, ThreadPool* pool,
               FfnScratch* scratch);

// One block of SwiGluFfns: SwiGluFfn(*w, x, m, out, -, scratch).
struct FfnTask {
  const FfnWeights* w = nullptr;
  const float* x = nullptr;
  int64_t m = 0;
  float* out = nullptr;
  FfnScratch* scratch = nullptr;
};

// Several SwiGLU blocks (the experts of one MoE layer) in two parallel
// loops: gate, up and SiLU of every block, then every down projection. The
// threads share the rows of all the blocks in small pieces, so none waits
// long for another at the end of a loop. Results are bitwise those of
// SwiGluFfn, whatever the pool.
void SwiGluFfns(const FfnTask* tasks, int n, ThreadPool* pool);

// Which implementation MatMul dispatches to on this CPU: "avx512", "avx2" or "portable".
std::string_view KernelIsa();

// Forces an implementation (tests compare them); returns false if unsupported here.
bool SetKernelIsaForTesting(std::string_view isa);

}  // namespace moe

#endif  // MOE_CORE_KERNELS_H_
