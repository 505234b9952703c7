#include "gateway/generate_call.h"

#include "absl/strings/str_cat.h"

namespace moe {

absl::StatusOr<moe::internal::v1::RouterGenerateRequest> BuildRouterRequest(
    const moe::v1::GenerateRequest& request, const tokenizer::Tokenizer& tokenizer,
    const moe::v1::ModelInfo& info, const std::string& request_id) {
  moe::internal::v1::RouterGenerateRequest out;
  out.set_request_id(request_id);
  switch (request.prompt_case()) {
    case moe::v1::GenerateRequest::kText: {
      tokenizer::EncodeOptions eo;
      eo.add_special_tokens = request.add_special_tokens();
      eo.allow_special = request.allow_special_tokens();
      absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(request.text(), eo);
      if (!ids.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("text: ", ids.status().message()));
      }
      if (ids->empty()) return absl::InvalidArgumentError("text: the prompt encodes to no tokens");
      for (int32_t id : *ids) out.add_prompt_ids(static_cast<uint32_t>(id));
      break;
    }
    case moe::v1::GenerateRequest::kTokenIds: {
      if (request.token_ids().ids().empty()) {
        return absl::InvalidArgumentError("token_ids: at least one token id is required");
      }
      for (uint32_t id : request.token_ids().ids()) {
        if (id >= info.vocab_size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("token_ids: id ", id, " is outside the vocabulary [0, ", info.vocab_size(), ")"));
        }
        out.add_prompt_ids(id);
      }
      break;
    }
    case moe::v1::GenerateRequest::PROMPT_NOT_SET:
      return absl::InvalidArgumentError("prompt: set either text or token_ids");
  }
  if (request.has_max_tokens()) {
    if (request.max_tokens() < 1) {
      return absl::InvalidArgumentError(absl::StrCat("max_tokens: must be >= 1, got ", request.max_tokens()));
    }
    const int64_t total = static_cast<int64_t>(out.prompt_ids_size()) + request.max_tokens();
    if (total > info.context_length()) {
      return absl::InvalidArgumentError(absl::StrCat("max_tokens: prompt (", out.prompt_ids_size(),
                                                     " tokens) + max_tokens (", request.max_tokens(),
                                                     ") exceeds the context of ", info.context_length(), " tokens"));
    }
    out.set_max_tokens(request.max_tokens());
  } else if (static_cast<uint32_t>(out.prompt_ids_size()) >= info.context_length()) {
    return absl::InvalidArgumentError(absl::StrCat("prompt: ", out.prompt_ids_size(),
                                                   " tokens leave no room in the context of ",
                                                   info.context_length(), " tokens"));
  }
  for (uint32_t id : request.stop_token_ids()) {
    if (id >= info.vocab_size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("stop_token_ids: id ", id, " is outside the vocabulary [0, ", info.vocab_size(), ")"));
    }
    out.add_stop_token_ids(id);
  }
  *out.mutable_sampling() = request.sampling();
  return out;
}

absl::StatusOr<moe::v1::GenerateResponse> ResponseTranslator::Translate(
    const moe::internal::v1::RouterGenerateResponse& in, bool* final) {
  moe::v1::GenerateResponse out;
  out.set_request_id(request_id_);
  std::string text;
  for (const auto& t : in.tokens()) {
    absl::StatusOr<std::string> delta = decoder_.Push(static_cast<int32_t>(t.id()));
    if (!delta.ok()) return absl::InternalError(absl::StrCat("router sent ", delta.status().message()));
    text += *delta;
    *out.add_tokens() = t;
  }
  *final = in.finish_reason() != moe::v1::FINISH_REASON_UNSPECIFIED;
  if (*final) {
    text += decoder_.Finish();
    out.set_finish_reason(in.finish_reason());
    out.mutable_usage()->set_prompt_tokens(in.prompt_tokens());
    out.mutable_usage()->set_completion_tokens(in.completion_tokens());
  }
  out.set_text(std::move(text));
  return out;
}

}  // namespace moe
