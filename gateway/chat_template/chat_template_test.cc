// ChatTemplate API: loading from a model directory, compile-time rejection of
// unsupported syntax, render errors, options.
#include "gateway/chat_template/chat_template.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe::chat {
namespace {

using ::testing::HasSubstr;

const std::string kTestdata = MOE_TESTDATA_DIR;

Json Messages(std::initializer_list<std::pair<const char*, const char*>> turns) {
  Json m = Json::array();
  for (const auto& [role, content] : turns) m.push_back({{"role", role}, {"content", content}});
  return m;
}

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("chat_template_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string path() const { return path_.string(); }
  void Write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name, std::ios::binary) << text;
  }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

RenderOptions WithGenerationPrompt() {
  RenderOptions o;
  o.add_generation_prompt = true;
  return o;
}
CompileOptions Origin(const std::string& origin) {
  CompileOptions o;
  o.origin = origin;
  return o;
}
CompileOptions EosToken(const std::string& eos) {
  CompileOptions o;
  o.eos_token = eos;
  return o;
}

absl::StatusOr<std::string> RenderSource(const std::string& source, const Json& messages = Json::array(),
                                         const RenderOptions& options = {}) {
  auto t = ChatTemplate::Compile(source);
  if (!t.ok()) return t.status();
  return t->Render(messages, options);
}

TEST(LoadChatTemplateTest, ReadsTemplateAndTokensFromTokenizerConfig) {
  auto t = LoadChatTemplate(kTestdata + "/tokenizers/deepseek_v3");
  ASSERT_TRUE(t.ok()) << t.status();
  // bos_token is an {"content": ...} object there.
  ASSERT_TRUE(t->bos_token().has_value());
  EXPECT_EQ(*t->bos_token(), "<｜begin▁of▁sentence｜>");
  auto out = t->Render(Messages({{"user", "hi"}}), WithGenerationPrompt());
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜>");
}

TEST(LoadChatTemplateTest, TinyMixtralRendersChatML) {
  auto t = LoadChatTemplate(kTestdata + "/tiny-mixtral");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_FALSE(t->bos_token().has_value());
  auto out = t->Render(Messages({{"user", "hi"}}), WithGenerationPrompt());
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(LoadChatTemplateTest, ListFormPicksDefault) {
  TempDir dir;
  dir.Write("tokenizer_config.json", R"({"eos_token": "</s>", "chat_template": [
      {"name": "tool_use", "template": "TOOLS"},
      {"name": "default", "template": "{{ messages[0].content }}{{ eos_token }}"}]})");
  auto t = LoadChatTemplate(dir.path());
  ASSERT_TRUE(t.ok()) << t.status();
  auto out = t->Render(Messages({{"user", "x"}}), {});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "x</s>");
}

TEST(LoadChatTemplateTest, ListFormWithoutDefaultIsAnError) {
  TempDir dir;
  dir.Write("tokenizer_config.json", R"({"chat_template": [{"name": "rag", "template": "x"}]})");
  auto t = LoadChatTemplate(dir.path());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("default"));
}

TEST(LoadChatTemplateTest, FallsBackToChatTemplateJinja) {
  // The Mistral fixture's tokenizer_config.json has no chat_template.
  EXPECT_EQ(LoadChatTemplate(kTestdata + "/tokenizers/mistral").status().code(), absl::StatusCode::kNotFound);
  TempDir dir;
  std::ifstream config(kTestdata + "/tokenizers/mistral/tokenizer_config.json");
  dir.Write("tokenizer_config.json", std::string(std::istreambuf_iterator<char>(config), {}));
  std::ifstream jinja(kTestdata + "/chat_templates/mistral/chat_template.jinja");
  dir.Write("chat_template.jinja", std::string(std::istreambuf_iterator<char>(jinja), {}));
  auto t = LoadChatTemplate(dir.path());
  ASSERT_TRUE(t.ok()) << t.status();
  auto out = t->Render(Messages({{"user", "a"}, {"assistant", "b"}}), {});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "<s>[INST] a [/INST]b</s>");
}

TEST(LoadChatTemplateTest, BadConfigsNameTheFile) {
  TempDir dir;
  dir.Write("tokenizer_config.json", R"({"chat_template": 7})");
  auto t = LoadChatTemplate(dir.path());
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("tokenizer_config.json: chat_template is neither"));
  dir.Write("tokenizer_config.json", R"({"chat_template": "x", "bos_token": 3})");
  EXPECT_THAT(std::string(LoadChatTemplate(dir.path()).status().message()), HasSubstr("bos_token"));
  dir.Write("tokenizer_config.json", "{not json");
  EXPECT_THAT(std::string(LoadChatTemplate(dir.path()).status().message()), HasSubstr("invalid JSON"));
  EXPECT_EQ(LoadChatTemplate(dir.path() + "/nope").status().code(), absl::StatusCode::kNotFound);
}

TEST(LoadChatTemplateTest, UnsupportedTemplateFailsAtLoadNamingFileAndLine) {
  TempDir dir;
  dir.Write("tokenizer_config.json",
            R"({"chat_template": "{% for m in messages %}\n{{ m.content | frobnicate }}\n{% endfor %}"})");
  auto t = LoadChatTemplate(dir.path());
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()),
              HasSubstr("tokenizer_config.json: chat_template line 2: unknown filter 'frobnicate'"));
}

struct UnsupportedCase {
  const char* source;
  const char* message;
};

TEST(ChatTemplateCompileTest, RejectsUnsupportedSyntaxNamingIt) {
  const UnsupportedCase cases[] = {
      {"{% macro greet(name) %}hi{% endmacro %}", "line 1: unsupported tag 'macro'"},
      {"x\n{% include 'other.jinja' %}", "line 2: unsupported tag 'include'"},
      {"{% extends 'base' %}", "unsupported tag 'extends'"},
      {"{% call foo() %}{% endcall %}", "unsupported tag 'call'"},
      {"{% with a = 1 %}{% endwith %}", "unsupported tag 'with'"},
      {"{% filter upper %}x{% endfilter %}", "unsupported tag 'filter'"},
      {"{% do ns.append(1) %}", "unsupported tag 'do'"},
      {"{{ x | frobnicate }}", "unknown filter 'frobnicate'"},
      {"{{ x | dictsort }}", "unknown filter 'dictsort'"},
      {"\n\n{{ x is prime }}", "line 3: unknown test 'prime'"},
      {"{{ '{} {}'.format(1, 2) }}", "unsupported method 'format'"},
      {"{{ messages.append(1) }}", "unsupported method 'append'"},
      {"{{ render_message(m) }}", "unknown function 'render_message'"},
      {"{{ [f][0](1) }}", "only named functions and methods can be called"},
      {"{{ f(*args) }}", "unknown function 'f'"},
      {"{{ range(*args) }}", "*args and **kwargs are not supported"},
      {"{% for x in y recursive %}{% endfor %}", "recursive loops are not supported"},
      {"{% break %}", "'break' outside of a loop"},
      {"{% for x in y %}", "unexpected end of template, looking for 'endfor' or 'else'"},
      {"{% if x %}{% endfor %}", "unsupported tag 'endfor'"},
      {"{{ 'abc }}", "unterminated string literal"},
      {"{{ x ]}}", "unexpected ']'"},
      {"{# never closed", "missing end of comment tag"},
      {"{{ x", "missing '}}'"},
      {"{{ x $ y }}", "unexpected character '$'"},
      {"{{ a is defined is defined }}", "tests cannot be chained"},
      {"{{ x[1, 2] }}", "several indices"},
      {"{% set x = %}", "expected an expression"},
      {"{{ '\\N{BULLET}' }}", "\\N{...}"},
  };
  for (const auto& c : cases) {
    auto t = ChatTemplate::Compile(c.source, Origin("test.json"));
    ASSERT_FALSE(t.ok()) << c.source;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << c.source;
    EXPECT_THAT(std::string(t.status().message()), HasSubstr(c.message)) << c.source;
    EXPECT_THAT(std::string(t.status().message()), HasSubstr("test.json: chat_template line ")) << c.source;
  }
}

TEST(ChatTemplateCompileTest, RejectsInvalidUtf8) {
  EXPECT_THAT(std::string(ChatTemplate::Compile("\xff{{ x }}").status().message()), HasSubstr("not valid UTF-8"));
}

TEST(ChatTemplateRenderTest, RaiseExceptionIsInvalidArgumentWithTheMessage) {
  auto out = RenderSource("{% if messages | length == 0 %}{{ raise_exception('No messages given!') }}{% endif %}");
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out.status().message(), "No messages given!");
}

TEST(ChatTemplateRenderTest, RuntimeErrorsNameOriginAndLine) {
  auto t = ChatTemplate::Compile("{% for m in messages %}\n{{ m.content + 1 }}\n{% endfor %}",
                                 Origin("model/tokenizer_config.json"));
  ASSERT_TRUE(t.ok()) << t.status();
  auto out = t->Render(Messages({{"user", "x"}}), {});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out.status().message(),
            "model/tokenizer_config.json: chat_template line 2: can only concatenate str (not \"int\") to str");
  // Attribute of an undefined value.
  out = RenderSource("{{ nothing.role }}");
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("line 1: 'nothing' is undefined"));
}

TEST(ChatTemplateRenderTest, HugeRangesAreRefusedLikeJinjasSandbox) {
  auto out = RenderSource("{{ range(100001) | length }}");
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("MAX_RANGE"));
}

TEST(ChatTemplateRenderTest, Variables) {
  const std::string source =
      "{{ bos_token is defined }}|{{ eos_token }}|{{ tools }}|{{ add_generation_prompt }}|{{ enable_thinking }}";
  auto t = ChatTemplate::Compile(source, EosToken("</s>"));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t->Render(Json::array(), {}), "False|</s>|None|False|");
  RenderOptions options;
  options.bos_token = "<s>";
  options.eos_token = "<eos>";
  options.add_generation_prompt = true;
  options.tools = Json::array({{{"type", "function"}}});
  options.extra_variables = {{"enable_thinking", false}};
  EXPECT_EQ(*t->Render(Json::array(), options), "True|<eos>|[{'type': 'function'}]|True|False");
  options.extra_variables = {{"messages", 1}};
  EXPECT_THAT(std::string(t->Render(Json::array(), options).status().message()), HasSubstr("'messages' redefines"));
  EXPECT_FALSE(t->Render(Json::object(), {}).ok());
}

TEST(ChatTemplateRenderTest, ToJsonKeepsRequestKeyOrder) {
  // Python dicts keep insertion order, so must we: parse with ordered_json.
  const Json tools =
      Json::parse(R"([{"type": "function", "function": {"name": "f", "parameters": {"z": 1, "a": 2}}}])");
  RenderOptions options;
  options.tools = tools;
  EXPECT_EQ(*RenderSource("{{ tools[0] | tojson }}", Json::array(), options),
            R"({"type": "function", "function": {"name": "f", "parameters": {"z": 1, "a": 2}}})");
}

TEST(ChatTemplateRenderTest, ConcurrentRendersShareOneTemplate) {
  auto t = LoadChatTemplate(kTestdata + "/tokenizers/qwen3");
  ASSERT_TRUE(t.ok()) << t.status();
  const Json messages =
      Messages({{"system", "s"}, {"user", "u"}, {"assistant", "<think>\nr\n</think>\n\na"}, {"user", "v"}});
  const std::string expected = *t->Render(messages, WithGenerationPrompt());
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 200; ++k) {
        auto out = t->Render(messages, WithGenerationPrompt());
        if (!out.ok() || *out != expected) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace moe::chat

namespace moe::chat {
namespace {

// Random edits of a real template must give a template, an error, or a render
// error: never a crash or a hang (the test runs under the sanitizers in CI
// builds that enable them).
TEST(ChatTemplateRobustnessTest, MutatedTemplatesFailCleanly) {
  std::ifstream in(kTestdata + "/tokenizers/qwen3/tokenizer_config.json");
  const Json config = Json::parse(std::string(std::istreambuf_iterator<char>(in), {}));
  const std::string original = config["chat_template"].get<std::string>();
  const Json messages = Json::parse(R"([{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
      {"role": "assistant", "content": "<think>r</think>a", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]},
      {"role": "tool", "content": "t"}])");
  const std::string alphabet = "{}%#-+()[]|.,:~'\"= \nabcdeisnotr01";
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto rand = [&](uint64_t n) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state % n;
  };
  int compiled = 0;
  for (int round = 0; round < 1500; ++round) {
    std::string source = original;
    const int edits = 1 + static_cast<int>(rand(4));
    for (int e = 0; e < edits; ++e) {
      const size_t at = rand(source.size());
      switch (rand(3)) {
        case 0: source.erase(at, 1 + rand(8)); break;
        case 1: source.insert(at, 1, alphabet[rand(alphabet.size())]); break;
        default: source[at] = alphabet[rand(alphabet.size())]; break;
      }
    }
    auto t = ChatTemplate::Compile(source);
    if (!t.ok()) {
      EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
      continue;
    }
    ++compiled;
    auto out = t->Render(messages, WithGenerationPrompt());
    if (!out.ok()) {
      EXPECT_TRUE(out.status().code() == absl::StatusCode::kInvalidArgument ||
                  out.status().code() == absl::StatusCode::kResourceExhausted)
          << out.status();
    }
  }
  EXPECT_GT(compiled, 0);
}

}  // namespace
}  // namespace moe::chat
