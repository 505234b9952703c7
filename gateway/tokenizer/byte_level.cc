#include "gateway/tokenizer/byte_level.h"

#include <array>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace moe::tokenizer {
namespace {

bool Printable(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); }

const std::array<char32_t, 256>& ByteTable() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    int next = 0;
    for (int b = 0; b < 256; ++b) t[b] = Printable(b) ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + next++);
    return t;
  }();
  return table;
}

// Decodes one code point from UTF-8 at s[i]; advances i. Returns -1 on bad input.
int64_t NextCodepoint(std::string_view s, size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + len > s.size()) return -1;
  int64_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
  for (int k = 1; k < len; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc >> 6) != 2) return -1;
    cp = (cp << 6) | (cc & 0x3f);
  }
  i += len;
  return cp;
}

// Length of the UTF-8 sequence a lead byte starts (0 for a continuation byte).
int Utf8Length(unsigned char c) {
  return c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
}

}  // namespace

char32_t ByteToCodepoint(uint8_t b) { return ByteTable()[b]; }

int CodepointToByte(char32_t cp) {
  static const std::array<int, 512> inverse = [] {
    std::array<int, 512> inv;
    inv.fill(-1);
    for (int b = 0; b < 256; ++b) inv[ByteTable()[b]] = b;
    return inv;
  }();
  return cp < 512 ? inverse[cp] : -1;
}

absl::StatusOr<ByteLevelVocab> ByteLevelVocab::FromTokenizerJson(absl::string_view json_text,
                                                                 absl::string_view source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text.begin(), json_text.end());
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": invalid JSON: ", e.what()));
  }
  try {
    const auto& decoder = j.at("decoder");
    if (!decoder.is_object() || decoder.value("type", "") != "ByteLevel") {
      return absl::InvalidArgumentError(absl::StrCat(source, ": decoder is not ByteLevel"));
    }
    ByteLevelVocab v;
    auto put = [&](const std::string& token, int64_t id, bool special) -> absl::Status {
      if (id < 0 || id > (1 << 24)) return absl::InvalidArgumentError(absl::StrCat(source, ": token id ", id, " out of range"));
      if (static_cast<size_t>(id) >= v.bytes_.size()) {
        v.bytes_.resize(id + 1);
        v.special_.resize(id + 1);
      }
      std::string bytes;
      if (special) {
        bytes = token;  // added special tokens are written verbatim
      } else {
        for (size_t i = 0; i < token.size();) {
          const int64_t cp = NextCodepoint(token, i);
          const int b = cp < 0 ? -1 : CodepointToByte(static_cast<char32_t>(cp));
          if (b < 0) {
            return absl::InvalidArgumentError(
                absl::StrCat(source, ": token '", token, "' (id ", id, ") is not byte-level encoded"));
          }
          bytes.push_back(static_cast<char>(b));
        }
      }
      v.bytes_[id] = std::move(bytes);
      v.special_[id] = special;
      return absl::OkStatus();
    };
    for (const auto& [token, id] : j.at("model").at("vocab").items()) {
      if (auto s = put(token, id.get<int64_t>(), false); !s.ok()) return s;
    }
    for (const auto& added : j.value("added_tokens", nlohmann::json::array())) {
      const std::string content = added.at("content").get<std::string>();
      const bool special = added.value("special", false);
      if (auto s = put(content, added.at("id").get<int64_t>(), true); !s.ok()) return s;
      v.special_[added.at("id").get<int64_t>()] = special;
    }
    return v;
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", e.what()));
  }
}

absl::StatusOr<ByteLevelVocab> ByteLevelVocab::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream ss;
  ss << in.rdbuf();
  return FromTokenizerJson(ss.str(), path);
}

absl::StatusOr<std::string_view> ByteLevelVocab::Bytes(int32_t id) const {
  if (id < 0 || id >= size()) {
    return absl::InvalidArgumentError(absl::StrCat("token id ", id, " is outside the vocabulary [0, ", size(), ")"));
  }
  return std::string_view(bytes_[id]);
}

absl::StatusOr<std::string> StreamingDecoder::Push(int32_t id) {
  auto bytes = vocab_->Bytes(id);
  if (!bytes.ok()) return bytes.status();
  if (skip_special_ && vocab_->is_special(id)) return std::string();
  pending_.append(bytes->data(), bytes->size());
  // Emit every complete character; an invalid byte becomes U+FFFD (as a lossy
  // UTF-8 decode of the whole text would), an incomplete tail waits.
  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    const auto lead = static_cast<unsigned char>(pending_[i]);
    const int len = Utf8Length(lead);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    int have = 1;
    while (have < len && i + have < pending_.size() &&
           (static_cast<unsigned char>(pending_[i + have]) >> 6) == 2) {
      ++have;
    }
    if (have == len) {
      out.append(pending_, i, len);
      i += len;
    } else if (i + have == pending_.size()) {
      break;  // incomplete so far: wait for more bytes
    } else {
      out += "\xEF\xBF\xBD";
      i += have;
    }
  }
  pending_.erase(0, i);
  return out;
}

std::string StreamingDecoder::Finish() {
  std::string out = pending_.empty() ? "" : "\xEF\xBF\xBD";
  pending_.clear();
  return out;
}

}  // namespace moe::tokenizer
