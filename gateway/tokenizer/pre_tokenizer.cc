#include "gateway/tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/status_macros.h"
#include "gateway/tokenizer/json_util.h"
#include "gateway/tokenizer/regex.h"
#include "gateway/tokenizer/unicode.h"

namespace moe::tokenizer {
namespace {

using Matches = std::vector<std::pair<size_t, size_t>>;

// Every code point for which `pred` holds is one match.
Matches FindChars(absl::string_view text, const std::function<bool(char32_t)>& pred) {
  Matches m;
  for (size_t i = 0; i < text.size();) {
    const size_t start = i;
    if (pred(NextCodepoint(text, &i))) m.emplace_back(start, i);
  }
  return m;
}

absl::StatusOr<SplitBehavior> ParseBehavior(const Json& j, absl::string_view key, SplitBehavior fallback,
                                            absl::string_view where) {
  if (FindField(j, key) == nullptr) return fallback;
  ASSIGN_OR_RETURN(const std::string name, GetString(j, key, where));
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  return absl::InvalidArgumentError(absl::StrCat(JsonPath(where, key), ": unknown split behavior '", name, "'"));
}

// Applies `split` (which finds the matches of one piece) to every piece.
absl::Status SplitAll(std::vector<PreToken>* pieces, SplitBehavior behavior, bool invert,
                      const std::function<absl::Status(absl::string_view, Matches*)>& find) {
  std::vector<PreToken> out;
  out.reserve(pieces->size());
  Matches matches;
  for (const PreToken& piece : *pieces) {
    matches.clear();
    RETURN_IF_ERROR(find(piece.text, &matches));
    SplitPiece(piece, matches, behavior, invert, &out);
  }
  *pieces = std::move(out);
  return absl::OkStatus();
}

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(MatchPattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  absl::Status PreTokenize(std::vector<PreToken>* pieces) const override {
    return SplitAll(pieces, behavior_, invert_,
                    [this](absl::string_view text, Matches* m) { return pattern_.FindAll(text, m); });
  }

 private:
  MatchPattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

class CharClassPreTokenizer : public PreTokenizer {
 public:
  CharClassPreTokenizer(std::function<bool(char32_t)> pred, SplitBehavior behavior)
      : pred_(std::move(pred)), behavior_(behavior) {}
  absl::Status PreTokenize(std::vector<PreToken>* pieces) const override {
    return SplitAll(pieces, behavior_, /*invert=*/false, [this](absl::string_view text, Matches* m) {
      *m = FindChars(text, pred_);
      return absl::OkStatus();
    });
  }

 private:
  std::function<bool(char32_t)> pred_;
  SplitBehavior behavior_;
};

// The reference's Whitespace pre-tokenizer: keeps the matches of \w+|[^\w\s]+.
class WhitespacePreTokenizer : public PreTokenizer {
 public:
  explicit WhitespacePreTokenizer(std::shared_ptr<const Regex> re) : re_(std::move(re)) {}
  absl::Status PreTokenize(std::vector<PreToken>* pieces) const override {
    return SplitAll(pieces, SplitBehavior::kRemoved, /*invert=*/true,
                    [this](absl::string_view text, Matches* m) { return re_->FindAll(text, m); });
  }

 private:
  std::shared_ptr<const Regex> re_;
};

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::shared_ptr<const Regex> re)
      : add_prefix_space_(add_prefix_space), re_(std::move(re)) {}
  absl::Status PreTokenize(std::vector<PreToken>* pieces) const override {
    if (add_prefix_space_) {
      for (PreToken& p : *pieces) {
        if (!p.text.empty() && p.text[0] != ' ') p.text = absl::StrCat(" ", p.text);
      }
    }
    if (re_ != nullptr) {
      RETURN_IF_ERROR(SplitAll(pieces, SplitBehavior::kIsolated, /*invert=*/false,
                               [this](absl::string_view text, Matches* m) { return re_->FindAll(text, m); }));
    }
    for (PreToken& p : *pieces) {
      std::string mapped;  // sized exactly by AppendByteLevel: short words stay inline
      AppendByteLevel(p.text, &mapped);
      p.text = std::move(mapped);
    }
    return absl::OkStatus();
  }

 private:
  bool add_prefix_space_;
  std::shared_ptr<const Regex> re_;  // null: use_regex false
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  absl::Status PreTokenize(std::vector<PreToken>* pieces) const override {
    for (PreToken& p : *pieces) {
      p.text = absl::StrReplaceAll(p.text, {{" ", replacement_}});
      const bool prepend = scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && p.at_input_start);
      if (prepend && !absl::StartsWith(p.text, replacement_)) p.text = absl::StrCat(replacement_, p.text);
    }
    if (!split_) return absl::OkStatus();
    const MatchPattern delimiter = MatchPattern::Literal(replacement_);
    return SplitAll(pieces, SplitBehavior::kMergedWithNext, /*invert=*/false,
                    [&delimiter](absl::string_view text, Matches* m) { return delimiter.FindAll(text, m); });
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  absl::Status PreTokenize(std::vector<PreToken>* pieces) const override {
    for (const auto& p : parts_) RETURN_IF_ERROR(p->PreTokenize(pieces));
    return absl::OkStatus();
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

absl::StatusOr<std::shared_ptr<const Regex>> SharedRegex(absl::string_view pattern) {
  ASSIGN_OR_RETURN(std::unique_ptr<Regex> re, Regex::Compile(pattern));
  return std::shared_ptr<const Regex>(std::move(re));
}

constexpr absl::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// A single character given as a JSON string ("replacement", "delimiter").
absl::StatusOr<std::string> GetChar(const Json& j, absl::string_view key, absl::string_view fallback,
                                    absl::string_view where) {
  ASSIGN_OR_RETURN(std::string s, GetStringOr(j, key, fallback, where));
  RETURN_IF_ERROR(ValidateUtf8(s, JsonPath(where, key)));
  if (CodepointCount(s) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(JsonPath(where, key), " must be one character, got '", s, "'"));
  }
  return s;
}

}  // namespace

void SplitPiece(const PreToken& piece, const Matches& matches, SplitBehavior behavior, bool invert,
                std::vector<PreToken>* out) {
  struct Event {
    size_t begin, end;
    bool is_match;
  };
  std::vector<Event> events;
  events.reserve(matches.size() * 2 + 1);
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    if (prev < b) events.push_back({prev, b, invert});
    events.push_back({b, e, !invert});
    prev = e;
  }
  if (prev < piece.text.size()) events.push_back({prev, piece.text.size(), invert});

  std::vector<std::pair<size_t, size_t>> kept;
  kept.reserve(events.size());
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Event& ev : events) kept.emplace_back(ev.begin, ev.end);
      break;
    case SplitBehavior::kRemoved:
      for (const Event& ev : events) {
        if (!ev.is_match) kept.emplace_back(ev.begin, ev.end);
      }
      break;
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Event& ev : events) {
        if (ev.is_match && !previous_match && !kept.empty()) {
          kept.back().second = ev.end;
        } else {
          kept.emplace_back(ev.begin, ev.end);
        }
        previous_match = ev.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = events.rbegin(); it != events.rend(); ++it) {
        if (it->is_match && !previous_match && !kept.empty()) {
          kept.back().first = it->begin;
        } else {
          kept.emplace_back(it->begin, it->end);
        }
        previous_match = it->is_match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    }
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const Event& ev : events) {
        if (ev.is_match == previous_match && !kept.empty()) {
          kept.back().second = ev.end;
        } else {
          kept.emplace_back(ev.begin, ev.end);
        }
        previous_match = ev.is_match;
      }
      break;
    }
  }
  for (const auto& [b, e] : kept) {
    if (b == e) continue;
    out->push_back({piece.text.substr(b, e - b), piece.at_input_start && b == 0});
  }
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> MakePreTokenizer(const Json& j, absl::string_view where) {
  if (j.is_null()) return nullptr;
  ASSIGN_OR_RETURN(const std::string type, ComponentType(j, where));
  if (type == "Split") {
    const Json* pattern = FindField(j, "pattern");
    if (pattern == nullptr) return absl::InvalidArgumentError(absl::StrCat(where, ".pattern is missing"));
    ASSIGN_OR_RETURN(MatchPattern p, MatchPattern::FromJson(*pattern, JsonPath(where, "pattern")));
    ASSIGN_OR_RETURN(const SplitBehavior behavior, ParseBehavior(j, "behavior", SplitBehavior::kIsolated, where));
    ASSIGN_OR_RETURN(const bool invert, GetBoolOr(j, "invert", false, where));
    return std::make_unique<SplitPreTokenizer>(std::move(p), behavior, invert);
  }
  if (type == "ByteLevel") {
    ASSIGN_OR_RETURN(const bool add_prefix_space, GetBoolOr(j, "add_prefix_space", true, where));
    ASSIGN_OR_RETURN(const bool use_regex, GetBoolOr(j, "use_regex", true, where));
    std::shared_ptr<const Regex> re;
    if (use_regex) {
      ASSIGN_OR_RETURN(re, SharedRegex(kGpt2Pattern));
    }
    return std::make_unique<ByteLevelPreTokenizer>(add_prefix_space, std::move(re));
  }
  if (type == "Metaspace") {
    ASSIGN_OR_RETURN(std::string replacement, GetChar(j, "replacement", "\xE2\x96\x81", where));
    PrependScheme scheme = PrependScheme::kAlways;
    if (FindField(j, "prepend_scheme") != nullptr) {
      ASSIGN_OR_RETURN(const std::string s, GetString(j, "prepend_scheme", where));
      if (s == "always") {
        scheme = PrependScheme::kAlways;
      } else if (s == "first") {
        scheme = PrependScheme::kFirst;
      } else if (s == "never") {
        scheme = PrependScheme::kNever;
      } else {
        return absl::InvalidArgumentError(absl::StrCat(where, ".prepend_scheme: unknown value '", s, "'"));
      }
    } else {
      ASSIGN_OR_RETURN(const bool add_prefix_space, GetBoolOr(j, "add_prefix_space", true, where));
      scheme = add_prefix_space ? PrependScheme::kAlways : PrependScheme::kNever;
    }
    ASSIGN_OR_RETURN(const bool split, GetBoolOr(j, "split", true, where));
    return std::make_unique<MetaspacePreTokenizer>(std::move(replacement), scheme, split);
  }
  if (type == "Digits") {
    ASSIGN_OR_RETURN(const bool individual, GetBoolOr(j, "individual_digits", false, where));
    return std::make_unique<CharClassPreTokenizer>(
        IsNumeric, individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous);
  }
  if (type == "Whitespace") {
    ASSIGN_OR_RETURN(auto re, SharedRegex(R"(\w+|[^\w\s]+)"));
    return std::make_unique<WhitespacePreTokenizer>(std::move(re));
  }
  if (type == "WhitespaceSplit") return std::make_unique<CharClassPreTokenizer>(IsWhitespace, SplitBehavior::kRemoved);
  if (type == "Punctuation") {
    ASSIGN_OR_RETURN(const SplitBehavior behavior, ParseBehavior(j, "behavior", SplitBehavior::kIsolated, where));
    return std::make_unique<CharClassPreTokenizer>(IsPunctuation, behavior);
  }
  if (type == "CharDelimiterSplit") {
    ASSIGN_OR_RETURN(const std::string delimiter, GetChar(j, "delimiter", "", where));
    size_t pos = 0;
    const char32_t cp = NextCodepoint(delimiter, &pos);
    return std::make_unique<CharClassPreTokenizer>([cp](char32_t c) { return c == cp; }, SplitBehavior::kRemoved);
  }
  if (type == "BertPreTokenizer") {
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    parts.push_back(std::make_unique<CharClassPreTokenizer>(IsWhitespace, SplitBehavior::kRemoved));
    parts.push_back(std::make_unique<CharClassPreTokenizer>(IsPunctuation, SplitBehavior::kIsolated));
    return std::make_unique<SequencePreTokenizer>(std::move(parts));
  }
  if (type == "Sequence") {
    const Json* list = FindField(j, "pretokenizers");
    if (list == nullptr || !list->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".pretokenizers is missing or not an array"));
    }
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (size_t i = 0; i < list->size(); ++i) {
      ASSIGN_OR_RETURN(auto part, MakePreTokenizer((*list)[i], absl::StrCat(where, ".pretokenizers[", i, "]")));
      if (part != nullptr) parts.push_back(std::move(part));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(parts));
  }
  return Unsupported(where, type);
}

}  // namespace moe::tokenizer
