#include "grammar/token_vocabulary.h"

#include <algorithm>
#include <filesystem>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "core/gzip_file.h"
#include "nlohmann/json.hpp"

namespace moe::grammar {
namespace {

// GPT-2's bytes_to_unicode, inverted: code point -> byte (-1: not a byte).
std::vector<int> ByteLevelDecodeTable() {
  std::vector<int> table(324, -1);
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    if (printable) {
      table[b] = b;
    } else {
      table[256 + n] = b;
      ++n;
    }
  }
  return table;
}

// The code points of a UTF-8 string (false on malformed input).
bool CodePoints(absl::string_view s, std::vector<uint32_t>* out) {
  out->clear();
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    for (int k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 2) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    out->push_back(cp);
    i += len;
  }
  return true;
}

enum class Decoder { kByteLevel, kMetaspaceByteFallback };

absl::StatusOr<Decoder> DecoderOf(const nlohmann::json& j, absl::string_view source) {
  if (!j.is_object() || !j.contains("decoder") || !j["decoder"].is_object()) {
    return absl::UnimplementedError(absl::StrCat(source, ": no \"decoder\": token bytes are not known"));
  }
  const nlohmann::json& d = j["decoder"];
  const std::string type = d.value("type", "");
  if (type == "ByteLevel") return Decoder::kByteLevel;
  if (type == "Sequence" && d.contains("decoders") && d["decoders"].is_array()) {
    bool byte_fallback = false;
    for (const auto& s : d["decoders"]) {
      if (s.is_object() && s.value("type", "") == "ByteLevel") return Decoder::kByteLevel;
      if (s.is_object() && s.value("type", "") == "ByteFallback") byte_fallback = true;
    }
    if (byte_fallback) return Decoder::kMetaspaceByteFallback;
  }
  if (type == "Metaspace") return Decoder::kMetaspaceByteFallback;
  return absl::UnimplementedError(
      absl::StrCat(source, ": decoder '", type, "': constrained decoding does not know its token bytes"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<TokenVocabulary>> TokenVocabulary::FromTokenizerJson(absl::string_view text,
                                                                                   absl::string_view source) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("model") || !j["model"].is_object() ||
      !j["model"].contains("vocab") || !j["model"]["vocab"].is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a tokenizer.json with model.vocab"));
  }
  auto decoder = DecoderOf(j, source);
  if (!decoder.ok()) return decoder.status();
  constexpr int64_t kMaxVocab = int64_t{1} << 22;
  std::vector<std::pair<int64_t, std::string>> entries;
  for (const auto& [token, id] : j["model"]["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= kMaxVocab) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": vocab entry '", token, "' has a bad id"));
    }
    entries.emplace_back(id.get<int64_t>(), token);
  }
  std::vector<std::pair<int64_t, std::string>> added;
  std::vector<bool> added_special;
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& a : j["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
          !a["content"].is_string() || a["id"].get<int64_t>() < 0 || a["id"].get<int64_t>() >= kMaxVocab) {
        return absl::InvalidArgumentError(absl::StrCat(source, ": malformed added_tokens entry"));
      }
      added.emplace_back(a["id"].get<int64_t>(), a["content"].get<std::string>());
      added_special.push_back(a.value("special", false));
    }
  }
  int64_t size = 0;
  for (const auto& [id, t] : entries) size = std::max(size, id + 1);
  for (const auto& [id, t] : added) size = std::max(size, id + 1);
  auto v = std::unique_ptr<TokenVocabulary>(new TokenVocabulary());
  v->bytes_.assign(static_cast<size_t>(size), std::string());
  // Ids no entry names (holes) can never be emitted by a constraint.
  v->special_.assign(static_cast<size_t>(size), true);
  const std::vector<int> byte_of = ByteLevelDecodeTable();
  std::vector<uint32_t> cps;
  for (const auto& [id, token] : entries) {
    std::string out;
    if (*decoder == Decoder::kByteLevel) {
      if (!CodePoints(token, &cps)) {
        return absl::InvalidArgumentError(absl::StrCat(source, ": vocab entry ", id, " is not UTF-8"));
      }
      bool ok = true;
      for (uint32_t cp : cps) {
        if (cp >= byte_of.size() || byte_of[cp] < 0) {
          ok = false;
          break;
        }
        out.push_back(static_cast<char>(byte_of[cp]));
      }
      if (!ok) continue;  // not a byte-level string: such an entry cannot be produced
    } else {
      if (token.size() == 6 && token.rfind("<0x", 0) == 0 && token[5] == '>') {
        out.push_back(static_cast<char>(std::stoi(token.substr(3, 2), nullptr, 16)));
      } else {
        for (size_t i = 0; i < token.size();) {
          if (token.compare(i, 3, "\xe2\x96\x81") == 0) {  // U+2581 "▁"
            out.push_back(' ');
            i += 3;
          } else {
            out.push_back(token[i++]);
          }
        }
      }
    }
    v->bytes_[static_cast<size_t>(id)] = std::move(out);
    v->special_[static_cast<size_t>(id)] = false;
  }
  for (size_t i = 0; i < added.size(); ++i) {
    v->bytes_[static_cast<size_t>(added[i].first)] = added[i].second;
    v->special_[static_cast<size_t>(added[i].first)] = added_special[i];
  }
  v->BuildTrie();
  return v;
}

absl::StatusOr<std::unique_ptr<TokenVocabulary>> TokenVocabulary::FromDirectory(const std::string& dir) {
  std::error_code ec;
  std::string path = (std::filesystem::path(dir) / "tokenizer.json").string();
  if (!std::filesystem::exists(path, ec)) path += ".gz";
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat(dir, ": no tokenizer.json or tokenizer.json.gz"));
  }
  absl::StatusOr<std::string> text = ReadMaybeGzippedFile(path);
  if (!text.ok()) return text.status();
  return FromTokenizerJson(*text, path);
}

std::unique_ptr<TokenVocabulary> TokenVocabulary::FromBytes(std::vector<std::string> bytes, std::vector<bool> special) {
  auto v = std::unique_ptr<TokenVocabulary>(new TokenVocabulary());
  special.resize(bytes.size(), false);
  v->bytes_ = std::move(bytes);
  v->special_ = std::move(special);
  v->BuildTrie();
  return v;
}

void TokenVocabulary::BuildTrie() {
  // Tokens in byte order: each one shares a prefix with the previous, and
  // its new nodes are the last children along that prefix.
  std::vector<int32_t> order;
  for (int32_t id = 0; id < size(); ++id) {
    if (!special_[id] && !bytes_[id].empty()) order.push_back(id);
  }
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return bytes_[a] < bytes_[b]; });
  trie_.assign(1, Node{});
  std::vector<uint32_t> path = {0};  // path[d]: the node at depth d of the previous token
  const std::string* prev = nullptr;
  for (int32_t id : order) {
    const std::string& b = bytes_[id];
    size_t common = 0;
    if (prev != nullptr) {
      while (common < prev->size() && common < b.size() && (*prev)[common] == b[common]) ++common;
    }
    const bool parent_has_child = prev != nullptr && prev->size() > common;
    path.resize(std::max(path.size(), b.size() + 1));
    for (size_t k = common; k < b.size(); ++k) {
      const auto n = static_cast<uint32_t>(trie_.size());
      Node node;
      node.byte = static_cast<uint8_t>(b[k]);
      trie_.push_back(node);
      if (k == common && parent_has_child) {
        trie_[path[k + 1]].next_sibling = n;  // the previous last child of path[k]
      } else {
        trie_[path[k]].first_child = n;
      }
      path[k + 1] = n;
    }
    Node& end = trie_[path[b.size()]];
    if (end.token < 0) {
      end.token = id;
    } else {
      if (end.more_tokens == 0) {
        same_bytes_.emplace_back();
        end.more_tokens = static_cast<uint32_t>(same_bytes_.size());
      }
      same_bytes_[end.more_tokens - 1].push_back(id);
    }
    prev = &b;
  }
  // Pre-order numbering (children are appended after their parent and
  // after every earlier sibling's subtree), so subtrees are ranges.
  const auto n = static_cast<uint32_t>(trie_.size());
  subtree_end_.assign(n, 0);
  parent_.assign(n, 0);
  depth_.assign(n, 0);
  for (uint32_t v = 0; v < n; ++v) {
    for (uint32_t c = trie_[v].first_child; c != 0; c = trie_[c].next_sibling) {
      parent_[c] = v;
      depth_[c] = depth_[v] + 1;
    }
  }
  for (uint32_t v = n; v-- > 0;) {
    // The subtree ends where the last child's subtree ends.
    uint32_t end = v + 1;
    for (uint32_t c = trie_[v].first_child; c != 0; c = trie_[c].next_sibling) end = subtree_end_[c];
    subtree_end_[v] = end;
  }
}

std::string TokenVocabulary::NodeBytes(uint32_t n) const {
  std::string out(static_cast<size_t>(depth_[n]), '\0');
  for (uint32_t v = n; v != 0; v = parent_[v]) out[static_cast<size_t>(depth_[v] - 1)] = static_cast<char>(trie_[v].byte);
  return out;
}

std::shared_ptr<const void> TokenVocabulary::Derived(const std::string& key,
                                                     const std::function<std::shared_ptr<const void>()>& build,
                                                     bool optional) const {
  {
    absl::MutexLock lock(&derived_mu_);
    if (auto it = derived_.find(key); it != derived_.end()) return it->second;
    if (optional && static_cast<int>(derived_.size()) >= kMaxDerived) return nullptr;
  }
  // Built outside the lock (it may take milliseconds); a concurrent builder
  // of the same key wastes its work, and the first one stored wins.
  std::shared_ptr<const void> built = build();
  absl::MutexLock lock(&derived_mu_);
  if (auto it = derived_.find(key); it != derived_.end()) return it->second;
  if (static_cast<int>(derived_.size()) < kMaxDerived) derived_.emplace(key, built);
  return built;
}


}  // namespace moe::grammar
