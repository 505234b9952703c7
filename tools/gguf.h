// GGUF (version 3), the file format of llama.cpp: a writer for exporting our
// checkpoints, and a bounded reader (tests, inspection).
//
// Layout: "GGUF", version, tensor count, metadata count; metadata as
// (key, typed value); tensor infos as (name, dims with the fastest-varying
// first, ggml type, offset); padding to the alignment (general.alignment,
// default 32); the tensor data, each tensor aligned. All little-endian.
//
// ExportGguf writes a Mixtral-layout checkpoint as llama.cpp's "llama"
// architecture with stacked experts: bf16 weights exactly as stored (the q
// and k projections' rows reordered into llama.cpp's rotary layout), norms
// in f32, and the byte-level BPE tokenizer of tokenizer.json.
#ifndef MOE_TOOLS_GGUF_H_
#define MOE_TOOLS_GGUF_H_

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace moe::gguf {

// ggml tensor types used here.
enum class TensorType : uint32_t { kF32 = 0, kF16 = 1, kBF16 = 30 };
// GGUF metadata value types.
enum class ValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

// A metadata value: scalars, strings, and arrays of one of those.
using Value = std::variant<uint32_t, int32_t, float, bool, std::string, uint64_t, std::vector<std::string>,
                           std::vector<int32_t>, std::vector<float>>;

struct Tensor {
  std::string name;
  std::vector<uint64_t> dims;  // ggml order: dims[0] varies fastest
  TensorType type = TensorType::kF32;
  std::string data;            // the raw bytes
};

struct File {
  uint32_t version = 3;
  std::vector<std::pair<std::string, Value>> metadata;  // in file order
  std::vector<Tensor> tensors;                          // in file order
  const Value* Find(const std::string& key) const;
  const Tensor* FindTensor(const std::string& name) const;
};

// Writes `file` (tensor data sizes must match dims and type).
absl::Status Write(const File& file, const std::string& path);

// Bounds on what Read accepts (INVALID_ARGUMENT naming the field beyond them).
struct ReadLimits {
  uint64_t max_tensors = 1 << 16;
  uint64_t max_metadata = 1 << 16;
  uint64_t max_array = 1 << 24;
  uint64_t max_string = 1 << 20;
};
absl::StatusOr<File> Read(const std::string& path, const ReadLimits& limits = {});

// The Mixtral-layout checkpoint in `model_dir` (config.json,
// model.safetensors, tokenizer.json) as a GGUF file. UNIMPLEMENTED for other
// families or tokenizers, naming them.
// `f32_weights`: the bf16 weights widened to f32 (exactly), for a reference
// where llama.cpp computes in f32 throughout (with bf16 weights its CPU
// kernels round the activations to bf16 too).
absl::Status ExportGguf(const std::string& model_dir, const std::string& out_path, bool f32_weights = false);

// The row order llama.cpp's rotary embedding expects for a q or k
// projection of `heads` heads: new row h*d + 2i + j is old row h*d + j*d/2 + i.
int64_t RotaryRowSource(int64_t new_row, int64_t head_dim);

}  // namespace moe::gguf

#endif  // MOE_TOOLS_GGUF_H_
