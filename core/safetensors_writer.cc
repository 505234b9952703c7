// WriteSafetensors: one .safetensors file, written atomically (temp file in the
// same directory + rename), so a reader never sees a half-written checkpoint.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/dtype.h"
#include "core/safetensors.h"
#include "core/status_macros.h"
#include "nlohmann/json.hpp"

namespace moe {
namespace {

// A JSON string literal for `s` (escaped). Names must be valid UTF-8.
absl::StatusOr<std::string> JsonString(const std::string& s, const std::string& path,
                                       const char* what) {
  try {
    return nlohmann::json(s).dump();
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", what, " '", s, "' is not valid UTF-8: ", e.what()));
  }
}

absl::StatusOr<std::string> BuildHeader(const std::string& path,
                                        const std::vector<TensorToWrite>& tensors,
                                        const std::map<std::string, std::string>& metadata) {
  std::string header = "{";
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    if (t.name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": a tensor has an empty name"));
    }
    if (t.name == "__metadata__") {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": '__metadata__' is reserved and cannot name a tensor"));
    }
    if (!seen.insert(t.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor '", t.name, "' is given twice"));
    }
    // Product of the shape, refusing negative dimensions and overflow.
    uint64_t elements = 1;
    for (int64_t d : t.shape) {
      if (d < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": tensor '", t.name, "' has a negative dimension in shape [",
            absl::StrJoin(t.shape, ","), "]"));
      }
      if (d != 0 && elements > UINT64_MAX / static_cast<uint64_t>(d)) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": tensor '", t.name, "' shape [", absl::StrJoin(t.shape, ","),
            "] overflows"));
      }
      elements *= static_cast<uint64_t>(d);
    }
    const uint64_t elem_size = static_cast<uint64_t>(DTypeSize(t.dtype));
    if (elements > UINT64_MAX / elem_size || elements * elem_size != t.bytes.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": tensor '", t.name, "' has ", t.bytes.size(), " bytes, but shape [",
          absl::StrJoin(t.shape, ","), "] of ", std::string(DTypeName(t.dtype)), " needs ",
          elements, " x ", elem_size, " bytes"));
    }
    ASSIGN_OR_RETURN(std::string name, JsonString(t.name, path, "tensor name"));
    if (header.size() > 1) header += ",";
    absl::StrAppend(&header, name, ":{\"dtype\":\"", std::string(DTypeName(t.dtype)),
                    "\",\"shape\":[",
                    absl::StrJoin(t.shape, ","), "],\"data_offsets\":[", offset, ",",
                    offset + t.bytes.size(), "]}");
    offset += t.bytes.size();
  }
  if (!metadata.empty()) {
    if (header.size() > 1) header += ",";
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      ASSIGN_OR_RETURN(std::string k, JsonString(key, path, "metadata key"));
      ASSIGN_OR_RETURN(std::string v, JsonString(value, path, "metadata value"));
      absl::StrAppend(&header, first ? "" : ",", k, ":", v);
      first = false;
    }
    header += "}";
  }
  header += "}";
  // The data section starts 8-byte aligned: pad the JSON with spaces.
  header.append((8 - header.size() % 8) % 8, ' ');
  return header;
}

absl::Status ErrnoError(const std::string& what, const std::string& path, int err) {
  return absl::InternalError(absl::StrCat(path, ": ", what, ": ", std::strerror(err)));
}

// Writes all of `data` to `fd`, retrying short writes.
absl::Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write failed", path, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  ASSIGN_OR_RETURN(std::string header, BuildHeader(path, tensors, metadata));

  std::string tmp = path + ".tmp.XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return ErrnoError("cannot create a temporary file next to it", path, errno);

  auto write_body = [&]() -> absl::Status {
    char prefix[8];
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) prefix[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    RETURN_IF_ERROR(WriteAll(fd, std::string_view(prefix, 8), path));
    RETURN_IF_ERROR(WriteAll(fd, header, path));
    for (const TensorToWrite& t : tensors) RETURN_IF_ERROR(WriteAll(fd, t.bytes, path));
    if (::fsync(fd) != 0) return ErrnoError("fsync failed", path, errno);
    return absl::OkStatus();
  };
  absl::Status status = write_body();
  // mkstemp creates 0600; a checkpoint is meant to be readable by others.
  // (Reading the umask would mean changing it, which races with other threads.)
  if (status.ok() && ::fchmod(fd, 0644) != 0) status = ErrnoError("fchmod failed", path, errno);
  if (::close(fd) != 0 && status.ok()) status = ErrnoError("close failed", path, errno);
  if (status.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    status = ErrnoError("cannot rename the temporary file into place", path, errno);
  }
  if (!status.ok()) ::unlink(tmp.c_str());
  return status;
}

}  // namespace moe
