#include "grammar/constraint.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "grammar/json_schema.h"

namespace moe::grammar {

struct ConstraintCompiler::Compiled {
  std::unique_ptr<ByteDfa> dfa;
  std::unique_ptr<DfaConstraint> masks;
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

}  // namespace

ConstraintCompiler::~ConstraintCompiler() = default;

absl::StatusOr<std::unique_ptr<TokenConstraint>> ConstraintCompiler::Compile(const ConstraintSpec& spec) {
  std::string key;
  switch (spec.kind) {
    case ConstraintSpec::Kind::kNone:
      return absl::InvalidArgumentError("constraint: none given");
    case ConstraintSpec::Kind::kRegex:
      key = "r" + spec.regex;
      break;
    case ConstraintSpec::Kind::kJsonSchema:
      key = "j" + spec.json_schema;
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
    absl::StatusOr<std::unique_ptr<ByteDfa>> dfa;
    const char* what = "regex";
    if (spec.kind == ConstraintSpec::Kind::kRegex) {
      dfa = ByteDfa::FromRegex(spec.regex);
    } else if (spec.kind == ConstraintSpec::Kind::kChoice) {
      what = "choice";
      dfa = ByteDfa::FromChoices(spec.choices);
    } else {
      absl::StatusOr<std::string> regex = JsonSchemaToRegex(spec.json_schema);
      if (!regex.ok()) return regex.status();  // names the schema path
      what = "json_schema";
      dfa = ByteDfa::FromRegex(*regex);
    }
    if (!dfa.ok()) return absl::InvalidArgumentError(absl::StrCat(what, ": ", dfa.status().message()));
    compiled = std::make_shared<Compiled>();
    compiled->dfa = std::move(*dfa);
    compiled->masks = std::make_unique<DfaConstraint>(compiled->dfa.get(), vocab_);
    absl::MutexLock lock(&mu_);
    lru_.emplace_front(key, compiled);
    while (lru_.size() > cache_entries_) lru_.pop_back();
  }
  DfaConstraint* masks = compiled->masks.get();
  return std::unique_ptr<TokenConstraint>(new DfaTokenConstraint(std::move(compiled), masks));
}

}  // namespace moe::grammar
