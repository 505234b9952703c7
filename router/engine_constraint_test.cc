// Structured output through the engine on the tiny model with its real
// (cut) tokenizer: sampled at temperature 1.5 under regex and choice
// constraints, every completed output matches; greedy picks the best allowed
// token; max_tokens before completion ends with `length`; bad constraints are
// refused by name.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "experts/local_expert_backend.h"
#include "gmock/gmock.h"
#include "grammar/byte_dfa.h"
#include "grammar/constraint.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "router/engine.h"
#include "router/forward.h"
#include "tests/tiny_models.h"

namespace moe {
namespace {

using ::testing::HasSubstr;

class Sink : public GenerationSink {
 public:
  void OnToken(const GeneratedToken& t) override {
    absl::MutexLock lock(&mu_);
    ids.push_back(t.id);
    logprobs.push_back(t.logprob);
  }
  void OnFinish(const absl::Status& s, FinishReason r, int, int) override {
    absl::MutexLock lock(&mu_);
    status = s;
    reason = r;
    done_ = true;
  }
  void Wait() {
    absl::MutexLock lock(&mu_);
    ASSERT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&done_), absl::Seconds(60)));
  }
  std::vector<int32_t> ids;
  std::vector<double> logprobs;
  absl::Status status;
  FinishReason reason = FinishReason::kCancelled;

 private:
  absl::Mutex mu_;
  bool done_ = false;
};

class EngineConstraintTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = test::LoadTinyModel("mixtral");
    ASSERT_NE(model_, nullptr);
    std::ifstream in(test::TinyModelDir("mixtral") + "/tokenizer.json");
    std::stringstream text;
    text << in.rdbuf();
    auto vocab = grammar::TokenVocabulary::FromTokenizerJson(text.str(), "tiny-mixtral/tokenizer.json");
    ASSERT_TRUE(vocab.ok()) << vocab.status();
    vocab_ = std::move(*vocab);
    compiler_ = std::make_unique<grammar::ConstraintCompiler>(vocab_.get());
    pool_ = std::make_unique<ThreadPool>(2);
    backend_ = std::make_unique<LocalExpertBackend>(model_->shard.get(), pool_.get());
    forward_ = std::make_unique<ForwardPass>(model_->dense.get(), backend_.get(), pool_.get());
    EngineOptions o;
    o.constraints = compiler_.get();
    auto engine = Engine::Create(forward_.get(), o);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
  }
  // The output's bytes, without an end-of-sequence token.
  std::string Text(const std::vector<int32_t>& ids) const {
    std::string out;
    for (int32_t id : ids) {
      const auto& eos = model_->config().eos_token_ids;
      if (std::find(eos.begin(), eos.end(), id) != eos.end()) continue;
      out += vocab_->bytes(id);
    }
    return out;
  }
  GenerationRequest Request(grammar::ConstraintSpec spec, double temperature, uint64_t seed, int max_tokens) {
    GenerationRequest r;
    r.client_id = "c";
    r.prompt = {1, 17, 300, 42};
    r.max_tokens = max_tokens;
    r.sampling.temperature = static_cast<float>(temperature);
    r.sampling.seed = seed;
    r.constraint = std::move(spec);
    return r;
  }

  const test::TinyModel* model_ = nullptr;
  std::unique_ptr<grammar::TokenVocabulary> vocab_;
  std::unique_ptr<grammar::ConstraintCompiler> compiler_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<LocalExpertBackend> backend_;
  std::unique_ptr<ForwardPass> forward_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineConstraintTest, SampledOutputsUnderARegexMatchIt) {
  for (const std::string pattern : {"[a-z]{1,8}@[a-z]{1,8}\\.(com|org)", "\\d{3}-\\d{4}", "(red|green|blue)!"}) {
    auto dfa = grammar::ByteDfa::FromRegex(pattern);
    ASSERT_TRUE(dfa.ok());
    std::vector<std::shared_ptr<Sink>> sinks;
    grammar::ConstraintSpec spec;
    spec.kind = grammar::ConstraintSpec::Kind::kRegex;
    spec.regex = pattern;
    for (uint64_t seed = 1; seed <= 24; ++seed) {
      sinks.push_back(std::make_shared<Sink>());
      ASSERT_TRUE(engine_->Submit(Request(spec, 1.5, seed, 64), sinks.back()).ok());
    }
    int matched = 0;
    for (auto& s : sinks) {
      s->Wait();
      ASSERT_TRUE(s->status.ok()) << s->status;
      EXPECT_EQ(s->reason, FinishReason::kStop) << pattern << ": '" << Text(s->ids) << "'";
      EXPECT_TRUE((*dfa)->Matches(Text(s->ids))) << pattern << ": '" << Text(s->ids) << "'";
      matched += (*dfa)->Matches(Text(s->ids)) ? 1 : 0;
    }
    EXPECT_EQ(matched, 24) << pattern;
  }
}

TEST_F(EngineConstraintTest, SampledOutputsUnderAJsonSchemaParseAndValidate) {
  grammar::ConstraintSpec spec;
  spec.kind = grammar::ConstraintSpec::Kind::kJsonSchema;
  spec.json_schema = R"({"type": "object", "properties": {
      "name": {"type": "string", "maxLength": 6},
      "age": {"type": "integer"},
      "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3},
      "ok": {"type": "boolean"}},
    "required": ["name", "ok"], "additionalProperties": false})";
  std::vector<std::shared_ptr<Sink>> sinks;
  for (uint64_t seed = 1; seed <= 24; ++seed) {
    sinks.push_back(std::make_shared<Sink>());
    ASSERT_TRUE(engine_->Submit(Request(spec, 1.5, seed, 200), sinks.back()).ok());
  }
  int completed = 0;
  std::string instances = "[";  // the outputs' own text, not a re-serialization
  for (auto& s : sinks) {
    s->Wait();
    ASSERT_TRUE(s->status.ok()) << s->status;
    if (s->reason != FinishReason::kStop) continue;  // a long integer can run into max_tokens
    ++completed;
    const std::string text = Text(s->ids);
    instances += (instances.size() > 1 ? "," : "") + text;
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(j.is_object()) << text;
    ASSERT_TRUE(j.contains("name") && j["name"].is_string()) << text;
    EXPECT_LE(j["name"].get<std::string>().size(), 6u * 6) << text;  // 6 characters, each up to 6 bytes escaped
    ASSERT_TRUE(j.contains("ok") && j["ok"].is_boolean()) << text;
    if (j.contains("age")) {
      // An integer, perhaps beyond 64 bits (then parsed as a double): no fraction, no exponent.
      const size_t at = text.find("\"age\":") + 6;
      const std::string digits = text.substr(at, text.find_first_of(",}", at) - at);
      EXPECT_TRUE(j["age"].is_number()) << text;
      EXPECT_EQ(digits.find_first_not_of("-0123456789"), std::string::npos) << text;
    }
    if (j.contains("tags")) {
      ASSERT_TRUE(j["tags"].is_array()) << text;
      EXPECT_LE(j["tags"].size(), 3u) << text;
      for (const auto& t : j["tags"]) EXPECT_TRUE(t == "a" || t == "b" || t == "c") << text;
    }
    for (const auto& [k, v] : j.items()) {
      (void)v;
      EXPECT_TRUE(k == "name" || k == "age" || k == "tags" || k == "ok") << text;
    }
  }
  EXPECT_GE(completed, 16);
  // An independent validator (python3-jsonschema, installed by scripts/setup-deps.sh) checks every output.
  const std::string path = ::testing::TempDir() + "/constrained_outputs.json";
  std::ofstream(path) << "{\"schema\": " << spec.json_schema << ", \"instances\": " << instances << "]}";
  const std::string cmd =
      "python3 -c 'import json, sys, jsonschema; d = json.load(open(sys.argv[1])); "
      "[jsonschema.validate(i, d[\"schema\"]) for i in d[\"instances\"]]' " + path;
  EXPECT_EQ(std::system(cmd.c_str()), 0) << "python3-jsonschema rejected an output (see above): " << cmd;
}

// Soundness over the schema set of grammar/testdata/schemas.json (32
// schemas: records, formats, patterns, ranges, recursion, any JSON): 200
// draws each at temperature 1.5; every completed output parses and
// python3-jsonschema (Debian's, with its format checker) validates it (its
// json module parses every output first: numbers beyond a double included).
TEST_F(EngineConstraintTest, SampledOutputsOverTheSchemaSetAllValidate) {
  std::ifstream in(std::string(MOE_GRAMMAR_TESTDATA_DIR) + "/schemas.json");
  const nlohmann::ordered_json schemas = nlohmann::ordered_json::parse(in);
  ASSERT_GE(schemas.size(), 30u);
  constexpr int kDraws = 200;
  std::string report = "[";  // the outputs' own text: numbers beyond a double stay as written
  int completed_total = 0;
  for (const auto& c : schemas) {
    grammar::ConstraintSpec spec;
    spec.kind = grammar::ConstraintSpec::Kind::kJsonSchema;
    spec.json_schema = c["schema"].dump();
    spec.max_whitespace = c["name"] == "any value" ? 2 : 0;  // one schema with flexible whitespace
    std::vector<std::shared_ptr<Sink>> sinks;
    for (int d = 0; d < kDraws; ++d) {
      sinks.push_back(std::make_shared<Sink>());
      ASSERT_TRUE(engine_->Submit(Request(spec, 1.5, 1000 + d, 128), sinks.back()).ok()) << c["name"];
    }
    std::string instances = "[";
    int completed = 0;
    for (auto& s : sinks) {
      s->Wait();
      ASSERT_TRUE(s->status.ok()) << c["name"] << ": " << s->status;
      if (s->reason != FinishReason::kStop) continue;  // cut by max_tokens: a prefix
      instances += (completed++ > 0 ? "," : "") + Text(s->ids);
    }
    completed_total += completed;
    report += (report.size() > 1 ? ",\n" : "") + nlohmann::ordered_json({{"name", c["name"]}, {"schema", c["schema"]}}).dump();
    report.insert(report.size() - 1, ", \"instances\": " + instances + "]");
    std::cout << c["name"].get<std::string>() << ": " << completed << " of " << kDraws << " draws completed\n";
  }
  EXPECT_GT(completed_total, 30 * kDraws / 4) << "most draws complete within 128 tokens";
  const std::string path = ::testing::TempDir() + "/schema_set_outputs.json";
  std::ofstream(path) << report << "]";
  // Debian's checker parses "time" with datetime.time.fromisoformat, which
  // refuses the "Z" offset RFC 3339 allows: that one format is not checked.
  const std::string cmd =
      "/usr/bin/python3 -W ignore -c 'import json, sys, jsonschema\n"
      "fc = jsonschema.FormatChecker(); fc.checkers.pop(\"time\", None)\n"
      "bad = 0\n"
      "for c in json.load(open(sys.argv[1])):\n"
      "  v = jsonschema.Draft202012Validator(c[\"schema\"], format_checker=fc)\n"
      "  for i in c[\"instances\"]:\n"
      "    for e in v.iter_errors(i): bad += 1; print(c[\"name\"], json.dumps(i), e.message)\n"
      "sys.exit(1 if bad else 0)' " + path;
  EXPECT_EQ(std::system(cmd.c_str()), 0) << "python3-jsonschema rejected outputs (listed above): " << cmd;
}

TEST_F(EngineConstraintTest, GreedyUnderAChoicePicksAnOptionAndSeedsRepeat) {
  grammar::ConstraintSpec spec;
  spec.kind = grammar::ConstraintSpec::Kind::kChoice;
  spec.choices = {"positive", "negative", "neutral"};
  auto greedy = std::make_shared<Sink>();
  ASSERT_TRUE(engine_->Submit(Request(spec, 0, 1, 32), greedy).ok());
  greedy->Wait();
  ASSERT_TRUE(greedy->status.ok());
  EXPECT_THAT(spec.choices, ::testing::Contains(Text(greedy->ids)));
  EXPECT_EQ(greedy->reason, FinishReason::kStop);
  // The same seed gives the same output; reported logprobs are the raw model's (finite).
  auto a = std::make_shared<Sink>(), b = std::make_shared<Sink>();
  ASSERT_TRUE(engine_->Submit(Request(spec, 1.0, 77, 32), a).ok());
  ASSERT_TRUE(engine_->Submit(Request(spec, 1.0, 77, 32), b).ok());
  a->Wait();
  b->Wait();
  EXPECT_EQ(a->ids, b->ids);
  for (double lp : a->logprobs) EXPECT_TRUE(std::isfinite(lp) && lp <= 0);
}

TEST_F(EngineConstraintTest, MaxTokensBeforeCompletionEndsWithLength) {
  grammar::ConstraintSpec spec;
  spec.kind = grammar::ConstraintSpec::Kind::kRegex;
  spec.regex = "a{60}";
  auto s = std::make_shared<Sink>();
  ASSERT_TRUE(engine_->Submit(Request(spec, 1.0, 5, 4), s).ok());
  s->Wait();
  ASSERT_TRUE(s->status.ok());
  EXPECT_EQ(s->reason, FinishReason::kLength);
  EXPECT_EQ(s->ids.size(), 4u);
  const std::string text = Text(s->ids);
  EXPECT_EQ(text.find_first_not_of('a'), std::string::npos) << text;
}

TEST_F(EngineConstraintTest, BadConstraintsAreRefusedByName) {
  grammar::ConstraintSpec bad;
  bad.kind = grammar::ConstraintSpec::Kind::kRegex;
  bad.regex = "(a";
  auto st = engine_->Submit(Request(bad, 1.0, 1, 8), std::make_shared<Sink>());
  EXPECT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.status().message(), HasSubstr("regex: missing ')'"));
  grammar::ConstraintSpec empty_choice;
  empty_choice.kind = grammar::ConstraintSpec::Kind::kChoice;
  empty_choice.choices = {"ok", ""};
  st = engine_->Submit(Request(empty_choice, 1.0, 1, 8), std::make_shared<Sink>());
  EXPECT_THAT(st.status().message(), HasSubstr("choice[1]: 0 bytes"));
  // An engine without the model's token bytes refuses constraints.
  EngineOptions o;
  auto plain = Engine::Create(forward_.get(), o);
  ASSERT_TRUE(plain.ok());
  grammar::ConstraintSpec spec;
  spec.kind = grammar::ConstraintSpec::Kind::kRegex;
  spec.regex = "a";
  st = (*plain)->Submit(Request(spec, 1.0, 1, 8), std::make_shared<Sink>());
  EXPECT_EQ(st.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace moe
