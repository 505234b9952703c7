// Entry points of the per-instruction-set kernel files; kernels.cc picks one
// at run time.
#ifndef MOE_CORE_KERNELS_INTERNAL_H_
#define MOE_CORE_KERNELS_INTERNAL_H_

#include <cstdint>

#include "core/dtype.h"

#define MOE_DECLARE_KERNELS(ns)                                                                 \
  namespace moe::ns {                                                                           \
  void MatMulColumns(const float* x, int64_t m, int64_t ldx, const void* w, DType dt, int64_t K, \
                     float* y, int64_t ldy, int64_t n0, int64_t n1);                            \
  float Dot(const float* a, const float* b, int64_t n);                                         \
  void AddScaledRows(const float* p, int64_t ldp, int64_t np, int64_t m, const float* rows,       \
                     int64_t stride, int64_t n, float* acc, int64_t ldacc);                     \
  void DotRows(const float* q, int64_t ldq, int64_t nq, const float* rows, int64_t stride,       \
               int64_t m, int64_t n, float* out, int64_t ldo);                                  \
  }

MOE_DECLARE_KERNELS(kernels_avx512)
MOE_DECLARE_KERNELS(kernels_avx2)
MOE_DECLARE_KERNELS(kernels_portable)

#undef MOE_DECLARE_KERNELS

#endif  // MOE_CORE_KERNELS_INTERNAL_H_
