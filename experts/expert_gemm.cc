#include "experts/expert_gemm.h"

namespace moe {

ExpertGemms BuildExpertGemms(const std::vector<ExpertGroup>& groups, int64_t h, int64_t f) {
  ExpertGemms out;
  for (const ExpertGroup& g : groups) {
    if (g.rows <= 0) continue;
    ColumnMajorGemm gu;
    gu.m = g.rows;
    gu.n = 2 * f;
    gu.k = h;
    gu.lda = h;
    gu.ldb = h;
    gu.ldc = 2 * f;
    gu.a_offset = static_cast<int64_t>(g.weight_slot) * 2 * f * h;
    gu.b_offset = g.row_begin * h;
    gu.c_offset = g.row_begin * 2 * f;
    out.gate_up.push_back(gu);
    ColumnMajorGemm dn;
    dn.m = g.rows;
    dn.n = h;
    dn.k = f;
    dn.lda = f;
    dn.ldb = f;
    dn.ldc = h;
    dn.a_offset = static_cast<int64_t>(g.weight_slot) * h * f;
    dn.b_offset = g.row_begin * f;
    dn.c_offset = g.row_begin * h;
    out.down.push_back(dn);
  }
  return out;
}

void ReferenceColumnMajorGemm(const ColumnMajorGemm& g, const float* a_base, const float* b_base, float* c_base) {
  const float* a = a_base + g.a_offset;
  const float* b = b_base + g.b_offset;
  float* c = c_base + g.c_offset;
  for (int64_t j = 0; j < g.m; ++j) {      // columns of C
    for (int64_t i = 0; i < g.n; ++i) {    // rows of C
      double acc = 0;
      // (Aᵀ)[i, p] = A[p, i] = a[p + i * lda]; B[p, j] = b[p + j * ldb].
      for (int64_t p = 0; p < g.k; ++p) acc += static_cast<double>(a[p + i * g.lda]) * b[p + j * g.ldb];
      c[i + j * g.ldc] = static_cast<float>(acc);
    }
  }
}

}  // namespace moe
