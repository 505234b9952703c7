#include "gateway/tokenizer/normalizer.h"

#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace moe::tokenizer {
namespace {

std::string Apply(const char* json, std::string text) {
  auto n = MakeNormalizer(nlohmann::json::parse(json), "normalizer");
  EXPECT_TRUE(n.ok()) << n.status();
  if (!n.ok()) return "<error>";
  const absl::Status s = (*n)->Normalize(&text);
  EXPECT_TRUE(s.ok()) << s;
  return text;
}

TEST(NormalizerTest, UnicodeForms) {
  EXPECT_EQ(Apply(R"({"type": "NFC"})", "a\xCC\x81"), "\xC3\xA1");
  EXPECT_EQ(Apply(R"({"type": "NFD"})", "\xC3\xA1"), "a\xCC\x81");
  EXPECT_EQ(Apply(R"({"type": "NFKC"})", "\xEF\xBC\xA1"), "A");
  EXPECT_EQ(Apply(R"({"type": "NFKD"})", "\xEF\xAC\x81"), "fi");
}

TEST(NormalizerTest, LowercasePrependStripAccents) {
  EXPECT_EQ(Apply(R"({"type": "Lowercase"})", "ABC d"), "abc d");
  EXPECT_EQ(Apply(R"({"type": "Prepend", "prepend": "▁"})", "hi"), "▁hi");
  EXPECT_EQ(Apply(R"({"type": "Prepend", "prepend": "▁"})", ""), "");  // nothing to prepend to
  EXPECT_EQ(Apply(R"({"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "StripAccents"}]})", "caf\xC3\xA9"),
            "cafe");
}

TEST(NormalizerTest, ReplaceStringAndRegex) {
  EXPECT_EQ(Apply(R"({"type": "Replace", "pattern": {"String": " "}, "content": "▁"})", "a b  c"), "a▁b▁▁c");
  EXPECT_EQ(Apply(R"({"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "})", "a \t\n b"), "a b");
  EXPECT_EQ(Apply(R"({"type": "Replace", "pattern": {"Regex": "[0-9]"}, "content": ""})", "a1b22"), "ab");
}

TEST(NormalizerTest, StripSides) {
  EXPECT_EQ(Apply(R"({"type": "Strip", "strip_left": true, "strip_right": true})", " \t x y \n"), "x y");
  EXPECT_EQ(Apply(R"({"type": "Strip", "strip_left": false, "strip_right": true})", "  x  "), "  x");
  EXPECT_EQ(Apply(R"({"type": "Strip", "strip_left": true, "strip_right": false})", "\xE3\x80\x80x "), "x ");
}

TEST(NormalizerTest, SequenceAppliesInOrder) {
  EXPECT_EQ(Apply(R"({"type": "Sequence", "normalizers": [
                    {"type": "Prepend", "prepend": "▁"},
                    {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]})",
                  "Hello world"),
            "▁Hello▁world");
  EXPECT_EQ(Apply(R"({"type": "Sequence", "normalizers": []})", "same"), "same");
}

TEST(NormalizerTest, NullIsNoNormalizerAndUnknownTypesAreNamed) {
  auto none = MakeNormalizer(nlohmann::json(), "normalizer");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nullptr);
  auto bad = MakeNormalizer(nlohmann::json::parse(R"({"type": "Sequence", "normalizers": [{"type": "Precompiled"}]})"),
                            "normalizer");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("normalizer.normalizers[0]"), std::string::npos) << bad.status();
  EXPECT_NE(bad.status().message().find("Precompiled"), std::string::npos) << bad.status();
}

}  // namespace
}  // namespace moe::tokenizer
