#include "gateway/openai_response.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace moe {
namespace {

bool IsValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (int k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

// A token as shown in logprobs: the tokenizer's decoding of it alone (a
// token holding part of a UTF-8 character decodes to U+FFFD, as in vLLM),
// and that text's bytes; "bytes:\xNN..." should a decoding not be UTF-8.
struct TokenText {
  std::string text;
  std::vector<int> bytes;
};

TokenText TokenTextOf(const tokenizer::Tokenizer* tokenizer, uint32_t id) {
  TokenText t;
  std::string raw;
  if (tokenizer != nullptr) {
    absl::StatusOr<std::string> decoded =
        tokenizer->Decode(std::vector<int32_t>{static_cast<int32_t>(id)}, /*skip_special_tokens=*/false);
    if (decoded.ok()) raw = std::move(*decoded);
  }
  for (unsigned char c : raw) t.bytes.push_back(c);
  if (IsValidUtf8(raw)) {
    t.text = std::move(raw);
  } else {
    t.text = "bytes:";
    for (unsigned char c : raw) absl::StrAppendFormat(&t.text, "\\x%02x", c);
  }
  return t;
}

OpenAiJson ChatTokenJson(const tokenizer::Tokenizer* tokenizer, uint32_t id, double logprob) {
  TokenText t = TokenTextOf(tokenizer, id);
  OpenAiJson j = OpenAiJson::object();
  j["token"] = std::move(t.text);
  j["logprob"] = logprob;
  j["bytes"] = std::move(t.bytes);
  return j;
}

// Chat: {"content": [{token, logprob, bytes, top_logprobs: [...]}]}.
OpenAiJson ChatLogprobs(const OpenAiResponseContext& c,
                        const google::protobuf::RepeatedPtrField<moe::v1::GeneratedToken>& tokens) {
  OpenAiJson content = OpenAiJson::array();
  for (const moe::v1::GeneratedToken& t : tokens) {
    OpenAiJson entry = ChatTokenJson(c.tokenizer, t.id(), t.logprob());
    OpenAiJson top = OpenAiJson::array();
    for (int k = 0; k < t.top_logprobs_size() && k < c.top_logprobs; ++k) {
      top.push_back(ChatTokenJson(c.tokenizer, t.top_logprobs(k).id(), t.top_logprobs(k).logprob()));
    }
    entry["top_logprobs"] = std::move(top);
    content.push_back(std::move(entry));
  }
  OpenAiJson j = OpenAiJson::object();
  j["content"] = std::move(content);
  return j;
}

// Completions: {tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset}.
OpenAiJson CompletionLogprobs(const OpenAiResponseContext& c,
                              const google::protobuf::RepeatedPtrField<moe::v1::GeneratedToken>& tokens,
                              int64_t* offset) {
  OpenAiJson j = OpenAiJson::object();
  j["tokens"] = OpenAiJson::array();
  j["token_logprobs"] = OpenAiJson::array();
  j["top_logprobs"] = OpenAiJson::array();
  j["text_offset"] = OpenAiJson::array();
  for (const moe::v1::GeneratedToken& t : tokens) {
    TokenText text = TokenTextOf(c.tokenizer, t.id());
    j["text_offset"].push_back(*offset);
    *offset += static_cast<int64_t>(text.bytes.size());
    j["tokens"].push_back(std::move(text.text));
    j["token_logprobs"].push_back(t.logprob());
    OpenAiJson top = OpenAiJson::object();
    for (int k = 0; k < t.top_logprobs_size() && k < c.top_logprobs; ++k) {
      top[TokenTextOf(c.tokenizer, t.top_logprobs(k).id()).text] = t.top_logprobs(k).logprob();
    }
    j["top_logprobs"].push_back(std::move(top));
  }
  return j;
}

OpenAiJson UsageJson(const moe::v1::Usage& u) {
  OpenAiJson j = OpenAiJson::object();
  j["prompt_tokens"] = u.prompt_tokens();
  j["completion_tokens"] = u.completion_tokens();
  j["total_tokens"] = u.prompt_tokens() + u.completion_tokens();
  return j;
}

OpenAiJson StopReason(const std::string& matched_stop) {
  return matched_stop.empty() ? OpenAiJson(nullptr) : OpenAiJson(matched_stop);
}

bool IsChat(const OpenAiResponseContext& c) { return c.endpoint == OpenAiEndpoint::kChatCompletions; }

}  // namespace

std::string DumpJson(const OpenAiJson& value) {
  return value.dump(-1, ' ', /*ensure_ascii=*/false, OpenAiJson::error_handler_t::replace);
}

OpenAiJson FinishReasonJson(moe::v1::FinishReason reason) {
  switch (reason) {
    case moe::v1::FINISH_REASON_STOP:
      return "stop";
    case moe::v1::FINISH_REASON_LENGTH:
      return "length";
    case moe::v1::FINISH_REASON_CANCELLED:
      return "abort";
    default:
      return nullptr;
  }
}

OpenAiJson CompletionResponseJson(const OpenAiResponseContext& c, const moe::v1::CompleteResponse& response) {
  OpenAiJson j = OpenAiJson::object();
  j["id"] = c.id;
  j["object"] = IsChat(c) ? "chat.completion" : "text_completion";
  j["created"] = c.created;
  j["model"] = c.model;
  OpenAiJson choices = OpenAiJson::array();
  for (const moe::v1::Choice& choice : response.choices()) {
    OpenAiJson ch = OpenAiJson::object();
    ch["index"] = choice.index();
    if (IsChat(c)) {
      OpenAiJson message = OpenAiJson::object();
      message["role"] = "assistant";
      message["content"] = choice.text();
      ch["message"] = std::move(message);
      ch["logprobs"] = c.logprobs ? ChatLogprobs(c, choice.tokens()) : OpenAiJson(nullptr);
    } else {
      ch["text"] = choice.text();
      int64_t offset = 0;
      ch["logprobs"] = c.logprobs ? CompletionLogprobs(c, choice.tokens(), &offset) : OpenAiJson(nullptr);
    }
    ch["finish_reason"] = FinishReasonJson(choice.finish_reason());
    ch["stop_reason"] = StopReason(choice.matched_stop());  // vLLM's extension: the stop string matched
    choices.push_back(std::move(ch));
  }
  j["choices"] = std::move(choices);
  j["usage"] = UsageJson(response.usage());
  return j;
}

std::string SseEvent(const OpenAiJson& data) { return absl::StrCat("data: ", DumpJson(data), "\n\n"); }

StreamEncoder::StreamEncoder(OpenAiResponseContext context, bool include_usage, int n)
    : context_(std::move(context)), include_usage_(include_usage), n_(n) {}

OpenAiJson StreamEncoder::Chunk() const {
  OpenAiJson j = OpenAiJson::object();
  j["id"] = context_.id;
  j["object"] = IsChat(context_) ? "chat.completion.chunk" : "text_completion";
  j["created"] = context_.created;
  j["model"] = context_.model;
  j["choices"] = OpenAiJson::array();
  // With include_usage every chunk has "usage": null but the last (OpenAI).
  if (include_usage_) j["usage"] = nullptr;
  return j;
}

std::string StreamEncoder::Start() {
  if (!IsChat(context_)) return "";
  std::string out;
  for (int i = 0; i < n_; ++i) {
    OpenAiJson chunk = Chunk();
    OpenAiJson choice = OpenAiJson::object();
    choice["index"] = i;
    choice["delta"] = {{"role", "assistant"}, {"content", ""}};
    choice["logprobs"] = nullptr;
    choice["finish_reason"] = nullptr;
    chunk["choices"].push_back(std::move(choice));
    out += SseEvent(chunk);
  }
  return out;
}

OpenAiJson StreamEncoder::LogprobsFor(const moe::v1::GenerateResponse& m) {
  if (!context_.logprobs || m.tokens_size() == 0) return nullptr;
  if (IsChat(context_)) return ChatLogprobs(context_, m.tokens());
  return CompletionLogprobs(context_, m.tokens(), &text_offset_[m.index()]);
}

std::string StreamEncoder::Encode(const moe::v1::GenerateResponse& m) {
  if (m.has_usage()) usage_ = m.usage();
  const bool finished = m.finish_reason() != moe::v1::FINISH_REASON_UNSPECIFIED;
  const bool has_logprobs = context_.logprobs && m.tokens_size() > 0;
  std::string out;
  if (IsChat(context_)) {
    // Content (and its logprobs) first, then the finish as its own chunk
    // with an empty delta, as OpenAI sends it.
    if (!m.text().empty() || has_logprobs) {
      OpenAiJson chunk = Chunk();
      OpenAiJson choice = OpenAiJson::object();
      choice["index"] = m.index();
      choice["delta"] = {{"content", m.text()}};
      choice["logprobs"] = LogprobsFor(m);
      choice["finish_reason"] = nullptr;
      chunk["choices"].push_back(std::move(choice));
      out += SseEvent(chunk);
    }
    if (finished) {
      OpenAiJson chunk = Chunk();
      OpenAiJson choice = OpenAiJson::object();
      choice["index"] = m.index();
      choice["delta"] = OpenAiJson::object();
      choice["logprobs"] = nullptr;
      choice["finish_reason"] = FinishReasonJson(m.finish_reason());
      choice["stop_reason"] = StopReason(m.matched_stop());
      chunk["choices"].push_back(std::move(choice));
      out += SseEvent(chunk);
    }
    return out;
  }
  if (m.text().empty() && !has_logprobs && !finished) return out;
  OpenAiJson chunk = Chunk();
  OpenAiJson choice = OpenAiJson::object();
  choice["index"] = m.index();
  choice["text"] = m.text();
  choice["logprobs"] = LogprobsFor(m);
  choice["finish_reason"] = FinishReasonJson(m.finish_reason());
  if (finished) choice["stop_reason"] = StopReason(m.matched_stop());
  chunk["choices"].push_back(std::move(choice));
  return SseEvent(chunk);
}

std::string StreamEncoder::Finish() {
  std::string out;
  if (include_usage_) {
    OpenAiJson chunk = Chunk();
    chunk["usage"] = UsageJson(usage_);
    out += SseEvent(chunk);
  }
  return out + kSseDone;
}

std::string StreamEncoder::Error(const absl::Status& status, const OpenAiRequest* request) {
  return SseEvent(ToHttpError(status, request).body) + kSseDone;
}

HttpError ToHttpError(const absl::Status& status, const OpenAiRequest* request) {
  HttpError e;
  OpenAiJson param = nullptr;
  const char* type = "server_error";
  OpenAiJson code = nullptr;
  std::string message(status.message());
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition: {
      e.http_status = 400;
      type = "invalid_request_error";
      // "field: what is wrong" names the field; a field is a word, possibly
      // with [i] and dots ("messages[0].content").
      const size_t colon = message.find(':');
      if (colon != std::string::npos && colon > 0 &&
          message.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.[]") >= colon) {
        std::string field = message.substr(0, colon);
        if (request != nullptr) {
          field = ToOpenAiParam(field, *request);
          message = absl::StrCat(field, message.substr(colon));
        }
        param = field;
      }
      break;
    }
    case absl::StatusCode::kUnauthenticated:
      e.http_status = 401;
      type = "authentication_error";
      code = "invalid_api_key";
      break;
    case absl::StatusCode::kPermissionDenied:
      e.http_status = 403;
      type = "permission_error";
      break;
    case absl::StatusCode::kNotFound:
      e.http_status = 404;
      type = "invalid_request_error";
      param = "model";
      code = "model_not_found";
      break;
    case absl::StatusCode::kResourceExhausted:
      e.http_status = 429;
      type = "rate_limit_error";
      code = "rate_limit_exceeded";
      break;
    case absl::StatusCode::kUnavailable:
      e.http_status = 503;
      type = "service_unavailable";
      break;
    case absl::StatusCode::kDeadlineExceeded:
      e.http_status = 504;
      type = "timeout";
      break;
    case absl::StatusCode::kUnimplemented:
      e.http_status = 501;
      type = "invalid_request_error";
      break;
    default:
      e.http_status = 500;
      break;
  }
  OpenAiJson error = OpenAiJson::object();
  error["message"] = message;
  error["type"] = type;
  error["param"] = std::move(param);
  error["code"] = std::move(code);
  e.body = OpenAiJson::object();
  e.body["error"] = std::move(error);
  return e;
}

}  // namespace moe
