// Pre-tokenizers of tokenizer.json ("pre_tokenizer"): Split (PCRE2 regex or
// literal; Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous;
// invert), ByteLevel, Metaspace, Digits, Whitespace, WhitespaceSplit,
// Punctuation and Sequence. They cut normalized text into the pieces that the
// model tokenizes one by one.
//
// Thread-safety: immutable after construction.
#ifndef MOE_GATEWAY_TOKENIZER_PRE_TOKENIZER_H_
#define MOE_GATEWAY_TOKENIZER_PRE_TOKENIZER_H_

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json_fwd.hpp"

namespace moe::tokenizer {

struct PreToken {
  std::string text;
  // The piece begins at the very start of the input (Metaspace's
  // prepend_scheme "first" prepends only there).
  bool at_input_start = false;
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Cuts `piece` at `matches` (sorted, non-overlapping byte ranges of its text)
// the way the reference's NormalizedString::split does, and appends the
// non-empty results to *out.
void SplitPiece(const PreToken& piece, const std::vector<std::pair<size_t, size_t>>& matches,
                SplitBehavior behavior, bool invert, std::vector<PreToken>* out);

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces *pieces by their pre-tokenization.
  virtual absl::Status PreTokenize(std::vector<PreToken>* pieces) const = 0;
};

// The pre-tokenizer described by `j`; nullptr for JSON null.
absl::StatusOr<std::unique_ptr<PreTokenizer>> MakePreTokenizer(const nlohmann::json& j, absl::string_view where);

}  // namespace moe::tokenizer

#endif  // MOE_GATEWAY_TOKENIZER_PRE_TOKENIZER_H_
