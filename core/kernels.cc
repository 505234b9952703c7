#include "core/kernels.h"

#include <algorithm>
#include <cmath>

#include "core/kernels_internal.h"
#include "core/thread_pool.h"
#include "glog/logging.h"

namespace moe {
namespace {

using MatMulFn = void (*)(const float*, int64_t, int64_t, const void*, DType, int64_t, float*,
                          int64_t, int64_t, int64_t);
using DotFn = float (*)(const float*, const float*, int64_t);

struct KernelSet {
  std::string_view name;
  MatMulFn matmul;
  DotFn dot;
};

constexpr KernelSet kAvx512{"avx512", kernels_avx512::MatMulColumns, kernels_avx512::Dot};
constexpr KernelSet kAvx2{"avx2", kernels_avx2::MatMulColumns, kernels_avx2::Dot};
constexpr KernelSet kPortable{"portable", kernels_portable::MatMulColumns, kernels_portable::Dot};

bool CpuHas(std::string_view isa) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (isa == "avx512")
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
  if (isa == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return isa == "portable";
}

const KernelSet* Detect() {
  if (CpuHas("avx512")) return &kAvx512;
  if (CpuHas("avx2")) return &kAvx2;
  return &kPortable;
}

const KernelSet*& Active() {
  static const KernelSet* active = Detect();
  return active;
}

}  // namespace

std::string_view KernelIsa() { return Active()->name; }

bool SetKernelIsaForTesting(std::string_view isa) {
  if (!CpuHas(isa)) return false;
  Active() = isa == "avx512" ? &kAvx512 : isa == "avx2" ? &kAvx2 : &kPortable;
  return true;
}

void MatMul(const float* x, int64_t m, int64_t ldx, const WeightView& w, float* y, int64_t ldy,
            ThreadPool* pool) {
  if (m <= 0 || w.rows <= 0) return;
  const KernelSet* ks = Active();
  const int64_t n = w.rows;
  const int64_t K = w.cols;
  auto run = [&](int64_t n0, int64_t n1) { ks->matmul(x, m, ldx, w.data, w.dtype, K, y, ldy, n0, n1); };
  if (pool == nullptr || pool->num_threads() == 1) {
    run(0, n);
    return;
  }
  // Chunks are multiples of 16 columns so that register tiles stay whole; the
  // split never changes a result (each element is one dot product).
  const int64_t work = m * n * K;
  if (work < 64 * 1024) {
    run(0, n);
    return;
  }
  int64_t chunk = pool->ChunkFor(n, m > 16 ? 2 : 4);
  chunk = std::max<int64_t>(16, (chunk + 15) / 16 * 16);
  pool->ParallelFor(n, chunk, run);
}

float Dot(const float* a, const float* b, int64_t n) { return Active()->dot(a, b, n); }

void RmsNorm(const float* x, int64_t m, int64_t d, const WeightView& weight, double eps, float* y) {
  CHECK_EQ(weight.rows * weight.cols, d);
  std::vector<float> w(d);
  ConvertRow(WeightView{weight.data, weight.dtype, 1, d}, 0, w.data());
  for (int64_t i = 0; i < m; ++i) {
    const float* xr = x + i * d;
    float* yr = y + i * d;
    double ss = 0;
    for (int64_t k = 0; k < d; ++k) ss += static_cast<double>(xr[k]) * xr[k];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(d) + eps));
    for (int64_t k = 0; k < d; ++k) yr[k] = (xr[k] * inv) * w[k];
  }
}

void ConvertRow(const WeightView& w, int64_t row, float* out) {
  const int64_t n = w.cols;
  switch (w.dtype) {
    case DType::kF32: {
      const float* p = static_cast<const float*>(w.data) + row * n;
      std::copy(p, p + n, out);
      break;
    }
    case DType::kBF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + row * n;
      for (int64_t k = 0; k < n; ++k) out[k] = Bf16ToF32(p[k]);
      break;
    }
    case DType::kF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + row * n;
      for (int64_t k = 0; k < n; ++k) out[k] = F16ToF32(p[k]);
      break;
    }
  }
}

void SwiGluFfn(const FfnWeights& w, const float* x, int64_t m, float* out, ThreadPool* pool,
               FfnScratch* scratch) {
  const int64_t h = w.gate.cols, f = w.gate.rows;
  std::vector<float>& gate = scratch->gate;
  std::vector<float>& up = scratch->up;
  gate.resize(m * f);
  up.resize(m * f);
  MatMul(x, m, h, w.gate, gate.data(), f, pool);
  MatMul(x, m, h, w.up, up.data(), f, pool);
  for (int64_t i = 0; i < m * f; ++i) {
    const float g = gate[i];
    gate[i] = (g / (1.0f + std::exp(-g))) * up[i];  // SiLU(gate) * up
  }
  MatMul(gate.data(), m, f, w.down, out, h, pool);
}

}  // namespace moe
