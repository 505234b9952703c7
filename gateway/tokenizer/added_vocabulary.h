// The added tokens of tokenizer.json ("added_tokens"): special and ordinary
// tokens that are matched in the text before the model sees it, honouring
// normalized, lstrip, rstrip and single_word like the reference.
//
// Thread-safety: immutable after Build.
#ifndef MOE_GATEWAY_TOKENIZER_ADDED_VOCABULARY_H_
#define MOE_GATEWAY_TOKENIZER_ADDED_VOCABULARY_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json_fwd.hpp"

namespace moe::tokenizer {

class Normalizer;

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// A byte range of some text, either plain text (id < 0) or an added token.
struct TextSegment {
  size_t begin = 0, end = 0;
  int32_t id = -1;
};

class AddedVocabulary {
 public:
  // `j` is the "added_tokens" array (or null); `normalizer` (may be null)
  // rewrites the contents of tokens with normalized=true, which are then
  // looked for in normalized text.
  static absl::StatusOr<AddedVocabulary> FromJson(const nlohmann::json& j, const Normalizer* normalizer,
                                                  absl::string_view where);

  // Splits `text` into plain segments and added tokens. `normalized_text`
  // selects the tokens matched after normalization (normalized=true) or
  // before it (normalized=false); special tokens are matched only when
  // `allow_special`. Non-empty segments only, covering the text in order
  // (the whitespace that lstrip/rstrip take is inside the token's segment).
  void Split(absl::string_view text, bool normalized_text, bool allow_special,
             std::vector<TextSegment>* segments) const;

  const AddedToken* FindById(int32_t id) const;
  std::optional<int32_t> FindByContent(absl::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // A byte trie over the token contents of one matching set; finds at each
  // position the longest token (the reference's leftmost-longest search).
  struct Trie {
    struct Node {
      absl::flat_hash_map<unsigned char, int32_t> next;
      int32_t token = -1;  // index into tokens_
    };
    std::vector<Node> nodes{1};
    std::array<bool, 256> first_byte{};
    void Insert(absl::string_view key, int32_t token);
    // Index of the longest token at text[pos..] and its length, or -1.
    int32_t LongestAt(absl::string_view text, size_t pos, size_t* length) const;
  };
  // [normalized_text][allow_special]
  Trie& trie(bool normalized_text, bool allow_special) { return tries_[normalized_text][allow_special]; }
  const Trie& trie(bool normalized_text, bool allow_special) const { return tries_[normalized_text][allow_special]; }

  std::vector<AddedToken> tokens_;
  absl::flat_hash_map<int32_t, size_t> by_id_;
  absl::flat_hash_map<std::string, size_t> by_content_;
  Trie tries_[2][2];
};

}  // namespace moe::tokenizer

#endif  // MOE_GATEWAY_TOKENIZER_ADDED_VOCABULARY_H_
