#include "gateway/generate_call.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "proto/sampling_convert.h"

namespace moe {
namespace {

absl::Status Invalid(const std::string& msg) { return absl::InvalidArgumentError(msg); }

}  // namespace

absl::StatusOr<PreparedRequest> PrepareRequest(const moe::v1::GenerateRequest& request,
                                               const tokenizer::Tokenizer& tokenizer,
                                               const moe::v1::ModelInfo& info, const std::string& request_id,
                                               const RequestLimits& limits, bool streaming) {
  PreparedRequest p;
  p.request_id = request_id;
  auto& out = p.router;
  out.set_request_id(request_id);
  switch (request.prompt_case()) {
    case moe::v1::GenerateRequest::kText: {
      tokenizer::EncodeOptions eo;
      eo.add_special_tokens = request.add_special_tokens();
      eo.allow_special = request.allow_special_tokens();
      absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(request.text(), eo);
      if (!ids.ok()) return Invalid(absl::StrCat("text: ", ids.status().message()));
      if (ids->empty()) return Invalid("text: the prompt encodes to no tokens");
      for (int32_t id : *ids) out.add_prompt_ids(static_cast<uint32_t>(id));
      break;
    }
    case moe::v1::GenerateRequest::kTokenIds: {
      if (request.token_ids().ids().empty()) return Invalid("token_ids: at least one token id is required");
      for (uint32_t id : request.token_ids().ids()) {
        if (id >= info.vocab_size()) {
          return Invalid(absl::StrCat("token_ids: id ", id, " is outside the vocabulary [0, ", info.vocab_size(), ")"));
        }
        out.add_prompt_ids(id);
      }
      break;
    }
    case moe::v1::GenerateRequest::PROMPT_NOT_SET:
      return Invalid("prompt: set either text or token_ids");
  }
  const int64_t prompt_len = out.prompt_ids_size();
  if (request.has_max_tokens()) {
    if (request.max_tokens() < 1) return Invalid(absl::StrCat("max_tokens: must be >= 1, got ", request.max_tokens()));
    if (prompt_len + request.max_tokens() > info.context_length()) {
      return Invalid(absl::StrCat("max_tokens: prompt (", prompt_len, " tokens) + max_tokens (", request.max_tokens(),
                                  ") exceeds the context of ", info.context_length(), " tokens"));
    }
    out.set_max_tokens(request.max_tokens());
  } else if (prompt_len >= info.context_length()) {
    return Invalid(absl::StrCat("prompt: ", prompt_len, " tokens leave no room in the context of ",
                                info.context_length(), " tokens"));
  }
  for (uint32_t id : request.stop_token_ids()) {
    if (id >= info.vocab_size()) {
      return Invalid(absl::StrCat("stop_token_ids: id ", id, " is outside the vocabulary [0, ", info.vocab_size(), ")"));
    }
    out.add_stop_token_ids(id);
  }
  if (absl::Status s = ValidateSamplingOptions(FromProto(request.sampling()), info.vocab_size()); !s.ok()) return s;
  *out.mutable_sampling() = request.sampling();

  p.n = request.has_n() ? request.n() : 1;
  if (p.n < 1 || p.n > limits.max_n) return Invalid(absl::StrCat("n: must be in [1, ", limits.max_n, "], got ", p.n));
  p.best_of = request.has_best_of() ? request.best_of() : p.n;
  if (p.best_of < p.n || p.best_of > limits.max_n) {
    return Invalid(absl::StrCat("best_of: must be in [n, ", limits.max_n, "] = [", p.n, ", ", limits.max_n, "], got ",
                                p.best_of));
  }
  if (streaming && p.best_of > p.n) {
    return Invalid("best_of: must equal n when streaming (use Complete to choose the best samples)");
  }
  out.set_n(static_cast<uint32_t>(p.best_of));
  if (request.stop_size() > limits.max_stop_strings) {
    return Invalid(absl::StrCat("stop: at most ", limits.max_stop_strings, " stop strings, got ", request.stop_size()));
  }
  for (int i = 0; i < request.stop_size(); ++i) {
    if (request.stop(i).empty()) return Invalid(absl::StrCat("stop: string ", i, " is empty"));
    p.stops.push_back(request.stop(i));
  }
  if (request.has_prompt_logprobs()) {
    if (request.prompt_logprobs() < 0 || request.prompt_logprobs() > 20) {
      return Invalid(absl::StrCat("prompt_logprobs: must be in [0, 20], got ", request.prompt_logprobs()));
    }
    out.set_prompt_logprobs(request.prompt_logprobs());
  }
  if (request.has_constraint()) {
    const moe::v1::Constraint& c = request.constraint();
    switch (c.kind_case()) {
      case moe::v1::Constraint::kRegex:
        if (c.regex().empty()) return Invalid("constraint.regex: empty");
        if (c.regex().size() > 65536) {
          return Invalid(absl::StrCat("constraint.regex: ", c.regex().size(), " bytes, at most 65536"));
        }
        break;
      case moe::v1::Constraint::kChoice:
        if (c.choice().options_size() < 1 || c.choice().options_size() > 1024) {
          return Invalid(absl::StrCat("constraint.choice.options: ", c.choice().options_size(),
                                      " options, must be 1 to 1024"));
        }
        for (int i = 0; i < c.choice().options_size(); ++i) {
          if (c.choice().options(i).empty() || c.choice().options(i).size() > 4096) {
            return Invalid(absl::StrCat("constraint.choice.options[", i, "]: ", c.choice().options(i).size(),
                                        " bytes, must be 1 to 4096"));
          }
        }
        break;
      case moe::v1::Constraint::kJsonSchema:
        if (c.json_schema().empty() || c.json_schema().size() > 65536) {
          return Invalid(absl::StrCat("constraint.json_schema: ", c.json_schema().size(), " bytes, must be 1 to 65536"));
        }
        break;
      case moe::v1::Constraint::kJsonObject:
        if (!c.json_object()) return Invalid("constraint.json_object: must be true when given");
        break;
      case moe::v1::Constraint::kGrammar:
        if (c.grammar().empty() || c.grammar().size() > 65536) {
          return Invalid(absl::StrCat("constraint.grammar: ", c.grammar().size(), " bytes, must be 1 to 65536"));
        }
        break;
      case moe::v1::Constraint::KIND_NOT_SET:
        break;
    }
    if (c.has_max_whitespace()) {
      if (c.kind_case() != moe::v1::Constraint::kJsonSchema && c.kind_case() != moe::v1::Constraint::kJsonObject) {
        return Invalid("constraint.max_whitespace: only with json_schema or json_object");
      }
      if (c.max_whitespace() < 0 || c.max_whitespace() > 128) {
        return Invalid(absl::StrCat("constraint.max_whitespace: ", c.max_whitespace(), ", must be 0 to 128"));
      }
    }
    if (c.kind_case() != moe::v1::Constraint::KIND_NOT_SET) *out.mutable_constraint() = c;
  }
  p.skip_special_tokens = request.has_skip_special_tokens() ? request.skip_special_tokens() : true;
  return p;
}

ResponseTranslator::ResponseTranslator(const tokenizer::Tokenizer* tokenizer, const PreparedRequest& request)
    : request_id_(request.request_id),
      n_(request.n),
      // Known here: a sample ended by a stop string never reads the router's
      // last message, which is the one that reports the prompt's length.
      prompt_tokens_(static_cast<uint32_t>(request.router.prompt_ids_size())),
      samples_(request.best_of),
      remaining_(request.best_of) {
  for (size_t i = 0; i < samples_.size(); ++i) {
    samples_[i].decoder = std::make_unique<tokenizer::StreamDecoder>(tokenizer, request.skip_special_tokens);
    samples_[i].stop = std::make_unique<StopMatcher>(request.stops);
    samples_[i].choice.set_index(static_cast<uint32_t>(i));
  }
}

absl::StatusOr<ResponseTranslator::Output> ResponseTranslator::Translate(
    const moe::internal::v1::RouterGenerateResponse& in) {
  Output out;
  if (in.index() >= samples_.size()) {
    return absl::InternalError(absl::StrCat("router sent sample ", in.index(), " of ", samples_.size()));
  }
  Sample& s = samples_[in.index()];
  if (s.done) return out;  // a sample already ended by a stop string
  moe::v1::GenerateResponse msg;
  msg.set_request_id(request_id_);
  msg.set_index(in.index());
  for (const auto& p : in.prompt_logprobs()) {
    *msg.add_prompt_tokens() = p;
    prompt_logprobs_.push_back(p);
  }
  std::string text;
  for (const auto& t : in.tokens()) {
    absl::StatusOr<std::string> delta = s.decoder->Push(static_cast<int32_t>(t.id()));
    if (!delta.ok()) return absl::InternalError(absl::StrCat("router sent ", delta.status().message()));
    *msg.add_tokens() = t;
    *s.choice.add_tokens() = t;
    ++s.completion_tokens;
    s.cumulative_logprob += t.logprob();
    text += s.stop->Push(*delta);
    if (s.stop->matched()) break;
  }
  const bool router_finished = in.finish_reason() != moe::v1::FINISH_REASON_UNSPECIFIED;
  if (s.stop->matched()) {
    msg.set_finish_reason(moe::v1::FINISH_REASON_STOP);
    msg.set_matched_stop(s.stop->matched_stop());
    s.choice.set_matched_stop(s.stop->matched_stop());
    if (!router_finished) out.stopped_sample = in.index();
  } else if (router_finished) {
    text += s.stop->Push(s.decoder->Finish());
    text += s.stop->Finish();
    msg.set_finish_reason(in.finish_reason());
  }
  s.choice.mutable_text()->append(text);
  msg.set_text(std::move(text));
  if (msg.finish_reason() != moe::v1::FINISH_REASON_UNSPECIFIED) {
    s.done = true;
    s.choice.set_finish_reason(msg.finish_reason());
    s.choice.set_cumulative_logprob(s.cumulative_logprob);
    if (--remaining_ == 0) {
      out.all_done = true;
      msg.mutable_usage()->set_prompt_tokens(prompt_tokens_);
      uint32_t completion = 0;
      for (const Sample& x : samples_) completion += x.completion_tokens;
      msg.mutable_usage()->set_completion_tokens(completion);
    }
  }
  if (msg.tokens_size() > 0 || !msg.text().empty() || msg.finish_reason() != moe::v1::FINISH_REASON_UNSPECIFIED ||
      msg.prompt_tokens_size() > 0) {
    out.message = std::move(msg);
  }
  return out;
}

moe::v1::CompleteResponse ResponseTranslator::Result() const {
  moe::v1::CompleteResponse r;
  r.set_request_id(request_id_);
  std::vector<size_t> order(samples_.size());
  std::iota(order.begin(), order.end(), 0);
  if (static_cast<int>(samples_.size()) > n_) {
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return samples_[a].cumulative_logprob > samples_[b].cumulative_logprob;
    });
    order.resize(n_);
  }
  uint32_t completion = 0;
  for (size_t rank = 0; rank < order.size(); ++rank) {
    moe::v1::Choice c = samples_[order[rank]].choice;
    c.set_index(static_cast<uint32_t>(rank));
    *r.add_choices() = std::move(c);
  }
  for (const Sample& s : samples_) completion += s.completion_tokens;
  r.mutable_usage()->set_prompt_tokens(prompt_tokens_);
  r.mutable_usage()->set_completion_tokens(completion);
  for (const auto& p : prompt_logprobs_) *r.add_prompt_tokens() = p;
  return r;
}

}  // namespace moe
