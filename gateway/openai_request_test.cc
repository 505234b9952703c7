#include "gateway/openai_request.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

OpenAiJson J(const char* text) { return OpenAiJson::parse(text); }

absl::StatusOr<chat::ChatTemplate> TinyTemplate() {
  return chat::LoadChatTemplate(std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral");
}

TEST(OpenAiRequestTest, CompletionMapsEveryField) {
  auto r = ParseCompletionRequest(J(R"({
    "model": "tiny-mixtral", "prompt": "Hello", "max_tokens": 7, "temperature": 0.5, "top_p": 0.9,
    "n": 2, "best_of": 3, "stop": ["a", "bc"], "seed": 42, "logprobs": 3, "presence_penalty": 0.5,
    "frequency_penalty": -0.5, "logit_bias": {"17": -100, "4": 2.5}, "user": "u1",
    "top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1, "ignore_eos": true})"));
  ASSERT_TRUE(r.ok()) << r.status();
  const moe::v1::GenerateRequest& g = r->request;
  EXPECT_EQ(r->model, "tiny-mixtral");
  EXPECT_EQ(g.text(), "Hello");
  EXPECT_TRUE(g.add_special_tokens());
  EXPECT_TRUE(g.allow_special_tokens());
  EXPECT_EQ(g.max_tokens(), 7);
  EXPECT_EQ(g.n(), 2);
  EXPECT_EQ(g.best_of(), 3);
  EXPECT_THAT(g.stop(), ElementsAre("a", "bc"));
  const moe::v1::SamplingParams& s = g.sampling();
  EXPECT_FLOAT_EQ(s.temperature(), 0.5f);
  EXPECT_FLOAT_EQ(s.top_p(), 0.9f);
  EXPECT_EQ(s.seed(), 42u);
  EXPECT_EQ(s.logprobs(), 3);
  EXPECT_FLOAT_EQ(s.presence_penalty(), 0.5f);
  EXPECT_FLOAT_EQ(s.frequency_penalty(), -0.5f);
  EXPECT_FLOAT_EQ(s.logit_bias().at(17), -100.0f);
  EXPECT_FLOAT_EQ(s.logit_bias().at(4), 2.5f);
  EXPECT_EQ(s.top_k(), 40);
  EXPECT_FLOAT_EQ(s.min_p(), 0.05f);
  EXPECT_FLOAT_EQ(s.repetition_penalty(), 1.1f);
  EXPECT_TRUE(s.ignore_eos());
  EXPECT_TRUE(r->logprobs);
  EXPECT_EQ(r->top_logprobs, 3);
  EXPECT_EQ(r->user, "u1");
  EXPECT_FALSE(r->stream);
}

TEST(OpenAiRequestTest, CompletionDefaultsAndNulls) {
  auto r = ParseCompletionRequest(
      J(R"({"model": "m", "prompt": "x", "temperature": null, "stop": null, "logprobs": null, "top_k": -1})"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request.max_tokens(), 16);  // OpenAI's default for completions
  EXPECT_FALSE(r->request.sampling().has_temperature());
  EXPECT_EQ(r->request.sampling().top_k(), 0);  // -1 = off, as vLLM
  EXPECT_FALSE(r->logprobs);
  EXPECT_FALSE(r->request.sampling().has_logprobs());
  EXPECT_EQ(r->request.stop_size(), 0);
}

TEST(OpenAiRequestTest, PromptForms) {
  auto ids = ParseCompletionRequest(J(R"({"model": "m", "prompt": [5, 6, 7]})"));
  ASSERT_TRUE(ids.ok());
  EXPECT_THAT(ids->request.token_ids().ids(), ElementsAre(5u, 6u, 7u));
  auto one = ParseCompletionRequest(J(R"({"model": "m", "prompt": ["hi"]})"));
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->request.text(), "hi");
  auto nested = ParseCompletionRequest(J(R"({"model": "m", "prompt": [[1, 2]]})"));
  ASSERT_TRUE(nested.ok());
  EXPECT_THAT(nested->request.token_ids().ids(), ElementsAre(1u, 2u));
  EXPECT_THAT(ParseCompletionRequest(J(R"({"model": "m", "prompt": ["a", "b"]})")).status().message(),
              HasSubstr("prompt: several prompts"));
  EXPECT_THAT(ParseCompletionRequest(J(R"({"model": "m", "prompt": {"x": 1}})")).status().message(),
              HasSubstr("prompt: must be"));
  EXPECT_THAT(ParseCompletionRequest(J(R"({"model": "m"})")).status().message(), HasSubstr("prompt: is required"));
}

TEST(OpenAiRequestTest, TypeErrorsNameTheField) {
  struct Case {
    const char* body;
    const char* want;
  };
  for (const Case& c : {
           Case{R"({"prompt": "x"})", "model: is required"},
           Case{R"({"model": 3, "prompt": "x"})", "model: must be a string"},
           Case{R"({"model": "m", "prompt": "x", "temperature": "hot"})", "temperature: must be a number"},
           Case{R"({"model": "m", "prompt": "x", "max_tokens": 1.5})", "max_tokens: must be an integer"},
           Case{R"({"model": "m", "prompt": "x", "max_tokens": 9999999999})", "max_tokens: must fit in 32 bits"},
           Case{R"({"model": "m", "prompt": "x", "n": "2"})", "n: must be an integer"},
           Case{R"({"model": "m", "prompt": "x", "stop": 5})", "stop: must be a string or a list"},
           Case{R"({"model": "m", "prompt": "x", "stop": ["a", 1]})", "stop: must be a string or a list"},
           Case{R"({"model": "m", "prompt": "x", "seed": -1})", "seed: must be >= 0"},
           Case{R"({"model": "m", "prompt": "x", "logit_bias": {"abc": 1}})", "logit_bias: key 'abc'"},
           Case{R"({"model": "m", "prompt": "x", "logit_bias": [1]})", "logit_bias: must be an object"},
           Case{R"({"model": "m", "prompt": "x", "logprobs": 6})", "logprobs: must be in [0, 5]"},
           Case{R"({"model": "m", "prompt": "x", "stream": "yes"})", "stream: must be true or false"},
           Case{R"({"model": "m", "prompt": "x", "stream_options": {"include_usage": true}})",
                "stream_options: is only allowed when stream is true"},
           Case{R"({"model": "m", "prompt": "x", "echo": true})", "echo: is not supported"},
           Case{R"({"model": "m", "prompt": "x", "suffix": "end"})", "suffix: is not supported"},
           Case{R"([1, 2])", "body: must be a JSON object"},
       }) {
    const absl::Status s = ParseCompletionRequest(J(c.body)).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_THAT(s.message(), HasSubstr(c.want)) << c.body;
  }
}

// Integers are checked against their range before narrowing: a JSON token
// id of 2^32 + 5 must not become token 5.
TEST(OpenAiRequestTest, TokenIdsOutOfRangeAreRefusedWithTheirValue) {
  struct Case {
    const char* body;
    const char* want;
  };
  for (const Case& c : {
           Case{R"({"model": "m", "prompt": [4294967296]})", "prompt: token id 4294967296 is out of range"},
           Case{R"({"model": "m", "prompt": [[1, 4294967301]]})", "prompt: token id 4294967301 is out of range"},
           Case{R"({"model": "m", "prompt": [1, -1]})", "prompt: token id -1 is out of range"},
           Case{R"({"model": "m", "prompt": "x", "stop_token_ids": [4294967297]})",
                "stop_token_ids: token id 4294967297 is out of range"},
           Case{R"({"model": "m", "prompt": "x", "stop_token_ids": [-3]})", "stop_token_ids: token id -3 is out of range"},
           Case{R"({"model": "m", "prompt": "x", "stop_token_ids": [1.5]})", "stop_token_ids: token ids must be integers"},
           Case{R"({"model": "m", "prompt": "x", "logit_bias": {"4294967296": 1}})",
                "logit_bias: token id 4294967296 is out of range"},
           Case{R"({"model": "m", "prompt": "x", "logit_bias": {"-1": 1}})", "logit_bias: key '-1' is not a token id"},
           Case{R"({"model": "m", "prompt": "x", "logit_bias": {"5": 1e300}})",
                "logit_bias: bias of token 5 must be in [-100, 100], got 1e+300"},
       }) {
    const absl::Status s = ParseCompletionRequest(J(c.body)).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_THAT(s.message(), HasSubstr(c.want)) << c.body;
  }
  // The largest id passes through unchanged (the router checks the vocabulary).
  auto r = ParseCompletionRequest(
      J(R"({"model": "m", "prompt": [4294967295], "logit_bias": {"2147483648": 1}, "stop_token_ids": [4294967295]})"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request.token_ids().ids(0), 4294967295u);
  EXPECT_EQ(r->request.stop_token_ids(0), 4294967295u);
  EXPECT_EQ(r->request.sampling().logit_bias().count(2147483648u), 1u);
}

// Bodies nested far deeper than the limit used to crash the gateway
// (recursion in SetPrompt, and in json copies of chat messages).
TEST(OpenAiRequestTest, DeepBodiesAreRefusedNamingTheField) {
  auto nested = [](int depth) { return std::string(depth, '[') + "1" + std::string(depth, ']'); };
  struct Case {
    std::string body;
    std::string want;
  };
  const std::string deep = nested(100000);
  for (const Case& c : {
           Case{R"({"model": "m", "prompt": )" + deep + "}", "prompt[0][0]"},
           Case{R"({"model": "m", "messages": [{"role": "user", "content": "x", "extra": )" + deep + "}]}",
                "messages[0].extra[0]"},
           Case{R"({"model": "m", "messages": [{"role": "user", "content": )" + deep + "}]}",
                "messages[0].content[0]"},
           Case{R"({"model": "m", "messages": [], "tools": )" + deep + "}", "tools[0]"},
           Case{R"({"model": "m", "messages": [], "chat_template_kwargs": {"a": )" + deep + "}}",
                "chat_template_kwargs.a[0]"},
       }) {
    absl::StatusOr<OpenAiJson> body = ParseOpenAiBody(c.body);
    EXPECT_TRUE(absl::IsInvalidArgument(body.status()));
    EXPECT_THAT(body.status().message(), HasSubstr(c.want));
    EXPECT_THAT(body.status().message(), HasSubstr("nested deeper than 64 levels"));
  }
  // At the limit, a prompt nested in one-element lists still parses (iteratively).
  absl::StatusOr<OpenAiJson> ok = ParseOpenAiBody(R"({"model": "m", "prompt": )" + nested(63) + "}");
  ASSERT_TRUE(ok.ok()) << ok.status();
  auto r = ParseCompletionRequest(*ok);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->request.token_ids().ids(), ElementsAre(1u));
  EXPECT_THAT(ParseOpenAiBody("{\"model\": ").status().message(), HasSubstr("body: invalid JSON"));
}

TEST(OpenAiRequestTest, StreamOptions) {
  auto r = ParseCompletionRequest(
      J(R"({"model": "m", "prompt": "x", "stream": true, "stream_options": {"include_usage": true}})"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
}

TEST(OpenAiRequestTest, ChatRendersTheModelTemplate) {
  auto tmpl = TinyTemplate();
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  auto r = ParseChatRequest(J(R"({"model": "m", "messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]}],
      "max_completion_tokens": 5, "max_tokens": 9, "logprobs": true, "top_logprobs": 2})"),
                            tmpl);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request.text(),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi\nthere<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_FALSE(r->request.add_special_tokens());
  EXPECT_TRUE(r->request.allow_special_tokens());
  EXPECT_EQ(r->request.max_tokens(), 5);
  EXPECT_EQ(r->max_tokens_param, "max_completion_tokens");
  EXPECT_TRUE(r->logprobs);
  EXPECT_EQ(r->top_logprobs, 2);
  EXPECT_EQ(r->request.sampling().logprobs(), 2);
}

TEST(OpenAiRequestTest, ChatWithoutLimitUsesTheContextAndPlainMaxTokens) {
  auto tmpl = TinyTemplate();
  auto r = ParseChatRequest(J(R"({"model": "m", "messages": [{"role": "user", "content": "x"}]})"), tmpl);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->request.has_max_tokens());
  EXPECT_FALSE(r->logprobs);
  auto m = ParseChatRequest(J(R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 3})"),
                            tmpl);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->request.max_tokens(), 3);
  EXPECT_EQ(m->max_tokens_param, "max_tokens");
}

TEST(OpenAiRequestTest, ChatErrors) {
  auto tmpl = TinyTemplate();
  struct Case {
    const char* body;
    const char* want;
  };
  for (const Case& c : {
           Case{R"({"model": "m"})", "messages: is required"},
           Case{R"({"model": "m", "messages": []})", "messages: must be a non-empty list"},
           Case{R"({"model": "m", "messages": ["hi"]})", "messages[0]: must be an object"},
           Case{R"({"model": "m", "messages": [{"content": "hi"}]})", "messages[0].role: must be a string"},
           Case{R"({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]})",
                "messages[0].content: only text parts"},
           Case{R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})",
                "top_logprobs: requires logprobs: true"},
           Case{R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "logprobs": true,
                    "top_logprobs": 21})",
                "top_logprobs: must be in [0, 20]"},
           Case{R"({"model": "m", "messages": [{"role": "user", "content": "x"}],
                    "response_format": {"type": "yaml"}})",
                "response_format.type: must be"},
           Case{R"({"model": "m", "messages": [{"role": "user", "content": "x"}],
                    "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}})",
                "response_format.json_schema.schema: is required"},
           Case{R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "guided_regex": "a+",
                    "guided_choice": ["a"]})",
                "give at most one of"},
           Case{R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "guided_choice": ["a", 3]})",
                "guided_choice[1]: must be a string"},
           Case{R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "required"})",
                "tool_choice: only"},
       }) {
    const absl::Status s = ParseChatRequest(J(c.body), tmpl).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_THAT(s.message(), HasSubstr(c.want)) << c.body;
  }
}

TEST(OpenAiRequestTest, StructuredOutputFieldsBecomeTheConstraint) {
  auto regex = ParseCompletionRequest(J(R"({"model": "m", "prompt": "x", "guided_regex": "\\d{3}"})"));
  ASSERT_TRUE(regex.ok()) << regex.status();
  EXPECT_EQ(regex->request.constraint().regex(), "\\d{3}");
  auto choice = ParseCompletionRequest(J(R"({"model": "m", "prompt": "x", "guided_choice": ["yes", "no"]})"));
  ASSERT_TRUE(choice.ok()) << choice.status();
  EXPECT_THAT(choice->request.constraint().choice().options(), ::testing::ElementsAre("yes", "no"));
  auto schema = ParseCompletionRequest(J(R"({"model": "m", "prompt": "x", "response_format":
      {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}}})"));
  ASSERT_TRUE(schema.ok()) << schema.status();
  EXPECT_EQ(schema->request.constraint().json_schema(), R"({"type":"object"})");
  auto text = ParseCompletionRequest(J(R"({"model": "m", "prompt": "x", "response_format": {"type": "text"}})"));
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_FALSE(text->request.has_constraint());
}

TEST(OpenAiRequestTest, ChatWithoutTemplateFailsClearly) {
  const absl::StatusOr<chat::ChatTemplate> none = absl::NotFoundError("models/x: no chat_template");
  const absl::Status s =
      ParseChatRequest(J(R"({"model": "m", "messages": [{"role": "user", "content": "x"}]})"), none).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("no usable chat template"));
  EXPECT_THAT(s.message(), HasSubstr("models/x: no chat_template"));
}

TEST(OpenAiRequestTest, TemplateErrorsNameMessages) {
  auto tmpl = chat::ChatTemplate::Compile("{{ raise_exception('roles must alternate') }}");
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  const absl::Status s =
      ParseChatRequest(J(R"({"model": "m", "messages": [{"role": "user", "content": "x"}]})"), tmpl).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("messages: "));
  EXPECT_THAT(s.message(), HasSubstr("roles must alternate"));
}

TEST(OpenAiRequestTest, GatewayFieldNamesBecomeOpenAiNames) {
  OpenAiRequest completion;
  completion.endpoint = OpenAiEndpoint::kCompletions;
  EXPECT_EQ(ToOpenAiParam("text", completion), "prompt");
  EXPECT_EQ(ToOpenAiParam("token_ids", completion), "prompt");
  EXPECT_EQ(ToOpenAiParam("logprobs", completion), "logprobs");
  EXPECT_EQ(ToOpenAiParam("temperature", completion), "temperature");
  OpenAiRequest chat;
  chat.endpoint = OpenAiEndpoint::kChatCompletions;
  chat.max_tokens_param = "max_completion_tokens";
  EXPECT_EQ(ToOpenAiParam("text", chat), "messages");
  EXPECT_EQ(ToOpenAiParam("prompt", chat), "messages");
  EXPECT_EQ(ToOpenAiParam("max_tokens", chat), "max_completion_tokens");
  EXPECT_EQ(ToOpenAiParam("logprobs", chat), "top_logprobs");
}

}  // namespace
}  // namespace moe
