// libFuzzer target for the tokenizer, on two real tokenizers loaded once:
// Qwen3 (NFC, regex split, byte-level BPE) and Mistral (Prepend/Replace
// normalizer, BPE with byte fallback, Strip decoder).
//
// The first input byte picks what to run:
//   bit 0: the tokenizer (0 Qwen3, 1 Mistral);
//   bit 1: 0 encode the rest as text, 1 decode the rest as token ids;
//   bit 2: allow_special (encode) or skip_special_tokens (decode);
//   bit 3: add_special_tokens (encode).
// Ids are 4 little-endian bytes each: top byte 0xFF gives the raw int32 (far
// outside the vocabulary), 0xFE an id just below or above vocab_size, any
// other value an id modulo vocab_size.
//
// Invariants (a violation traps):
//   - Encode fails exactly when the text is not valid UTF-8 (checked here by
//     an independent validator), and then with INVALID_ARGUMENT;
//   - NFC (which runs utf8proc only where needed) equals utf8proc's NFC;
//   - Mistral: cutting a long word before "▁" changes no id (see Family);
//   - every encoded id decodes, and Decode(Encode(text)) gives back the text
//     where the tokenizer is lossless (see RoundTrips);
//   - Decode fails exactly when an id is outside the vocabulary; its output
//     is valid UTF-8;
//   - StreamDecoder: Push fails exactly on the ids Decode rejects and leaves
//     the stream unchanged then; every delta is valid UTF-8; the deltas plus
//     Finish equal Decode of the accepted ids (of all ids when all are valid).
#include <utf8proc.h>
#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "gateway/tokenizer/tokenizer.h"
#include "gateway/tokenizer/unicode.h"
#include "nlohmann/json.hpp"

namespace {

using moe::tokenizer::EncodeOptions;
using moe::tokenizer::StreamDecoder;
using moe::tokenizer::Tokenizer;

struct Family {
  std::unique_ptr<Tokenizer> tokenizer;
  bool nfc = false;  // Qwen3 normalizes to NFC before encoding
  // Mistral with one more merge across a "▁" (of a byte token that only a NUL
  // in the text gives): the BPE model then merges a long text as one word
  // instead of cutting it before "▁". Without a NUL both give the same ids.
  std::unique_ptr<Tokenizer> whole_words;
};

[[noreturn]] void Fatal(const std::string& what, const absl::Status& status) {
  std::fprintf(stderr, "tokenizer_fuzz: %s: %s\n", what.c_str(), std::string(status.message()).c_str());
  __builtin_trap();
}

std::string ReadGzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) Fatal(path, absl::NotFoundError("cannot open"));
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  gzclose(f);
  return out;
}

Family Load(const char* name, bool nfc) {
  const std::string dir = std::string(MOE_TESTDATA_DIR) + "/tokenizers/" + name;
  auto t = Tokenizer::FromDirectory(dir);
  if (!t.ok()) Fatal(dir, t.status());
  return Family{std::move(*t), nfc, nullptr};
}

Family LoadMistral() {
  Family f = Load("mistral", /*nfc=*/false);
  const std::string path = std::string(MOE_TESTDATA_DIR) + "/tokenizers/mistral/tokenizer.json.gz";
  nlohmann::json j = nlohmann::json::parse(ReadGzip(path));
  nlohmann::json& model = j["model"];
  int64_t next_id = 0;
  for (const auto& [token, id] : model["vocab"].items()) next_id = std::max<int64_t>(next_id, id.get<int64_t>() + 1);
  model["vocab"]["<0x00>\u2581the"] = next_id;
  model["merges"].push_back("<0x00> \u2581the");
  auto whole = Tokenizer::FromJson(j.dump(), "mistral+merge");
  if (!whole.ok()) Fatal(path, whole.status());
  f.whole_words = std::move(*whole);
  return f;
}

const Family& GetFamily(int which) {
  static const Family* families = new Family[2]{Load("qwen3", /*nfc=*/true), LoadMistral()};
  return families[which];
}

// Well-formed UTF-8 (Unicode Table 3-7), written apart from the library's.
bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (int k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "tokenizer_fuzz: invariant violated: %s\n", what);
    __builtin_trap();
  }
}

// Whether Decode(Encode(text)) must give `text` back. Mistral is lossless on
// plain text (skipping the <s> that add_special_tokens puts first) without a
// "▁" of its own (the decoder turns every one into a space); special tokens
// written in the text are not (each text segment gets its own "▁"). Qwen3 is
// lossless on text that NFC leaves unchanged.
bool RoundTrips(const Family& f, absl::string_view text, const EncodeOptions& options) {
  if (f.nfc) {
    auto nfc = moe::tokenizer::Normalize(text, moe::tokenizer::NormalizationForm::kNfc);
    return nfc.ok() && *nfc == text;
  }
  return !options.allow_special && text.find("\xE2\x96\x81") == absl::string_view::npos;
}

// Normalize(kNfc) runs utf8proc only around the code points that NFC may
// change: it must agree with utf8proc on the whole text.
void CheckNfc(absl::string_view text) {
  auto nfc = moe::tokenizer::Normalize(text, moe::tokenizer::NormalizationForm::kNfc);
  Check(nfc.ok(), "valid UTF-8 normalizes");
  utf8proc_uint8_t* mapped = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), static_cast<utf8proc_ssize_t>(text.size()),
                   &mapped, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  Check(n >= 0, "utf8proc normalizes valid UTF-8");
  const bool same = *nfc == absl::string_view(reinterpret_cast<const char*>(mapped), static_cast<size_t>(n));
  std::free(mapped);
  Check(same, "Normalize(kNfc) == utf8proc NFC of the whole text");
}

void FuzzEncode(const Family& f, absl::string_view text, uint8_t mode) {
  EncodeOptions options;
  options.allow_special = (mode & 4) != 0;
  options.add_special_tokens = (mode & 8) != 0;
  auto ids = f.tokenizer->Encode(text, options);
  if (!IsValidUtf8(text)) {
    Check(!ids.ok() && ids.status().code() == absl::StatusCode::kInvalidArgument,
          "invalid UTF-8 must be INVALID_ARGUMENT");
    return;
  }
  Check(ids.ok(), "valid UTF-8 must encode");
  CheckNfc(text);
  for (const int32_t id : *ids) Check(id >= 0 && id < f.tokenizer->vocab_size(), "encoded id in the vocabulary");
  if (f.whole_words != nullptr && text.find('\0') == absl::string_view::npos) {
    auto whole = f.whole_words->Encode(text, options);
    Check(whole.ok() && *whole == *ids, "cutting a long word at \"▁\" gives the ids of merging it whole");
  }
  const bool skip_special = !f.nfc;  // Mistral: drop the <s> of add_special_tokens
  auto decoded = f.tokenizer->Decode(*ids, skip_special);
  Check(decoded.ok(), "encoded ids must decode");
  Check(IsValidUtf8(*decoded), "decoded text is valid UTF-8");
  if (RoundTrips(f, text, options)) Check(*decoded == text, "Decode(Encode(text)) == text");
}

void FuzzDecode(const Family& f, const uint8_t* data, size_t size, uint8_t mode) {
  const bool skip_special = (mode & 4) != 0;
  const int64_t vocab = f.tokenizer->vocab_size();
  std::vector<int32_t> ids;
  for (size_t i = 0; i + 4 <= size; i += 4) {
    const uint32_t u = data[i] | (uint32_t{data[i + 1]} << 8) | (uint32_t{data[i + 2]} << 16) |
                       (uint32_t{data[i + 3]} << 24);
    const uint32_t top = u >> 24;
    if (top == 0xFF) {
      ids.push_back(static_cast<int32_t>(u));
    } else if (top == 0xFE) {
      ids.push_back(static_cast<int32_t>(vocab - 8 + (u & 0xF)));
    } else {
      ids.push_back(static_cast<int32_t>(u % static_cast<uint32_t>(vocab)));
    }
  }
  auto decoded = f.tokenizer->Decode(ids, skip_special);

  StreamDecoder stream(f.tokenizer.get(), skip_special);
  std::vector<int32_t> accepted;
  std::string streamed;
  for (const int32_t id : ids) {
    auto delta = stream.Push(id);
    // The same verdict as IdToToken: the stream rejects exactly unknown ids.
    Check(delta.ok() == f.tokenizer->IdToToken(id).ok(), "Push and IdToToken agree on an id");
    if (!delta.ok()) {
      Check(delta.status().code() == absl::StatusCode::kInvalidArgument, "unknown id is INVALID_ARGUMENT");
      continue;
    }
    Check(IsValidUtf8(*delta), "stream delta is valid UTF-8");
    accepted.push_back(id);
    streamed += *delta;
  }
  const std::string rest = stream.Finish();
  Check(IsValidUtf8(rest), "Finish is valid UTF-8");
  streamed += rest;

  Check(decoded.ok() == (accepted.size() == ids.size()), "Decode fails exactly on an unknown id");
  if (!decoded.ok()) {
    Check(decoded.status().code() == absl::StatusCode::kInvalidArgument, "unknown id is INVALID_ARGUMENT");
    decoded = f.tokenizer->Decode(accepted, skip_special);
    Check(decoded.ok(), "accepted ids decode");
  }
  Check(IsValidUtf8(*decoded), "decoded text is valid UTF-8");
  Check(streamed == *decoded, "stream concatenation == Decode");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const Family& f = GetFamily(mode & 1);
  if ((mode & 2) == 0) {
    FuzzEncode(f, absl::string_view(reinterpret_cast<const char*>(data + 1), size - 1), mode);
  } else {
    FuzzDecode(f, data + 1, size - 1, mode);
  }
  return 0;
}
