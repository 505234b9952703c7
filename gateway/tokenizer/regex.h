// A compiled PCRE2 regular expression in UTF + UCP mode (so \s, \w, \d and
// \p{..} are Unicode-aware, as in the Oniguruma regexes of the reference
// tokenizers), JIT-compiled when the platform allows.
//
// Thread-safety: immutable after Compile; FindAll may be called from any
// number of threads at once (match state is per call).
#ifndef MOE_GATEWAY_TOKENIZER_REGEX_H_
#define MOE_GATEWAY_TOKENIZER_REGEX_H_

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json_fwd.hpp"

struct pcre2_real_code_8;

namespace moe::tokenizer {

class Regex {
 public:
  // INVALID_ARGUMENT with PCRE2's message and the offset in the pattern.
  static absl::StatusOr<std::unique_ptr<Regex>> Compile(absl::string_view pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the byte ranges [begin, end) of all non-overlapping matches in
  // `text` (valid UTF-8), left to right. After an empty match the search
  // moves on by one character.
  absl::Status FindAll(absl::string_view text, std::vector<std::pair<size_t, size_t>>* matches) const;

  const std::string& pattern() const { return pattern_; }

 private:
  Regex(pcre2_real_code_8* code, std::string pattern) : code_(code), pattern_(std::move(pattern)) {}
  pcre2_real_code_8* code_;
  std::string pattern_;
};

// The "pattern" of a Split pre-tokenizer or a Replace normalizer/decoder:
// {"String": "literal"} or {"Regex": "pcre"}. Copyable; immutable.
class MatchPattern {
 public:
  // `j` is the pattern object; `where` names it in errors.
  static absl::StatusOr<MatchPattern> FromJson(const nlohmann::json& j, absl::string_view where);
  static MatchPattern Literal(std::string literal);

  // Non-overlapping matches, left to right (see Regex::FindAll).
  absl::Status FindAll(absl::string_view text, std::vector<std::pair<size_t, size_t>>* matches) const;
  // `text` with every match replaced by `content` (taken literally).
  absl::StatusOr<std::string> ReplaceAll(absl::string_view text, absl::string_view content) const;

  bool is_literal() const { return regex_ == nullptr; }
  const std::string& literal() const { return literal_; }

 private:
  std::string literal_;
  std::shared_ptr<const Regex> regex_;
};

}  // namespace moe::tokenizer

#endif  // MOE_GATEWAY_TOKENIZER_REGEX_H_
