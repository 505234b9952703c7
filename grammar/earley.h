// Earley parsing of a Grammar (grammar/grammar.h) byte by byte, and the
// token masks it allows.
//
// EarleyParser holds one sequence's chart: one Earley set per byte. Items
// sitting before a terminal carry that terminal's automaton state, so a
// terminal is scanned byte by byte and may end at any accepting state (no
// longest-match rule: the parse is exact, ambiguity included). Nonterminals
// with a repetition count X{min,max} carry the count in the item (a counter,
// never unrolled; unbounded counts saturate at min).
//
// Masks (GrammarMatcher::Mask) keep both the median and the tail low:
//  1. An Earley set's mask is cached under its canonical form (its items,
//     with every origin replaced by the canonical id of the origin set), so
//     a context seen before, in this sequence or another, is a lookup.
//  2. Otherwise the set's lexer configuration (the distinct terminal
//     automaton states its items are in) decides every token that stays
//     inside the current lexemes: those are cached per configuration, shared
//     by all contexts, combined from each automaton state's WalkState
//     (grammar/token_walk.h; cached per state, and fast for the states of
//     character classes through the vocabulary's class indexes). The walks
//     also give the trie nodes where a lexeme can end (a "boundary"); only
//     the tokens below those nodes depend on the parser, and only they are
//     walked through the Earley sets.
// Caches are bounded (GrammarMatcher's budget); beyond it they are dropped
// and refilled.
//
// Thread-safety: a GrammarMatcher is shared by the sequences of a compiled
// constraint and locks internally; an EarleyParser is used by one thread at a
// time.
#ifndef MOE_GRAMMAR_EARLEY_H_
#define MOE_GRAMMAR_EARLEY_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "grammar/dfa_constraint.h"
#include "grammar/grammar.h"
#include "grammar/token_vocabulary.h"
#include "grammar/token_walk.h"

namespace moe::grammar {

// Items in one Earley set beyond this make the step fail (a grammar too
// ambiguous to follow in bounded time).
inline constexpr int64_t kMaxItemsPerSet = 1 << 16;

struct EarleyItem {
  int32_t rule;
  int32_t dot;
  int32_t count;   // completions of the repeated nonterminal at dot
  int32_t origin;  // the set the rule started in
  int32_t lex;     // the terminal's automaton state when dot is before a terminal, else 0
  bool operator==(const EarleyItem& o) const {
    return rule == o.rule && dot == o.dot && count == o.count && origin == o.origin && lex == o.lex;
  }
};

// The chart: Earley sets, each a range of items.
struct EarleyChart {
  std::vector<EarleyItem> items;
  std::vector<uint32_t> begin;  // set i is items[begin[i], begin[i+1]) (the last one: to the end)
  int32_t size() const { return static_cast<int32_t>(begin.size()); }
  uint32_t end(int32_t set) const { return set + 1 < size() ? begin[set + 1] : static_cast<uint32_t>(items.size()); }
  void Pop() {
    items.resize(begin.back());
    begin.pop_back();
  }
};

// Set 0 of a fresh chart.
void EarleyStart(const Grammar& g, EarleyChart* chart);
// Appends the set after `byte` to the chart; false (and nothing appended)
// when the byte cannot follow.
bool EarleyScan(const Grammar& g, EarleyChart* chart, uint8_t byte);
// The chart's text so far is a sentence of the grammar.
bool EarleyComplete(const Grammar& g, const EarleyChart& chart);

class GrammarMatcher {
 public:
  // `vocab` must outlive the matcher. `cache_bytes` bounds its mask caches.
  GrammarMatcher(std::unique_ptr<const Grammar> grammar, const TokenVocabulary* vocab, int64_t cache_bytes = 32 << 20);
  ~GrammarMatcher();

  const Grammar& grammar() const { return *grammar_; }
  const TokenVocabulary& vocabulary() const { return *vocab_; }

  // The tokens allowed after the chart's last set. `canon` memoizes the
  // chart's canonical set ids (owned by the caller, one per chart).
  std::shared_ptr<const TokenMask> Mask(EarleyChart* chart, std::vector<int32_t>* canon, uint64_t* generation);

  struct Stats {
    int64_t mask_hits = 0, lexer_hits = 0, lexer_walks = 0, boundary_nodes = 0, nodes_walked = 0;
  };
  Stats stats();

 private:
  struct LexerEntry;
  int32_t CanonicalId(const EarleyChart& chart, std::vector<int32_t>* canon) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const LexerEntry& Lexer(const std::vector<int32_t>& pairs) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const StateWalk& PairWalk(int32_t terminal, int32_t state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WalkBelow(EarleyChart* chart, uint32_t node, TokenMask* mask) const;
  void MaybeDropCaches() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::unique_ptr<const Grammar> grammar_;
  const TokenVocabulary* vocab_;
  const int64_t cache_bytes_;
  absl::Mutex mu_;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t cached_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::vector<int32_t>, int32_t> canonical_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int32_t, std::shared_ptr<const TokenMask>> masks_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::vector<int32_t>, std::unique_ptr<LexerEntry>> lexers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::pair<int32_t, int32_t>, std::unique_ptr<StateWalk>> pair_walks_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int32_t, WalkMemo> walk_memos_ ABSL_GUARDED_BY(mu_);  // per terminal
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

// One sequence's parse.
class EarleyParser {
 public:
  explicit EarleyParser(GrammarMatcher* matcher);
  // Consumes the token's bytes; FAILED_PRECONDITION (state unchanged) when
  // they cannot follow.
  absl::Status Advance(int32_t token);
  // Consumes bytes; false (state unchanged) when they cannot follow.
  bool AdvanceBytes(absl::string_view bytes);
  bool Complete() const { return EarleyComplete(matcher_->grammar(), chart_); }
  std::shared_ptr<const TokenMask> Mask() { return matcher_->Mask(&chart_, &canon_, &generation_); }

 private:
  GrammarMatcher* matcher_;
  EarleyChart chart_;
  std::vector<int32_t> canon_;
  uint64_t generation_ = 0;
};

}  // namespace moe::grammar

#endif  // MOE_GRAMMAR_EARLEY_H_
