// Unit tests of the layers under ChatTemplate: Python string helpers, the
// lexer's whitespace control, expressions, filters, scoping and limits. The
// Jinja2-derived expectations here were checked against Jinja2 3.1.2.
#include <string>

#include "gateway/chat_template/evaluator.h"
#include "gateway/chat_template/lexer.h"
#include "gateway/chat_template/parser.h"
#include "gateway/chat_template/py_string.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe::chat {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<std::string> Render(const std::string& source, const Json& context = Json::object(),
                                   const EvalLimits& limits = {}) {
  auto tokens = Tokenize(source);
  if (!tokens.ok()) return tokens.status();
  auto body = Parse(*std::move(tokens));
  if (!body.ok()) return body.status();
  std::vector<std::pair<std::string, Value>> vars;
  for (const auto& [k, v] : context.items()) vars.emplace_back(k, Value::Data(v));
  return Evaluate(*body, std::move(vars), limits);
}

std::string R(const std::string& source, const Json& context = Json::object()) {
  auto out = Render(source, context);
  return out.ok() ? *out : "ERROR: " + std::string(out.status().message());
}

TEST(PyStringTest, FloatRepr) {
  EXPECT_EQ(py::FormatFloat(1.0), "1.0");
  EXPECT_EQ(py::FormatFloat(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(py::FormatFloat(1e16), "1e+16");
  EXPECT_EQ(py::FormatFloat(1e15), "1000000000000000.0");
  EXPECT_EQ(py::FormatFloat(1.5e-7), "1.5e-07");
  EXPECT_EQ(py::FormatFloat(0.0001), "0.0001");
  EXPECT_EQ(py::FormatFloat(-2.5), "-2.5");
  EXPECT_EQ(py::FormatFloat(-0.0), "-0.0");
  EXPECT_EQ(py::FormatFloat(1.2345678901234567e+300), "1.2345678901234567e+300");
}

TEST(PyStringTest, Repr) {
  EXPECT_EQ(py::Repr("abc"), "'abc'");
  EXPECT_EQ(py::Repr("it's"), "\"it's\"");
  EXPECT_EQ(py::Repr("'\""), "'\\'\"'");
  EXPECT_EQ(py::Repr("a\nb\t\x01\\"), "'a\\nb\\t\\x01\\\\'");
  EXPECT_EQ(py::Repr("é😀"), "'é😀'");
  EXPECT_EQ(py::Repr("\xc2\xa0"), "'\\xa0'");  // NBSP is not printable
}

TEST(PyStringTest, StripSplitReplace) {
  EXPECT_EQ(py::Strip("\u3000 x\t\n", std::nullopt, true, true), "x");
  EXPECT_EQ(py::Strip("\n\nx\n", std::string_view("\n"), false, true), "\n\nx");
  EXPECT_EQ(py::Strip("abcxcba", std::string_view("ab"), true, true), "cxc");
  EXPECT_THAT(py::Split("  a  b ", std::nullopt, -1), ::testing::ElementsAre("a", "b"));
  EXPECT_THAT(py::Split("  a  b ", std::nullopt, 1), ::testing::ElementsAre("a", "b "));
  EXPECT_THAT(py::Split("a,,b", std::string_view(","), -1), ::testing::ElementsAre("a", "", "b"));
  EXPECT_THAT(py::RSplit("a,b,c", std::string_view(","), 1), ::testing::ElementsAre("a,b", "c"));
  EXPECT_THAT(py::RSplit(" a b  c ", std::nullopt, 1), ::testing::ElementsAre(" a b", "c"));
  EXPECT_EQ(py::Replace("aaa", "a", "b", 2), "bba");
  EXPECT_EQ(py::Replace("ab", "", "-", -1), "-a-b-");
  EXPECT_EQ(py::Find("héllo", "l", false), 2);
  EXPECT_EQ(py::Length("héllo😀"), 6u);
}

TEST(LexerTest, WhitespaceControlMatchesJinja) {
  EXPECT_EQ(R("a\n{% if true %}\nb\n{% endif %}\nc"), "a\nb\nc");  // trim_blocks
  EXPECT_EQ(R("  {% if true %}x{% endif %}  \n  y"), "x  \n  y");  // lstrip_blocks
  EXPECT_EQ(R("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");  // - on both sides
  EXPECT_EQ(R("x\n    {{ 'y' }}"), "x\n    y");                    // no lstrip for {{
  EXPECT_EQ(R("a\n  {%+ if true %}b{% endif %}"), "a\n  b");       // + keeps the indent
  EXPECT_EQ(R("{% if true +%}\nc{% endif %}"), "\nc");             // +%} keeps the newline
  EXPECT_EQ(R("x\n  {# note #}\ny"), "x\ny");                      // comments trim too
  EXPECT_EQ(R("one\n"), "one");                                    // keep_trailing_newline=False
  EXPECT_EQ(R("a\r\nb"), "a\nb");                                  // newlines normalised
  EXPECT_EQ(R("{% raw %}{{ x }}{% endraw %}"), "{{ x }}");
}

TEST(LexerTest, TracksLines) {
  auto tokens = Tokenize("a\n{{ x }}\n{% if y\n %}");
  ASSERT_TRUE(tokens.ok());
  int if_line = 0;
  for (const Token& t : *tokens) {
    if (t.type == TokenType::kName && t.value == "y") if_line = t.line;
  }
  EXPECT_EQ(if_line, 3);
  EXPECT_THAT(Tokenize("a\n\n{{ 'open }}").status().message(), HasSubstr("line 3: unterminated string"));
}

TEST(ExpressionTest, ArithmeticAndPrecedence) {
  EXPECT_EQ(R("{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 1 / 4 }}"),
            "7 3 -4 2 1024 0.25");
  EXPECT_EQ(R("{{ 'a' ~ 'b' | upper }} {{ 2 * 3 ~ 4 }} {{ not x is defined }}"), "aB 64 True");
  EXPECT_EQ(R("{{ l | length - 1 }}", {{"l", {1, 2, 3}}}), "2");
  EXPECT_EQ(R("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }}"), "True False");
  EXPECT_EQ(R("{{ 'x' if false }}|{{ 1 if 0 else 2 }}"), "|2");
  EXPECT_THAT(R("{{ 9223372036854775807 + 1 }}"), HasSubstr("64-bit"));
}

TEST(ExpressionTest, UndefinedSemantics) {
  EXPECT_EQ(R("[{{ missing }}]{{ missing is defined }}{{ missing | length }}{{ missing | default('d') }}"),
            "[]False0d");
  EXPECT_EQ(R("{% for x in missing %}x{% endfor %}{{ 'a' in missing }}"), "False");
  EXPECT_THAT(R("{{ missing + 'a' }}"), HasSubstr("'missing' is undefined"));
  EXPECT_THAT(R("{{ d.a.b }}", {{"d", Json::object()}}), HasSubstr("'dict object' has no attribute 'a'"));
}

TEST(ExpressionTest, PythonValuesPrintAsPython) {
  EXPECT_EQ(R("{{ x }}", {{"x", Json::parse(R"({"a": [1, 2.5, null, true, "s"]})")}}),
            "{'a': [1, 2.5, None, True, 's']}");
  EXPECT_EQ(R("{{ none }} {{ True }} {{ 3.0 }}"), "None True 3.0");
}

TEST(FilterTest, ToJsonIsJsonDumpsWithoutAsciiEscaping) {
  const Json x = Json::parse(R"({"b": "é\n\"", "a": [1.0, null, {}], "c": 1e16})");
  EXPECT_EQ(R("{{ x | tojson }}", {{"x", x}}), R"({"b": "é\n\"", "a": [1.0, null, {}], "c": 1e+16})");
  EXPECT_EQ(R("{{ x | tojson(indent=1) }}", {{"x", Json::parse(R"({"a": [1]})")}}), "{\n \"a\": [\n  1\n ]\n}");
  EXPECT_EQ(R("{{ x | tojson(sort_keys=true) }}", {{"x", Json::parse(R"({"b": 1, "a": 2})")}}), R"({"a": 2, "b": 1})");
  EXPECT_THAT(R("{{ missing | tojson }}"), HasSubstr("not JSON serializable"));
}

TEST(FilterTest, StringAndListFilters) {
  EXPECT_EQ(R("[{{ '  x ' | trim }}][{{ none | trim }}]"), "[x][None]");
  EXPECT_EQ(R("{{ ['a', 'b'] | join('-') }} {{ [3, 1] | first }} {{ [3, 1] | last }} {{ 'ab' | upper }}"),
            "a-b 3 1 AB");
  EXPECT_EQ(R("{{ x | items | list }}", {{"x", Json::parse(R"({"z": 1, "a": 2})")}}), "[['z', 1], ['a', 2]]");
  EXPECT_EQ(R("{{ l | selectattr('ok') | map(attribute='n') | list }}",
              {{"l", Json::parse(R"([{"n": 1, "ok": true}, {"n": 2, "ok": false}])")}}),
            "[1]");
  EXPECT_EQ(R("{{ '' | default('d', true) }} {{ 0 | string }} {{ 'a-b' | replace('-', '+') }}"), "d 0 a+b");
}

TEST(StatementTest, ScopingFollowsJinja) {
  // A loop iteration is a scope: sets do not leak out or into the next one.
  EXPECT_EQ(R("{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}"), "12121");
  // `if` is not a scope.
  EXPECT_EQ(R("{% if true %}{% set y = 2 %}{% endif %}{{ y }}"), "2");
  // A namespace is shared by reference.
  EXPECT_EQ(R("{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"),
            "6");
  EXPECT_THAT(R("{% set s = 'x' %}{% set s.a = 1 %}"), HasSubstr("non-namespace"));
}

TEST(StatementTest, LoopVariables) {
  EXPECT_EQ(R("{% for x in 'abc' %}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }} {% endfor %}"),
            "1TrueFalse3 2FalseFalse3 3FalseTrue3 ");
  EXPECT_EQ(R("{% for x in [1, 2, 3, 4] if x > 1 %}{% if x == 3 %}{% continue %}{% endif %}{{ loop.index }}{{ x }}"
              "{% endfor %}"),
            "1234");
}

TEST(EvaluatorTest, LimitsStopRunawayTemplates) {
  EvalLimits limits;
  limits.max_steps = 10000;
  auto out =
      Render("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", Json::object(), limits);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kResourceExhausted);
  limits = EvalLimits();
  limits.max_output_bytes = 100;
  out = Render("{% for i in range(1000) %}xxxxxxxxxx{% endfor %}", Json::object(), limits);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(ParserTest, DeepNestingIsAnErrorNotACrash) {
  const std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  EXPECT_THAT(R(deep), HasSubstr("nested too deeply"));
  std::string ifs;
  for (int i = 0; i < 1000; ++i) ifs += "{% if true %}";
  EXPECT_THAT(R(ifs), HasSubstr("nested too deeply"));
}

}  // namespace
}  // namespace moe::chat
