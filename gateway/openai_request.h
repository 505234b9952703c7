// OpenAI-compatible request bodies (/v1/completions, /v1/chat/completions)
// turned into the gateway's own moe.v1.GenerateRequest, so that HTTP requests
// take the same validation, tokenization and router path as gRPC ones. Only
// the OpenAI field names and JSON types are checked here; ranges are checked
// once, by PrepareRequest, whose INVALID_ARGUMENT messages ToOpenAiParam
// renames to the OpenAI fields.
//
// No transport code: pure functions over JSON, tested in
// openai_request_test.cc. Thread-safe.
#ifndef MOE_GATEWAY_OPENAI_REQUEST_H_
#define MOE_GATEWAY_OPENAI_REQUEST_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/bounded_json.h"
#include "gateway/chat_template/chat_template.h"
#include "moe/v1/inference.pb.h"
#include "nlohmann/json.hpp"

namespace moe {

using OpenAiJson = nlohmann::ordered_json;  // key order kept (chat templates print messages with tojson)

enum class OpenAiEndpoint { kCompletions, kChatCompletions };

struct OpenAiRequest {
  OpenAiEndpoint endpoint = OpenAiEndpoint::kCompletions;
  moe::v1::GenerateRequest request;  // for GatewayService Generate / Complete
  std::string model;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // Log-probabilities in the response: completions `logprobs: K` (K top
  // alternatives, 0..5); chat `logprobs: true` with `top_logprobs: K` (0..20).
  bool logprobs = false;
  int top_logprobs = 0;
  // The name the client used for the token limit ("max_tokens" or, for chat,
  // "max_completion_tokens"): errors about the limit name it.
  std::string max_tokens_param = "max_tokens";
  std::string user;  // for logs only
};

// A request body parsed within kRequestJsonLimits, in time linear in its
// size: INVALID_ARGUMENT "body: invalid JSON (...)", "<field>: nested deeper
// than 64 levels" or "body: more than N JSON values".
inline constexpr JsonLimits kRequestJsonLimits{/*max_depth=*/64, /*max_values=*/size_t{1} << 22};
absl::StatusOr<OpenAiJson> ParseOpenAiBody(absl::string_view body);

// Completions: `prompt` is a string, a list of one string, a list of token
// ids, or a list of one list of token ids. Default max_tokens 16 (OpenAI).
// INVALID_ARGUMENT "field: what is wrong" on type errors and unsupported
// options (several prompts, echo, suffix).
absl::StatusOr<OpenAiRequest> ParseCompletionRequest(const OpenAiJson& body);

// Chat: `messages` rendered with `chat_template` (add_generation_prompt true
// unless the body says otherwise; `tools` and `chat_template_kwargs` passed
// to the template), the rendered text sent with special tokens recognised and
// none added. A template that failed to load gives FAILED_PRECONDITION naming
// why; render errors (e.g. the template's raise_exception) INVALID_ARGUMENT
// "messages: ...".
absl::StatusOr<OpenAiRequest> ParseChatRequest(const OpenAiJson& body,
                                               const absl::StatusOr<chat::ChatTemplate>& chat_template);

// The OpenAI name of a field that a gateway error message starts with
// ("text" -> "prompt" or "messages", "logprobs" -> "top_logprobs" for chat,
// "max_tokens" -> the name the client used); other names unchanged.
std::string ToOpenAiParam(absl::string_view field, const OpenAiRequest& request);

}  // namespace moe

#endif  // MOE_GATEWAY_OPENAI_REQUEST_H_
