// Grammar: a context-free grammar whose terminals are regular expressions
// (grammar/byte_dfa.h), the form every structured-output constraint but a
// plain regex or choice compiles to (JSON Schema, "any JSON", GBNF).
//
// Built from Exprs: literals, regexes, references to nonterminals,
// sequences, alternations and counted repetition. Lowering keeps the
// parser's work small: every subexpression without a reference to a
// recursive nonterminal is merged into one regular terminal (a whole flat
// JSON record can be one automaton), and a repetition whose body is not
// regular, or whose count is large, stays a counter on the symbol
// (X{min,max}) that the parser counts, never unrolled.
//
// Limits (GrammarLimits): rules, terminals, symbols, automaton states,
// repetition counts and compile time; INVALID_ARGUMENT naming the limit.
// Immutable once built.
#ifndef MOE_GRAMMAR_GRAMMAR_H_
#define MOE_GRAMMAR_GRAMMAR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grammar/byte_dfa.h"

namespace moe::grammar {

struct GrammarLimits {
  int max_nonterminals = 10000;
  int max_rules = 20000;
  int max_terminals = 10000;
  int64_t max_symbols = 200000;          // right-hand-side symbols, all rules
  int64_t max_terminal_states = 400000;  // automaton states, all terminals
  int max_repeat = 1 << 20;              // a counter's bound
  int max_unrolled_repeat = 32;          // larger regular repetitions become counters
  absl::Duration max_compile_time = absl::Seconds(2);
  ByteDfaOptions dfa;
};

class Expr {
 public:
  enum class Kind { kRegex, kRef, kSeq, kAlt, kRepeat };
  static Expr Regex(std::string pattern);
  // A regex whose characters and classes never match the `excluded` code
  // point ranges (its own terminal: never merged with its neighbours).
  static Expr RegexExcluding(std::string pattern, std::vector<std::pair<uint32_t, uint32_t>> excluded);
  static Expr Literal(absl::string_view text);
  static Expr Empty() { return Regex(""); }
  static Expr Ref(int32_t nonterminal);
  static Expr Seq(std::vector<Expr> items);
  static Expr Alt(std::vector<Expr> items);
  // max < 0: unbounded.
  static Expr Repeat(Expr body, int64_t min, int64_t max);

  Kind kind() const { return kind_; }
  const std::string& regex() const { return regex_; }
  const std::vector<std::pair<uint32_t, uint32_t>>& excluded() const { return excluded_; }
  int32_t nonterminal() const { return nonterminal_; }
  const std::vector<Expr>& items() const { return items_; }
  int64_t min() const { return min_; }
  int64_t max() const { return max_; }

 private:
  Kind kind_ = Kind::kRegex;
  std::string regex_;
  std::vector<std::pair<uint32_t, uint32_t>> excluded_;
  int32_t nonterminal_ = -1;
  std::vector<Expr> items_;
  int64_t min_ = 1, max_ = 1;
};

// A symbol of a rule's right-hand side. Nonterminals may repeat: X{min,max}
// (max < 0: unbounded); terminals appear once.
struct GrammarSymbol {
  int32_t id = 0;
  bool terminal = false;
  int32_t min = 1, max = 1;
};

class Grammar {
 public:
  struct Rule {
    int32_t lhs;
    int32_t begin, end;  // into symbols()
  };
  // Rule 0 is the start rule (a fresh nonterminal 0 -> the start symbol).
  const std::vector<Rule>& rules() const { return rules_; }
  const std::vector<GrammarSymbol>& symbols() const { return symbols_; }
  const std::vector<int32_t>& rules_of(int32_t nonterminal) const { return rules_of_[nonterminal]; }
  bool nullable(int32_t nonterminal) const { return nullable_[nonterminal]; }
  const ByteDfa& terminal(int32_t t) const { return *terminals_[t]; }
  int32_t num_terminals() const { return static_cast<int32_t>(terminals_.size()); }
  int32_t num_nonterminals() const { return static_cast<int32_t>(rules_of_.size()); }
  // Whether the whole of `text` is in the language (tests).
  bool Matches(absl::string_view text) const;
  std::string DebugString() const;

 private:
  friend class GrammarBuilder;
  Grammar() = default;
  std::vector<std::unique_ptr<ByteDfa>> terminals_;
  std::vector<std::string> terminal_patterns_;
  std::vector<std::string> names_;
  std::vector<Rule> rules_;
  std::vector<GrammarSymbol> symbols_;
  std::vector<std::vector<int32_t>> rules_of_;
  std::vector<bool> nullable_;
};

class GrammarBuilder {
 public:
  explicit GrammarBuilder(GrammarLimits limits = {});
  // A fresh nonterminal (named for messages), defined later by Define.
  absl::StatusOr<int32_t> Add(std::string name);
  void Define(int32_t nonterminal, Expr e);
  // Whether the nonterminal has been defined.
  bool defined(int32_t nonterminal) const { return definitions_[nonterminal] != nullptr; }
  // INVALID_ARGUMENT when a nonterminal is undefined, derives no string,
  // or a limit is exceeded (`what` prefixes messages).
  absl::StatusOr<std::unique_ptr<Grammar>> Build(int32_t start, absl::string_view what);

 private:
  struct Lowering;
  GrammarLimits limits_;
  std::vector<std::string> names_;
  std::vector<std::unique_ptr<Expr>> definitions_;
};

}  // namespace moe::grammar

#endif  // MOE_GRAMMAR_GRAMMAR_H_
