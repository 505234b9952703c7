#include "core/gzip_file.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace moe {

absl::StatusOr<std::string> ReadMaybeGzippedFile(const std::string& path) {
  constexpr size_t kMaxBytes = size_t{1} << 30;
  constexpr unsigned kChunk = 1u << 20;
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) {
    int err = errno;
    std::string message = absl::StrCat(path, ": cannot open: ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(message) : absl::InternalError(message);
  }
  gzbuffer(f, 1u << 17);
  std::string out;
  std::string error;
  for (;;) {
    size_t old = out.size();
    out.resize(old + kChunk);
    int n = gzread(f, out.data() + old, kChunk);
    out.resize(old + static_cast<size_t>(n < 0 ? 0 : n));
    int errnum = Z_OK;
    const char* msg = gzerror(f, &errnum);
    if (n < 0 || (errnum != Z_OK && errnum != Z_BUF_ERROR)) {
      error = errnum == Z_ERRNO ? std::strerror(errno) : msg;
      break;
    }
    if (n == 0) {
      // End of input; Z_BUF_ERROR here means the gzip stream stopped early.
      if (errnum == Z_BUF_ERROR) error = "truncated gzip stream";
      break;
    }
    if (out.size() > kMaxBytes) {
      error = "larger than 1 GiB uncompressed";
      break;
    }
  }
  gzclose(f);
  if (!error.empty()) return absl::DataLossError(absl::StrCat(path, ": cannot read: ", error));
  return out;
}

}  // namespace moe
