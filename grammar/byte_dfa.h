// ByteDfa: a regular expression compiled to a deterministic automaton over
// bytes (UTF-8): the lexer layer of constrained decoding, and on its own the
// `regex` and `choice` constraints.
//
// Dialect (ECMAScript-like, always anchored at both ends; a leading ^ and a
// trailing $ are accepted and mean nothing more): literals (any UTF-8 text),
// `.` (any character but \n and \r), classes `[a-z\d_]` and `[^...]`,
// escapes \d \D \w \W \s \S \n \r \t \f \v \0 \xHH \uHHHH \u{H...} and
// escaped punctuation, groups `( )` and `(?: )`, alternation `|`,
// quantifiers * + ? {n} {n,} {n,m} (a lazy `?` suffix is accepted: it does
// not change the language). Not supported (INVALID_ARGUMENT naming it and
// its offset): backreferences, lookaround, named groups, flags, \b.
//
// Characters are code points; classes compile to UTF-8 byte sequences, so
// the automaton only accepts valid UTF-8 and a multi-byte character may be
// split across tokens. States that cannot reach acceptance are removed:
// Next() is -1 as soon as a byte makes a match impossible.
//
// Limits (INVALID_ARGUMENT when exceeded): pattern length, repetition counts,
// automaton sizes (options below). Immutable after construction.
#ifndef MOE_GRAMMAR_BYTE_DFA_H_
#define MOE_GRAMMAR_BYTE_DFA_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace moe::grammar {

struct ByteDfaOptions {
  int64_t max_pattern_bytes = 64 << 10;
  int max_repeat = 1000;          // the largest n or m of {n,m}
  int64_t max_nfa_states = 1 << 20;
  int max_dfa_states = 20000;
  // Code point ranges (inclusive) taken out of every character and class:
  // e.g. a JSON string's content cannot hold a raw quote, backslash or
  // control character.
  std::vector<std::pair<uint32_t, uint32_t>> excluded;
};

class ByteDfa {
 public:
  static absl::StatusOr<std::unique_ptr<ByteDfa>> FromRegex(absl::string_view pattern,
                                                            const ByteDfaOptions& options = {});
  // A pattern matching exactly one of `choices` (each taken literally).
  // INVALID_ARGUMENT for no choice.
  static absl::StatusOr<std::unique_ptr<ByteDfa>> FromChoices(const std::vector<std::string>& choices,
                                                              const ByteDfaOptions& options = {});

  int32_t start() const { return 0; }
  // The state after `byte`, or -1 when no match can follow.
  int32_t Next(int32_t state, uint8_t byte) const { return next_[static_cast<size_t>(state) * 256 + byte]; }
  bool accepting(int32_t state) const { return accepting_[state]; }
  int32_t num_states() const { return static_cast<int32_t>(accepting_.size()); }
  // Whether the whole of `bytes` matches.
  bool Matches(absl::string_view bytes) const;

 private:
  ByteDfa() = default;
  friend class DfaBuilder;
  std::vector<int32_t> next_;  // [state * 256 + byte]
  std::vector<bool> accepting_;
};

// `text` with every character that is special in the dialect escaped.
std::string EscapeRegex(absl::string_view text);

}  // namespace moe::grammar

#endif  // MOE_GRAMMAR_BYTE_DFA_H_
