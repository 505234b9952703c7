#include "gateway/tokenizer/added_vocabulary.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "gateway/tokenizer/json_util.h"
#include "gateway/tokenizer/normalizer.h"
#include "gateway/tokenizer/unicode.h"

namespace moe::tokenizer {
namespace {

// The code point that ends text[..pos] (pos > 0, at a character boundary).
char32_t CodepointBefore(absl::string_view text, size_t pos) {
  size_t start = pos - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  return NextCodepoint(text, &start);
}

}  // namespace

void AddedVocabulary::Trie::Insert(absl::string_view key, int32_t token) {
  int32_t node = 0;
  for (char c : key) {
    const auto b = static_cast<unsigned char>(c);
    const auto it = nodes[node].next.find(b);
    if (it != nodes[node].next.end()) {
      node = it->second;
    } else {
      const auto child = static_cast<int32_t>(nodes.size());
      nodes[node].next.emplace(b, child);
      nodes.emplace_back();
      node = child;
    }
  }
  nodes[node].token = token;
  first_byte[static_cast<unsigned char>(key[0])] = true;
}

int32_t AddedVocabulary::Trie::LongestAt(absl::string_view text, size_t pos, size_t* length) const {
  int32_t node = 0;
  int32_t best = -1;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto it = nodes[node].next.find(static_cast<unsigned char>(text[i]));
    if (it == nodes[node].next.end()) break;
    node = it->second;
    if (nodes[node].token >= 0) {
      best = nodes[node].token;
      *length = i + 1 - pos;
    }
  }
  return best;
}

absl::StatusOr<AddedVocabulary> AddedVocabulary::FromJson(const Json& j, const Normalizer* normalizer,
                                                          absl::string_view where) {
  AddedVocabulary v;
  if (j.is_null()) return v;
  if (!j.is_array()) return absl::InvalidArgumentError(absl::StrCat(where, " is not an array"));
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string at = absl::StrCat(where, "[", i, "]");
    const Json& e = j[i];
    if (!e.is_object()) return absl::InvalidArgumentError(absl::StrCat(at, " is not an object"));
    AddedToken t;
    ASSIGN_OR_RETURN(const int64_t id, GetIntOr(e, "id", -1, at));
    if (id < 0 || id > (int64_t{1} << 31) - 1) {
      return absl::InvalidArgumentError(absl::StrCat(at, ".id is missing or not in [0, 2^31)"));
    }
    t.id = static_cast<int32_t>(id);
    ASSIGN_OR_RETURN(t.content, GetString(e, "content", at));
    ASSIGN_OR_RETURN(t.single_word, GetBoolOr(e, "single_word", false, at));
    ASSIGN_OR_RETURN(t.lstrip, GetBoolOr(e, "lstrip", false, at));
    ASSIGN_OR_RETURN(t.rstrip, GetBoolOr(e, "rstrip", false, at));
    ASSIGN_OR_RETURN(t.special, GetBoolOr(e, "special", false, at));
    ASSIGN_OR_RETURN(t.normalized, GetBoolOr(e, "normalized", !t.special, at));
    if (t.content.empty()) continue;  // the reference ignores empty tokens
    if (const auto it = v.by_id_.find(t.id); it != v.by_id_.end()) {
      return absl::InvalidArgumentError(absl::StrCat(at, " ('", t.content, "'): duplicate id ", t.id,
                                                     ", already used by '", v.tokens_[it->second].content, "'"));
    }
    const size_t index = v.tokens_.size();
    v.by_id_.emplace(t.id, index);
    v.by_content_.insert_or_assign(t.content, index);
    std::string key = t.content;
    if (t.normalized && normalizer != nullptr) {
      if (absl::Status s = normalizer->Normalize(&key); !s.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(at, " ('", t.content, "'): ", s.message()));
      }
    }
    if (!key.empty()) {
      const auto token = static_cast<int32_t>(index);
      v.trie(t.normalized, /*allow_special=*/true).Insert(key, token);
      if (!t.special) v.trie(t.normalized, /*allow_special=*/false).Insert(key, token);
    }
    v.tokens_.push_back(std::move(t));
  }
  return v;
}

void AddedVocabulary::Split(absl::string_view text, bool normalized_text, bool allow_special,
                            std::vector<TextSegment>* segments) const {
  const Trie& t = trie(normalized_text, allow_special);
  size_t start_offset = 0;  // end of the last token taken
  size_t pos = 0;
  while (pos < text.size()) {
    if (!t.first_byte[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    size_t length = 0;
    const int32_t index = t.LongestAt(text, pos, &length);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[index];
    size_t start = pos;
    size_t stop = pos + length;
    pos = stop;
    if (token.single_word) {
      const bool word_before = start > 0 && IsWordChar(CodepointBefore(text, start));
      size_t probe = stop;
      const bool word_after = stop < text.size() && IsWordChar(NextCodepoint(text, &probe));
      if (word_before || word_after) continue;
    }
    if (token.lstrip) {
      size_t s = start;
      while (s > start_offset) {
        size_t prev = s - 1;
        while (prev > 0 && (static_cast<unsigned char>(text[prev]) & 0xC0) == 0x80) --prev;
        size_t probe = prev;
        if (!IsWhitespace(NextCodepoint(text, &probe))) break;
        s = prev;
      }
      start = s;
    }
    if (token.rstrip) {
      while (stop < text.size()) {
        size_t next = stop;
        if (!IsWhitespace(NextCodepoint(text, &next))) break;
        stop = next;
      }
      pos = stop;
    }
    if (start_offset < start) segments->push_back({start_offset, start, -1});
    segments->push_back({start, stop, token.id});
    start_offset = stop;
  }
  if (start_offset < text.size()) segments->push_back({start_offset, text.size(), -1});
}

const AddedToken* AddedVocabulary::FindById(int32_t id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<int32_t> AddedVocabulary::FindByContent(absl::string_view content) const {
  const auto it = by_content_.find(content);
  if (it == by_content_.end()) return std::nullopt;
  return tokens_[it->second].id;
}

}  // namespace moe::tokenizer
