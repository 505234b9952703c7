// GBNF: the grammar dialect of the `grammar` constraint (llama.cpp's GBNF,
// which users already write), parsed into a Grammar (grammar/grammar.h).
//
//   # a comment, to the end of the line
//   root   ::= greeting " " name ("!" | ".")?
//   greeting ::= "hello" | "hi"
//   name   ::= [A-Z] [a-z]{1,20}
//
// A rule is `name ::= alternatives`; names are letters, digits, '-' and '_'.
// A rule runs until the next `name ::=` (newlines are spaces). The start
// rule is `root`. Items: "literal" (escapes \n \r \t \\ \" \' \[ \] \xHH
// \uHHHH \UHHHHHHHH), character classes [a-z0-9_] and [^...] (same escapes;
// code points, any UTF-8), `.` (any character), a rule name, ( group ).
// Quantifiers: * + ? {n} {n,} {n,m}. Repetition counts are kept as
// counters, never unrolled (up to GbnfOptions::max_repeat).
//
// Errors are INVALID_ARGUMENT naming the line and column: an undefined or
// duplicate rule, no `root`, a bad escape or quantifier, a rule that derives
// no string, limits (text size, rules, nesting depth, counts).
#ifndef MOE_GRAMMAR_GBNF_H_
#define MOE_GRAMMAR_GBNF_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grammar/grammar.h"

namespace moe::grammar {

struct GbnfOptions {
  int64_t max_bytes = 64 << 10;
  int max_rules = 1000;
  int max_depth = 64;  // nested groups
  int max_repeat = 1 << 16;
  GrammarLimits limits;
};

absl::StatusOr<std::unique_ptr<Grammar>> ParseGbnf(absl::string_view text, const GbnfOptions& options = {});

}  // namespace moe::grammar

#endif  // MOE_GRAMMAR_GBNF_H_
