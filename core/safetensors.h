// Safetensors checkpoints: header parsing, memory-mapped files, and sharded
// checkpoints (model.safetensors.index.json). Access is lazy and per tensor:
// files are mmap'ed read-only, so a process only pages in the bytes of the
// tensors it reads.
//
// Thread-safety: after Open, all const methods may be called from any thread.
#ifndef MOE_CORE_SAFETENSORS_H_
#define MOE_CORE_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/dtype.h"

namespace moe {

// One tensor entry of a safetensors header.
struct TensorEntry {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets relative to the start of the data section
  uint64_t end = 0;

  int64_t NumElements() const;
};

struct SafetensorsHeader {
  uint64_t header_size = 0;  // N, the JSON length after the 8-byte prefix
  std::map<std::string, TensorEntry> tensors;
  std::map<std::string, std::string> metadata;
};

// Parses and validates the header of a whole safetensors file held in
// `file_bytes`: length prefix inside the file, valid JSON object, known dtypes,
// non-negative shapes, offsets inside the data section, no overlaps,
// shape x dtype == byte length. `file_name` prefixes every error. Never crashes
// on any input (fuzzed).
absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(std::string_view file_bytes,
                                                         std::string_view file_name);

// A view of one tensor's bytes inside a mapped file.
struct TensorView {
  const TensorEntry* entry = nullptr;
  const uint8_t* data = nullptr;  // entry->end - entry->begin bytes
  std::string_view file;          // the file it lives in (for messages)

  DType dtype() const { return entry->dtype; }
  const std::vector<int64_t>& shape() const { return entry->shape; }
  size_t nbytes() const { return entry->end - entry->begin; }
};

// One mmap'ed .safetensors file.
class SafetensorsFile {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const SafetensorsHeader& header() const { return header_; }
  // NOT_FOUND naming the tensor and the file when absent.
  absl::StatusOr<TensorView> Get(std::string_view name) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  const uint8_t* map_ = nullptr;
  size_t map_size_ = 0;
  const uint8_t* data_ = nullptr;  // start of the data section
  SafetensorsHeader header_;
};

// All tensors of a checkpoint directory: model.safetensors, or the shards named
// by model.safetensors.index.json. Shards are opened (header only) at Open;
// tensor bytes are paged in when read.
class TensorStore {
 public:
  static absl::StatusOr<std::unique_ptr<TensorStore>> Open(const std::string& model_dir);

  // The tensor `name`; NOT_FOUND names the tensor. With `shape` given, a
  // different shape is INVALID_ARGUMENT naming the tensor, both shapes and the file.
  absl::StatusOr<TensorView> Get(std::string_view name) const;
  absl::StatusOr<TensorView> Get(std::string_view name, absl::Span<const int64_t> shape) const;
  bool Contains(std::string_view name) const;
  // The directory given to Open (for messages).
  const std::string& dir() const { return dir_; }
  // The file holding `name`, or nullptr.
  const SafetensorsFile* FileOf(std::string_view name) const;

  // Every tensor name, sorted.
  std::vector<std::string> Names() const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*, std::less<>> index_;
};

// Writes a single safetensors file (used by `moe-model make-tiny` and tests).
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::string bytes;  // little-endian element data
};
absl::Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

}  // namespace moe

#endif  // MOE_CORE_SAFETENSORS_H_
