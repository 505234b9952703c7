// libFuzzer target: ParseSafetensorsHeader must return a Status, never crash,
// hang or allocate without bound, on any bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<moe::SafetensorsHeader> header =
      moe::ParseSafetensorsHeader(bytes, "fuzz.safetensors");
  if (header.ok()) {
    // Every accepted entry must lie inside the data section.
    const uint64_t data_size = size - 8 - header->header_size;
    for (const auto& [name, e] : header->tensors) {
      if (e.begin > e.end || e.end > data_size) __builtin_trap();
      if (static_cast<uint64_t>(e.NumElements()) * moe::DTypeSize(e.dtype) != e.end - e.begin) {
        __builtin_trap();
      }
    }
  }
  return 0;
}
