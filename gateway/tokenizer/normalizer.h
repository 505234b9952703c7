// Normalizers of tokenizer.json ("normalizer"): NFC, NFD, NFKC, NFKD,
// Lowercase, Prepend, Replace (string or regex), Strip, StripAccents and
// Sequence. They rewrite a piece of input text before pre-tokenization.
//
// Thread-safety: immutable after construction.
#ifndef MOE_GATEWAY_TOKENIZER_NORMALIZER_H_
#define MOE_GATEWAY_TOKENIZER_NORMALIZER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json_fwd.hpp"

namespace moe::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Rewrites *text (valid UTF-8) in place.
  virtual absl::Status Normalize(std::string* text) const = 0;
};

// The normalizer described by `j`; nullptr for JSON null (no normalizer).
// `where` names the component in errors ("normalizer", "normalizer.normalizers[2]").
absl::StatusOr<std::unique_ptr<Normalizer>> MakeNormalizer(const nlohmann::json& j, absl::string_view where);

}  // namespace moe::tokenizer

#endif  // MOE_GATEWAY_TOKENIZER_NORMALIZER_H_
