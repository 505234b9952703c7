// The gateway's OpenAI-compatible HTTP API and API keys, on a local cluster
// (one expert worker, a router, a gateway with --http-listen 127.0.0.1:0 and
// --api-keys-file), driven with cpp-httplib's client as an HTTP user would.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "deploy/local/cluster.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "moe/v1/inference.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "proto/rpc_util.h"
#include "tests/shell_command.h"

namespace moe {
namespace {

using Json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kKey[] = "sk-test-0123456789";
const std::string kBearer = std::string("Bearer ") + kKey;

// The SSE payloads of a body, checking the framing exactly ("data: X\n\n"
// and nothing else), ending with [DONE].
std::vector<std::string> SseEvents(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    EXPECT_EQ(body.compare(pos, 6, "data: "), 0) << "at " << pos << ": " << body;
    const size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) {
      ADD_FAILURE() << "unterminated event: " << body.substr(pos);
      break;
    }
    out.push_back(body.substr(pos + 6, end - pos - 6));
    pos = end + 2;
  }
  EXPECT_FALSE(out.empty());
  if (!out.empty()) {
    EXPECT_EQ(out.back(), "[DONE]") << body;
  }
  return out;
}

class HttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::ifstream golden_in(std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral/golden.json");
    golden_ = new Json(Json::parse(golden_in));
    char dir[] = "/tmp/moe-http-test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    run_dir_ = dir;
    {
      std::ofstream keys(run_dir_ + "/keys.txt");
      keys << "# test keys\n" << kKey << "\nsk-other\n";
    }
    LocalClusterOptions o;
    o.model_dir = std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral";
    o.num_workers = 1;
    o.bin_dir = MOE_BIN_DIR;
    o.worker_threads = 1;
    o.router_threads = 1;
    o.http_port = 0;
    o.run_dir = run_dir_ + "/cluster";
    o.extra_gateway_flags = {"--api-keys-file=" + run_dir_ + "/keys.txt"};
    cluster_ = new LocalCluster(o);
    const absl::Status up = cluster_->Up();
    ASSERT_TRUE(up.ok()) << up;
    ASSERT_THAT(cluster_->gateway_http_address(), StartsWith("127.0.0.1:"));
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
    delete golden_;
    std::filesystem::remove_all(run_dir_);
  }

  static httplib::Client Client() {
    const std::string& a = cluster_->gateway_http_address();
    httplib::Client c(a.substr(0, a.rfind(':')), std::stoi(a.substr(a.rfind(':') + 1)));
    c.set_read_timeout(60, 0);
    return c;
  }
  struct Reply {
    int status = 0;
    std::string body;
    std::string content_type;
    Json json;  // parsed body when it is JSON
  };
  static Reply Send(const std::string& method, const std::string& path, const std::string& body = "",
                    const std::string& authorization = kBearer) {
    httplib::Client c = Client();
    httplib::Headers headers;
    if (!authorization.empty()) headers.emplace("Authorization", authorization);
    httplib::Result r = method == "GET" ? c.Get(path, headers) : c.Post(path, headers, body, "application/json");
    Reply reply;
    if (!r) {
      ADD_FAILURE() << method << " " << path << ": " << httplib::to_string(r.error());
      return reply;
    }
    reply.status = r->status;
    reply.body = r->body;
    reply.content_type = r->get_header_value("Content-Type");
    reply.json = Json::parse(r->body, nullptr, /*allow_exceptions=*/false);
    return reply;
  }
  static Reply Post(const std::string& path, const Json& body, const std::string& authorization = kBearer) {
    return Send("POST", path, body.dump(), authorization);
  }
  static const Json& Golden() { return (*golden_)["cases"][0]; }
  static Json GoldenCompletion() {
    return {{"model", "tiny-mixtral"}, {"prompt", Golden()["prompt_text"]}, {"max_tokens", 16}, {"temperature", 0}};
  }
  static Json Chat() {
    return {{"model", "tiny-mixtral"},
            {"messages", {{{"role", "user"}, {"content", "Hello, my dog is cute"}}}},
            {"max_completion_tokens", 8},
            {"temperature", 0}};
  }
  static std::unique_ptr<moe::v1::Inference::Stub> Stub() {
    return moe::v1::Inference::NewStub(rpc::MakeChannel(cluster_->gateway_address()));
  }

  static inline LocalCluster* cluster_ = nullptr;
  static inline Json* golden_ = nullptr;
  static inline std::string run_dir_;
};

// Structured output end to end: vLLM's guided_choice / guided_regex over
// HTTP (completions and chat) and the constraint field over gRPC, with n = 4
// and seeds at temperature > 1: every output is one the constraint allows.
TEST_F(HttpTest, GuidedChoiceAndRegexOverHttpAndGrpc) {
  const std::vector<std::string> colors = {"red", "green", "blue"};
  Json choice = GoldenCompletion();
  choice["guided_choice"] = colors;
  choice["n"] = 4;
  choice["seed"] = 7;
  choice["temperature"] = 1.3;
  choice["max_tokens"] = 16;
  Reply r = Post("/v1/completions", choice);
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(r.json["choices"].size(), 4u);
  for (const auto& c : r.json["choices"]) {
    EXPECT_THAT(colors, ::testing::Contains(c["text"].get<std::string>())) << r.body;
    EXPECT_EQ(c["finish_reason"], "stop");
  }
  Json chat = Chat();
  chat["guided_regex"] = "\\d{3}-\\d{4}";
  chat["max_completion_tokens"] = 32;
  chat["temperature"] = 1.2;
  chat["seed"] = 3;
  r = Post("/v1/chat/completions", chat);
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string phone = r.json["choices"][0]["message"]["content"].get<std::string>();
  EXPECT_TRUE(std::regex_match(phone, std::regex("\\d{3}-\\d{4}"))) << phone;
  // gRPC: the constraint field.
  moe::v1::GenerateRequest g;
  g.set_text("write an address:");
  g.set_max_tokens(48);
  g.set_n(4);
  g.mutable_sampling()->set_temperature(1.5f);
  g.mutable_sampling()->set_seed(11);
  g.mutable_constraint()->set_regex("[a-z]{1,8}@[a-z]{1,8}\\.(com|org)");
  grpc::ClientContext ctx;
  ctx.set_deadline(rpc::DeadlineIn(60000));
  ctx.AddMetadata("authorization", kBearer);
  moe::v1::CompleteResponse resp;
  const grpc::Status s = Stub()->Complete(&ctx, g, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.choices_size(), 4);
  for (const auto& c : resp.choices()) {
    EXPECT_TRUE(std::regex_match(c.text(), std::regex("[a-z]{1,8}@[a-z]{1,8}\\.(com|org)"))) << c.text();
  }
  // gRPC with a JSON schema, n = 4 and a seed: every finished output
  // validates under an independent validator (python3-jsonschema), and the
  // same seed gives the same outputs.
  const std::string person_schema =
      R"({"type":"object","properties":{"name":{"type":"string","maxLength":10},)"
      R"("age":{"type":"integer","minimum":0,"maximum":120},)"
      R"("tags":{"type":"array","items":{"enum":["a","b","c"]},"maxItems":3}},)"
      R"("required":["name","age","tags"],"additionalProperties":false})";
  auto complete_json = [&](moe::v1::CompleteResponse* out) {
    moe::v1::GenerateRequest gj;
    gj.set_text("a person as JSON:");
    gj.set_max_tokens(96);
    gj.set_n(4);
    gj.mutable_sampling()->set_temperature(1.0f);
    gj.mutable_sampling()->set_seed(21);
    gj.mutable_constraint()->set_json_schema(person_schema);
    grpc::ClientContext cj;
    cj.set_deadline(rpc::DeadlineIn(60000));
    cj.AddMetadata("authorization", kBearer);
    return Stub()->Complete(&cj, gj, out);
  };
  moe::v1::CompleteResponse people, people_again;
  grpc::Status sj = complete_json(&people);
  ASSERT_TRUE(sj.ok()) << sj.error_message();
  sj = complete_json(&people_again);
  ASSERT_TRUE(sj.ok()) << sj.error_message();
  ASSERT_EQ(people.choices_size(), 4);
  Json instances = Json::array();
  for (int i = 0; i < people.choices_size(); ++i) {
    const auto& c = people.choices(i);
    EXPECT_EQ(c.text(), people_again.choices(i).text()) << "same seed, same output";
    if (c.finish_reason() != moe::v1::FINISH_REASON_STOP) continue;  // cut by max_tokens: a prefix
    const Json v = Json::parse(c.text(), nullptr, false);
    ASSERT_FALSE(v.is_discarded()) << c.text();
    instances.push_back(v);
  }
  EXPECT_GE(instances.size(), 1u) << "no output finished within 96 tokens";
  const std::string validate_path = ::testing::TempDir() + "/grpc_json_outputs.json";
  std::ofstream(validate_path) << Json{{"schema", Json::parse(person_schema)}, {"instances", instances}}.dump();
  const std::string validate =
      "/usr/bin/python3 -c 'import json, sys, jsonschema; d = json.load(open(sys.argv[1])); "
      "[jsonschema.validate(i, d[\"schema\"]) for i in d[\"instances\"]]' " + validate_path;
  EXPECT_EQ(std::system(validate.c_str()), 0) << "python3-jsonschema rejected an output: " << instances.dump();
  // OpenAI's response_format with a JSON schema: the content parses and has the keys.
  Json js = Chat();
  js["max_completion_tokens"] = 120;
  js["temperature"] = 1.0;
  js["seed"] = 5;
  js["response_format"] = {{"type", "json_schema"},
                           {"json_schema", {{"name", "reply"}, {"strict", true},
                                            {"schema", {{"type", "object"},
                                                        {"properties", {{"answer", {{"type", "string"}, {"maxLength", 8}}},
                                                                        {"score", {{"enum", {1, 2, 3}}}}}},
                                                        {"required", {"answer", "score"}},
                                                        {"additionalProperties", false}}}}}};
  r = Post("/v1/chat/completions", js);
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(r.json["choices"][0]["finish_reason"], "stop") << r.body;  // at most ~60 bytes: well within 120 tokens
  const Json reply = Json::parse(r.json["choices"][0]["message"]["content"].get<std::string>());
  EXPECT_TRUE(reply["answer"].is_string()) << reply;
  EXPECT_TRUE(reply["score"] == 1 || reply["score"] == 2 || reply["score"] == 3) << reply;
  // A bad pattern or grammar is a 400 naming it.
  Json bad = GoldenCompletion();
  bad["guided_regex"] = "(a";
  r = Post("/v1/completions", bad);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.body, HasSubstr("regex: missing ')'"));
  Json bad_grammar = GoldenCompletion();
  bad_grammar["guided_grammar"] = "root ::= item\nitem ::= \"a\" missing";
  r = Post("/v1/completions", bad_grammar);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.body, HasSubstr("grammar: line 2 column 14: rule 'missing' is used but not defined"));
  // Any JSON object, with bounded flexible whitespace.
  Json object = GoldenCompletion();
  object["response_format"] = {{"type", "json_object"}};
  object["guided_max_whitespace"] = 2;
  object["max_tokens"] = 40;
  object["n"] = 2;
  object["seed"] = 3;
  object["temperature"] = 1.0;
  r = Post("/v1/completions", object);
  ASSERT_EQ(r.status, 200) << r.body;
  for (const Json& choice : r.json["choices"]) {
    if (choice["finish_reason"] != "stop") continue;  // cut by max_tokens: a prefix, not yet a whole object
    EXPECT_TRUE(Json::parse(choice["text"].get<std::string>(), nullptr, false).is_object()) << choice;
  }
  // A GBNF grammar.
  Json gbnf = GoldenCompletion();
  gbnf["guided_grammar"] = "root ::= \"(\" item (\",\" item){0,2} \")\"\nitem ::= [0-9] | \"x\" | root";
  gbnf["max_tokens"] = 30;
  r = Post("/v1/completions", gbnf);
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string text = r.json["choices"][0]["text"];
  EXPECT_EQ(text.front(), '(') << text;
  if (r.json["choices"][0]["finish_reason"] == "stop") {
    EXPECT_EQ(text.back(), ')') << text;
  }
}

TEST_F(HttpTest, CompletionMatchesGolden) {
  const Reply r = Post("/v1/completions", GoldenCompletion());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.content_type, StartsWith("application/json"));
  EXPECT_EQ(r.json["object"], "text_completion");
  EXPECT_THAT(r.json["id"].get<std::string>(), StartsWith("cmpl-"));
  EXPECT_EQ(r.json["model"], "tiny-mixtral");
  EXPECT_GT(r.json["created"].get<int64_t>(), 1600000000);
  ASSERT_EQ(r.json["choices"].size(), 1u);
  const Json& choice = r.json["choices"][0];
  EXPECT_EQ(choice["index"], 0);
  EXPECT_EQ(choice["text"], Golden()["greedy_text"]);
  EXPECT_EQ(choice["finish_reason"], "length");
  EXPECT_TRUE(choice["logprobs"].is_null());
  const size_t prompt_tokens = Golden()["prompt_ids"].size();
  EXPECT_EQ(r.json["usage"], (Json{{"prompt_tokens", prompt_tokens},
                                   {"completion_tokens", 16},
                                   {"total_tokens", prompt_tokens + 16}}));
}

TEST_F(HttpTest, StreamedCompletionMatchesGolden) {
  Json req = GoldenCompletion();
  req["stream"] = true;
  req["stream_options"] = {{"include_usage", true}};
  const Reply r = Post("/v1/completions", req);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.content_type, StartsWith("text/event-stream"));
  const std::vector<std::string> events = SseEvents(r.body);
  ASSERT_GE(events.size(), 3u);
  std::string text;
  Json finish = nullptr;
  for (size_t i = 0; i + 2 < events.size(); ++i) {  // content chunks; then usage, [DONE]
    const Json chunk = Json::parse(events[i]);
    EXPECT_EQ(chunk["object"], "text_completion");
    EXPECT_TRUE(chunk["usage"].is_null());
    ASSERT_EQ(chunk["choices"].size(), 1u);
    text += chunk["choices"][0]["text"].get<std::string>();
    if (!chunk["choices"][0]["finish_reason"].is_null()) finish = chunk["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(text, Golden()["greedy_text"]);
  EXPECT_EQ(finish, "length");
  const Json usage = Json::parse(events[events.size() - 2]);
  EXPECT_EQ(usage["choices"], Json::array());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 16);
  EXPECT_EQ(r.body.substr(r.body.size() - 14), "data: [DONE]\n\n");
}

TEST_F(HttpTest, CompletionLogprobsMatchGolden) {
  Json req = GoldenCompletion();
  req["max_tokens"] = 3;
  req["logprobs"] = 2;
  const Reply r = Post("/v1/completions", req);
  ASSERT_EQ(r.status, 200) << r.body;
  const Json& lp = r.json["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 3u);
  ASSERT_EQ(lp["top_logprobs"].size(), 3u);
  EXPECT_EQ(lp["text_offset"][0], 0);
  for (int step = 0; step < 3; ++step) {
    const Json& want = Golden()["top5_logprobs_each_step"][step];
    EXPECT_NEAR(lp["token_logprobs"][step].get<double>(), want[0][1].get<double>(), 1e-4) << step;
    EXPECT_EQ(lp["top_logprobs"][step].size(), 2u) << step;
  }
}

TEST_F(HttpTest, ChatCompletionUsesTheChatTemplate) {
  const Reply r = Post("/v1/chat/completions", Chat());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["object"], "chat.completion");
  EXPECT_THAT(r.json["id"].get<std::string>(), StartsWith("chatcmpl-"));
  const Json& message = r.json["choices"][0]["message"];
  EXPECT_EQ(message["role"], "assistant");

  // The same prompt rendered by hand (tiny-mixtral's template) through gRPC.
  moe::v1::GenerateRequest g;
  g.set_text("<|im_start|>user\nHello, my dog is cute<|im_end|>\n<|im_start|>assistant\n");
  g.set_allow_special_tokens(true);
  g.set_max_tokens(8);
  g.mutable_sampling()->set_temperature(0);
  grpc::ClientContext ctx;
  ctx.set_deadline(rpc::DeadlineIn(30000));
  ctx.AddMetadata("authorization", kBearer);
  moe::v1::CompleteResponse want;
  ASSERT_TRUE(Stub()->Complete(&ctx, g, &want).ok());
  EXPECT_EQ(message["content"], want.choices(0).text());
  EXPECT_EQ(r.json["usage"]["prompt_tokens"], want.usage().prompt_tokens());
  EXPECT_EQ(r.json["usage"]["completion_tokens"], want.usage().completion_tokens());

  // Streamed: role first, then the same content, a finish chunk, [DONE].
  Json req = Chat();
  req["stream"] = true;
  const Reply s = Post("/v1/chat/completions", req);
  ASSERT_EQ(s.status, 200) << s.body;
  const std::vector<std::string> events = SseEvents(s.body);
  ASSERT_GE(events.size(), 3u);
  const Json first = Json::parse(events[0]);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"], (Json{{"role", "assistant"}, {"content", ""}}));
  EXPECT_FALSE(first.contains("usage"));
  std::string content;
  for (size_t i = 1; i + 2 < events.size(); ++i) {
    const Json chunk = Json::parse(events[i]);
    EXPECT_TRUE(chunk["choices"][0]["finish_reason"].is_null()) << events[i];
    content += chunk["choices"][0]["delta"]["content"].get<std::string>();
  }
  EXPECT_EQ(content, want.choices(0).text());
  const Json last = Json::parse(events[events.size() - 2]);
  EXPECT_EQ(last["choices"][0]["delta"], Json::object());
  EXPECT_EQ(last["choices"][0]["finish_reason"], r.json["choices"][0]["finish_reason"]);
}

TEST_F(HttpTest, ChatLogprobs) {
  Json req = Chat();
  req["max_completion_tokens"] = 2;
  req["logprobs"] = true;
  req["top_logprobs"] = 3;
  const Reply r = Post("/v1/chat/completions", req);
  ASSERT_EQ(r.status, 200) << r.body;
  const Json& content = r.json["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 2u) << r.body;
  EXPECT_TRUE(content[0]["token"].is_string());
  EXPECT_LE(content[0]["logprob"].get<double>(), 0.0);
  EXPECT_TRUE(content[0]["bytes"].is_array());
  EXPECT_EQ(content[0]["top_logprobs"].size(), 3u);
}

TEST_F(HttpTest, ErrorsHaveTheOpenAiShape) {
  struct Case {
    std::string path;
    Json body;
    int status;
    Json param;
    std::string message;
  };
  Json bad_temperature = GoldenCompletion();
  bad_temperature["temperature"] = -1;
  Json zero_tokens = GoldenCompletion();
  zero_tokens["max_tokens"] = 0;
  Json too_long = Chat();
  too_long["max_completion_tokens"] = 100000;
  Json wrong_model = GoldenCompletion();
  wrong_model["model"] = "gpt-4";
  Json streamed_bad = Chat();
  streamed_bad["stream"] = true;
  streamed_bad["top_p"] = 0;
  Json bad_type = GoldenCompletion();
  bad_type["n"] = "two";
  for (const Case& c : {
           Case{"/v1/completions", bad_temperature, 400, "temperature", "temperature: must be"},
           Case{"/v1/completions", zero_tokens, 400, "max_tokens", "max_tokens: must be >= 1"},
           Case{"/v1/chat/completions", too_long, 400, "max_completion_tokens", "exceeds the context"},
           Case{"/v1/completions", wrong_model, 404, "model", "'gpt-4' does not exist"},
           Case{"/v1/chat/completions", streamed_bad, 400, "top_p", "top_p: must be in (0, 1]"},
           Case{"/v1/completions", bad_type, 400, "n", "n: must be an integer"},
       }) {
    const Reply r = Post(c.path, c.body);
    EXPECT_EQ(r.status, c.status) << c.body << " -> " << r.body;
    EXPECT_THAT(r.content_type, StartsWith("application/json"));
    const Json& e = r.json["error"];
    EXPECT_EQ(e["param"], c.param) << r.body;
    EXPECT_THAT(e["message"].get<std::string>(), HasSubstr(c.message)) << r.body;
    EXPECT_TRUE(e["type"].is_string());
    EXPECT_TRUE(e.contains("code"));
  }
  const Reply bad_json = Send("POST", "/v1/completions", "{not json");
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_EQ(bad_json.json["error"]["param"], "body");
  const Reply unknown = Send("GET", "/v1/nothing");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_TRUE(unknown.json["error"]["message"].is_string());
}

// Bodies from the hostile-input campaign: each used to crash the gateway,
// pass a wrapped token id, or hold a thread for minutes. Each is now a 400
// naming the field, in bounded time, and the gateway keeps serving.
TEST_F(HttpTest, HostileBodiesAreRefusedQuicklyAndTheGatewayKeepsServing) {
  auto nested = [](int depth) { return std::string(depth, '[') + "1" + std::string(depth, ']'); };
  struct Case {
    std::string path;
    std::string body;
    std::string param;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"/v1/completions", R"({"model": "tiny-mixtral", "prompt": )" + nested(60000) + "}", "prompt",
       "prompt[0][0]"},
      {"/v1/chat/completions",
       R"({"model": "tiny-mixtral", "messages": [{"role": "user", "content": "x", "extra": )" + nested(100000) + "}]}",
       "messages", "messages[0].extra[0]"},
      {"/v1/chat/completions", R"({"model": "tiny-mixtral", "messages": [{"role": "user", "content": "x"}], "tools": )" +
                                   nested(100000) + "}",
       "tools", "tools[0][0]"},
      {"/v1/completions", R"({"model": "tiny-mixtral", "prompt": [4294967296]})", "prompt",
       "token id 4294967296 is out of range"},
      {"/v1/completions", R"({"model": "tiny-mixtral", "prompt": "x", "stop_token_ids": [4294967297]})",
       "stop_token_ids", "token id 4294967297 is out of range"},
      {"/v1/completions", R"({"model": "tiny-mixtral", "prompt": "x", "logit_bias": {"2147483648": 1}})",
       "logit_bias", "token id 2147483648 is outside the vocabulary"},
  };
  for (const Case& c : cases) {
    const Reply r = Send("POST", c.path, c.body);
    EXPECT_EQ(r.status, 400) << c.message << " -> " << r.body.substr(0, 300);
    EXPECT_THAT(r.json["error"]["param"].get<std::string>(), StartsWith(c.param)) << r.body.substr(0, 300);
    EXPECT_THAT(r.json["error"]["message"].get<std::string>(), HasSubstr(c.message));
  }
  // One object of 1.5M keys (26 MiB, under the 32 MiB cap): nlohmann's
  // ordered_json parser took minutes; answered in seconds now.
  std::string wide = R"({"model": "tiny-mixtral", "prompt": "x", "max_tokens": 1)";
  for (int i = 0; i < 1500000; ++i) wide += ",\"k" + std::to_string(i) + "\":" + std::to_string(i % 10);
  wide += "}";
  const auto start = std::chrono::steady_clock::now();
  const Reply r = Send("POST", "/v1/completions", wide);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.status, 200) << r.body.substr(0, 300);
  EXPECT_LT(seconds, 30.0) << "a 1.5M-key body took " << seconds << " s";
  std::printf("1.5M-key body (%zu bytes) answered in %.2f s\n", wide.size(), seconds);

  const Reply after = Post("/v1/completions", GoldenCompletion());
  EXPECT_EQ(after.status, 200) << after.body;
}

TEST_F(HttpTest, ModelsAndHealth) {
  const Reply models = Send("GET", "/v1/models");
  ASSERT_EQ(models.status, 200) << models.body;
  EXPECT_EQ(models.json["object"], "list");
  ASSERT_EQ(models.json["data"].size(), 1u);
  EXPECT_EQ(models.json["data"][0]["id"], "tiny-mixtral");
  EXPECT_EQ(models.json["data"][0]["object"], "model");
  EXPECT_EQ(Send("GET", "/v1/models/tiny-mixtral").json["id"], "tiny-mixtral");
  EXPECT_EQ(Send("GET", "/v1/models/gpt-4").status, 404);

  const Reply health = Send("GET", "/health", "", /*authorization=*/"");  // open without a key
  ASSERT_EQ(health.status, 200) << health.body;
  EXPECT_EQ(health.json["status"], "ok");
  EXPECT_EQ(health.json["routers"][cluster_->router_address()], "SERVING");
  EXPECT_EQ(health.json["workers"][cluster_->worker_addresses()[0]], "SERVING");
}

TEST_F(HttpTest, AuthMatrix) {
  // HTTP: every /v1 endpoint needs a valid key; health does not.
  for (const std::string& auth : {std::string(""), std::string("Bearer wrong-key"), std::string(kKey),
                                  std::string("Basic c2stdGVzdA==")}) {
    const Reply c = Post("/v1/completions", GoldenCompletion(), auth);
    EXPECT_EQ(c.status, 401) << "'" << auth << "': " << c.body;
    EXPECT_EQ(c.json["error"]["type"], "authentication_error");
    EXPECT_EQ(c.json["error"]["code"], "invalid_api_key");
    EXPECT_EQ(Post("/v1/chat/completions", Chat(), auth).status, 401) << auth;
    EXPECT_EQ(Send("GET", "/v1/models", "", auth).status, 401) << auth;
  }
  // A wrong key is refused before the model is looked at.
  Json wrong_model = GoldenCompletion();
  wrong_model["model"] = "gpt-4";
  EXPECT_EQ(Post("/v1/completions", wrong_model, "").status, 401);
  Json small = GoldenCompletion();
  small["max_tokens"] = 1;
  EXPECT_EQ(Post("/v1/completions", small, "Bearer sk-other").status, 200);  // the file's second key
  EXPECT_EQ(Send("GET", "/health", "", "").status, 200);
  EXPECT_EQ(Send("GET", "/health", "", "Bearer wrong-key").status, 200);

  // gRPC: metadata `authorization: Bearer KEY`.
  auto call = [](const std::string& auth) {
    grpc::ClientContext ctx;
    ctx.set_deadline(rpc::DeadlineIn(10000));
    if (!auth.empty()) ctx.AddMetadata("authorization", auth);
    moe::v1::ModelInfo info;
    return Stub()->GetModelInfo(&ctx, moe::v1::GetModelInfoRequest(), &info).error_code();
  };
  EXPECT_EQ(call(""), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call("Bearer wrong-key"), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call(kBearer), grpc::StatusCode::OK);
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(rpc::DeadlineIn(10000));
    moe::v1::GenerateRequest g;
    g.set_text("hi");
    g.set_max_tokens(1);
    auto reader = Stub()->Generate(&ctx, g);
    moe::v1::GenerateResponse m;
    EXPECT_FALSE(reader->Read(&m));
    const grpc::Status s = reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_THAT(s.error_message(), HasSubstr("missing API key"));
  }
  EXPECT_TRUE(rpc::IsServing(cluster_->gateway_address(), 5000));  // gRPC health stays open
}

// Last: it stops the expert worker. An error after the stream started ends
// it with an {"error": ...} event and [DONE]; /health then answers 503.
// moe-client and moe-loadgen against the keyed gateway: --api-key (or
// MOE_API_KEY) gets through on gRPC and HTTP, no key gets UNAUTHENTICATED/401.
TEST_F(HttpTest, ClientToolsSendTheApiKey) {
  auto run = [](const std::string& command) {
    test::ShellResult r = test::RunShellCommand(command);
    return std::make_pair(r.exit_code, std::move(r.output));
  };
  const std::string bin = MOE_BIN_DIR;
  const std::string client = "timeout 60 " + bin + "/moe-client --gateway " + cluster_->gateway_address() +
                             " --prompt Hello --max-tokens 3 --temperature 0";
  auto [with_key, out1] = run(client + " --api-key " + kKey);
  EXPECT_EQ(with_key, 0) << out1;
  EXPECT_THAT(out1, HasSubstr("3 completion tokens"));
  auto [from_env, out2] = run("MOE_API_KEY=" + std::string(kKey) + " " + client);
  EXPECT_EQ(from_env, 0) << out2;
  auto [no_key, out3] = run("env -u MOE_API_KEY " + client);
  EXPECT_EQ(no_key, 1) << out3;
  EXPECT_THAT(out3, HasSubstr("UNAUTHENTICATED"));

  const std::string json = run_dir_ + "/loadgen-key.json";
  const std::string common = " --vocab-size 512 --concurrency 2 --num-requests 4 --input-len 8 --output-len 3 --json " +
                             json;
  for (const std::string& target :
       {" --gateway " + cluster_->gateway_address(), " --backend http --base-url http://" +
                                                         cluster_->gateway_http_address()}) {
    SCOPED_TRACE(target);
    std::filesystem::remove(json);
    auto [rc, out] = run("timeout 120 " + bin + "/moe-loadgen" + target + " --api-key " + kKey + common);
    ASSERT_EQ(rc, 0) << out;
    std::ifstream in(json);
    const Json j = Json::parse(in);
    EXPECT_EQ(j["completed"], 4) << out;
    EXPECT_EQ(j["failed"], 0) << out;
  }
  // Without a key every HTTP request is refused with 401.
  std::filesystem::remove(json);
  auto [rc, out] = run("env -u MOE_API_KEY timeout 120 " + bin + "/moe-loadgen --backend http --base-url http://" +
                       cluster_->gateway_http_address() + " --model tiny-mixtral" + common);
  std::ifstream in(json);
  ASSERT_TRUE(in.good()) << out;
  const Json j = Json::parse(in);
  EXPECT_EQ(j["completed"], 0) << out;
  EXPECT_EQ(j["failed"], 4) << out;
  EXPECT_THAT(j.dump(), HasSubstr("401")) << out;
}

TEST_F(HttpTest, WorkerLossMidStreamAndHealth) {
  pid_t worker = -1;
  for (const auto& c : cluster_->processes().children()) {
    if (c.name == "worker-0") worker = c.pid;
  }
  ASSERT_GT(worker, 0);
  Json req = GoldenCompletion();
  req["stream"] = true;
  req["max_tokens"] = 4000;
  req["ignore_eos"] = true;
  httplib::Client c = Client();
  httplib::Request hr;
  hr.method = "POST";
  hr.path = "/v1/completions";
  hr.body = req.dump();
  hr.set_header("Content-Type", "application/json");
  hr.set_header("Authorization", kBearer);
  std::string body;
  bool killed = false;
  hr.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    body.append(data, n);
    if (!killed && body.find("\n\n") != std::string::npos) {
      kill(worker, SIGKILL);  // after the first event
      killed = true;
    }
    return true;
  };
  httplib::Result r = c.send(hr);
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  ASSERT_TRUE(killed);
  const std::vector<std::string> events = SseEvents(body);
  ASSERT_GE(events.size(), 3u);
  const Json error = Json::parse(events[events.size() - 2]);
  ASSERT_TRUE(error.contains("error")) << events[events.size() - 2];
  EXPECT_EQ(error["error"]["type"], "service_unavailable");
  EXPECT_THAT(error["error"]["message"].get<std::string>(), HasSubstr("worker"));

  const Reply health = Send("GET", "/health", "", "");
  EXPECT_EQ(health.status, 503) << health.body;
  EXPECT_EQ(health.json["status"], "unavailable");
  EXPECT_THAT(health.json["workers"][cluster_->worker_addresses()[0]].get<std::string>(),
              HasSubstr("UNREACHABLE"));
}

}  // namespace
}  // namespace moe
