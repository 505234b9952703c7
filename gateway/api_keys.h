// ApiKeys: the keys a client must present, loaded once from --api-keys-file
// (one key per line; blank lines and lines starting with '#' are ignored;
// surrounding whitespace is trimmed). Both the gRPC service (metadata
// `authorization: Bearer KEY`) and the HTTP API (the Authorization header)
// check a request with Check; health and metrics endpoints stay open.
//
// Thread-safety: immutable after Load; Check may run concurrently.
#ifndef MOE_GATEWAY_API_KEYS_H_
#define MOE_GATEWAY_API_KEYS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace moe {

class ApiKeys {
 public:
  // INVALID_ARGUMENT naming the file when it cannot be read or holds no key.
  static absl::StatusOr<ApiKeys> Load(const std::string& path);
  // From the file's text; `origin` names it in errors.
  static absl::StatusOr<ApiKeys> Parse(absl::string_view text, absl::string_view origin);

  // OK when `authorization` (the header's value, e.g. "Bearer sk-1") carries
  // one of the keys; UNAUTHENTICATED saying what is wrong otherwise. The
  // message never repeats the presented key.
  absl::Status Check(absl::string_view authorization) const;

  size_t size() const { return keys_.size(); }

 private:
  std::vector<std::string> keys_;
};

}  // namespace moe

#endif  // MOE_GATEWAY_API_KEYS_H_
