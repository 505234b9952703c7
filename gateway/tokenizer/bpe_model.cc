#include "gateway/tokenizer/bpe_model.h"

#include <algorithm>
#include <queue>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status_macros.h"
#include "gateway/tokenizer/json_util.h"
#include "gateway/tokenizer/unicode.h"

namespace moe::tokenizer {
namespace {

constexpr int64_t kMaxId = (int64_t{1} << 31) - 1;
constexpr absl::string_view kMetaspace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

}  // namespace

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::FromJson(const Json& j, absl::string_view where) {
  ASSIGN_OR_RETURN(const std::string type, ComponentType(j, where));
  if (type != "BPE") return Unsupported(where, type);
  std::unique_ptr<BpeModel> m(new BpeModel());
  if (FindField(j, "unk_token") != nullptr) {
    ASSIGN_OR_RETURN(m->unk_token_, GetString(j, "unk_token", where));
  }
  ASSIGN_OR_RETURN(m->continuing_subword_prefix_, GetStringOr(j, "continuing_subword_prefix", "", where));
  ASSIGN_OR_RETURN(m->end_of_word_suffix_, GetStringOr(j, "end_of_word_suffix", "", where));
  ASSIGN_OR_RETURN(m->fuse_unk_, GetBoolOr(j, "fuse_unk", false, where));
  ASSIGN_OR_RETURN(m->byte_fallback_, GetBoolOr(j, "byte_fallback", false, where));
  ASSIGN_OR_RETURN(m->ignore_merges_, GetBoolOr(j, "ignore_merges", false, where));
  if (const Json* dropout = FindField(j, "dropout"); dropout != nullptr) {
    if (!dropout->is_number()) return absl::InvalidArgumentError(absl::StrCat(where, ".dropout is not a number"));
  }
  const Json* vocab = FindField(j, "vocab");
  if (vocab == nullptr || !vocab->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".vocab is missing or not an object"));
  }
  RETURN_IF_ERROR(m->LoadVocab(*vocab, JsonPath(where, "vocab")));
  const Json* merges = FindField(j, "merges");
  if (merges != nullptr) {
    if (!merges->is_array()) return absl::InvalidArgumentError(absl::StrCat(where, ".merges is not an array"));
    RETURN_IF_ERROR(m->LoadMerges(*merges, JsonPath(where, "merges")));
  }
  if (m->unk_token_.has_value() && !m->TokenToId(*m->unk_token_).has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ".unk_token '", *m->unk_token_, "' is not in the vocabulary"));
  }
  m->cut_before_metaspace_ = !m->merge_joins_at_metaspace_ && m->continuing_subword_prefix_.empty() &&
                             m->end_of_word_suffix_.empty() && !m->ignore_merges_ &&
                             m->TokenToId(kMetaspace).has_value() &&
                             !(m->unk_token_.has_value() && absl::EndsWith(*m->unk_token_, kMetaspace));
  for (int b = 0; b < 256; ++b) {
    m->byte_tokens_[b] = m->TokenToId(absl::StrFormat("<0x%02X>", b)).value_or(-1);
  }
  return m;
}

absl::Status BpeModel::LoadVocab(const Json& vocab, absl::string_view where) {
  // One walk over the JSON object (a std::map: walking it is not free).
  std::vector<std::pair<const std::string*, int32_t>> entries;
  entries.reserve(vocab.size());
  int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const Json& id = it.value();
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > kMaxId) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": token '", it.key(), "' has id ", id.dump(), ", not an integer in [0, 2^31)"));
    }
    max_id = std::max(max_id, id.get<int64_t>());
    entries.emplace_back(&it.key(), static_cast<int32_t>(id.get<int64_t>()));
  }
  id_to_token_.assign(static_cast<size_t>(max_id + 1), std::string());
  has_token_.assign(static_cast<size_t>(max_id + 1), false);
  token_to_id_.reserve(entries.size());
  for (const auto& [token, id] : entries) {
    if (has_token_[id]) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": duplicate id ", id, " (tokens '", id_to_token_[id],
                                                     "' and '", *token, "')"));
    }
    has_token_[id] = true;
    id_to_token_[id] = *token;
    token_to_id_.emplace(*token, id);
  }
  return absl::OkStatus();
}

absl::Status BpeModel::LoadMerges(const Json& merges, absl::string_view where) {
  merges_.reserve(merges.size());
  const size_t prefix_len = continuing_subword_prefix_.size();
  for (size_t i = 0; i < merges.size(); ++i) {
    const Json& entry = merges[i];
    std::string a, b;
    if (entry.is_string()) {
      const std::string& s = entry.get_ref<const std::string&>();
      const size_t space = s.find(' ');
      if (space == std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, "[", i, "] ('", s, "') is not two tokens separated by a space"));
      }
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_string()) {
      a = entry[0].get<std::string>();
      b = entry[1].get<std::string>();
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "[", i, "] is neither \"a b\" nor [\"a\", \"b\"]: ", entry.dump()));
    }
    const auto a_id = TokenToId(a);
    const auto b_id = TokenToId(b);
    const std::string name = absl::StrCat(where, "[", i, "] ('", a, " ", b, "')");
    if (!a_id.has_value()) return absl::InvalidArgumentError(absl::StrCat(name, ": unknown token '", a, "'"));
    if (!b_id.has_value()) return absl::InvalidArgumentError(absl::StrCat(name, ": unknown token '", b, "'"));
    if (b.size() < prefix_len) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": '", b, "' is shorter than continuing_subword_prefix"));
    }
    const std::string merged = a + b.substr(prefix_len);
    const auto new_id = TokenToId(merged);
    if (!new_id.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": merged token '", merged, "' is not in the vocabulary"));
    }
    if (!absl::EndsWith(a, kMetaspace) && absl::StartsWith(b, kMetaspace)) merge_joins_at_metaspace_ = true;
    // A repeated pair keeps the later rank, as the reference's map does.
    merges_.insert_or_assign(PairKey(*a_id, *b_id), Merge{static_cast<int32_t>(i), *new_id});
  }
  return absl::OkStatus();
}

std::optional<int32_t> BpeModel::TokenToId(absl::string_view token) const {
  const auto it = token_to_id_.find(token);
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !has_token_[id]) return nullptr;
  return &id_to_token_[id];
}

absl::Status BpeModel::InitialSymbols(absl::string_view word, std::vector<int32_t>* symbols) const {
  // A pending run of unknown characters: the unk id, or -1 for none.
  int32_t unk = -1;
  std::string piece;
  for (size_t i = 0; i < word.size();) {
    const size_t start = i;
    i += static_cast<size_t>(Utf8SequenceLength(static_cast<unsigned char>(word[i])));
    i = std::min(i, word.size());
    const bool is_first = start == 0;
    const bool is_last = i == word.size();
    absl::string_view s = word.substr(start, i - start);
    if ((!is_first && !continuing_subword_prefix_.empty()) || (is_last && !end_of_word_suffix_.empty())) {
      piece.clear();
      if (!is_first) piece += continuing_subword_prefix_;
      piece.append(s.data(), s.size());
      if (is_last) piece += end_of_word_suffix_;
      s = piece;
    }
    if (const auto it = token_to_id_.find(s); it != token_to_id_.end()) {
      if (unk >= 0) symbols->push_back(unk);
      unk = -1;
      symbols->push_back(it->second);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : s) all = all && byte_tokens_[static_cast<unsigned char>(c)] >= 0;
      if (all) {
        // Like the reference, a pending unknown run is emitted after these.
        for (char c : s) symbols->push_back(byte_tokens_[static_cast<unsigned char>(c)]);
        continue;
      }
    }
    if (unk_token_.has_value()) {
      const int32_t unk_id = token_to_id_.find(*unk_token_)->second;
      if (unk >= 0 && !fuse_unk_) symbols->push_back(unk);
      unk = unk_id;
    }
  }
  if (unk >= 0) symbols->push_back(unk);
  return absl::OkStatus();
}

void BpeModel::MergeAll(std::vector<int32_t>* ids, size_t begin) const {
  const int32_t* symbols = ids->data() + begin;
  const int n = static_cast<int>(ids->size() - begin);
  if (n < 2 || merges_.empty()) return;
  struct Node {
    int32_t id;
    int prev, next;
    bool alive;
  };
  struct Candidate {
    int32_t rank;
    int pos;
    int32_t new_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<Node> nodes(n);
  for (int i = 0; i < n; ++i) nodes[i] = {symbols[i], i - 1, i + 1 < n ? i + 1 : -1, true};
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto consider = [&](int pos) {
    const int next = nodes[pos].next;
    if (next < 0) return;
    const auto it = merges_.find(PairKey(nodes[pos].id, nodes[next].id));
    if (it != merges_.end()) queue.push({it->second.rank, pos, it->second.new_id});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Node& left = nodes[top.pos];
    if (!left.alive || left.next < 0) continue;
    Node& right = nodes[left.next];
    // Skip entries made stale by earlier merges.
    const auto it = merges_.find(PairKey(left.id, right.id));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) nodes[left.next].prev = top.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(top.pos);
  }
  ids->resize(begin);
  for (int i = 0; i >= 0; i = nodes[i].next) ids->push_back(nodes[i].id);
}

absl::Status BpeModel::TokenizeUncached(absl::string_view word, std::vector<int32_t>* ids) const {
  const size_t begin = ids->size();
  RETURN_IF_ERROR(InitialSymbols(word, ids));
  MergeAll(ids, begin);
  return absl::OkStatus();
}

absl::Status BpeModel::Tokenize(absl::string_view word, std::vector<int32_t>* ids) const {
  return TokenizeWords(absl::MakeConstSpan(&word, 1), ids);
}

absl::Status BpeModel::TokenizeWords(absl::Span<const absl::string_view> words, std::vector<int32_t>* ids) const {
  return TokenizeWordsImpl(words, cut_before_metaspace_, ids);
}

absl::Status BpeModel::TokenizeWordsImpl(absl::Span<const absl::string_view> words, bool cut_long_words,
                                         std::vector<int32_t>* ids) const {
  // Words merged under the reader lock, to add to the cache: ids[begin, end).
  struct Miss {
    absl::string_view word;
    size_t begin, end;
  };
  std::vector<Miss> misses;
  size_t i = 0;
  while (i < words.size()) {
    const absl::string_view word = words[i];
    if (!Cacheable(word)) {  // empty, or long: merged without holding the lock
      ++i;
      if (word.empty() || (ignore_merges_ && AppendWholeWord(word, ids))) continue;
      if (cut_long_words) {
        std::vector<absl::string_view> pieces;
        size_t start = 0;
        for (size_t pos = word.find(kMetaspace, 1); pos != absl::string_view::npos;
             pos = word.find(kMetaspace, pos + kMetaspace.size())) {
          if (pos >= kMetaspace.size() && word.substr(pos - kMetaspace.size(), kMetaspace.size()) == kMetaspace) {
            continue;  // "▁▁": not a place to cut
          }
          pieces.push_back(word.substr(start, pos - start));
          start = pos;
        }
        pieces.push_back(word.substr(start));
        RETURN_IF_ERROR(TokenizeWordsImpl(pieces, /*cut_long_words=*/false, ids));
      } else {
        RETURN_IF_ERROR(TokenizeUncached(word, ids));
      }
      continue;
    }
    misses.clear();
    {
      // A run of short words: their merging is bounded, so it may hold up a
      // writer for that long.
      absl::ReaderMutexLock lock(&cache_mu_);
      for (; i < words.size() && Cacheable(words[i]); ++i) {
        const absl::string_view w = words[i];
        if (ignore_merges_ && AppendWholeWord(w, ids)) continue;
        if (const auto it = cache_.find(w); it != cache_.end()) {
          ids->insert(ids->end(), it->second.begin(), it->second.end());
          continue;
        }
        const size_t begin = ids->size();
        RETURN_IF_ERROR(TokenizeUncached(w, ids));
        misses.push_back({w, begin, ids->size()});
      }
    }
    if (!misses.empty()) {
      absl::MutexLock lock(&cache_mu_);
      for (const Miss& m : misses) {
        if (cache_.size() >= kCacheCapacity) break;
        cache_.try_emplace(m.word, ids->begin() + static_cast<std::ptrdiff_t>(m.begin),
                           ids->begin() + static_cast<std::ptrdiff_t>(m.end));
      }
    }
  }
  return absl::OkStatus();
}

bool BpeModel::AppendWholeWord(absl::string_view word, std::vector<int32_t>* ids) const {
  const auto it = token_to_id_.find(word);
  if (it == token_to_id_.end()) return false;
  ids->push_back(it->second);
  return true;
}

}  // namespace moe::tokenizer
