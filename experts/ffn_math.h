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

// f32 -> IEEE f16, round to nearest even; overflow to infinity, NaN stays NaN
// (subnormals by exact scaling: 2^24 * |f| < 2^10 is an integer count of the
// smallest subnormal, rounded to nearest even by rintf).
MOE_HD inline uint16_t F32ToF16Rne(float f) {
  uint32_t u;
#if defined(__CUDA_ARCH__)
  u = __float_as_uint(f);
#else
  std::memcpy(&u, &f, sizeof(u));
#endif
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
  if (abs < 0x38800000u) return static_cast<uint16_t>(sign | static_cast<uint16_t>(rintf(fabsf(f) * 16777216.0f)));
  const uint32_t r = abs + 0xfffu + ((abs >> 13) & 1u);
  return static_cast<uint16_t>(sign | static_cast<uint16_t>((r - 0x38000000u) >> 13));
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
