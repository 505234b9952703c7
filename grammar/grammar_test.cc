// Token bytes of the real tokenizers, regular expressions as byte automata
// (against std::regex, ECMAScript), and the token masks they allow: every
// token of a valid string's encoding is allowed at its step (completeness),
// and random walks through the masks only produce matches (soundness).
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "core/gzip_file.h"
#include "gateway/tokenizer/tokenizer.h"
#include "gmock/gmock.h"
#include "grammar/byte_dfa.h"
#include "grammar/constraint.h"
#include "grammar/dfa_constraint.h"
#include "grammar/earley.h"
#include "grammar/gbnf.h"
#include "grammar/grammar.h"
#include "grammar/json_schema.h"
#include "grammar/token_vocabulary.h"
#include "grammar/token_walk.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace moe::grammar {
namespace {

using ::testing::HasSubstr;

std::string Dir(const std::string& family) { return std::string(MOE_TESTDATA_DIR) + "/tokenizers/" + family; }

struct Loaded {
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  std::unique_ptr<TokenVocabulary> vocab;
};

const Loaded& Load(const std::string& family) {
  static auto* cache = new std::map<std::string, Loaded>();
  auto it = cache->find(family);
  if (it != cache->end()) return it->second;
  Loaded l;
  auto t = tokenizer::Tokenizer::FromDirectory(Dir(family));
  EXPECT_TRUE(t.ok()) << t.status();
  l.tokenizer = std::move(*t);
  auto text = ReadMaybeGzippedFile(Dir(family) + "/tokenizer.json.gz");
  EXPECT_TRUE(text.ok()) << text.status();
  auto v = TokenVocabulary::FromTokenizerJson(*text, family);
  EXPECT_TRUE(v.ok()) << v.status();
  l.vocab = std::move(*v);
  return cache->emplace(family, std::move(l)).first->second;
}

std::vector<std::string> Corpus() {
  std::ifstream in(std::string(MOE_TESTDATA_DIR) + "/tokenizers/corpus.json");
  return nlohmann::json::parse(in).get<std::vector<std::string>>();
}

std::string BytesOf(const TokenVocabulary& v, const std::vector<int32_t>& ids) {
  std::string out;
  for (int32_t id : ids) out += v.bytes(id);
  return out;
}

class VocabularyTest : public ::testing::TestWithParam<std::string> {};

TEST_P(VocabularyTest, TheBytesOfAnEncodingAreTheText) {
  const Loaded& l = Load(GetParam());
  ASSERT_NE(l.vocab, nullptr);
  EXPECT_EQ(l.vocab->size(), l.tokenizer->vocab_size());
  int checked = 0;
  for (const std::string& text : Corpus()) {
    tokenizer::EncodeOptions o;
    auto ids = l.tokenizer->Encode(text, o);
    ASSERT_TRUE(ids.ok()) << ids.status();
    const std::string bytes = BytesOf(*l.vocab, *ids);
    if (GetParam() == "mistral" && !text.empty()) {
      // SentencePiece-style tokenizers prepend a space ("▁") to the text.
      EXPECT_EQ(bytes, " " + text) << GetParam();
    } else if (GetParam() == "qwen3") {
      // Qwen3 normalizes to NFC first: the bytes are the normalized text, which decoding gives back.
      auto decoded = l.tokenizer->Decode(*ids, /*skip_special_tokens=*/false);
      ASSERT_TRUE(decoded.ok());
      EXPECT_EQ(bytes, *decoded) << GetParam();
    } else {
      EXPECT_EQ(bytes, text) << GetParam();
    }
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(Corpus().size()));
}

TEST_P(VocabularyTest, TheTrieHoldsEveryNonSpecialTokenOnce) {
  const TokenVocabulary& v = *Load(GetParam()).vocab;
  std::vector<int> seen(v.size(), 0);
  const auto& trie = v.trie();
  // Walk the trie: the bytes along the path to a token are its bytes.
  std::vector<std::pair<uint32_t, std::string>> stack = {{0u, ""}};
  while (!stack.empty()) {
    auto [node, prefix] = stack.back();
    stack.pop_back();
    int last_byte = -1;
    for (uint32_t c = trie[node].first_child; c != 0; c = trie[c].next_sibling) {
      EXPECT_GT(trie[c].byte, last_byte) << "children in increasing byte order";
      last_byte = trie[c].byte;
      std::string bytes = prefix + static_cast<char>(trie[c].byte);
      if (trie[c].token >= 0) {
        EXPECT_EQ(v.bytes(trie[c].token), bytes);
        ++seen[trie[c].token];
        if (trie[c].more_tokens != 0) {
          for (int32_t id : v.MoreTokens(trie[c])) ++seen[id];
        }
      }
      stack.emplace_back(c, bytes);
      // Pre-order numbering: depth, parent and path bytes agree with the walk.
      EXPECT_EQ(v.depth(c), static_cast<int32_t>(bytes.size()));
      EXPECT_EQ(v.parent(c), node);
      if (c % 97 == 0) {
        EXPECT_EQ(v.NodeBytes(c), bytes);
      }
    }
  }
  for (int32_t id = 0; id < v.size(); ++id) {
    EXPECT_EQ(seen[id], v.special(id) || v.bytes(id).empty() ? 0 : 1) << "token " << id;
  }
  // A subtree is the range [n, subtree_end(n)): every node in it descends
  // from n, and the next node after it does not.
  for (uint32_t n = 0; n < trie.size(); n += 1 + n % 13) {
    const uint32_t end = v.subtree_end(n);
    ASSERT_GT(end, n);
    for (uint32_t m : {n + 1, (n + end) / 2, end - 1, end}) {
      if (m <= n || m >= trie.size()) continue;
      uint32_t a = m;
      while (v.depth(a) > v.depth(n)) a = v.parent(a);
      EXPECT_EQ(a == n, m < end) << "node " << m << " under " << n;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, VocabularyTest, ::testing::Values("qwen3", "llama3", "mistral", "deepseek_v3"),
                         [](const auto& info) { return info.param; });

TEST(VocabularyTest, ByteFallbackAndMetaspaceTokens) {
  const TokenVocabulary& v = *Load("mistral").vocab;
  const tokenizer::Tokenizer& t = *Load("mistral").tokenizer;
  EXPECT_EQ(v.bytes(*t.TokenToId("<0xE2>")), "\xE2");
  EXPECT_EQ(v.bytes(*t.TokenToId("\xE2\x96\x81the")), " the");
  EXPECT_TRUE(v.special(*t.TokenToId("</s>")));
}

TEST(VocabularyTest, UnknownDecodersAreRefusedByName) {
  auto v = TokenVocabulary::FromTokenizerJson(
      R"({"model":{"type":"WordPiece","vocab":{"a":0}},"decoder":{"type":"WordPiece"}})", "t.json");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(v.status().message(), HasSubstr("decoder 'WordPiece'"));
  EXPECT_EQ(TokenVocabulary::FromTokenizerJson("{", "t.json").status().code(), absl::StatusCode::kInvalidArgument);
}

// Patterns whose semantics std::regex (ECMAScript) also has.
const std::vector<std::string>& AsciiPatterns() {
  static const std::vector<std::string> p = {
      "[a-z]+@[a-z]+\\.(com|org)", "\\d{3}-\\d{4}", "(ab|cd)*e?",    "x{2,4}y",  "[^abc]{0,3}",
      "a|b|",                      ".{2}",           "(a|b)+?c",      "[\\d.]+",  "\\w\\W\\s\\S",
      "(?:x|y){2,}",               "[-a]+",          "[a\\-z]",       "\\.\\*",   "(((a)))b{0}",
  };
  return p;
}

TEST(ByteDfaTest, MatchesWhatStdRegexMatches) {
  std::mt19937_64 rng(3);
  const std::string alphabet = "abcdexy@.-0123 \n*";
  int checked = 0;
  for (const std::string& p : AsciiPatterns()) {
    auto dfa = ByteDfa::FromRegex(p);
    ASSERT_TRUE(dfa.ok()) << p << ": " << dfa.status();
    const std::regex re(p, std::regex::ECMAScript);
    for (int i = 0; i < 3000; ++i) {
      std::string s;
      const int len = static_cast<int>(rng() % 9);
      for (int k = 0; k < len; ++k) s += alphabet[rng() % alphabet.size()];
      ASSERT_EQ((*dfa)->Matches(s), std::regex_match(s, re)) << "pattern " << p << " on '" << s << "'";
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3000 * static_cast<int>(AsciiPatterns().size()));
}

TEST(ByteDfaTest, CharactersAreCodePointsInUtf8) {
  auto hangul = ByteDfa::FromRegex("[가-힣]+(, [가-힣]+)*!");
  ASSERT_TRUE(hangul.ok()) << hangul.status();
  EXPECT_TRUE((*hangul)->Matches("안녕하세요, 세계!"));
  EXPECT_FALSE((*hangul)->Matches("안녕, world!"));
  EXPECT_FALSE((*hangul)->Matches("\xEC\x95!"));  // half a character
  auto any = ByteDfa::FromRegex(".{3}");
  ASSERT_TRUE(any.ok());
  EXPECT_TRUE((*any)->Matches("a안😀"));  // 1 + 3 + 4 bytes, three characters
  EXPECT_FALSE((*any)->Matches("a\xED\xA0\x80z"));  // an encoded surrogate is not UTF-8
  EXPECT_FALSE((*any)->Matches("ab\n"));
  auto esc = ByteDfa::FromRegex("\\u00e9\\u{1F600}\\x41");
  ASSERT_TRUE(esc.ok()) << esc.status();
  EXPECT_TRUE((*esc)->Matches("é😀A"));
  auto neg = ByteDfa::FromRegex("[^a]");
  ASSERT_TRUE(neg.ok());
  EXPECT_TRUE((*neg)->Matches("한"));
  EXPECT_FALSE((*neg)->Matches("a"));
}

TEST(ByteDfaTest, ChoicesAreLiteral) {
  auto dfa = ByteDfa::FromChoices({"yes", "no", "a.b", "(x)", "[y]", "c++", "x|y"});
  ASSERT_TRUE(dfa.ok()) << dfa.status();
  for (const char* s : {"yes", "no", "a.b", "(x)", "[y]", "c++", "x|y"}) EXPECT_TRUE((*dfa)->Matches(s)) << s;
  for (const char* s : {"", "ye", "yesno", "aXb", "x", "y", "c", "cc"}) EXPECT_FALSE((*dfa)->Matches(s)) << s;
  EXPECT_EQ(ByteDfa::FromChoices({}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ByteDfaTest, UnsupportedSyntaxAndLimitsAreNamed) {
  struct Bad {
    const char* pattern;
    const char* why;
  };
  for (const Bad& b : {Bad{"(a", "missing ')'"}, Bad{"a)", "unbalanced ')'"}, Bad{"a{2,1}", "m < n"},
                       Bad{"(a)\\1", "unsupported escape \\1"}, Bad{"(?=x)", "lookaround"},
                       Bad{"a{1001}", "larger than 1000"}, Bad{"*a", "nothing to repeat"}, Bad{"[a", "unterminated"},
                       Bad{"a\\bb", "word boundaries"}, Bad{"a^b", "anchors inside"}, Bad{"[b-a]", "out of order"},
                       Bad{"((a{1000}){1000}){2}", "exceeds"}, Bad{"(a|b)*a(a|b){20}", "exceeds 20000 states"},
                       Bad{"[^\\s\\S]", "matches no string"}}) {
    auto dfa = ByteDfa::FromRegex(b.pattern);
    ASSERT_FALSE(dfa.ok()) << b.pattern;
    EXPECT_EQ(dfa.status().code(), absl::StatusCode::kInvalidArgument) << b.pattern;
    EXPECT_THAT(dfa.status().message(), HasSubstr(b.why)) << b.pattern;
  }
}

// Forcing the encoding of valid strings never meets a masked token.
TEST(DfaConstraintTest, TheEncodingOfAMatchIsAllowedAtEveryStep) {
  struct Case {
    const char* pattern;
    std::vector<std::string> valid;
  };
  const std::vector<Case> cases = {
      {"[a-z]+@[a-z]+\\.(com|org)", {"hello@example.com", "a@b.org"}},
      {"\\{\"name\": \"[^\"]*\", \"age\": \\d+\\}", {"{\"name\": \"Kim\", \"age\": 42}", "{\"name\": \"\", \"age\": 7}"}},
      {"[가-힣 ]+", {"안녕하세요 세계", "한국어 문장"}},
      {"(yes|no|maybe so)", {"yes", "maybe so"}},
      {"\\d{4}-\\d{2}-\\d{2}", {"2026-12-04"}},
  };
  for (const std::string family : {"qwen3", "llama3", "mistral"}) {
    const Loaded& l = Load(family);
    int tokens_checked = 0;
    for (const Case& c : cases) {
      // SentencePiece-style tokenizers (mistral) write a space before the text.
      const std::string pattern = family == "mistral" ? " (?:" + std::string(c.pattern) + ")" : c.pattern;
      auto dfa = ByteDfa::FromRegex(pattern);
      ASSERT_TRUE(dfa.ok()) << pattern << ": " << dfa.status();
      DfaConstraint constraint(dfa->get(), l.vocab.get());
      for (const std::string& text : c.valid) {
        tokenizer::EncodeOptions o;
        auto ids = l.tokenizer->Encode(text, o);
        ASSERT_TRUE(ids.ok());
        const std::vector<int32_t>& forced = *ids;
        int32_t s = constraint.start();
        for (int32_t id : forced) {
          ASSERT_TRUE(Allowed(constraint.Mask(s), id))
              << family << " " << c.pattern << " '" << text << "': token " << id << " '" << l.vocab->bytes(id)
              << "' masked";
          s = constraint.Advance(s, id);
          ASSERT_GE(s, 0);
          ++tokens_checked;
        }
        EXPECT_TRUE(constraint.Complete(s)) << family << " " << text;
      }
    }
    EXPECT_GT(tokens_checked, 10) << family;
  }
}

// Random walks through the masks end in matches only.
TEST(DfaConstraintTest, RandomWalksThroughTheMasksOnlyProduceMatches) {
  const Loaded& l = Load("qwen3");
  std::mt19937_64 rng(11);
  const std::vector<std::string> patterns = {"[a-z]+@[a-z]+\\.(com|org)", "\\d{3}-\\d{4}", "[가-힣]{2,6}!",
                                             "(red|green|blue)( and (red|green|blue))*", "\"([^\"\\\\]|\\\\.)*\""};
  int completed = 0;
  for (const std::string& p : patterns) {
    auto dfa = ByteDfa::FromRegex(p);
    ASSERT_TRUE(dfa.ok()) << dfa.status();
    DfaConstraint constraint(dfa->get(), l.vocab.get());
    for (int walk = 0; walk < 40; ++walk) {
      int32_t s = constraint.start();
      std::string out;
      for (int step = 0; step < 40; ++step) {
        if (constraint.Complete(s) && rng() % 3 == 0) break;  // end of sequence allowed only when complete
        const TokenMask& m = constraint.Mask(s);
        std::vector<int32_t> allowed;
        for (int32_t id = 0; id < l.vocab->size(); ++id) {
          if (Allowed(m, id)) allowed.push_back(id);
        }
        ASSERT_FALSE(allowed.empty() && !constraint.Complete(s)) << p << ": a dead end after '" << out << "'";
        if (allowed.empty()) break;
        const int32_t id = allowed[rng() % allowed.size()];
        for (int32_t a : allowed) EXPECT_FALSE(l.vocab->special(a));
        out += l.vocab->bytes(id);
        s = constraint.Advance(s, id);
        ASSERT_GE(s, 0);
      }
      if (constraint.Complete(s)) {
        EXPECT_TRUE((*dfa)->Matches(out)) << p << ": '" << out << "'";
        ++completed;
      }
    }
  }
  EXPECT_GT(completed, 100);
}

TEST(DfaConstraintTest, MasksAreCachedPerState) {
  const Loaded& l = Load("qwen3");
  auto dfa = ByteDfa::FromRegex("[^\\n]*");
  ASSERT_TRUE(dfa.ok());
  DfaConstraint c(dfa->get(), l.vocab.get());
  const TokenMask& first = c.Mask(c.start());
  const int64_t visited = c.nodes_visited();
  const TokenMask& again = c.Mask(c.start());
  EXPECT_EQ(&first, &again);
  EXPECT_EQ(c.nodes_visited(), visited);
  int allowed = 0;
  for (int32_t id = 0; id < l.vocab->size(); ++id) {
    const bool want = !l.vocab->special(id) && !l.vocab->bytes(id).empty() &&
                      l.vocab->bytes(id).find('\n') == std::string::npos && (*dfa)->Matches(l.vocab->bytes(id)) ;
    // A token with bytes that are not yet UTF-8-complete is allowed too (its
    // continuation can complete the character); check the complete ones.
    if (want) {
      EXPECT_TRUE(Allowed(first, id)) << id;
      ++allowed;
    }
    if (l.vocab->bytes(id).find('\n') != std::string::npos) {
      EXPECT_FALSE(Allowed(first, id)) << id;
    }
  }
  EXPECT_GT(allowed, 100000);
}

// JSON Schema through its regular expression: compact serializations of
// valid instances match, invalid ones do not.
TEST(JsonSchemaTest, ValidInstancesMatchAndInvalidOnesDoNot) {
  struct Case {
    const char* schema;
    std::vector<const char*> valid, invalid;
  };
  const std::vector<Case> cases = {
      {R"({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
           "required": ["name"], "additionalProperties": false})",
       {R"({"name":"Kim","age":42})", R"({"name":""})", R"({"name":"\"q\" \u00e9 한"})"},
       {R"({"age":42})", R"({"name":"a","age":4.5})", R"({"name":"a","x":1})", R"({"age":1,"name":"a"})",
        R"({ "name":"a"})"}},
      {R"({"type": "array", "items": {"enum": ["a", 1, null, true]}, "minItems": 1, "maxItems": 3})",
       {R"(["a"])", R"([1,null,true])"},
       {R"([])", R"(["a","a","a","a"])", R"(["b"])", R"([false])"}},
      {R"({"type": "object", "properties": {"when": {"type": "string", "format": "date-time"},
           "id": {"type": "string", "format": "uuid"}, "ip": {"type": "string", "format": "ipv4"}},
           "required": ["when", "id", "ip"], "additionalProperties": false})",
       {R"({"when":"2026-12-04T21:39:22Z","id":"123e4567-e89b-12d3-a456-426614174000","ip":"10.0.0.255"})"},
       {R"({"when":"2026-13-04T21:39:22Z","id":"123e4567-e89b-12d3-a456-426614174000","ip":"10.0.0.255"})",
        R"({"when":"2026-12-04T21:39:22Z","id":"123e4567","ip":"10.0.0.255"})",
        R"({"when":"2026-12-04T21:39:22Z","id":"123e4567-e89b-12d3-a456-426614174000","ip":"256.0.0.1"})"}},
      {R"({"$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
           "required": ["x", "y"], "additionalProperties": false}},
           "type": "object", "properties": {"from": {"$ref": "#/$defs/point"}, "to": {"$ref": "#/$defs/point"},
           "label": {"type": ["string", "null"], "maxLength": 5}},
           "required": ["from", "to"], "additionalProperties": false})",
       {R"({"from":{"x":0,"y":-1.5e3},"to":{"x":2,"y":3}})", R"({"from":{"x":0,"y":0},"to":{"x":0,"y":0},"label":null})",
        R"({"from":{"x":0,"y":0},"to":{"x":0,"y":0},"label":"abcde"})"},
       {R"({"from":{"x":0},"to":{"x":0,"y":0}})", R"({"from":{"x":01,"y":0},"to":{"x":0,"y":0}})",
        R"({"from":{"x":0,"y":0},"to":{"x":0,"y":0},"label":"abcdef"})"}},
      {R"({"type": "array", "prefixItems": [{"type": "boolean"}, {"const": "x"}], "items": {"type": "integer"},
           "minItems": 1})",
       {R"([true])", R"([false,"x"])", R"([true,"x",1,2,3])"},
       {R"([])", R"(["x"])", R"([true,1])"}},
      {R"({"anyOf": [{"type": "integer"}, {"type": "string", "minLength": 2}]})",
       {"7", R"("ab")"},
       {R"("a")", "true"}},
      {R"({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "integer"}},
           "additionalProperties": false})",
       {"{}", R"({"a":1})", R"({"b":1})", R"({"c":1})", R"({"a":1,"c":3})", R"({"a":1,"b":2,"c":3})"},
       {R"({,"b":1})", R"({"a":1,})", R"({"b":1,"a":1})"}},
  };
  for (const Case& c : cases) {
    auto grammar = JsonSchemaToGrammar(c.schema);
    ASSERT_TRUE(grammar.ok()) << c.schema << ": " << grammar.status();
    for (const char* v : c.valid) EXPECT_TRUE((*grammar)->Matches(v)) << c.schema << "\nvalid: " << v;
    for (const char* v : c.invalid) EXPECT_FALSE((*grammar)->Matches(v)) << c.schema << "\ninvalid: " << v;
  }
}

TEST(JsonSchemaTest, WhatIsNotSupportedIsNamedWithItsPath) {
  struct Bad {
    const char* schema;
    const char* want;
  };
  for (const Bad& b : {
           Bad{R"({"type": "integer", "multipleOf": 3})", "json_schema /multipleOf: keyword not supported"},
           Bad{R"js({"type": "object", "properties": {"a": {"type": "string", "pattern": "(?=x)"}}})js",
               "json_schema /properties/a/pattern: regex: lookaround"},
           Bad{R"({"type": "number", "minimum": 0.5})", "/minimum: numeric ranges are supported on type integer only"},
           Bad{R"({"allOf": [{"type": "string"}]})", "json_schema /allOf: keyword not supported"},
           Bad{R"({"type": "string", "maxLength": 2000000})", "/maxLength: must be an integer in [0, 1048576]"},
           Bad{R"({"type": "integer", "minimum": 5, "maximum": 4})", "the integer range is empty"},
           Bad{R"({"oneOf": [{"type": "string"}, {"type": "string", "maxLength": 3}]})", "distinct single types"},
           Bad{R"({"type": "string", "format": "hostname"})", "format 'hostname' is not supported"},
           Bad{R"({"$ref": "#/$defs/missing"})", "does not name the root, an entry"},
           Bad{"not json", "not valid JSON"},
       }) {
    auto grammar = JsonSchemaToGrammar(b.schema);
    ASSERT_FALSE(grammar.ok()) << b.schema;
    EXPECT_EQ(grammar.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(grammar.status().message(), HasSubstr(b.want)) << b.schema;
  }
}

}  // namespace
}  // namespace moe::grammar

namespace moe::grammar {
namespace {

std::unique_ptr<Grammar> Gbnf(const std::string& text) {
  auto g = ParseGbnf(text);
  EXPECT_TRUE(g.ok()) << text << ": " << g.status();
  return g.ok() ? std::move(*g) : nullptr;
}

TEST(GbnfTest, GrammarsMatchExactlyTheirLanguage) {
  struct Case {
    const char* grammar;
    std::vector<std::string> valid, invalid;
  };
  const std::vector<Case> cases = {
      {"root ::= expr\n"
       "# arithmetic, recursive through parentheses\n"
       "expr ::= term ((\"+\" | \"-\") term)*\n"
       "term ::= factor ((\"*\" | \"/\") factor)*\n"
       "factor ::= [0-9]+ | \"(\" expr \")\"\n",
       {"1+2*(3-4)", "((7))", "42", "1*(2+(3*(4-5)))/6"},
       {"1+", "(1", "1++2", "", "()", "1 + 2"}},
      // Counters on a recursive group.
      {R"g(root ::= ("x" | "(" root ")"){2,3})g", {"xx", "x(xx)x", "(xx)(xxx)"}, {"x", "xxxx", "(x)x", "()"}},
      // Exact parsing where longest-match lexing would fail.
      {R"(root ::= [a-z]* "ab")", {"ab", "xab", "abab", "aab"}, {"a", "abx", "b"}},
      {"root ::= \"a\" \"bc\" | \"ab\" \"c\" \"d\"", {"abc", "abcd"}, {"ab", "abcdd"}},
      // Unicode classes and escapes, single quotes, dots, multi-line rules.
      {"root ::= [가-힣]+ '!' sep\nsep ::=\n  \"\\u00e9\\x41\\n\" | [^a-z] | .", {"한국어!éA\n", "가!Z", "가!\t"},
       {"한국어!", "abc!Z", "가!ab", "가!\xed\x95"}},
      {"root ::= item{0,3}\nitem ::= [0-9]{2}", {"", "12", "123456"}, {"1", "12345678", "123"}},
      {"root ::= \"a\"? \"b\"* \"c\"+", {"c", "abbc", "ccc", "acc"}, {"", "ab", "ca"}},
      {"root ::= (list)\nlist ::= \"[\" (root (\",\" root)*)? \"]\" | \"n\"", {"n", "[]", "[n,[n,[]]]"}, {"[,]", "[n,]"}},
  };
  for (const Case& c : cases) {
    auto g = Gbnf(c.grammar);
    ASSERT_NE(g, nullptr);
    for (const std::string& v : c.valid) EXPECT_TRUE(g->Matches(v)) << c.grammar << "\nvalid: " << v << "\n" << g->DebugString();
    for (const std::string& v : c.invalid) EXPECT_FALSE(g->Matches(v)) << c.grammar << "\ninvalid: " << v << "\n" << g->DebugString();
  }
}

TEST(GbnfTest, ErrorsNameTheLineAndColumn) {
  struct Bad {
    std::string grammar, want;
  };
  const std::vector<Bad> bad = {
      {"root ::= a", "line 1 column 10: rule 'a' is used but not defined"},
      {"start ::= \"x\"", "no 'root' rule"},
      {"root ::= \"x\"\nroot ::= \"y\"", "line 2 column 1: rule 'root' is defined twice"},
      {"root ::= \"\\q\"", "line 1 column 11: unknown escape '\\q'"},
      {"root ::= \"abc", "unterminated literal"},
      {"root ::= \"a\"{3,2}", "a repetition {n,m} needs 0 <= n <= m"},
      {"root ::= \"a\"{99999999}", "a repetition count over 65536"},
      {"root ::= " + std::string(70, '(') + "\"a\"" + std::string(70, ')'), "groups nested deeper than 64"},
      {"root ::= root \"a\"", "the grammar matches no string"},
      {"root ::= [z-a]", "a class range whose end is below its start"},
      {"root ::= []", "an empty character class"},
      {"root ::= (\"a\"", "missing ')'"},
      {"root = \"a\"", "expected '::='"},
      {"", "no rules"},
      {std::string(70000, ' '), "bytes, at most 65536"},
  };
  for (const Bad& b : bad) {
    auto g = ParseGbnf(b.grammar);
    ASSERT_FALSE(g.ok()) << b.grammar;
    EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(g.status().message(), HasSubstr(b.want)) << b.grammar.substr(0, 100);
  }
}

TEST(JsonSchemaTest, TheGrammarEngineCases) {
  struct Case {
    const char* schema;
    std::vector<std::string> valid, invalid;
  };
  const std::vector<Case> cases = {
      // Recursion through $ref, and through "#".
      {R"({"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
           "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}}, "required": ["v", "next"],
           "additionalProperties": false}}, "$ref": "#/$defs/node"})",
       {R"({"v":1,"next":null})", R"({"v":1,"next":{"v":2,"next":{"v":3,"next":null}}})"},
       {R"({"v":1})", R"({"v":1,"next":{"v":2}})"}},
      {R"({"type": "array", "items": {"$ref": "#"}})", {"[]", "[[],[[]]]"}, {"[1]", "[[],]"}},
      // Any JSON value; additional properties allowed by default, after the declared ones.
      {R"({})", {"1", R"({"a":[1,{"b":null}],"c":"x"})", "[]", "\"\\u00e9\""}, {"01", "{\"a\"}", "[1,]"}},
      {R"({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]})",
       {R"({"name":"a"})", R"({"name":"a","x":[1,2],"y":{}})"},
       {R"({"name":1})", R"({"name":"a","name":"b"})", R"({"x":1,"name":"a"})", R"({"name":"a","nam":{},"name":1})"}},
      {R"({"type": "object", "additionalProperties": {"type": "integer"}})", {"{}", R"({"a":1,"b":2})"}, {R"({"a":"x"})"}},
      // Integer ranges.
      {R"({"type": "integer", "minimum": -15, "maximum": 203})", {"-15", "-9", "0", "9", "10", "199", "203"},
       {"-16", "-0", "204", "1000", "007"}},
      {R"({"type": "integer", "exclusiveMinimum": 0})", {"1", "9", "10", "123456789"}, {"0", "-1"}},
      {R"({"type": "integer", "maximum": -3})", {"-3", "-10", "-999"}, {"-2", "0", "5"}},
      // Patterns: unanchored unless ^...$, never producing characters JSON escapes.
      {R"({"type": "string", "pattern": "^[A-Z]{2}-\\d{3}$"})", {R"("AB-123")"}, {R"("AB-1234")", R"("xAB-123")"}},
      {R"({"type": "string", "pattern": "ab+"})", {R"("ab")", R"("xxabbbyy")"}, {R"("a")", R"("x\"ab")"}},
      // Counters: many items, long strings.
      {R"({"type": "array", "items": {"type": "integer"}, "minItems": 1500, "maxItems": 1501})",
       {"[" + [] { std::string s = "0"; for (int i = 1; i < 1500; ++i) s += ",0"; return s; }() + "]"},
       {"[" + [] { std::string s = "0"; for (int i = 1; i < 1499; ++i) s += ",0"; return s; }() + "]"}},
      {R"({"type": "string", "minLength": 1990, "maxLength": 5000})",
       {"\"" + std::string(1990, 'a') + "\"", "\"" + std::string(5000, 'b') + "\"", "\"" + std::string(3333, 'c') + "\""},
       {"\"" + std::string(1989, 'a') + "\"", "\"" + std::string(5001, 'a') + "\""}},
      // Korean text, escapes and surrogate pairs inside strings.
      {R"({"type": "object", "properties": {"s": {"type": "string", "maxLength": 4}}, "required": ["s"],
           "additionalProperties": false})",
       {R"({"s":"한국어"})", R"({"s":"\ud83d\ude00"})", R"({"s":"a\"\\"})"}, {R"({"s":"한국어입니다"})", R"({"s":"\x"})"}},
      {R"({"type": "number"})", {"0", "-0.5", "1e10", "2.5E-3"}, {"01", ".5", "1.", "+1", "--1"}},
  };
  for (const Case& c : cases) {
    auto g = JsonSchemaToGrammar(c.schema);
    ASSERT_TRUE(g.ok()) << c.schema << ": " << g.status();
    for (const std::string& v : c.valid) EXPECT_TRUE((*g)->Matches(v)) << c.schema << "\nvalid: " << v.substr(0, 200);
    for (const std::string& v : c.invalid) EXPECT_FALSE((*g)->Matches(v)) << c.schema << "\ninvalid: " << v.substr(0, 200);
  }
  // Flexible whitespace, bounded.
  JsonSchemaOptions flexible;
  flexible.flexible_whitespace = true;
  flexible.max_whitespace = 4;
  auto g = JsonSchemaToGrammar(R"({"type": "object", "properties": {"a": {"type": "array"}}, "required": ["a"]})", flexible);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_TRUE((*g)->Matches("{\n  \"a\" : [ 1 ,\n 2 ]\n}"));
  EXPECT_TRUE((*g)->Matches("{\"a\":[]}"));
  EXPECT_FALSE((*g)->Matches("{     \"a\":[]}"));  // 5 spaces: over the bound
  auto object = JsonObjectGrammar();
  ASSERT_TRUE(object.ok());
  EXPECT_TRUE((*object)->Matches(R"({"a":{"b":[true,false,null]}})"));
  EXPECT_FALSE((*object)->Matches("[]"));
}

}  // namespace
}  // namespace moe::grammar

namespace moe::grammar {
namespace {

// The mask, however cached, is exactly the set of tokens whose bytes can follow.
std::vector<int32_t> BruteForceAllowed(const Grammar& g, const TokenVocabulary& v, const std::string& prefix) {
  EarleyChart chart;
  EarleyStart(g, &chart);
  for (char c : prefix) EXPECT_TRUE(EarleyScan(g, &chart, static_cast<uint8_t>(c)));
  std::vector<int32_t> allowed;
  const int32_t sets = chart.size();
  for (int32_t id = 0; id < v.size(); ++id) {
    if (v.special(id) || v.bytes(id).empty()) continue;
    bool ok = true;
    for (char c : v.bytes(id)) {
      if (!EarleyScan(g, &chart, static_cast<uint8_t>(c))) {
        ok = false;
        break;
      }
    }
    while (chart.size() > sets) chart.Pop();
    if (ok) allowed.push_back(id);
  }
  return allowed;
}

std::vector<int32_t> Ids(const TokenMask& m, int32_t n) {
  std::vector<int32_t> out;
  for (int32_t id = 0; id < n; ++id) {
    if (Allowed(m, id)) out.push_back(id);
  }
  return out;
}

std::vector<std::unique_ptr<Grammar>> MaskTestGrammars() {
  std::vector<std::unique_ptr<Grammar>> out;
  out.push_back(std::move(*JsonObjectGrammar()));
  JsonSchemaOptions flexible;
  flexible.flexible_whitespace = true;
  out.push_back(std::move(*JsonSchemaToGrammar(
      R"({"type": "object", "properties": {"name": {"type": "string", "maxLength": 12}, "tags": {"type": "array",
          "items": {"enum": ["a\"b", "한국", "x,y"]}, "maxItems": 3}, "n": {"type": "integer", "minimum": -5,
          "maximum": 120}}, "required": ["name", "tags"]})",
      flexible)));
  out.push_back(Gbnf("root ::= expr\nexpr ::= term ((\"+\" | \"-\") term)*\nterm ::= [0-9]+ | \"(\" expr \")\" | [a-z]+"));
  return out;
}

// The walk of one automaton state written plainly: a depth-first search of
// the trie, pruned at dead bytes.
StateWalk NaiveWalk(const ByteDfa& dfa, int32_t state, const TokenVocabulary& v) {
  StateWalk out;
  out.inside.assign((static_cast<size_t>(v.size()) + 63) / 64, 0);
  const auto& trie = v.trie();
  struct Frame {
    uint32_t node;
    int32_t state;
    bool past;
  };
  std::vector<Frame> stack = {{0u, state, false}};
  while (!stack.empty()) {
    const Frame f = stack.back();
    stack.pop_back();
    for (uint32_t c = trie[f.node].first_child; c != 0; c = trie[c].next_sibling) {
      const int32_t s = dfa.Next(f.state, trie[c].byte);
      if (s < 0) continue;
      if (trie[c].token >= 0) {
        out.inside[trie[c].token >> 6] |= uint64_t{1} << (trie[c].token & 63);
        if (trie[c].more_tokens != 0) {
          for (int32_t id : v.MoreTokens(trie[c])) out.inside[id >> 6] |= uint64_t{1} << (id & 63);
        }
      }
      const bool acc = dfa.accepting(s);
      if (acc && !f.past && trie[c].first_child != 0) out.first_accepts.emplace_back(c, s);
      stack.push_back({c, s, f.past || acc});
    }
  }
  std::sort(out.first_accepts.begin(), out.first_accepts.end());
  return out;
}

TEST(TokenWalkTest, ClassIndexesAndPlainWalksEqualTheNaiveWalkOnEveryState) {
  // Loops, counters, counters that end dead or in acceptance, escapes,
  // multi-byte classes (Korean), classes that exclude a frequent byte
  // (a space, a letter), and lexemes that end inside a token.
  const std::vector<std::string> patterns = {
      R"("([^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*")",
      R"("([^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4}){0,20}")",
      R"([^"\\\x00-\x1f]{64})",
      R"([a-z]{1,20}@[a-z]{1,20}\.com)",
      R"([^\n]{1,40})",
      R"([A-Z][a-z ]+\.)",
      R"(.*abc.*)",
      R"((\w+ ){2,5})",
      R"([가-힣 ]{2,30})",
      R"(-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?)",
      R"(\s{0,8})",
      R"(([a-z]+|[0-9]+)(,([a-z]+|[0-9]+)){0,6})",
  };
  std::mt19937_64 rng(3);
  int compared = 0, indexed = 0;
  for (const std::string family : {"qwen3", "llama3"}) {
    const TokenVocabulary& v = *Load(family).vocab;
    for (const std::string& p : patterns) {
      auto dfa = ByteDfa::FromRegex(p);
      ASSERT_TRUE(dfa.ok()) << p << ": " << dfa.status();
      // The states along random strings of the language and a few others.
      std::vector<int32_t> states = {0};
      for (int walk = 0; walk < 6; ++walk) {
        int32_t s = 0;
        for (int step = 0; step < 40; ++step) {
          std::vector<int> live;
          for (int b = 0; b < 256; ++b) {
            if ((*dfa)->Next(s, static_cast<uint8_t>(b)) >= 0) live.push_back(b);
          }
          if (live.empty()) break;
          s = (*dfa)->Next(s, static_cast<uint8_t>(live[rng() % live.size()]));
          states.push_back(s);
        }
      }
      std::sort(states.begin(), states.end());
      states.erase(std::unique(states.begin(), states.end()), states.end());
      if (states.size() > 24) {
        std::shuffle(states.begin() + 1, states.end(), rng);
        states.resize(24);
      }
      WalkMemo memo;
      for (int32_t s : states) {
        const StateWalk want = NaiveWalk(**dfa, s, v);
        const StateWalk fast = WalkState(**dfa, s, v, /*boundaries=*/true, &memo);
        const StateWalk plain = WalkState(**dfa, s, v, /*boundaries=*/true, nullptr, /*use_class_index=*/false);
        ASSERT_EQ(fast.inside, want.inside) << family << " " << p << " state " << s;
        ASSERT_EQ(fast.first_accepts, want.first_accepts) << family << " " << p << " state " << s;
        ASSERT_EQ(plain.inside, want.inside) << family << " " << p << " state " << s;
        ASSERT_EQ(plain.first_accepts, want.first_accepts) << family << " " << p << " state " << s;
        ASSERT_EQ(WalkState(**dfa, s, v, /*boundaries=*/false).inside, want.inside);
        indexed += fast.used_class_index ? 1 : 0;
        ++compared;
      }
    }
  }
  // The class indexes were really exercised, not only the plain walk.
  EXPECT_GT(compared, 200);
  EXPECT_GT(indexed, compared / 4);
}

TEST(GrammarMatcherTest, MasksAreExactlyTheTokensThatCanFollow) {
  const Loaded& l = Load("qwen3");
  std::mt19937_64 rng(5);
  int compared = 0;
  for (std::unique_ptr<Grammar>& g : MaskTestGrammars()) {
    ASSERT_NE(g, nullptr);
    const std::string debug = g->DebugString();
    GrammarMatcher matcher(std::move(g), l.vocab.get());
    for (int walk = 0; walk < 2; ++walk) {
      EarleyParser parser(&matcher);
      std::string out;
      for (int step = 0; step < 24; ++step) {
        const std::vector<int32_t> allowed = Ids(*parser.Mask(), l.vocab->size());
        if (step % 6 == walk * 3) {
          EXPECT_EQ(allowed, BruteForceAllowed(matcher.grammar(), *l.vocab, out)) << debug << "after '" << out << "'";
          ++compared;
        }
        if (allowed.empty()) break;
        const int32_t id = allowed[rng() % allowed.size()];
        ASSERT_TRUE(parser.Advance(id).ok());
        out += l.vocab->bytes(id);
      }
    }
  }
  EXPECT_GE(compared, 20);
}

TEST(GrammarMatcherTest, RandomWalksProduceSentencesAndValidJson) {
  const Loaded& l = Load("qwen3");
  std::mt19937_64 rng(17);
  std::vector<std::unique_ptr<Grammar>> grammars = MaskTestGrammars();
  int completed = 0;
  for (size_t gi = 0; gi < grammars.size(); ++gi) {
    const Grammar* g = grammars[gi].get();
    GrammarMatcher matcher(std::move(grammars[gi]), l.vocab.get());
    for (int walk = 0; walk < 40; ++walk) {
      EarleyParser parser(&matcher);
      std::string out;
      for (int step = 0; step < 60; ++step) {
        if (parser.Complete() && rng() % 4 == 0) break;
        const std::vector<int32_t> allowed = Ids(*parser.Mask(), l.vocab->size());
        ASSERT_FALSE(allowed.empty() && !parser.Complete()) << "a dead end after '" << out << "'";
        if (allowed.empty()) break;
        // Prefer short tokens now and then, so walks also finish.
        int32_t id = allowed[rng() % allowed.size()];
        ASSERT_TRUE(parser.Advance(id).ok());
        out += l.vocab->bytes(id);
      }
      if (!parser.Complete()) continue;
      ++completed;
      EXPECT_TRUE(g->Matches(out)) << out;
      if (gi < 2) {
        EXPECT_FALSE(nlohmann::json::parse(out, nullptr, false).is_discarded()) << out;
      }
    }
    const GrammarMatcher::Stats st = matcher.stats();
    EXPECT_GT(st.mask_hits + st.lexer_hits, 0) << "masks are cached";
  }
  EXPECT_GT(completed, 10);
}

}  // namespace
}  // namespace moe::grammar

namespace moe::grammar {
namespace {

// Completeness over the schema set: forcing the real encodings of valid
// instances never meets a masked token, and the end is allowed after them.
TEST(GrammarMatcherTest, ValidInstancesOfTheSchemaSetAreNeverMasked) {
  std::ifstream in(std::string(MOE_GRAMMAR_TESTDATA_DIR) + "/schemas.json");
  const nlohmann::ordered_json schemas = nlohmann::ordered_json::parse(in);  // keys in the file's order
  ASSERT_GE(schemas.size(), 30u);
  for (const std::string family : {"qwen3", "llama3", "deepseek_v3"}) {
    const Loaded& l = Load(family);
    ConstraintCompiler compiler(l.vocab.get());
    int tokens = 0;
    for (const auto& c : schemas) {
      ConstraintSpec spec;
      spec.kind = ConstraintSpec::Kind::kJsonSchema;
      spec.json_schema = c["schema"].dump();
      for (const auto& v : c["valid"]) {
        auto constraint = compiler.Compile(spec);
        ASSERT_TRUE(constraint.ok()) << c["name"] << ": " << constraint.status();
        tokenizer::EncodeOptions o;
        auto ids = l.tokenizer->Encode(v.get<std::string>(), o);
        ASSERT_TRUE(ids.ok());
        for (int32_t id : *ids) {
          ASSERT_TRUE(Allowed((*constraint)->Mask(), id))
              << family << " " << c["name"] << " " << v << ": token '" << l.vocab->bytes(id) << "' masked";
          ASSERT_TRUE((*constraint)->Advance(id).ok());
          ++tokens;
        }
        EXPECT_TRUE((*constraint)->Complete()) << family << " " << v;
      }
    }
    EXPECT_GT(tokens, 500) << family;
  }
}

}  // namespace
}  // namespace moe::grammar
