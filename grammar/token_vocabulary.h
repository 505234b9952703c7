// TokenVocabulary: what every token id of a tokenizer writes, as raw bytes,
// and a byte trie over them: the alphabet constrained decoding works in.
//
// Constraints (grammar/byte_dfa.h, ...) accept or reject byte strings, so a
// token's fate depends only on its bytes: "\",", "\"}", half of a multi-byte
// UTF-8 character, a byte-fallback token <0xE2>, all are just bytes. Token
// bytes come from the tokenizer.json's decoder:
//   ByteLevel (GPT-2, Llama 3, Qwen, DeepSeek): each character of the token
//     string stands for one byte (the bytes_to_unicode table);
//   Sequence[Replace "▁"->" ", ByteFallback, Fuse, Strip] (Llama 2, Mistral):
//     "<0xNN>" is byte NN, otherwise "▁" becomes a space and the rest is UTF-8
//     (the leading space that Strip removes at the very start of a text is
//     kept: a token's bytes do not depend on its position).
// Other decoders are refused (UNIMPLEMENTED naming the decoder). Special
// tokens (added tokens marked special) have no bytes a constraint can match:
// they are never allowed by a constraint's mask; end-of-sequence is decided
// separately (a constraint says when it is complete).
//
// Immutable after construction (but for the derived-data cache, which locks);
// shared by every request of a model.
#ifndef MOE_GRAMMAR_TOKEN_VOCABULARY_H_
#define MOE_GRAMMAR_TOKEN_VOCABULARY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace moe::grammar {

// A set of token ids: one bit per id, 64 per word.
using TokenMask = std::vector<uint64_t>;
inline bool Allowed(const TokenMask& m, int32_t id) { return (m[id >> 6] >> (id & 63)) & 1; }

class TokenVocabulary {
 public:
  // From the text of a tokenizer.json. INVALID_ARGUMENT naming what is
  // malformed; UNIMPLEMENTED for a decoder whose token bytes are not known.
  static absl::StatusOr<std::unique_ptr<TokenVocabulary>> FromTokenizerJson(absl::string_view json,
                                                                           absl::string_view source);
  // From DIR/tokenizer.json or DIR/tokenizer.json.gz. NOT_FOUND when neither exists.
  static absl::StatusOr<std::unique_ptr<TokenVocabulary>> FromDirectory(const std::string& dir);
  // From explicit byte strings (tests, tools); `special[i]` marks tokens no
  // constraint may emit.
  static std::unique_ptr<TokenVocabulary> FromBytes(std::vector<std::string> bytes, std::vector<bool> special);

  int32_t size() const { return static_cast<int32_t>(bytes_.size()); }
  const std::string& bytes(int32_t id) const { return bytes_[id]; }
  bool special(int32_t id) const { return special_[id]; }

  // The trie: node 0 is the root; a node's children are the tokens' next
  // bytes, in increasing byte order.
  struct Node {
    uint32_t first_child = 0;   // 0: none (the root is never a child)
    uint32_t next_sibling = 0;  // 0: none
    uint8_t byte = 0;
    int32_t token = -1;         // the token whose bytes end here (-1: none)
    uint32_t more_tokens = 0;   // index + 1 into same_bytes_ when several do
  };
  const std::vector<Node>& trie() const { return trie_; }
  // Nodes are numbered in depth-first pre-order: node n's subtree is the
  // range [n, subtree_end(n)), its depth (bytes from the root) depth(n).
  uint32_t subtree_end(uint32_t n) const { return subtree_end_[n]; }
  int32_t depth(uint32_t n) const { return depth_[n]; }
  uint32_t parent(uint32_t n) const { return parent_[n]; }
  // The bytes from the root to node n.
  std::string NodeBytes(uint32_t n) const;
  // Data derived from the vocabulary by other modules (grammar/token_walk.h's
  // character-class indexes), built by `build` on first use under a lock and
  // shared by every constraint over this vocabulary. At most kMaxDerived
  // entries are kept; beyond that an entry not kept is built each time, or,
  // with `optional`, not at all (null: the caller does without).
  static constexpr int kMaxDerived = 48;
  std::shared_ptr<const void> Derived(const std::string& key,
                                      const std::function<std::shared_ptr<const void>()>& build,
                                      bool optional = false) const;
  // Other tokens with the same bytes as trie()[n].token (rare: added tokens
  // that repeat a vocabulary entry).
  const std::vector<int32_t>& MoreTokens(const Node& n) const { return same_bytes_[n.more_tokens - 1]; }

 private:
  TokenVocabulary() = default;
  void BuildTrie();

  std::vector<std::string> bytes_;
  std::vector<bool> special_;
  std::vector<Node> trie_;
  std::vector<uint32_t> subtree_end_, parent_;
  std::vector<int32_t> depth_;
  std::vector<std::vector<int32_t>> same_bytes_;
  mutable absl::Mutex derived_mu_;
  mutable absl::flat_hash_map<std::string, std::shared_ptr<const void>> derived_ ABSL_GUARDED_BY(derived_mu_);
};

}  // namespace moe::grammar

#endif  // MOE_GRAMMAR_TOKEN_VOCABULARY_H_
