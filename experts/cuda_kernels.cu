#include "experts/cuda_kernels.h"

#include "experts/ffn_math.h"

namespace moe::cuda {
namespace {

constexpr int kThreads = 256;

// Four elements per thread per step, grid-stride: 16-byte loads of f32.
template <bool kF16>
__device__ inline uint16_t ToHalf(float x) {
  return kF16 ? F32ToF16Rne(x) : F32ToBf16Rne(x);
}

template <bool kF16>
__global__ void F32ToHalfKernel(const float* __restrict__ in, int64_t n, uint16_t* __restrict__ out) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x * 4;
  for (int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * 4; i < n; i += stride) {
    if (i + 4 <= n && (reinterpret_cast<uintptr_t>(in + i) & 15) == 0) {
      const float4 v = *reinterpret_cast<const float4*>(in + i);
      out[i] = ToHalf<kF16>(v.x);
      out[i + 1] = ToHalf<kF16>(v.y);
      out[i + 2] = ToHalf<kF16>(v.z);
      out[i + 3] = ToHalf<kF16>(v.w);
    } else {
      for (int64_t j = i; j < n && j < i + 4; ++j) out[j] = ToHalf<kF16>(in[j]);
    }
  }
}

template <bool kF16>
__global__ void SiluMulKernel(const float* __restrict__ gu, int64_t rows, int64_t f, uint16_t* __restrict__ act) {
  const int64_t total = rows * f;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t r = i / f, j = i - r * f;
    const float* row = gu + r * 2 * f;
    act[i] = ToHalf<kF16>(SiluMul(row[j], row[f + j]));
  }
}

int Blocks(int64_t work) {
  const int64_t b = (work + kThreads - 1) / kThreads;
  return static_cast<int>(b < 1 ? 1 : (b > 65535 ? 65535 : b));
}

}  // namespace

cudaError_t LaunchF32ToHalf(const float* in, int64_t n, Half16 type, uint16_t* out, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  if (type == Half16::kF16) {
    F32ToHalfKernel<true><<<Blocks((n + 3) / 4), kThreads, 0, stream>>>(in, n, out);
  } else {
    F32ToHalfKernel<false><<<Blocks((n + 3) / 4), kThreads, 0, stream>>>(in, n, out);
  }
  return cudaGetLastError();
}

cudaError_t LaunchSiluMul(const float* gu, int64_t rows, int64_t f, Half16 type, uint16_t* act,
                          cudaStream_t stream) {
  if (rows <= 0 || f <= 0) return cudaSuccess;
  if (type == Half16::kF16) {
    SiluMulKernel<true><<<Blocks(rows * f), kThreads, 0, stream>>>(gu, rows, f, act);
  } else {
    SiluMulKernel<false><<<Blocks(rows * f), kThreads, 0, stream>>>(gu, rows, f, act);
  }
  return cudaGetLastError();
}

}  // namespace moe::cuda
