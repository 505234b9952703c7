// Element types of checkpoint tensors and conversions to f32.
#ifndef MOE_CORE_DTYPE_H_
#define MOE_CORE_DTYPE_H_

#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace moe {

enum class DType : uint8_t { kF32, kF16, kBF16 };

// Bytes per element.
inline constexpr int DTypeSize(DType t) { return t == DType::kF32 ? 4 : 2; }

// The safetensors spelling ("F32", "F16", "BF16").
std::string_view DTypeName(DType t);
// Parses a safetensors dtype string; nullopt for anything we do not support.
std::optional<DType> ParseDType(std::string_view name);

inline float Bf16ToF32(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Round-to-nearest-even f32 -> bf16 (NaN stays NaN).
inline uint16_t F32ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);

}  // namespace moe

#endif  // MOE_CORE_DTYPE_H_
