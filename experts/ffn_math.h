// Element math of the expert FFN shared by the CPU and CUDA paths: the same
// function, compiled for the host (g++, tests) and for the device (nvcc), so
// the CPU tests check what the GPU kernels compute element by element.
#ifndef MOE_EXPERTS_FFN_MATH_H_
#define MOE_EXPERTS_FFN_MATH_H_

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define MOE_HD __host__ __device__
#else
#define MOE_HD
#endif

namespace moe {

// SiLU(gate) * up, in f32: gate / (1 + e^-gate) * up.
MOE_HD inline float SiluMul(float gate, float up) { return (gate / (1.0f + expf(-gate))) * up; }

// f32 -> bf16, round to nearest even; NaN stays a (quiet) NaN.
MOE_HD inline uint16_t F32ToBf16Rne(float f) {
  uint32_t u;
#if defined(__CUDA_ARCH__)
  u = __float_as_uint(f);
#else
  std::memcpy(&u, &f, sizeof(u));
#endif
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

MOE_HD inline float Bf16ToF32Exact(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
#endif
}

}  // namespace moe

#endif  // MOE_EXPERTS_FFN_MATH_H_
