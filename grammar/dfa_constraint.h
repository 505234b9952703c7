// DfaConstraint: the tokens a ByteDfa allows, over a TokenVocabulary: the
// `regex` and `choice` constraints, and the lexer-level masks of the
// grammar engine to come.
//
// A token is allowed in DFA state s when its bytes, fed from s, never reach
// a dead end (the automaton removed every state that cannot reach
// acceptance, so "not dead" means "can still complete"). The mask of a state
// is computed once (grammar/token_walk.h's WalkState) and cached: a state
// visited again costs a lookup.
// Special tokens are never allowed; the end of sequence is allowed exactly
// when Complete(state).
//
// Thread-safety: Mask caches; one thread at a time (a sequence's sampler).
#ifndef MOE_GRAMMAR_DFA_CONSTRAINT_H_
#define MOE_GRAMMAR_DFA_CONSTRAINT_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "grammar/byte_dfa.h"
#include "grammar/token_vocabulary.h"
#include "grammar/token_walk.h"

namespace moe::grammar {


class DfaConstraint {
 public:
  // Both must outlive the constraint.
  DfaConstraint(const ByteDfa* dfa, const TokenVocabulary* vocab) : dfa_(dfa), vocab_(vocab) {}

  int32_t start() const { return dfa_->start(); }
  // The allowed tokens in `state` (cached).
  const TokenMask& Mask(int32_t state);
  // The state after `token`, or -1 when the token is not allowed there.
  int32_t Advance(int32_t state, int32_t token) const;
  bool Complete(int32_t state) const { return dfa_->accepting(state); }
  // Trie nodes visited by the masks computed so far (for benchmarks).
  int64_t nodes_visited() const { return nodes_visited_; }

 private:
  const ByteDfa* dfa_;
  const TokenVocabulary* vocab_;
  absl::flat_hash_map<int32_t, TokenMask> masks_;
  WalkMemo memo_;
  int64_t nodes_visited_ = 0;
};

}  // namespace moe::grammar

#endif  // MOE_GRAMMAR_DFA_CONSTRAINT_H_
