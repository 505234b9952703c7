#include "gateway/openai_response.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Splits an SSE body into its data payloads, checking the framing exactly:
// every event is "data: <payload>\n\n" and nothing else is in between.
std::vector<std::string> Events(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    EXPECT_EQ(body.compare(pos, 6, "data: "), 0) << "at " << pos << " in " << body;
    const size_t end = body.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos) << body;
    if (end == std::string::npos) break;
    const std::string payload = body.substr(pos + 6, end - pos - 6);
    EXPECT_EQ(payload.find('\n'), std::string::npos) << payload;
    out.push_back(payload);
    pos = end + 2;
  }
  return out;
}

class OpenAiResponseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = tokenizer::Tokenizer::FromDirectory(std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral");
    ASSERT_TRUE(t.ok()) << t.status();
    tok_ = std::move(*t);
  }
  OpenAiResponseContext Context(OpenAiEndpoint endpoint, bool logprobs = false, int top = 0) {
    OpenAiResponseContext c;
    c.id = endpoint == OpenAiEndpoint::kChatCompletions ? "chatcmpl-1" : "cmpl-1";
    c.created = 1700000000;
    c.model = "tiny-mixtral";
    c.endpoint = endpoint;
    c.logprobs = logprobs;
    c.top_logprobs = top;
    c.tokenizer = tok_.get();
    return c;
  }
  int32_t Id(const std::string& token) {
    auto id = tok_->TokenToId(token);
    EXPECT_TRUE(id.has_value()) << token;
    return id.value_or(0);
  }
  static moe::v1::GenerateResponse Message(uint32_t index, const std::string& text, uint32_t id, double lp,
                                           moe::v1::FinishReason finish = moe::v1::FINISH_REASON_UNSPECIFIED) {
    moe::v1::GenerateResponse m;
    m.set_index(index);
    m.set_text(text);
    auto* t = m.add_tokens();
    t->set_id(id);
    t->set_logprob(lp);
    m.set_finish_reason(finish);
    return m;
  }

  std::unique_ptr<tokenizer::Tokenizer> tok_;
};

TEST_F(OpenAiResponseTest, SseFramingIsExact) {
  EXPECT_EQ(SseEvent(OpenAiJson{{"a", 1}}), "data: {\"a\":1}\n\n");
  EXPECT_EQ(std::string(kSseDone), "data: [DONE]\n\n");
  // A newline inside a string stays escaped: an event is one line.
  EXPECT_EQ(SseEvent(OpenAiJson{{"t", "a\nb"}}), "data: {\"t\":\"a\\nb\"}\n\n");
}

TEST_F(OpenAiResponseTest, DumpReplacesInvalidUtf8) {
  EXPECT_EQ(DumpJson(OpenAiJson("ok \xE2")), "\"ok \xEF\xBF\xBD\"");
  EXPECT_EQ(DumpJson(OpenAiJson("\xED\x95\x9C")), "\"\xED\x95\x9C\"");  // UTF-8 stays as is
}

TEST_F(OpenAiResponseTest, ChatStreamSendsRoleContentFinishUsageDone) {
  StreamEncoder e(Context(OpenAiEndpoint::kChatCompletions), /*include_usage=*/true, /*n=*/1);
  std::string body = e.Start();
  body += e.Encode(Message(0, "Hel", 5, -0.5));
  body += e.Encode(Message(0, "", 6, -0.25));  // nothing for the client yet
  moe::v1::GenerateResponse last = Message(0, "lo", 7, -0.1, moe::v1::FINISH_REASON_LENGTH);
  last.mutable_usage()->set_prompt_tokens(4);
  last.mutable_usage()->set_completion_tokens(3);
  body += e.Encode(last);
  body += e.Finish();
  const std::vector<std::string> events = Events(body);
  ASSERT_EQ(events.size(), 6u) << body;
  const OpenAiJson role = OpenAiJson::parse(events[0]);
  EXPECT_EQ(role["object"], "chat.completion.chunk");
  EXPECT_EQ(role["id"], "chatcmpl-1");
  EXPECT_EQ(role["model"], "tiny-mixtral");
  EXPECT_EQ(role["created"], 1700000000);
  EXPECT_EQ(role["choices"][0]["delta"], (OpenAiJson{{"role", "assistant"}, {"content", ""}}));
  EXPECT_TRUE(role["usage"].is_null());
  EXPECT_TRUE(role.contains("usage"));  // null on every chunk but the last with include_usage
  EXPECT_EQ(OpenAiJson::parse(events[1])["choices"][0]["delta"]["content"], "Hel");
  EXPECT_EQ(OpenAiJson::parse(events[2])["choices"][0]["delta"]["content"], "lo");
  EXPECT_TRUE(OpenAiJson::parse(events[2])["choices"][0]["finish_reason"].is_null());
  const OpenAiJson finish = OpenAiJson::parse(events[3]);
  EXPECT_EQ(finish["choices"][0]["delta"], OpenAiJson::object());
  EXPECT_EQ(finish["choices"][0]["finish_reason"], "length");
  const OpenAiJson usage = OpenAiJson::parse(events[4]);
  EXPECT_EQ(usage["choices"], OpenAiJson::array());
  EXPECT_EQ(usage["usage"], (OpenAiJson{{"prompt_tokens", 4}, {"completion_tokens", 3}, {"total_tokens", 7}}));
  EXPECT_EQ(events[5], "[DONE]");
}

TEST_F(OpenAiResponseTest, CompletionStreamWithoutUsage) {
  StreamEncoder e(Context(OpenAiEndpoint::kCompletions), /*include_usage=*/false, /*n=*/2);
  std::string body = e.Start();
  EXPECT_EQ(body, "");
  body += e.Encode(Message(1, "x", 5, -0.5));
  moe::v1::GenerateResponse stop = Message(0, "y", 6, -0.5, moe::v1::FINISH_REASON_STOP);
  stop.set_matched_stop("END");
  body += e.Encode(stop);
  body += e.Finish();
  const std::vector<std::string> events = Events(body);
  ASSERT_EQ(events.size(), 3u);
  const OpenAiJson a = OpenAiJson::parse(events[0]);
  EXPECT_EQ(a["object"], "text_completion");
  EXPECT_FALSE(a.contains("usage"));
  EXPECT_EQ(a["choices"][0]["index"], 1);
  EXPECT_EQ(a["choices"][0]["text"], "x");
  EXPECT_TRUE(a["choices"][0]["logprobs"].is_null());
  EXPECT_TRUE(a["choices"][0]["finish_reason"].is_null());
  const OpenAiJson b = OpenAiJson::parse(events[1]);
  EXPECT_EQ(b["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(b["choices"][0]["stop_reason"], "END");
  EXPECT_EQ(events[2], "[DONE]");
}

TEST_F(OpenAiResponseTest, StreamErrorIsAFinalEventThenDone) {
  const std::string body = StreamEncoder::Error(absl::UnavailableError("router 127.0.0.1:1: worker gone"), nullptr);
  const std::vector<std::string> events = Events(body);
  ASSERT_EQ(events.size(), 2u);
  const OpenAiJson error = OpenAiJson::parse(events[0]);
  EXPECT_EQ(error["error"]["message"], "router 127.0.0.1:1: worker gone");
  EXPECT_EQ(error["error"]["type"], "service_unavailable");
  EXPECT_EQ(events[1], "[DONE]");
}

TEST_F(OpenAiResponseTest, NonStreamedShapes) {
  moe::v1::CompleteResponse r;
  auto* c = r.add_choices();
  c->set_index(0);
  c->set_text("Hello");
  c->set_finish_reason(moe::v1::FINISH_REASON_LENGTH);
  r.mutable_usage()->set_prompt_tokens(3);
  r.mutable_usage()->set_completion_tokens(2);
  const OpenAiJson chat = CompletionResponseJson(Context(OpenAiEndpoint::kChatCompletions), r);
  EXPECT_EQ(chat["object"], "chat.completion");
  EXPECT_EQ(chat["choices"][0]["message"], (OpenAiJson{{"role", "assistant"}, {"content", "Hello"}}));
  EXPECT_EQ(chat["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(chat["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(chat["usage"]["total_tokens"], 5);
  const OpenAiJson completion = CompletionResponseJson(Context(OpenAiEndpoint::kCompletions), r);
  EXPECT_EQ(completion["object"], "text_completion");
  EXPECT_EQ(completion["choices"][0]["text"], "Hello");
  EXPECT_FALSE(completion["choices"][0].contains("message"));
}

TEST_F(OpenAiResponseTest, CompletionLogprobsHaveTokensOffsetsAndAlternatives) {
  const int32_t the = Id("the");
  const int32_t comma = Id(",");
  moe::v1::CompleteResponse r;
  auto* c = r.add_choices();
  c->set_text("the,");
  for (auto [id, lp] : {std::pair{the, -0.5}, std::pair{comma, -1.5}}) {
    auto* t = c->add_tokens();
    t->set_id(static_cast<uint32_t>(id));
    t->set_logprob(lp);
    auto* alt = t->add_top_logprobs();
    alt->set_id(static_cast<uint32_t>(id));
    alt->set_logprob(lp);
    alt = t->add_top_logprobs();
    alt->set_id(static_cast<uint32_t>(Id("!")));
    alt->set_logprob(-3.0);
  }
  const OpenAiJson j = CompletionResponseJson(Context(OpenAiEndpoint::kCompletions, true, 2), r);
  const OpenAiJson& lp = j["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"], (OpenAiJson{"the", ","}));
  EXPECT_EQ(lp["token_logprobs"], (OpenAiJson{-0.5, -1.5}));
  EXPECT_EQ(lp["text_offset"], (OpenAiJson{0, 3}));
  EXPECT_EQ(lp["top_logprobs"][0], (OpenAiJson{{"the", -0.5}, {"!", -3.0}}));
  // Only as many alternatives as asked for.
  const OpenAiJson one = CompletionResponseJson(Context(OpenAiEndpoint::kCompletions, true, 1), r);
  EXPECT_EQ(one["choices"][0]["logprobs"]["top_logprobs"][1].size(), 1u);
}

// A token that is part of a UTF-8 character decodes (as in Hugging Face and
// vLLM) to U+FFFD; its text and bytes say so.
TEST_F(OpenAiResponseTest, ChatLogprobsCarryBytesAndPartialCharacters) {
  moe::v1::CompleteResponse r;
  auto* c = r.add_choices();
  auto* t = c->add_tokens();
  t->set_id(static_cast<uint32_t>(Id("\xC3\xA2")));  // "â": the byte-level token of the lone byte 0xE2
  t->set_logprob(-0.75);
  auto* alt = t->add_top_logprobs();
  alt->set_id(static_cast<uint32_t>(Id("the")));
  alt->set_logprob(-1.0);
  const OpenAiJson j = CompletionResponseJson(Context(OpenAiEndpoint::kChatCompletions, true, 1), r);
  const OpenAiJson& entry = j["choices"][0]["logprobs"]["content"][0];
  EXPECT_EQ(entry["token"], "\xEF\xBF\xBD");
  EXPECT_EQ(entry["bytes"], (OpenAiJson{0xEF, 0xBF, 0xBD}));
  EXPECT_EQ(entry["logprob"], -0.75);
  EXPECT_EQ(entry["top_logprobs"][0]["token"], "the");
  EXPECT_EQ(entry["top_logprobs"][0]["bytes"], (OpenAiJson{'t', 'h', 'e'}));
}

TEST_F(OpenAiResponseTest, ErrorMapping) {
  struct Case {
    absl::Status status;
    int http;
    const char* type;
  };
  for (const Case& c : {
           Case{absl::InvalidArgumentError("temperature: must be >= 0"), 400, "invalid_request_error"},
           Case{absl::UnauthenticatedError("invalid API key"), 401, "authentication_error"},
           Case{absl::NotFoundError("model: no such model"), 404, "invalid_request_error"},
           Case{absl::ResourceExhaustedError("queue full"), 429, "rate_limit_error"},
           Case{absl::UnavailableError("router down"), 503, "service_unavailable"},
           Case{absl::DeadlineExceededError("too slow"), 504, "timeout"},
           Case{absl::InternalError("bug"), 500, "server_error"},
       }) {
    const HttpError e = ToHttpError(c.status, nullptr);
    EXPECT_EQ(e.http_status, c.http) << c.status;
    const OpenAiJson& error = e.body["error"];
    EXPECT_EQ(error["type"], c.type) << c.status;
    EXPECT_EQ(error["message"], std::string(c.status.message()));
    EXPECT_TRUE(error.contains("param"));
    EXPECT_TRUE(error.contains("code"));
  }
  EXPECT_EQ(ToHttpError(absl::InvalidArgumentError("temperature: must be >= 0"), nullptr).body["error"]["param"],
            "temperature");
  EXPECT_EQ(ToHttpError(absl::InvalidArgumentError("messages[1].content: bad"), nullptr).body["error"]["param"],
            "messages[1].content");
  EXPECT_TRUE(ToHttpError(absl::InvalidArgumentError("no field here: x"), nullptr).body["error"]["param"].is_null());
  EXPECT_EQ(ToHttpError(absl::NotFoundError("model: x"), nullptr).body["error"]["param"], "model");
  EXPECT_EQ(ToHttpError(absl::NotFoundError("model: x"), nullptr).body["error"]["code"], "model_not_found");
  EXPECT_EQ(ToHttpError(absl::UnauthenticatedError("x"), nullptr).body["error"]["code"], "invalid_api_key");
}

TEST_F(OpenAiResponseTest, GatewayFieldsAreRenamedForTheEndpoint) {
  OpenAiRequest chat;
  chat.endpoint = OpenAiEndpoint::kChatCompletions;
  chat.max_tokens_param = "max_completion_tokens";
  const HttpError e = ToHttpError(
      absl::InvalidArgumentError("max_tokens: prompt (5 tokens) + max_tokens (9999) exceeds the context"), &chat);
  EXPECT_EQ(e.body["error"]["param"], "max_completion_tokens");
  EXPECT_THAT(e.body["error"]["message"].get<std::string>(), StartsWith("max_completion_tokens: prompt"));
  OpenAiRequest completion;
  const HttpError p = ToHttpError(absl::InvalidArgumentError("text: the prompt encodes to no tokens"), &completion);
  EXPECT_EQ(p.body["error"]["param"], "prompt");
  EXPECT_THAT(p.body["error"]["message"].get<std::string>(), HasSubstr("prompt: the prompt encodes"));
}

}  // namespace
}  // namespace moe
