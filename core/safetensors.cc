#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"
#include "nlohmann/json.hpp"

namespace moe {
namespace {

using json = nlohmann::json;

// The safetensors reference implementation refuses headers above 100 MB.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;
// Valid headers nest 3 levels deep; anything far deeper is rejected before
// parsing so that hostile input cannot exhaust the stack or memory.
constexpr int kMaxJsonDepth = 16;

// absl::string_view is not std::string_view in this absl build.
absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string ShapeString(absl::Span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

absl::Status Invalid(absl::string_view file, absl::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat(file, ": ", msg));
}
absl::Status TensorError(absl::string_view file, absl::string_view tensor,
                         absl::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat(file, ": tensor '", tensor, "' ", msg));
}

// Maximum nesting depth of arrays/objects in `text`, ignoring brackets inside
// strings. Stops counting once past `limit`.
int JsonDepth(std::string_view text, int limit) {
  int depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (in_string) {
      if (ch == '\\') {
        ++i;
      } else if (ch == '"') {
        in_string = false;
      }
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      max_depth = std::max(max_depth, ++depth);
      if (max_depth > limit) break;
    } else if (ch == ']' || ch == '}') {
      --depth;
    }
  }
  return max_depth;
}

// A non-negative JSON integer, or nullopt.
std::optional<uint64_t> AsUnsigned(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) {
    const int64_t x = v.get<int64_t>();
    if (x >= 0) return static_cast<uint64_t>(x);
  }
  return std::nullopt;
}

absl::StatusOr<TensorEntry> ParseEntry(const std::string& name, const json& v,
                                       uint64_t data_size, absl::string_view file) {
  if (!v.is_object()) {
    return TensorError(file, name, absl::StrCat("entry must be a JSON object, got ", v.type_name()));
  }
  TensorEntry e;
  e.name = name;

  auto dtype_it = v.find("dtype");
  if (dtype_it == v.end() || !dtype_it->is_string()) {
    return TensorError(file, name, "has no string field 'dtype'");
  }
  const std::string& dtype_name = dtype_it->get_ref<const std::string&>();
  std::optional<DType> dtype = ParseDType(dtype_name);
  if (!dtype) {
    return TensorError(file, name,
                       absl::StrCat("has unsupported dtype '", dtype_name,
                                    "' (supported: BF16, F16, F32)"));
  }
  e.dtype = *dtype;

  auto shape_it = v.find("shape");
  if (shape_it == v.end() || !shape_it->is_array()) {
    return TensorError(file, name, "has no list field 'shape'");
  }
  // Element count, overflow-checked, as we go.
  uint64_t numel = 1;
  bool overflow = false;
  for (const json& d : *shape_it) {
    std::optional<uint64_t> dim = AsUnsigned(d);
    if (!dim || *dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return TensorError(file, name, "has a shape that is not a list of non-negative integers");
    }
    e.shape.push_back(static_cast<int64_t>(*dim));
    if (__builtin_mul_overflow(numel, *dim, &numel)) overflow = true;
  }
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(DTypeSize(e.dtype)), &nbytes)) {
    overflow = true;
  }

  auto off_it = v.find("data_offsets");
  std::optional<uint64_t> begin, end;
  if (off_it != v.end() && off_it->is_array() && off_it->size() == 2) {
    begin = AsUnsigned((*off_it)[0]);
    end = AsUnsigned((*off_it)[1]);
  }
  if (!begin || !end) {
    return TensorError(file, name, "has no field 'data_offsets' of two non-negative integers");
  }
  e.begin = *begin;
  e.end = *end;
  if (e.begin > e.end) {
    return TensorError(file, name,
                       absl::StrCat("has data_offsets [", e.begin, ",", e.end, "] with begin > end"));
  }
  if (e.end > data_size) {
    // Past the end of the data: most often a file cut short, hence DATA_LOSS.
    return absl::DataLossError(absl::StrCat(file, ": tensor '", name, "' has data_offsets [",
                                            e.begin, ",", e.end,
                                            "] out of range: the data section holds ", data_size,
                                            " bytes (file truncated?)"));
  }
  if (overflow || numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return TensorError(file, name,
                       absl::StrCat("has shape ", ShapeString(e.shape),
                                    " whose size overflows 64 bits"));
  }
  if (nbytes != e.end - e.begin) {
    return TensorError(
        file, name,
        absl::StrCat("has shape ", ShapeString(e.shape), " x ", AbslView(DTypeName(e.dtype)), " = ",
                     nbytes, " bytes, but data_offsets [", e.begin, ",", e.end, "] hold ",
                     e.end - e.begin, " bytes"));
  }
  return e;
}

absl::Status ParseMetadata(const json& v, absl::string_view file,
                           std::map<std::string, std::string>& out) {
  if (!v.is_object()) return Invalid(file, "'__metadata__' must be a JSON object");
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it.value().is_string()) {
      return Invalid(file, absl::StrCat("'__metadata__' value of '", it.key(),
                                        "' must be a string"));
    }
    out[it.key()] = it.value().get<std::string>();
  }
  return absl::OkStatus();
}

absl::Status CheckNoOverlap(const std::map<std::string, TensorEntry>& tensors,
                            absl::string_view file) {
  std::vector<const TensorEntry*> sorted;
  sorted.reserve(tensors.size());
  for (const auto& [name, e] : tensors) {
    if (e.end > e.begin) sorted.push_back(&e);  // empty tensors occupy no bytes
  }
  std::sort(sorted.begin(), sorted.end(), [](const TensorEntry* a, const TensorEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (size_t i = 1; i < sorted.size(); ++i) {
    const TensorEntry& prev = *sorted[i - 1];
    const TensorEntry& cur = *sorted[i];
    if (cur.begin < prev.end) {
      return Invalid(file, absl::StrCat("tensors '", prev.name, "' [", prev.begin, ",", prev.end,
                                        ") and '", cur.name, "' [", cur.begin, ",", cur.end,
                                        ") overlap"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open (missing?)"));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return ss.str();
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

int64_t TensorEntry::NumElements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // overflow excluded by ParseSafetensorsHeader
  return n;
}

absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(std::string_view file_bytes,
                                                         std::string_view file_name_std) {
  const absl::string_view file_name = AbslView(file_name_std);
  if (file_bytes.size() < 8) {
    return absl::DataLossError(absl::StrCat(file_name, ": truncated: ", file_bytes.size(),
                                            " bytes, shorter than the 8-byte header length"));
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(file_bytes[i]);
  const uint64_t rest = file_bytes.size() - 8;
  if (n > rest) {
    return absl::DataLossError(absl::StrCat(file_name, ": header length ", n,
                                            " runs past the end of the file (", rest,
                                            " bytes after the length prefix): truncated?"));
  }
  if (n > kMaxHeaderBytes) {
    return Invalid(file_name, absl::StrCat("header length ", n, " exceeds the limit of ",
                                           kMaxHeaderBytes, " bytes"));
  }
  const std::string_view text = file_bytes.substr(8, n);
  const uint64_t data_size = rest - n;

  if (JsonDepth(text, kMaxJsonDepth) > kMaxJsonDepth) {
    return Invalid(file_name, "invalid header: JSON nested too deeply");
  }
  json root;
  try {
    root = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    return Invalid(file_name, absl::StrCat("invalid header JSON: ", e.what()));
  }
  if (!root.is_object()) {
    return Invalid(file_name, absl::StrCat("header must be a JSON object, got ", root.type_name()));
  }

  SafetensorsHeader header;
  header.header_size = n;
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it.key() == "__metadata__") {
      RETURN_IF_ERROR(ParseMetadata(it.value(), file_name, header.metadata));
      continue;
    }
    ASSIGN_OR_RETURN(TensorEntry e, ParseEntry(it.key(), it.value(), data_size, file_name));
    header.tensors.emplace(it.key(), std::move(e));
  }
  RETURN_IF_ERROR(CheckNoOverlap(header.tensors, file_name));
  return header;
}

// --- SafetensorsFile ----------------------------------------------------------

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat(path, ": cannot open"));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return absl::ErrnoToStatus(err, absl::StrCat(path, ": cannot stat"));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  f->map_size_ = static_cast<size_t>(st.st_size);
  if (f->map_size_ > 0) {
    // Read-only private mapping: pages come in lazily as tensors are read.
    void* p = ::mmap(nullptr, f->map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return absl::ErrnoToStatus(err, absl::StrCat(path, ": mmap failed"));
    }
    f->map_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive

  const std::string_view bytes(reinterpret_cast<const char*>(f->map_), f->map_size_);
  ASSIGN_OR_RETURN(f->header_, ParseSafetensorsHeader(bytes, path));
  f->data_ = f->map_ + 8 + f->header_.header_size;
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(const_cast<uint8_t*>(map_), map_size_);
}

absl::StatusOr<TensorView> SafetensorsFile::Get(std::string_view name) const {
  auto it = header_.tensors.find(std::string(name));
  if (it == header_.tensors.end()) {
    return absl::NotFoundError(absl::StrCat(path_, ": no tensor '", AbslView(name), "'"));
  }
  TensorView v;
  v.entry = &it->second;
  v.data = data_ + it->second.begin;
  v.file = path_;
  return v;
}

// --- TensorStore ---------------------------------------------------------------

namespace {

// Reads DIR/model.safetensors.index.json: tensor name -> shard file name.
absl::StatusOr<std::map<std::string, std::string>> ReadWeightMap(const std::string& index_path) {
  ASSIGN_OR_RETURN(std::string text, ReadSmallFile(index_path));
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    return Invalid(index_path, absl::StrCat("invalid JSON: ", e.what()));
  }
  if (!root.is_object()) return Invalid(index_path, "must be a JSON object");
  auto wm = root.find("weight_map");
  if (wm == root.end() || !wm->is_object()) {
    return Invalid(index_path, "has no object field 'weight_map'");
  }
  std::map<std::string, std::string> out;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string()) {
      return Invalid(index_path, absl::StrCat("weight_map entry of tensor '", it.key(),
                                              "' must be a file name string"));
    }
    const std::string& shard = it.value().get_ref<const std::string&>();
    // Shards live in the checkpoint directory; refuse paths that leave it.
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..") {
      return Invalid(index_path, absl::StrCat("weight_map names shard '", shard, "' for tensor '",
                                              it.key(), "': not a plain file name"));
    }
    out[it.key()] = shard;
  }
  if (out.empty()) return Invalid(index_path, "weight_map is empty");
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TensorStore>> TensorStore::Open(const std::string& model_dir) {
  auto store = std::make_unique<TensorStore>();
  store->dir_ = model_dir;
  const std::string index_path = model_dir + "/model.safetensors.index.json";
  const std::string single_path = model_dir + "/model.safetensors";

  if (!FileExists(index_path)) {
    if (!FileExists(single_path)) {
      return absl::NotFoundError(absl::StrCat(
          model_dir, ": no model.safetensors or model.safetensors.index.json in the directory"));
    }
    ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(single_path));
    for (const auto& [name, e] : file->header().tensors) store->index_[name] = file.get();
    store->files_.push_back(std::move(file));
    return store;
  }

  ASSIGN_OR_RETURN(auto weight_map, ReadWeightMap(index_path));
  std::set<std::string> shard_names;
  for (const auto& [tensor, shard] : weight_map) shard_names.insert(shard);

  std::map<std::string, const SafetensorsFile*> by_shard;
  for (const std::string& shard : shard_names) {
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
        SafetensorsFile::Open(model_dir + "/" + shard);
    if (!file.ok()) {
      return absl::Status(file.status().code(),
                          absl::StrCat(index_path, ": cannot open shard '", shard,
                                       "' named in weight_map: ", file.status().message()));
    }
    by_shard[shard] = file->get();
    store->files_.push_back(*std::move(file));
  }

  // Every tensor the index names must be in its shard ...
  for (const auto& [tensor, shard] : weight_map) {
    const SafetensorsFile* f = by_shard[shard];
    if (f->header().tensors.count(tensor) == 0) {
      return Invalid(index_path, absl::StrCat("tensor '", tensor, "' is mapped to shard '", shard,
                                              "', but ", f->path(), " does not hold it"));
    }
    store->index_[tensor] = f;
  }
  // ... and every tensor of a shard must be mapped to that shard.
  for (const auto& file : store->files_) {
    for (const auto& [tensor, e] : file->header().tensors) {
      auto it = weight_map.find(tensor);
      if (it == weight_map.end()) {
        return Invalid(file->path(), absl::StrCat("tensor '", tensor, "' is not listed in ",
                                                  index_path));
      }
      const SafetensorsFile* owner = by_shard[it->second];
      if (owner != file.get()) {
        return Invalid(file->path(),
                       absl::StrCat("tensor '", tensor, "' is in two shards: ", file->path(),
                                    " and ", owner->path(), " (the index names ", it->second,
                                    ")"));
      }
    }
  }
  return store;
}

absl::StatusOr<TensorView> TensorStore::Get(std::string_view name) const {
  auto it = index_.find(name);
  if (it == index_.end()) {
    return absl::NotFoundError(
        absl::StrCat(dir_, ": no tensor '", AbslView(name), "' in the checkpoint"));
  }
  return it->second->Get(name);
}

absl::StatusOr<TensorView> TensorStore::Get(std::string_view name,
                                            absl::Span<const int64_t> shape) const {
  ASSIGN_OR_RETURN(TensorView v, Get(name));
  if (absl::Span<const int64_t>(v.shape()) != shape) {
    return absl::InvalidArgumentError(absl::StrCat(AbslView(v.file), ": tensor '", AbslView(name),
                                                   "' has shape ",
                                                   ShapeString(v.shape()), ", config wants ",
                                                   ShapeString(shape)));
  }
  return v;
}

bool TensorStore::Contains(std::string_view name) const { return index_.count(name) != 0; }

const SafetensorsFile* TensorStore::FileOf(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

std::vector<std::string> TensorStore::Names() const {
  std::vector<std::string> names;
  names.reserve(index_.size());
  for (const auto& [name, f] : index_) names.push_back(name);
  return names;
}

}  // namespace moe
