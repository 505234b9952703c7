#include "gateway/tokenizer/post_processor.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "gateway/tokenizer/json_util.h"

namespace moe::tokenizer {
namespace {

// One piece of a template: the sequence itself (empty `ids`) or special ids.
struct TemplatePiece {
  bool is_sequence = false;
  std::vector<int32_t> ids;
};

class TemplateProcessor : public PostProcessor {
 public:
  explicit TemplateProcessor(std::vector<TemplatePiece> single) : single_(std::move(single)) {}
  void Process(bool add_special_tokens, std::vector<int32_t>* ids) const override {
    if (!add_special_tokens) return;
    std::vector<int32_t> out;
    out.reserve(ids->size() + 4);
    for (const TemplatePiece& p : single_) {
      if (p.is_sequence) {
        out.insert(out.end(), ids->begin(), ids->end());
      } else {
        out.insert(out.end(), p.ids.begin(), p.ids.end());
      }
    }
    *ids = std::move(out);
  }

 private:
  std::vector<TemplatePiece> single_;
};

class NoOpProcessor : public PostProcessor {
 public:
  void Process(bool, std::vector<int32_t>*) const override {}
};

class SequenceProcessor : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> parts) : parts_(std::move(parts)) {}
  void Process(bool add_special_tokens, std::vector<int32_t>* ids) const override {
    for (const auto& p : parts_) p->Process(add_special_tokens, ids);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> parts_;
};

absl::StatusOr<std::vector<TemplatePiece>> ParseTemplate(const Json& j, absl::string_view where) {
  const Json* single = FindField(j, "single");
  if (single == nullptr || !single->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".single is missing or not an array"));
  }
  const Json* specials = FindField(j, "special_tokens");
  std::vector<TemplatePiece> pieces;
  for (size_t i = 0; i < single->size(); ++i) {
    const std::string at = absl::StrCat(where, ".single[", i, "]");
    const Json& item = (*single)[i];
    if (const Json* seq = FindField(item, "Sequence"); seq != nullptr) {
      ASSIGN_OR_RETURN(const std::string id, GetString(*seq, "id", absl::StrCat(at, ".Sequence")));
      if (id != "A") {
        return absl::InvalidArgumentError(absl::StrCat(at, ": sequence '", id, "' in a single-sequence template"));
      }
      pieces.push_back({/*is_sequence=*/true, {}});
      continue;
    }
    const Json* special = FindField(item, "SpecialToken");
    if (special == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(at, " is neither a Sequence nor a SpecialToken"));
    }
    ASSIGN_OR_RETURN(const std::string name, GetString(*special, "id", absl::StrCat(at, ".SpecialToken")));
    const Json* entry = specials == nullptr ? nullptr : FindField(*specials, name);
    const Json* ids = entry == nullptr ? nullptr : FindField(*entry, "ids");
    if (ids == nullptr || !ids->is_array()) {
      return absl::InvalidArgumentError(
          absl::StrCat(at, ": special token '", name, "' has no ids in ", where, ".special_tokens"));
    }
    TemplatePiece p;
    for (const Json& id : *ids) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > (int64_t{1} << 31) - 1) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".special_tokens['", name, "'].ids holds ", id.dump(), ", not a token id"));
      }
      p.ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
    pieces.push_back(std::move(p));
  }
  return pieces;
}

// BertProcessing / RobertaProcessing: "cls": ["[CLS]", 101], "sep": ["[SEP]", 102].
absl::StatusOr<int32_t> PairId(const Json& j, absl::string_view key, absl::string_view where) {
  const Json* f = FindField(j, key);
  if (f == nullptr || !f->is_array() || f->size() != 2 || !(*f)[1].is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat(JsonPath(where, key), " must be [token, id]"));
  }
  return static_cast<int32_t>((*f)[1].get<int64_t>());
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostProcessor>> MakePostProcessor(const Json& j, absl::string_view where) {
  if (j.is_null()) return nullptr;
  ASSIGN_OR_RETURN(const std::string type, ComponentType(j, where));
  if (type == "TemplateProcessing") {
    ASSIGN_OR_RETURN(auto single, ParseTemplate(j, where));
    return std::make_unique<TemplateProcessor>(std::move(single));
  }
  if (type == "ByteLevel") return std::make_unique<NoOpProcessor>();
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    ASSIGN_OR_RETURN(const int32_t cls, PairId(j, "cls", where));
    ASSIGN_OR_RETURN(const int32_t sep, PairId(j, "sep", where));
    std::vector<TemplatePiece> single = {{false, {cls}}, {true, {}}, {false, {sep}}};
    return std::make_unique<TemplateProcessor>(std::move(single));
  }
  if (type == "Sequence") {
    const Json* list = FindField(j, "processors");
    if (list == nullptr || !list->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".processors is missing or not an array"));
    }
    std::vector<std::unique_ptr<PostProcessor>> parts;
    for (size_t i = 0; i < list->size(); ++i) {
      ASSIGN_OR_RETURN(auto part, MakePostProcessor((*list)[i], absl::StrCat(where, ".processors[", i, "]")));
      if (part != nullptr) parts.push_back(std::move(part));
    }
    return std::make_unique<SequenceProcessor>(std::move(parts));
  }
  return Unsupported(where, type);
}

}  // namespace moe::tokenizer
