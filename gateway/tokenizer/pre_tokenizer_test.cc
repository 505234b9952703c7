#include "gateway/tokenizer/pre_tokenizer.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace moe::tokenizer {
namespace {

using ::testing::ElementsAre;

std::vector<std::string> PreTokenize(const std::string& json, const std::string& text, bool at_input_start = true) {
  auto p = MakePreTokenizer(nlohmann::json::parse(json), "pre_tokenizer");
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) return {"<error>"};
  std::vector<PreToken> pieces = {{text, at_input_start}};
  const absl::Status s = (*p)->PreTokenize(&pieces);
  EXPECT_TRUE(s.ok()) << s;
  std::vector<std::string> out;
  for (const auto& piece : pieces) out.push_back(piece.text);
  return out;
}

std::string SplitJson(const std::string& behavior, bool invert = false, const std::string& pattern = R"({"String": "-"})") {
  return R"({"type": "Split", "pattern": )" + pattern + R"(, "behavior": ")" + behavior + R"(", "invert": )" +
         (invert ? "true" : "false") + "}";
}

TEST(PreTokenizerTest, SplitBehaviors) {
  const std::string text = "the-final--countdown";
  EXPECT_THAT(PreTokenize(SplitJson("Removed"), text), ElementsAre("the", "final", "countdown"));
  EXPECT_THAT(PreTokenize(SplitJson("Isolated"), text), ElementsAre("the", "-", "final", "-", "-", "countdown"));
  EXPECT_THAT(PreTokenize(SplitJson("MergedWithPrevious"), text), ElementsAre("the-", "final-", "-", "countdown"));
  EXPECT_THAT(PreTokenize(SplitJson("MergedWithNext"), text), ElementsAre("the", "-final", "-", "-countdown"));
  EXPECT_THAT(PreTokenize(SplitJson("Contiguous"), text), ElementsAre("the", "-", "final", "--", "countdown"));
}

TEST(PreTokenizerTest, SplitInvertAndRegex) {
  const std::string words = R"({"Regex": "\\w+"})";
  EXPECT_THAT(PreTokenize(SplitJson("Removed", /*invert=*/true, words), "Hey friend!"), ElementsAre("Hey", "friend"));
  EXPECT_THAT(PreTokenize(SplitJson("MergedWithPrevious", /*invert=*/true, words), "a, b"), ElementsAre("a, ", "b"));
  EXPECT_THAT(PreTokenize(SplitJson("Isolated", /*invert=*/false, R"({"Regex": "\\p{N}{1,3}"})"), "x12345y"),
              ElementsAre("x", "123", "45", "y"));
  // Unicode classes work on non-ASCII text (UTF + UCP mode).
  EXPECT_THAT(PreTokenize(SplitJson("Isolated", /*invert=*/false, R"({"Regex": "\\p{L}+"})"), "안녕, мир"),
              ElementsAre("안녕", ", ", "мир"));
  // \s+(?!\S): a run of spaces leaves its last one to the next word.
  EXPECT_THAT(PreTokenize(SplitJson("Isolated", /*invert=*/false, R"({"Regex": " ?\\p{L}+|\\s+(?!\\S)|\\s+"})"), "a   b"),
              ElementsAre("a", "  ", " b"));
}

TEST(PreTokenizerTest, ByteLevel) {
  EXPECT_THAT(PreTokenize(R"({"type": "ByteLevel", "add_prefix_space": true, "use_regex": true})", "Hello world"),
              ElementsAre("ĠHello", "Ġworld"));
  EXPECT_THAT(PreTokenize(R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": false})", "Hello world\n"),
              ElementsAre("HelloĠworldĊ"));
  EXPECT_THAT(PreTokenize(R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})", "I'm 42!"),
              ElementsAre("I", "'m", "Ġ42", "!"));
}

TEST(PreTokenizerTest, MetaspacePrependSchemes) {
  EXPECT_THAT(PreTokenize(R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true})",
                  "Hey friend"),
              ElementsAre("▁Hey", "▁friend"));
  EXPECT_THAT(PreTokenize(R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true})",
                  "Hey friend", /*at_input_start=*/false),
              ElementsAre("Hey", "▁friend"));
  EXPECT_THAT(PreTokenize(R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true})",
                  "Hey friend", /*at_input_start=*/true),
              ElementsAre("▁Hey", "▁friend"));
  EXPECT_THAT(PreTokenize(R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": false})",
                  "Hey  friend"),
              ElementsAre("Hey▁▁friend"));
  EXPECT_THAT(PreTokenize(R"({"type": "Metaspace", "replacement": "▁", "add_prefix_space": true})", "Hey   friend!"),
              ElementsAre("▁Hey", "▁", "▁", "▁friend!"));
}

TEST(PreTokenizerTest, DigitsWhitespacePunctuation) {
  EXPECT_THAT(PreTokenize(R"({"type": "Digits", "individual_digits": false})", "a123b45"), ElementsAre("a", "123", "b", "45"));
  EXPECT_THAT(PreTokenize(R"({"type": "Digits", "individual_digits": true})", "a12"), ElementsAre("a", "1", "2"));
  EXPECT_THAT(PreTokenize(R"({"type": "Whitespace"})", "Hey friend!  ok?"), ElementsAre("Hey", "friend", "!", "ok", "?"));
  EXPECT_THAT(PreTokenize(R"({"type": "WhitespaceSplit"})", "Hey friend!  ok?"), ElementsAre("Hey", "friend!", "ok?"));
  EXPECT_THAT(PreTokenize(R"({"type": "Punctuation", "behavior": "Isolated"})", "Hey, you!!"),
              ElementsAre("Hey", ",", " you", "!", "!"));
  EXPECT_THAT(PreTokenize(R"({"type": "Punctuation", "behavior": "Contiguous"})", "Hey, you!!"),
              ElementsAre("Hey", ",", " you", "!!"));
}

TEST(PreTokenizerTest, SequenceAndInputStartFlag) {
  auto p = MakePreTokenizer(nlohmann::json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "WhitespaceSplit"}, {"type": "Digits", "individual_digits": true}]})"),
                            "pre_tokenizer");
  ASSERT_TRUE(p.ok()) << p.status();
  std::vector<PreToken> pieces = {{"ab 12", true}};
  ASSERT_TRUE((*p)->PreTokenize(&pieces).ok());
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0].text, "ab");
  EXPECT_TRUE(pieces[0].at_input_start);
  EXPECT_EQ(pieces[1].text, "1");
  EXPECT_FALSE(pieces[1].at_input_start);
}

TEST(PreTokenizerTest, ErrorsNameTheComponent) {
  auto bad_type = MakePreTokenizer(nlohmann::json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "Whitespace"}, {"type": "UnicodeScripts"}]})"),
                                   "pre_tokenizer");
  ASSERT_FALSE(bad_type.ok());
  EXPECT_NE(bad_type.status().message().find("pre_tokenizer.pretokenizers[1]: unsupported type 'UnicodeScripts'"),
            std::string::npos)
      << bad_type.status();
  auto bad_regex = MakePreTokenizer(nlohmann::json::parse(SplitJson("Isolated", false, R"({"Regex": "(a"})")),
                                    "pre_tokenizer");
  ASSERT_FALSE(bad_regex.ok());
  EXPECT_NE(bad_regex.status().message().find("pre_tokenizer.pattern"), std::string::npos) << bad_regex.status();
  auto bad_behavior = MakePreTokenizer(nlohmann::json::parse(SplitJson("Sideways")), "pre_tokenizer");
  ASSERT_FALSE(bad_behavior.ok());
  EXPECT_NE(bad_behavior.status().message().find("Sideways"), std::string::npos) << bad_behavior.status();
}

}  // namespace
}  // namespace moe::tokenizer
