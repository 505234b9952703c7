#include "gateway/tokenizer/tokenizer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/bounded_json.h"
#include "core/status_macros.h"
#include "gateway/tokenizer/json_util.h"
#include "gateway/tokenizer/unicode.h"

namespace moe::tokenizer {
namespace {

absl::Status WithSource(const absl::Status& s, absl::string_view source) {
  return absl::Status(s.code(), absl::StrCat(source, ": ", s.message()));
}

const Json& FieldOrNull(const Json& j, const char* key) {
  static const Json kNull;
  const Json* f = FindField(j, key);
  return f == nullptr ? kNull : *f;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(absl::string_view json, absl::string_view source) {
  absl::StatusOr<Json> parsed = ParseBoundedJson<Json>(json, kFileJsonLimits, source);
  if (!parsed.ok()) return parsed.status();
  const Json j = std::move(*parsed);
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(source, ": not a JSON object"));
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  // The builders report through Status; the catch is a safety net for an
  // accessor that would throw on a shape they did not foresee.
  try {
    auto check = [&](absl::Status s) { return s.ok() ? s : WithSource(s, source); };
    auto normalizer = MakeNormalizer(FieldOrNull(j, "normalizer"), "normalizer");
    if (!normalizer.ok()) return check(normalizer.status());
    t->normalizer_ = std::move(*normalizer);
    auto pre_tokenizer = MakePreTokenizer(FieldOrNull(j, "pre_tokenizer"), "pre_tokenizer");
    if (!pre_tokenizer.ok()) return check(pre_tokenizer.status());
    t->pre_tokenizer_ = std::move(*pre_tokenizer);
    const Json* model = FindField(j, "model");
    if (model == nullptr) return absl::InvalidArgumentError(absl::StrCat(source, ": model is missing"));
    auto bpe = BpeModel::FromJson(*model, "model");
    if (!bpe.ok()) return check(bpe.status());
    t->model_ = std::move(*bpe);
    auto post = MakePostProcessor(FieldOrNull(j, "post_processor"), "post_processor");
    if (!post.ok()) return check(post.status());
    t->post_processor_ = std::move(*post);
    auto decoder = DecoderChain::FromJson(FieldOrNull(j, "decoder"), "decoder");
    if (!decoder.ok()) return check(decoder.status());
    t->decoder_ = std::move(*decoder);
    auto added = AddedVocabulary::FromJson(FieldOrNull(j, "added_tokens"), t->normalizer_.get(), "added_tokens");
    if (!added.ok()) return check(added.status());
    t->added_ = std::move(*added);
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": unexpected JSON shape: ", e.what()));
  }
  t->vocab_size_ = t->model_->id_bound();
  for (const AddedToken& a : t->added_.tokens()) t->vocab_size_ = std::max<int64_t>(t->vocab_size_, a.id + int64_t{1});
  return t;
}

absl::Status Tokenizer::EncodeText(absl::string_view text, bool at_input_start, const EncodeOptions& options,
                                   std::vector<int32_t>* ids) const {
  std::string normalized(text);
  if (normalizer_ != nullptr) RETURN_IF_ERROR(normalizer_->Normalize(&normalized));
  std::vector<TextSegment> segments;
  added_.Split(normalized, /*normalized_text=*/true, options.allow_special, &segments);
  std::vector<PreToken> pieces;
  std::vector<absl::string_view> words;
  for (const TextSegment& seg : segments) {
    if (seg.id >= 0) {
      ids->push_back(seg.id);
      continue;
    }
    pieces.clear();
    pieces.push_back({normalized.substr(seg.begin, seg.end - seg.begin), at_input_start && seg.begin == 0});
    if (pre_tokenizer_ != nullptr) RETURN_IF_ERROR(pre_tokenizer_->PreTokenize(&pieces));
    words.clear();
    for (const PreToken& p : pieces) words.push_back(p.text);
    RETURN_IF_ERROR(model_->TokenizeWords(words, ids));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(absl::string_view text, const EncodeOptions& options) const {
  RETURN_IF_ERROR(ValidateUtf8(text, "text to encode"));
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<TextSegment> segments;
  added_.Split(text, /*normalized_text=*/false, options.allow_special, &segments);
  for (const TextSegment& seg : segments) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
    } else {
      RETURN_IF_ERROR(EncodeText(text.substr(seg.begin, seg.end - seg.begin), seg.begin == 0, options, &ids));
    }
  }
  if (post_processor_ != nullptr) post_processor_->Process(options.add_special_tokens, &ids);
  return ids;
}

absl::StatusOr<const std::string*> Tokenizer::TokenForDecode(int32_t id) const {
  if (const AddedToken* a = added_.FindById(id); a != nullptr) return &a->content;
  if (const std::string* t = model_->IdToToken(id); t != nullptr) return t;
  if (id < 0 || id >= vocab_size_) {
    return absl::InvalidArgumentError(
        absl::StrCat("token id ", id, " is outside the vocabulary [0, ", vocab_size_, ")"));
  }
  return absl::InvalidArgumentError(absl::StrCat("token id ", id, " has no token in the vocabulary"));
}

absl::StatusOr<std::string> Tokenizer::Decode(absl::Span<const int32_t> ids, bool skip_special_tokens) const {
  std::unique_ptr<DecodePipeline> pipeline = decoder_.NewPipeline();
  for (const int32_t id : ids) {
    ASSIGN_OR_RETURN(const std::string* token, TokenForDecode(id));
    if (skip_special_tokens && IsSpecial(id)) continue;
    pipeline->PushToken(*token);
  }
  pipeline->Finish();
  RETURN_IF_ERROR(pipeline->status());
  return pipeline->TakeOutput();
}

int64_t Tokenizer::vocab_size() const { return vocab_size_; }

std::optional<int32_t> Tokenizer::TokenToId(absl::string_view token) const {
  if (auto id = added_.FindByContent(token); id.has_value()) return id;
  return model_->TokenToId(token);
}

absl::StatusOr<std::string> Tokenizer::IdToToken(int32_t id) const {
  ASSIGN_OR_RETURN(const std::string* token, TokenForDecode(id));
  return *token;
}

bool Tokenizer::IsSpecial(int32_t id) const {
  const AddedToken* a = added_.FindById(id);
  return a != nullptr && a->special;
}

StreamDecoder::StreamDecoder(const Tokenizer* tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer),
      skip_special_tokens_(skip_special_tokens),
      pipeline_(tokenizer->decoder_.NewPipeline()) {}

StreamDecoder::~StreamDecoder() = default;
StreamDecoder::StreamDecoder(StreamDecoder&&) noexcept = default;
StreamDecoder& StreamDecoder::operator=(StreamDecoder&&) noexcept = default;

absl::StatusOr<std::string> StreamDecoder::Push(int32_t id) {
  ASSIGN_OR_RETURN(const std::string* token, tokenizer_->TokenForDecode(id));
  if (skip_special_tokens_ && tokenizer_->IsSpecial(id)) return std::string();
  pipeline_->PushToken(*token);
  RETURN_IF_ERROR(pipeline_->status());
  return pipeline_->TakeOutput();
}

std::string StreamDecoder::Finish() {
  pipeline_->Finish();
  std::string rest = pipeline_->TakeOutput();
  pipeline_ = tokenizer_->decoder_.NewPipeline();  // ready for another stream
  return rest;
}

}  // namespace moe::tokenizer
