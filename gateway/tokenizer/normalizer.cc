#include "gateway/tokenizer/normalizer.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "gateway/tokenizer/json_util.h"
#include "gateway/tokenizer/regex.h"
#include "gateway/tokenizer/unicode.h"
#include "utf8proc.h"

namespace moe::tokenizer {
namespace {

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalizationForm form) : form_(form) {
    if (form == NormalizationForm::kNfc) PrepareNfc();
  }
  absl::Status Normalize(std::string* text) const override {
    ASSIGN_OR_RETURN(*text, moe::tokenizer::Normalize(*text, form_));
    return absl::OkStatus();
  }

 private:
  NormalizationForm form_;
};

class LowercaseNormalizer : public Normalizer {
 public:
  absl::Status Normalize(std::string* text) const override {
    *text = ToLowercase(*text);
    return absl::OkStatus();
  }
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  absl::Status Normalize(std::string* text) const override {
    if (!text->empty()) *text = absl::StrCat(prefix_, *text);
    return absl::OkStatus();
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(MatchPattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  absl::Status Normalize(std::string* text) const override {
    ASSIGN_OR_RETURN(*text, pattern_.ReplaceAll(*text, content_));
    return absl::OkStatus();
  }

 private:
  MatchPattern pattern_;
  std::string content_;
};

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  absl::Status Normalize(std::string* text) const override {
    size_t begin = 0;
    size_t end = text->size();
    if (left_) {
      while (begin < end) {
        size_t next = begin;
        if (!IsWhitespace(NextCodepoint(*text, &next))) break;
        begin = next;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>((*text)[start]) & 0xC0) == 0x80) --start;
        size_t probe = start;
        if (!IsWhitespace(NextCodepoint(*text, &probe))) break;
        end = start;
      }
    }
    *text = text->substr(begin, end - begin);
    return absl::OkStatus();
  }

 private:
  bool left_, right_;
};

// Removes combining marks (category Mn), as the reference does after NFD.
class StripAccentsNormalizer : public Normalizer {
 public:
  absl::Status Normalize(std::string* text) const override {
    std::string out;
    out.reserve(text->size());
    for (size_t i = 0; i < text->size();) {
      const size_t start = i;
      const char32_t cp = NextCodepoint(*text, &i);
      if (utf8proc_category(static_cast<utf8proc_int32_t>(cp)) == UTF8PROC_CATEGORY_MN) continue;
      out.append(*text, start, i - start);
    }
    *text = std::move(out);
    return absl::OkStatus();
  }
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  absl::Status Normalize(std::string* text) const override {
    for (const auto& p : parts_) RETURN_IF_ERROR(p->Normalize(text));
    return absl::OkStatus();
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Normalizer>> MakeNormalizer(const Json& j, absl::string_view where) {
  if (j.is_null()) return nullptr;
  ASSIGN_OR_RETURN(const std::string type, ComponentType(j, where));
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormalizationForm::kNfc);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormalizationForm::kNfd);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormalizationForm::kNfkc);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormalizationForm::kNfkd);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
  if (type == "Prepend") {
    ASSIGN_OR_RETURN(std::string prepend, GetString(j, "prepend", where));
    return std::make_unique<PrependNormalizer>(std::move(prepend));
  }
  if (type == "Replace") {
    const Json* pattern = FindField(j, "pattern");
    if (pattern == nullptr) return absl::InvalidArgumentError(absl::StrCat(where, ".pattern is missing"));
    ASSIGN_OR_RETURN(MatchPattern p, MatchPattern::FromJson(*pattern, JsonPath(where, "pattern")));
    ASSIGN_OR_RETURN(std::string content, GetString(j, "content", where));
    return std::make_unique<ReplaceNormalizer>(std::move(p), std::move(content));
  }
  if (type == "Strip") {
    ASSIGN_OR_RETURN(const bool left, GetBoolOr(j, "strip_left", true, where));
    ASSIGN_OR_RETURN(const bool right, GetBoolOr(j, "strip_right", true, where));
    return std::make_unique<StripNormalizer>(left, right);
  }
  if (type == "Sequence") {
    const Json* list = FindField(j, "normalizers");
    if (list == nullptr || !list->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".normalizers is missing or not an array"));
    }
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (size_t i = 0; i < list->size(); ++i) {
      ASSIGN_OR_RETURN(auto part, MakeNormalizer((*list)[i], absl::StrCat(where, ".normalizers[", i, "]")));
      if (part != nullptr) parts.push_back(std::move(part));
    }
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  return Unsupported(where, type);
}

}  // namespace moe::tokenizer
