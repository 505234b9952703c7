#include "grammar/dfa_constraint.h"

#include <utility>

#include "grammar/token_walk.h"

namespace moe::grammar {

const TokenMask& DfaConstraint::Mask(int32_t state) {
  auto it = masks_.find(state);
  if (it != masks_.end()) return it->second;
  StateWalk walk = WalkState(*dfa_, state, *vocab_, /*boundaries=*/false, &memo_);
  nodes_visited_ += walk.nodes_visited;
  TokenMask mask = std::move(walk.inside);
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
