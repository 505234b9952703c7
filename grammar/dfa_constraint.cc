#include "grammar/dfa_constraint.h"

#include <utility>

namespace moe::grammar {

const TokenMask& DfaConstraint::Mask(int32_t state) {
  auto it = masks_.find(state);
  if (it != masks_.end()) return it->second;
  TokenMask mask((static_cast<size_t>(vocab_->size()) + 63) / 64, 0);
  const std::vector<TokenVocabulary::Node>& trie = vocab_->trie();
  // Depth-first over the trie, each node with the DFA state its bytes lead to.
  std::vector<std::pair<uint32_t, int32_t>> stack = {{0u, state}};
  while (!stack.empty()) {
    const auto [node, s] = stack.back();
    stack.pop_back();
    for (uint32_t c = trie[node].first_child; c != 0; c = trie[c].next_sibling) {
      ++nodes_visited_;
      const int32_t t = dfa_->Next(s, trie[c].byte);
      if (t < 0) continue;
      if (trie[c].token >= 0) {
        mask[trie[c].token >> 6] |= uint64_t{1} << (trie[c].token & 63);
        if (trie[c].more_tokens != 0) {
          for (int32_t id : vocab_->MoreTokens(trie[c])) mask[id >> 6] |= uint64_t{1} << (id & 63);
        }
      }
      if (trie[c].first_child != 0) stack.emplace_back(c, t);
    }
  }
  return masks_.emplace(state, std::move(mask)).first->second;
}

int32_t DfaConstraint::Advance(int32_t state, int32_t token) const {
  if (token < 0 || token >= vocab_->size() || vocab_->special(token) || vocab_->bytes(token).empty()) return -1;
  int32_t s = state;
  for (char c : vocab_->bytes(token)) {
    s = dfa_->Next(s, static_cast<uint8_t>(c));
    if (s < 0) return -1;
  }
  return s;
}

}  // namespace moe::grammar
