#include "gateway/tokenizer/unicode.h"

#include <utf8proc.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace moe::tokenizer {
namespace {

// The range the second byte of a sequence must be in, given its lead byte
// (Unicode Table 3-7, "well-formed UTF-8 byte sequences"); later continuation
// bytes are always 80..BF.
struct LeadInfo {
  int length;  // 0: not a valid lead byte
  unsigned char second_lo, second_hi;
};

LeadInfo Lead(unsigned char c) {
  if (c < 0x80) return {1, 0, 0};
  if (c >= 0xC2 && c <= 0xDF) return {2, 0x80, 0xBF};
  if (c == 0xE0) return {3, 0xA0, 0xBF};
  if (c == 0xED) return {3, 0x80, 0x9F};
  if (c >= 0xE1 && c <= 0xEF) return {3, 0x80, 0xBF};
  if (c == 0xF0) return {4, 0x90, 0xBF};
  if (c >= 0xF1 && c <= 0xF3) return {4, 0x80, 0xBF};
  if (c == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// Length of the valid sequence at bytes[i]; or, when negative, -(number of
// bytes that form a maximal invalid subpart). `*incomplete` is set when the
// sequence is a valid prefix cut off by the end of `bytes`.
int Classify(absl::string_view bytes, size_t i, bool* incomplete) {
  *incomplete = false;
  const auto c = static_cast<unsigned char>(bytes[i]);
  const LeadInfo lead = Lead(c);
  if (lead.length == 0) return -1;
  if (lead.length == 1) return 1;
  for (int k = 1; k < lead.length; ++k) {
    if (i + k >= bytes.size()) {
      *incomplete = true;
      return -k;
    }
    const auto cc = static_cast<unsigned char>(bytes[i + k]);
    const unsigned char lo = k == 1 ? lead.second_lo : 0x80;
    const unsigned char hi = k == 1 ? lead.second_hi : 0xBF;
    if (cc < lo || cc > hi) return -k;
  }
  return lead.length;
}

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

// UTF-8 of every byte's code point (all below U+0200: one or two bytes),
// precomputed for AppendByteLevel.
struct ByteUtf8 {
  char bytes[2];
  uint8_t length;
};

const std::array<ByteUtf8, 256>& ByteUtf8Table() {
  static const std::array<ByteUtf8, 256> table = [] {
    std::array<ByteUtf8, 256> t{};
    for (int b = 0; b < 256; ++b) {
      std::string utf8;
      AppendUtf8(ByteTable()[b], &utf8);
      t[b].length = static_cast<uint8_t>(utf8.size());
      for (size_t k = 0; k < utf8.size(); ++k) t[b].bytes[k] = utf8[k];
    }
    return t;
  }();
  return table;
}

}  // namespace

absl::Status ValidateUtf8(absl::string_view text, absl::string_view what) {
  size_t i = 0;
  while (i < text.size()) {
    // ASCII, eight bytes at a time.
    uint64_t word;
    if (i + 8 <= text.size() && (std::memcpy(&word, text.data() + i, 8), (word & 0x8080808080808080ULL) == 0)) {
      i += 8;
      continue;
    }
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    bool incomplete;
    const int n = Classify(text, i, &incomplete);
    if (n < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " is not valid UTF-8 (bad byte sequence at byte offset ", i, ")"));
    }
    i += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

int Utf8SequenceLength(unsigned char c) {
  const int n = Lead(c).length;
  return n == 0 ? 1 : n;
}

char32_t NextCodepoint(absl::string_view s, size_t* pos) {
  const auto c = static_cast<unsigned char>(s[*pos]);
  const int len = Utf8SequenceLength(c);
  if (len == 1 || *pos + len > s.size()) {
    *pos += 1;
    return c;
  }
  char32_t cp = len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
  for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[*pos + k]) & 0x3f);
  *pos += len;
  return cp;
}

size_t CodepointCount(absl::string_view text) {
  size_t n = 0;
  for (char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

size_t AppendUtf8Lossy(absl::string_view bytes, bool final_chunk, std::string* out) {
  size_t i = 0;
  size_t run_start = 0;  // start of the current run of valid bytes
  while (i < bytes.size()) {
    bool incomplete;
    const int n = Classify(bytes, i, &incomplete);
    if (n > 0) {
      i += static_cast<size_t>(n);
      continue;
    }
    out->append(bytes.data() + run_start, i - run_start);
    if (incomplete && !final_chunk) return i;
    out->append(kReplacementChar.data(), kReplacementChar.size());
    i += static_cast<size_t>(-n);
    run_start = i;
  }
  out->append(bytes.data() + run_start, i - run_start);
  return i;
}

namespace {

int NormalizationOptions(NormalizationForm form) {
  switch (form) {
    case NormalizationForm::kNfc: return UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    case NormalizationForm::kNfd: return UTF8PROC_STABLE | UTF8PROC_DECOMPOSE;
    case NormalizationForm::kNfkc: return UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
    case NormalizationForm::kNfkd: return UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
  }
  return UTF8PROC_STABLE;
}

// utf8proc's normalization of `text`, appended to *out.
absl::Status AppendUtf8procMap(absl::string_view text, int options, std::string* out) {
  utf8proc_uint8_t* mapped = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                          static_cast<utf8proc_ssize_t>(text.size()), &mapped,
                                          static_cast<utf8proc_option_t>(options));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(mapped, &std::free);
  if (n < 0) {
    return absl::InvalidArgumentError(absl::StrCat("unicode normalization failed: ", utf8proc_errmsg(n)));
  }
  out->append(reinterpret_cast<const char*>(mapped), static_cast<size_t>(n));
  return absl::OkStatus();
}

constexpr char32_t kCodepointLimit = 0x110000;

// The code points that NFC leaves alone whatever surrounds them: combining
// class 0, not the second half of any canonical composition (so never merged
// into what comes before), and NFC of the code point alone is itself (after
// decomposition its first code point is again such a starter). A text can be
// cut before each of them and normalized piece by piece with the same result
// (these are the "NFC_QC=Yes starters" of UAX #15, taken conservatively), so
// only the stretches around the other code points go through utf8proc.
class NfcInertTable {
 public:
  NfcInertTable() : bits_((kCodepointLimit + 63) / 64, 0) {
    std::vector<bool> second(kCodepointLimit, false);
    std::vector<char32_t> decomposed_first(kCodepointLimit, 0);  // 0: no canonical decomposition
    utf8proc_int32_t buf[32];
    for (char32_t cp = 0x80; cp < kCodepointLimit; ++cp) {
      const bool hangul_syllable = cp >= 0xAC00 && cp <= 0xD7A3;  // decomposed by rule, not by table
      if ((cp >= 0xD800 && cp <= 0xDFFF) ||
          (!hangul_syllable &&
           utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->decomp_seqindex == UINT16_MAX)) {
        continue;
      }
      int boundclass = 0;
      const utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), buf, 32,
                                                         UTF8PROC_DECOMPOSE, &boundclass);
      if (n < 1 || n > 32) continue;
      if (n == 1 && static_cast<char32_t>(buf[0]) == cp) continue;
      decomposed_first[cp] = static_cast<char32_t>(buf[0]);
      for (utf8proc_ssize_t k = 1; k < n; ++k) second[static_cast<size_t>(buf[k])] = true;
    }
    auto starter = [&](char32_t cp) {
      return !second[cp] && utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->combining_class == 0;
    };
    std::string utf8, nfc;
    for (char32_t cp = 0; cp < kCodepointLimit; ++cp) {
      if ((cp >= 0xD800 && cp <= 0xDFFF) || !starter(cp)) continue;
      if (decomposed_first[cp] != 0) {
        if (!starter(decomposed_first[cp])) continue;
        utf8.clear();
        nfc.clear();
        AppendUtf8(cp, &utf8);
        if (!AppendUtf8procMap(utf8, NormalizationOptions(NormalizationForm::kNfc), &nfc).ok() || nfc != utf8) {
          continue;
        }
      }
      bits_[cp / 64] |= uint64_t{1} << (cp % 64);
    }
  }
  bool Inert(char32_t cp) const { return (bits_[cp / 64] >> (cp % 64)) & 1; }

 private:
  std::vector<uint64_t> bits_;
};

const NfcInertTable& NfcInert() {
  static const NfcInertTable* table = new NfcInertTable();
  return *table;
}

// NFC through utf8proc, but only for the stretches that hold a code point
// that is not NFC-inert (from the inert code point before it to the next
// one); everything else is copied.
absl::StatusOr<std::string> NormalizeNfc(absl::string_view text) {
  const NfcInertTable& inert = NfcInert();
  const int options = NormalizationOptions(NormalizationForm::kNfc);
  std::string out;
  out.reserve(text.size());
  size_t copied = 0;     // text[0, copied) is done
  size_t boundary = 0;   // start of the last inert code point (a place to cut)
  size_t i = 0;
  auto next_inert = [&](size_t* pos, bool* ok) {  // advances over one code point
    const auto c = static_cast<unsigned char>(text[*pos]);
    if (c < 0x80) {
      ++*pos;
      return true;
    }
    bool incomplete;
    const int len = Classify(text, *pos, &incomplete);
    if (len < 0) {
      *ok = false;
      return false;
    }
    size_t p = *pos;
    const char32_t cp = NextCodepoint(text, &p);
    *pos += static_cast<size_t>(len);
    return inert.Inert(cp);
  };
  while (i < text.size()) {
    const size_t start = i;
    bool ok = true;
    if (next_inert(&i, &ok)) {
      boundary = start;
      continue;
    }
    if (!ok) return absl::InvalidArgumentError("unicode normalization failed: Invalid UTF-8 string");
    size_t end = i;
    while (end < text.size()) {
      size_t probe = end;
      if (next_inert(&probe, &ok)) break;
      if (!ok) return absl::InvalidArgumentError("unicode normalization failed: Invalid UTF-8 string");
      end = probe;
    }
    out.append(text.data() + copied, boundary - copied);
    RETURN_IF_ERROR(AppendUtf8procMap(text.substr(boundary, end - boundary), options, &out));
    copied = end;
    boundary = end;
    i = end;
  }
  out.append(text.data() + copied, text.size() - copied);
  return out;
}

}  // namespace

void PrepareNfc() { NfcInert(); }

absl::StatusOr<std::string> Normalize(absl::string_view text, NormalizationForm form) {
  bool ascii = true;
  for (char c : text) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) return std::string(text);  // every form leaves ASCII unchanged
  if (form == NormalizationForm::kNfc) return NormalizeNfc(text);
  std::string out;
  RETURN_IF_ERROR(AppendUtf8procMap(text, NormalizationOptions(form), &out));
  return out;
}

std::string ToLowercase(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
      ++i;
      continue;
    }
    const char32_t cp = NextCodepoint(text, &i);
    if (cp == 0x130) {  // the one unconditional multi-character lowercase mapping
      out += "i\xCC\x87";
      continue;
    }
    AppendUtf8(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))), &out);
  }
  return out;
}

bool IsWhitespace(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

bool IsNumeric(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

bool IsPunctuation(char32_t cp) {
  if (cp < 0x80) return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

bool IsWordChar(char32_t cp) {
  if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
  if (cp == 0x200C || cp == 0x200D) return true;
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
         (cat >= UTF8PROC_CATEGORY_MN && cat <= UTF8PROC_CATEGORY_ME) || cat == UTF8PROC_CATEGORY_ND ||
         cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_PC;
}

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

void AppendByteLevel(absl::string_view bytes, std::string* out) {
  const auto& table = ByteUtf8Table();
  size_t length = 0;
  for (char c : bytes) length += table[static_cast<unsigned char>(c)].length;
  const size_t old_size = out->size();
  out->resize(old_size + length);  // one allocation at most
  char* p = out->data() + old_size;
  for (char c : bytes) {
    const ByteUtf8& e = table[static_cast<unsigned char>(c)];
    p[0] = e.bytes[0];
    if (e.length == 2) p[1] = e.bytes[1];
    p += e.length;
  }
}

}  // namespace moe::tokenizer
