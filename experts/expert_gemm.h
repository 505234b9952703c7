// The matrix products of one layer's experts, as the column-major BLAS calls
// (cuBLAS) that compute them.
//
// Rows arrive grouped by expert (CpuExpertRunner's layout: sorted by expert,
// each expert's rows in request order). For expert e with m rows, row-major
//   GU[m, 2f] = X[m, h] · [W1; W3]ᵀ      (gate and up, stacked: [2f, h])
//   Y[m, h]   = A[m, f] · W2ᵀ             (A = SiLU(gate) * up; W2 is [h, f])
// A row-major [r, c] array is a column-major [c, r] one with leading
// dimension c, so each product is the column-major
//   C[n, m] = op(A)[n, k] · B[k, m],  op = transpose,  ld(A) = ld(B) = k, ld(C) = n
// with n = the output width and k = the input width. ExpertGemms builds those
// arguments (sizes, leading dimensions, element offsets into the stacked
// device buffers); ReferenceColumnMajorGemm executes them on the CPU, so the
// tests check the arguments against the row-major reference.
#ifndef MOE_EXPERTS_EXPERT_GEMM_H_
#define MOE_EXPERTS_EXPERT_GEMM_H_

#include <cstdint>
#include <vector>

namespace moe {

// One column-major GEMM: C[n, m] = Aᵀ · B, A [k, n] (ld lda), B [k, m] (ld
// ldb), C [n, m] (ld ldc). Offsets are in elements from the buffer bases.
struct ColumnMajorGemm {
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t a_offset = 0, b_offset = 0, c_offset = 0;
};

// An expert's rows in the grouped layout: rows [row_begin, row_begin + rows).
struct ExpertGroup {
  int weight_slot = 0;  // which expert's weights (index into the stacked weights)
  int64_t row_begin = 0;
  int64_t rows = 0;
};

struct ExpertGemms {
  std::vector<ColumnMajorGemm> gate_up;  // per group: GU = X · [W1; W3]ᵀ
  std::vector<ColumnMajorGemm> down;     // per group: Y = A · W2ᵀ
};

// Weights are stacked per slot: [W1; W3] of slot s at s * 2f * h, W2 of slot
// s at s * h * f. Activations: X [rows, h], GU [rows, 2f], A [rows, f],
// Y [rows, h], all row-major in the grouped order. Groups with no rows get
// no GEMM.
ExpertGemms BuildExpertGemms(const std::vector<ExpertGroup>& groups, int64_t hidden, int64_t ffn);

// C = Aᵀ·B column-major, in double then stored as float (the CPU stand-in for
// the cuBLAS call, for tests).
void ReferenceColumnMajorGemm(const ColumnMajorGemm& g, const float* a_base, const float* b_base, float* c_base);

}  // namespace moe

#endif  // MOE_EXPERTS_EXPERT_GEMM_H_
