#include "grammar/constraint.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "grammar/earley.h"
#include "grammar/gbnf.h"
#include "grammar/json_schema.h"

namespace moe::grammar {

struct ConstraintCompiler::Compiled {
  std::unique_ptr<ByteDfa> dfa;
  std::unique_ptr<DfaConstraint> masks;     // regex, choice
  std::unique_ptr<GrammarMatcher> matcher;  // everything else
};

namespace {

class DfaTokenConstraint : public TokenConstraint {
 public:
  DfaTokenConstraint(std::shared_ptr<void> keep, DfaConstraint* masks)
      : keep_(std::move(keep)), masks_(masks), state_(masks->start()) {}
  const TokenMask& Mask() override { return masks_->Mask(state_); }
  bool Complete() const override { return masks_->Complete(state_); }
  absl::Status Advance(int32_t token) override {
    const int32_t next = masks_->Advance(state_, token);
    if (next < 0) return absl::FailedPreconditionError(absl::StrCat("token ", token, " is not allowed here"));
    state_ = next;
    return absl::OkStatus();
  }
  bool Exhausted() override {
    if (!Complete()) return false;
    for (uint64_t w : Mask()) {
      if (w != 0) return false;
    }
    return true;
  }

 private:
  std::shared_ptr<void> keep_;  // the compiled automaton, shared with the cache
  DfaConstraint* masks_;
  int32_t state_;
};

class GrammarTokenConstraint : public TokenConstraint {
 public:
  GrammarTokenConstraint(std::shared_ptr<void> keep, GrammarMatcher* matcher)
      : keep_(std::move(keep)), parser_(matcher) {}
  const TokenMask& Mask() override {
    if (mask_ == nullptr) mask_ = parser_.Mask();
    return *mask_;
  }
  bool Complete() const override { return parser_.Complete(); }
  absl::Status Advance(int32_t token) override {
    absl::Status st = parser_.Advance(token);
    if (st.ok()) mask_.reset();
    return st;
  }
  bool Exhausted() override {
    if (!Complete()) return false;
    for (uint64_t w : Mask()) {
      if (w != 0) return false;
    }
    return true;
  }

 private:
  std::shared_ptr<void> keep_;  // the compiled grammar, shared with the cache
  EarleyParser parser_;
  std::shared_ptr<const TokenMask> mask_;
};

}  // namespace

ConstraintCompiler::~ConstraintCompiler() = default;

absl::StatusOr<std::shared_ptr<ConstraintCompiler::Compiled>> ConstraintCompiler::Build(const ConstraintSpec& spec) {
  auto compiled = std::make_shared<Compiled>();
  if (spec.kind == ConstraintSpec::Kind::kRegex || spec.kind == ConstraintSpec::Kind::kChoice) {
    const bool regex = spec.kind == ConstraintSpec::Kind::kRegex;
    absl::StatusOr<std::unique_ptr<ByteDfa>> dfa = regex ? ByteDfa::FromRegex(spec.regex) : ByteDfa::FromChoices(spec.choices);
    if (!dfa.ok()) return absl::InvalidArgumentError(absl::StrCat(regex ? "regex" : "choice", ": ", dfa.status().message()));
    compiled->dfa = std::move(*dfa);
    compiled->masks = std::make_unique<DfaConstraint>(compiled->dfa.get(), vocab_);
    return compiled;
  }
  JsonSchemaOptions json;
  json.flexible_whitespace = spec.max_whitespace > 0;
  json.max_whitespace = spec.max_whitespace > 0 ? spec.max_whitespace : 1;
  absl::StatusOr<std::unique_ptr<Grammar>> grammar;
  if (spec.kind == ConstraintSpec::Kind::kJsonSchema) {
    grammar = JsonSchemaToGrammar(spec.json_schema, json);
  } else if (spec.kind == ConstraintSpec::Kind::kJsonObject) {
    grammar = JsonObjectGrammar(json);
  } else {
    grammar = ParseGbnf(spec.grammar);
  }
  if (!grammar.ok()) return grammar.status();  // names the kind and the place
  compiled->matcher = std::make_unique<GrammarMatcher>(std::move(*grammar), vocab_);
  return compiled;
}

absl::StatusOr<std::unique_ptr<TokenConstraint>> ConstraintCompiler::Compile(const ConstraintSpec& spec) {
  std::string key;
  switch (spec.kind) {
    case ConstraintSpec::Kind::kNone:
      return absl::InvalidArgumentError("constraint: none given");
    case ConstraintSpec::Kind::kRegex:
      key = "r" + spec.regex;
      break;
    case ConstraintSpec::Kind::kJsonSchema:
      key = absl::StrCat("j", spec.max_whitespace, ":", spec.json_schema);
      break;
    case ConstraintSpec::Kind::kJsonObject:
      key = absl::StrCat("o", spec.max_whitespace);
      break;
    case ConstraintSpec::Kind::kGrammar:
      key = "g" + spec.grammar;
      break;
    case ConstraintSpec::Kind::kChoice:
      if (spec.choices.empty() || static_cast<int>(spec.choices.size()) > kMaxChoices) {
        return absl::InvalidArgumentError(
            absl::StrCat("choice: ", spec.choices.size(), " options, must be 1 to ", kMaxChoices));
      }
      key = "c";
      for (size_t i = 0; i < spec.choices.size(); ++i) {
        if (spec.choices[i].empty() || static_cast<int64_t>(spec.choices[i].size()) > kMaxChoiceBytes) {
          return absl::InvalidArgumentError(absl::StrCat("choice[", i, "]: ", spec.choices[i].size(),
                                                         " bytes, must be 1 to ", kMaxChoiceBytes));
        }
        absl::StrAppend(&key, spec.choices[i].size(), ":", spec.choices[i]);
      }
      break;
  }
  if (spec.max_whitespace < 0 || spec.max_whitespace > kMaxWhitespace) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_whitespace: ", spec.max_whitespace, ", must be 0 (compact) to ", kMaxWhitespace));
  }
  std::shared_ptr<Compiled> compiled;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = lru_.begin(); it != lru_.end(); ++it) {
      if (it->first == key) {
        compiled = it->second;
        lru_.splice(lru_.begin(), lru_, it);
        break;
      }
    }
  }
  if (compiled == nullptr) {
    ASSIGN_OR_RETURN(compiled, Build(spec));
    absl::MutexLock lock(&mu_);
    lru_.emplace_front(key, compiled);
    while (lru_.size() > cache_entries_) lru_.pop_back();
  }
  if (compiled->matcher != nullptr) {
    GrammarMatcher* matcher = compiled->matcher.get();
    return std::unique_ptr<TokenConstraint>(new GrammarTokenConstraint(std::move(compiled), matcher));
  }
  DfaConstraint* masks = compiled->masks.get();
  return std::unique_ptr<TokenConstraint>(new DfaTokenConstraint(std::move(compiled), masks));
}

}  // namespace moe::grammar
