// Byte-exact comparison with Jinja2: tests/testdata/chat_templates/goldens.json
// (made by make_goldens.py beside it with Debian's python3-jinja2) holds the
// fixture families' templates rendered over test conversations, and small
// snippets pinning expression / filter / whitespace semantics.
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "gateway/chat_template/builtins.h"
#include "gateway/chat_template/chat_template.h"
#include "gateway/chat_template/evaluator.h"
#include "gateway/chat_template/lexer.h"
#include "gateway/chat_template/parser.h"
#include "gtest/gtest.h"

namespace moe::chat {
namespace {

const std::string kTestdata = MOE_TESTDATA_DIR;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const Json& Goldens() {
  static const Json* goldens = [] {
    const std::string text = ReadAll(kTestdata + "/chat_templates/goldens.json");
    return new Json(Json::parse(text));
  }();
  return *goldens;
}

// "expected vs actual" with the first difference marked, for failure output.
std::string Diff(const std::string& expected, const std::string& actual) {
  size_t i = 0;
  while (i < expected.size() && i < actual.size() && expected[i] == actual[i]) ++i;
  const size_t from = i > 40 ? i - 40 : 0;
  return "first difference at byte " + std::to_string(i) + "\n  expected: " + Json(expected.substr(from, 120)).dump() +
         "\n  actual:   " + Json(actual.substr(from, 120)).dump();
}

// The compiled template of a golden family, as the gateway would load it.
absl::StatusOr<ChatTemplate> FamilyTemplate(const std::string& family) {
  const Json& f = Goldens()["families"][family];
  const std::string config = f["config"].get<std::string>();
  const std::string root = std::filesystem::path(kTestdata).parent_path().parent_path().string();
  if (f["template"] == f["config"]) {
    return LoadChatTemplate(std::filesystem::path(root + "/" + config).parent_path().string());
  }
  // A template kept apart from the tokenizer_config.json it goes with.
  CompileOptions options;
  options.origin = f["template"].get<std::string>();
  if (f["bos_token"].is_string()) options.bos_token = f["bos_token"].get<std::string>();
  if (f["eos_token"].is_string()) options.eos_token = f["eos_token"].get<std::string>();
  return ChatTemplate::Compile(ReadAll(root + "/" + options.origin), options);
}

TEST(ChatTemplateGoldenTest, EveryFamilyCompiles) {
  for (const auto& [family, unused] : Goldens()["families"].items()) {
    EXPECT_TRUE(FamilyTemplate(family).ok()) << family << ": " << FamilyTemplate(family).status();
  }
}

TEST(ChatTemplateGoldenTest, CasesRenderLikeJinja2) {
  std::map<std::string, ChatTemplate> templates;
  int rendered = 0, raised = 0;
  for (const Json& c : Goldens()["cases"]) {
    const std::string family = c["family"].get<std::string>();
    if (!templates.count(family)) {
      auto t = FamilyTemplate(family);
      ASSERT_TRUE(t.ok()) << t.status();
      templates.emplace(family, *std::move(t));
    }
    const std::string label = family + " / " + c["conversation"].get<std::string>() + " / add_generation_prompt=" +
                              (c["add_generation_prompt"].get<bool>() ? "true" : "false") +
                              " / extra=" + c["extra_variables"].dump();
    RenderOptions options;
    options.add_generation_prompt = c["add_generation_prompt"].get<bool>();
    options.tools = c["tools"];
    options.extra_variables = c["extra_variables"];
    const Json& messages = Goldens()["conversations"][c["conversation"].get<std::string>()];
    auto out = templates.at(family).Render(messages, options);
    if (c.contains("expected")) {
      ASSERT_TRUE(out.ok()) << label << ": " << out.status();
      const std::string expected = c["expected"].get<std::string>();
      EXPECT_EQ(*out, expected) << label << "\n" << Diff(expected, *out);
      ++rendered;
    } else {
      ASSERT_FALSE(out.ok()) << label << ": rendered, but Jinja2 failed with " << c["error"];
      EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << label;
      if (c["error_type"] == "raise_exception") {
        EXPECT_EQ(out.status().message(), c["error"].get<std::string>()) << label;
        ++raised;
      }
    }
  }
  EXPECT_GE(rendered, 100);
  EXPECT_GE(raised, 10);
}

TEST(ChatTemplateGoldenTest, SnippetsRenderLikeJinja2) {
  for (const Json& s : Goldens()["snippets"]) {
    const std::string name = s["name"].get<std::string>();
    auto tokens = Tokenize(s["template"].get<std::string>());
    ASSERT_TRUE(tokens.ok()) << name << ": " << tokens.status();
    auto body = Parse(*std::move(tokens));
    ASSERT_TRUE(body.ok()) << name << ": " << body.status();
    std::vector<std::pair<std::string, Value>> vars;
    for (const auto& [k, v] : s["context"].items()) vars.emplace_back(k, Value::Data(v));
    auto out = Evaluate(*body, std::move(vars), EvalLimits());
    if (s.contains("expected")) {
      ASSERT_TRUE(out.ok()) << name << ": " << out.status();
      const std::string expected = s["expected"].get<std::string>();
      EXPECT_EQ(*out, expected) << name << "\n" << Diff(expected, *out);
    } else {
      EXPECT_FALSE(out.ok()) << name << ": rendered " << Json(*out).dump() << ", Jinja2 failed with " << s["error"];
      if (out.ok()) continue;
      const std::string error = s["error"].get<std::string>();
      if (s["error_type"] == "raise_exception") {
        EXPECT_EQ(out.status().message(), std::string(kRaisedPrefix) + error) << name;
      } else {  // Python's own message, after our "line N: "
        EXPECT_TRUE(absl::EndsWith(out.status().message(), error)) << name << ": " << out.status() << " vs " << error;
      }
    }
  }
}

}  // namespace
}  // namespace moe::chat
