// What the sampler sees of a constraint (structured output): per sequence,
// the tokens allowed next, whether the output is complete (end of sequence
// allowed), and the token chosen. ConstraintCompiler turns a request's
// ConstraintSpec into one, compiling each distinct spec once (cached by
// content) over the model's TokenVocabulary.
//
// Kinds: a regular expression (grammar/byte_dfa.h's dialect) and a choice
// among literal strings (one automaton, masks cached per state:
// grammar/dfa_constraint.h); a JSON Schema (grammar/json_schema.h), any JSON
// object, and a GBNF grammar (grammar/gbnf.h), all compiled to a Grammar
// and parsed by grammar/earley.h.
//
// Thread-safety: ConstraintCompiler::Compile from any thread; a
// TokenConstraint (and the masks its compiled form caches) from the engine
// thread only.
#ifndef MOE_GRAMMAR_CONSTRAINT_H_
#define MOE_GRAMMAR_CONSTRAINT_H_

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grammar/byte_dfa.h"
#include "grammar/dfa_constraint.h"
#include "grammar/token_vocabulary.h"

namespace moe::grammar {

struct ConstraintSpec {
  enum class Kind { kNone, kRegex, kChoice, kJsonSchema, kJsonObject, kGrammar };
  Kind kind = Kind::kNone;
  std::string regex;                 // kRegex
  std::string json_schema;           // kJsonSchema: the schema as JSON text (grammar/json_schema.h)
  std::vector<std::string> choices;  // kChoice
  std::string grammar;               // kGrammar: GBNF text (grammar/gbnf.h)
  // kJsonSchema, kJsonObject: 0 for compact JSON, else flexible whitespace
  // of up to this many bytes per gap (1 to kMaxWhitespace).
  int max_whitespace = 0;
  bool none() const { return kind == Kind::kNone; }
};

// Bounds on a spec (INVALID_ARGUMENT beyond them, naming the field).
inline constexpr int kMaxChoices = 1024;
inline constexpr int64_t kMaxChoiceBytes = 4096;
inline constexpr int kMaxWhitespace = 128;

class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // The tokens allowed next (never special tokens: see Complete).
  virtual const TokenMask& Mask() = 0;
  // The output so far is complete: the end of sequence is allowed.
  virtual bool Complete() const = 0;
  // Records `token` (one Mask allowed). FAILED_PRECONDITION otherwise.
  virtual absl::Status Advance(int32_t token) = 0;
  // Nothing more is allowed (Complete, and the mask is empty): the output
  // must end here.
  virtual bool Exhausted() = 0;
};

class ConstraintCompiler {
 public:
  // `vocab` must outlive the compiler; `cache_entries` distinct specs are kept.
  explicit ConstraintCompiler(const TokenVocabulary* vocab, size_t cache_entries = 64)
      : vocab_(vocab), cache_entries_(cache_entries) {}
  ~ConstraintCompiler();

  // A fresh constraint for one sequence. INVALID_ARGUMENT naming the field
  // and the problem (a bad pattern, too many choices, ...).
  absl::StatusOr<std::unique_ptr<TokenConstraint>> Compile(const ConstraintSpec& spec);
  const TokenVocabulary& vocabulary() const { return *vocab_; }

 private:
  struct Compiled;
  absl::StatusOr<std::shared_ptr<Compiled>> Build(const ConstraintSpec& spec);
  const TokenVocabulary* vocab_;
  const size_t cache_entries_;
  absl::Mutex mu_;
  // Most recently used first.
  std::list<std::pair<std::string, std::shared_ptr<Compiled>>> lru_ ABSL_GUARDED_BY(mu_);
};

}  // namespace moe::grammar

#endif  // MOE_GRAMMAR_CONSTRAINT_H_
