// WalkState: what one automaton state decides for a whole vocabulary, the
// building block of every token mask (grammar/dfa_constraint.h per regex
// state, grammar/earley.h per lexer configuration).
//
// For a ByteDfa state s it gives the tokens whose bytes, fed from s, never
// reach a dead end ("inside": they keep the lexeme alive), and the trie nodes
// where the automaton first accepts along the way (a lexeme may end there,
// so what lies below depends on the parser).
//
// A plain walk visits every trie node the automaton keeps alive: for a state
// inside a JSON string, that is nearly all of a 150k-token vocabulary's
// 330k nodes (milliseconds). Most such states have a character class K
// they all move through the same way: every character of K goes from s to
// one state c1, from c1 to c2, ... (a loop when c1 = s: "any string
// character"; a counter when the c_j differ: "at most 8 characters"). The
// vocabulary keeps, per class K (built once, shared by every constraint: see
// TokenVocabulary::Derived), which tokens are made of K characters and how
// many, the trie nodes where K ends (a quote, a backslash, a byte K does not
// have) and the nodes at each character count. A state then costs a few
// mask ORs plus walks below those nodes only.
//
// The two ways give the same answer; tests compare them on every state of
// many automata over real vocabularies.
#ifndef MOE_GRAMMAR_TOKEN_WALK_H_
#define MOE_GRAMMAR_TOKEN_WALK_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "grammar/byte_dfa.h"
#include "grammar/token_vocabulary.h"

namespace moe::grammar {

struct StateWalk {
  TokenMask inside;
  // (trie node, automaton state there) where the automaton accepts for the
  // first time on the path from the root; only nodes with children. In
  // increasing node order.
  std::vector<std::pair<uint32_t, int32_t>> first_accepts;
  int64_t nodes_visited = 0;  // by plain walks (for benchmarks and tests)
  bool used_class_index = false;
};

// What walks learn about an automaton's states, kept by the automaton's
// user between walks (one per ByteDfa; one thread at a time).
struct WalkMemo {
  absl::flat_hash_map<int32_t, int32_t> multibyte_target;
};

// `boundaries`: also collect first_accepts (masks of a single regex need
// only `inside`). `memo`: may be null. `use_class_index`: false forces the
// plain walk (tests).
StateWalk WalkState(const ByteDfa& dfa, int32_t state, const TokenVocabulary& vocab, bool boundaries,
                    WalkMemo* memo = nullptr, bool use_class_index = true);

}  // namespace moe::grammar

#endif  // MOE_GRAMMAR_TOKEN_WALK_H_
