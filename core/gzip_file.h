// Reading files that may be gzip-compressed (tokenizer.json.gz in tests and
// model directories).
#ifndef MOE_CORE_GZIP_FILE_H_
#define MOE_CORE_GZIP_FILE_H_

#include <string>

#include "absl/status/statusor.h"

namespace moe {

// The whole content of `path`, gunzipped when it is gzip-compressed (zlib
// passes plain files through). Errors name the path: NOT_FOUND when it does
// not exist, DATA_LOSS for a damaged stream. Refuses files that decompress
// to more than 1 GiB.
absl::StatusOr<std::string> ReadMaybeGzippedFile(const std::string& path);

}  // namespace moe

#endif  // MOE_CORE_GZIP_FILE_H_
