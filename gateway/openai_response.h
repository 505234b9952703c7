// OpenAI-compatible response bodies built from the gateway's own messages:
// a moe.v1.CompleteResponse becomes a `text_completion` or `chat.completion`
// object; a moe.v1.GenerateResponse stream becomes server-sent events
// (`data: {chunk}\n\n` ... `data: [DONE]\n\n`); an absl::Status becomes
// {"error": {"message", "type", "param", "code"}} with its HTTP status.
//
// No transport code. A StreamEncoder belongs to one request (not
// thread-safe); the free functions are thread-safe.
#ifndef MOE_GATEWAY_OPENAI_RESPONSE_H_
#define MOE_GATEWAY_OPENAI_RESPONSE_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "gateway/openai_request.h"
#include "gateway/tokenizer/tokenizer.h"
#include "moe/v1/inference.pb.h"

namespace moe {

// What every response object of one request shares.
struct OpenAiResponseContext {
  std::string id;        // "cmpl-..." or "chatcmpl-..."
  int64_t created = 0;   // Unix seconds
  std::string model;
  OpenAiEndpoint endpoint = OpenAiEndpoint::kCompletions;
  bool logprobs = false;  // include log-probabilities (with top_logprobs alternatives)
  int top_logprobs = 0;
  const tokenizer::Tokenizer* tokenizer = nullptr;  // token strings in logprobs; not owned
};

// JSON text for HTTP bodies and events: compact, invalid UTF-8 replaced by
// U+FFFD (token strings and cut text must never make the dump throw).
std::string DumpJson(const OpenAiJson& value);

// "stop", "length", "abort" (cancelled), or null while unfinished.
OpenAiJson FinishReasonJson(moe::v1::FinishReason reason);

// The non-streamed response object.
OpenAiJson CompletionResponseJson(const OpenAiResponseContext& context, const moe::v1::CompleteResponse& response);

// One server-sent event carrying `data` (exact framing: "data: <json>\n\n").
std::string SseEvent(const OpenAiJson& data);
inline constexpr char kSseDone[] = "data: [DONE]\n\n";

// Turns the Generate stream of one request into SSE events.
class StreamEncoder {
 public:
  StreamEncoder(OpenAiResponseContext context, bool include_usage, int n);

  // Events to send before the first message: chat sends each choice's
  // {"role": "assistant", "content": ""} delta first, as OpenAI does.
  std::string Start();
  // Events for one message (none when it carries nothing for the client).
  std::string Encode(const moe::v1::GenerateResponse& message);
  // The end of a successful stream: the usage chunk when asked, then [DONE].
  std::string Finish();
  // The end of a failed stream: an {"error": ...} event, then [DONE].
  static std::string Error(const absl::Status& status, const OpenAiRequest* request);

 private:
  OpenAiJson Chunk() const;  // id, object, created, model (+ usage: null)
  OpenAiJson LogprobsFor(const moe::v1::GenerateResponse& message);

  OpenAiResponseContext context_;
  bool include_usage_;
  int n_;
  moe::v1::Usage usage_;
  std::map<uint32_t, int64_t> text_offset_;  // completions logprobs: bytes of tokens so far, per choice
};

// HTTP status and body for an error. INVALID_ARGUMENT 400 with `param` the
// field the message starts with ("max_tokens: ..."), renamed to the OpenAI
// field when `request` is known; UNAUTHENTICATED 401; NOT_FOUND 404 (param
// "model"); RESOURCE_EXHAUSTED 429; UNAVAILABLE 503; DEADLINE_EXCEEDED 504;
// FAILED_PRECONDITION 400; anything else 500.
struct HttpError {
  int http_status = 500;
  OpenAiJson body;
};
HttpError ToHttpError(const absl::Status& status, const OpenAiRequest* request);

}  // namespace moe

#endif  // MOE_GATEWAY_OPENAI_RESPONSE_H_
