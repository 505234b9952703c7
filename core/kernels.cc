#include "core/kernels.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "core/kernels_internal.h"
#include "core/thread_pool.h"
#include "glog/logging.h"

namespace moe {
namespace {

using MatMulFn = void (*)(const float*, int64_t, int64_t, const void*, DType, int64_t, float*,
                          int64_t, int64_t, int64_t);
using DotFn = float (*)(const float*, const float*, int64_t);
using AddScaledRowsFn = void (*)(const float*, int64_t, int64_t, int64_t, const float*, int64_t, int64_t, float*,
                                 int64_t);
using DotRowsFn = void (*)(const float*, int64_t, int64_t, const float*, int64_t, int64_t, int64_t, float*, int64_t);

struct KernelSet {
  std::string_view name;
  MatMulFn matmul;
  DotFn dot;
  AddScaledRowsFn add_scaled_rows;
  DotRowsFn dot_rows;
};

constexpr KernelSet kAvx512{"avx512", kernels_avx512::MatMulColumns, kernels_avx512::Dot,
                            kernels_avx512::AddScaledRows, kernels_avx512::DotRows};
constexpr KernelSet kAvx2{"avx2", kernels_avx2::MatMulColumns, kernels_avx2::Dot, kernels_avx2::AddScaledRows,
                          kernels_avx2::DotRows};
constexpr KernelSet kPortable{"portable", kernels_portable::MatMulColumns, kernels_portable::Dot,
                              kernels_portable::AddScaledRows, kernels_portable::DotRows};

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
  const MatMulTask task{x, m, ldx, w, y, ldy};
  MatMuls(&task, 1, pool);
}

float Dot(const float* a, const float* b, int64_t n) { return Active()->dot(a, b, n); }

void AddScaledRows(const float* p, int64_t ldp, int64_t np, int64_t m, const float* rows, int64_t stride,
                   int64_t n, float* acc, int64_t ldacc) {
  Active()->add_scaled_rows(p, ldp, np, m, rows, stride, n, acc, ldacc);
}

void DotRows(const float* q, int64_t ldq, int64_t nq, const float* rows, int64_t stride, int64_t m, int64_t n,
             float* out, int64_t ldo) {
  Active()->dot_rows(q, ldq, nq, rows, stride, m, n, out, ldo);
}

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

namespace {

// A range of output columns of one task of a multi-product loop.
struct Piece {
  int task;
  int64_t n0, n1;
};

// The pieces of one multi-product loop. Reused by the calling thread (its
// helpers only read them), so a decode step allocates nothing.
std::vector<Piece>& PieceBuffer() {
  thread_local std::vector<Piece> pieces;
  return pieces;
}

// Cuts each task's output columns into pieces: multiples of 16 columns
// (register tiles stay whole; the split never changes a result, each element
// being one dot product), four pieces per thread (two when the task has more
// than 16 input rows, as a piece re-reads them); a task under 64 Ki
// multiply-adds, or any task when there is one thread, whole. `shape(i)`
// gives task i's {output columns, input rows, multiply-adds per column}.
template <typename Shape>
void PlanPieces(int n, int threads, const Shape& shape, std::vector<Piece>* out) {
  out->clear();
  for (int i = 0; i < n; ++i) {
    const auto [rows, m, cost_per_row] = shape(i);
    if (rows <= 0 || m <= 0) continue;
    int64_t step = rows;
    if (threads > 1 && rows * cost_per_row >= 64 * 1024) {
      const int64_t parts = static_cast<int64_t>(threads) * (m > 16 ? 2 : 4);
      step = std::max<int64_t>(16, ((rows + parts - 1) / parts + 15) / 16 * 16);
    }
    for (int64_t n0 = 0; n0 < rows; n0 += step) out->push_back({i, n0, std::min(rows, n0 + step)});
  }
}

// Runs fn(piece) for every piece, over the pool when there is more than one.
template <typename Fn>
void RunPieces(const std::vector<Piece>& pieces, ThreadPool* pool, const Fn& fn) {
  const int64_t n = static_cast<int64_t>(pieces.size());
  if (pool == nullptr || pool->num_threads() == 1 || n <= 1) {
    for (const Piece& p : pieces) fn(p);
    return;
  }
  pool->ParallelFor(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) fn(pieces[i]);
  });
}

int Threads(ThreadPool* pool) { return pool == nullptr ? 1 : pool->num_threads(); }

}  // namespace

void MatMuls(const MatMulTask* tasks, int n, ThreadPool* pool) {
  const KernelSet* ks = Active();
  std::vector<Piece>& pieces = PieceBuffer();
  PlanPieces(n, Threads(pool), [&](int i) {
    const MatMulTask& t = tasks[i];
    return std::array<int64_t, 3>{t.w.rows, t.m, t.m * t.w.cols};
  }, &pieces);
  RunPieces(pieces, pool, [&](const Piece& p) {
    const MatMulTask& t = tasks[p.task];
    ks->matmul(t.x, t.m, t.ldx, t.w.data, t.w.dtype, t.w.cols, t.y, t.ldy, p.n0, p.n1);
  });
}

void SwiGluFfns(const FfnTask* tasks, int n, ThreadPool* pool) {
  const KernelSet* ks = Active();
  std::vector<Piece>& pieces = PieceBuffer();
  // Gate and up of a piece's columns, then SiLU(gate) * up on them.
  for (int i = 0; i < n; ++i) {
    const FfnTask& t = tasks[i];
    t.scratch->gate.resize(t.m * t.w->gate.rows);
    t.scratch->up.resize(t.m * t.w->gate.rows);
  }
  PlanPieces(n, Threads(pool), [&](int i) {
    const FfnTask& t = tasks[i];
    return std::array<int64_t, 3>{t.w->gate.rows, t.m, t.m * t.w->gate.cols};
  }, &pieces);
  RunPieces(pieces, pool, [&](const Piece& p) {
    const FfnTask& t = tasks[p.task];
    const int64_t h = t.w->gate.cols, f = t.w->gate.rows;
    float* gate = t.scratch->gate.data();
    float* up = t.scratch->up.data();
    ks->matmul(t.x, t.m, h, t.w->gate.data, t.w->gate.dtype, h, gate, f, p.n0, p.n1);
    ks->matmul(t.x, t.m, h, t.w->up.data, t.w->up.dtype, h, up, f, p.n0, p.n1);
    for (int64_t r = 0; r < t.m; ++r) {
      for (int64_t j = r * f + p.n0; j < r * f + p.n1; ++j) {
        const float g = gate[j];
        gate[j] = (g / (1.0f + std::exp(-g))) * up[j];  // SiLU(gate) * up
      }
    }
  });
  // Every down projection.
  PlanPieces(n, Threads(pool), [&](int i) {
    const FfnTask& t = tasks[i];
    return std::array<int64_t, 3>{t.w->down.rows, t.m, t.m * t.w->down.cols};
  }, &pieces);
  RunPieces(pieces, pool, [&](const Piece& p) {
    const FfnTask& t = tasks[p.task];
    const int64_t h = t.w->down.rows, f = t.w->down.cols;
    ks->matmul(t.scratch->gate.data(), t.m, f, t.w->down.data, t.w->down.dtype, f, t.out, h, p.n0, p.n1);
  });
}

void SwiGluFfn(const FfnWeights& w, const float* x, int64_t m, float* out, ThreadPool* pool,
               FfnScratch* scratch) {
  const FfnTask task{&w, x, m, out, scratch};
  SwiGluFfns(&task, 1, pool);
}

}  // namespace moe
