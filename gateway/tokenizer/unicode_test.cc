#include "gateway/tokenizer/unicode.h"

#include <string>

#include "gtest/gtest.h"

namespace moe::tokenizer {
namespace {

std::string Lossy(absl::string_view bytes) {
  std::string out;
  AppendUtf8Lossy(bytes, /*final_chunk=*/true, &out);
  return out;
}

TEST(UnicodeTest, ByteLevelMapIsABijectionOnBytes) {
  for (int b = 0; b < 256; ++b) EXPECT_EQ(CodepointToByte(ByteToCodepoint(static_cast<uint8_t>(b))), b);
  EXPECT_EQ(ByteToCodepoint(' '), U'\u0120');   // 'Ġ'
  EXPECT_EQ(ByteToCodepoint('\n'), U'\u010A');  // 'Ċ'
  EXPECT_EQ(ByteToCodepoint('A'), U'A');
  std::string mapped;
  AppendByteLevel(" a\n", &mapped);
  EXPECT_EQ(mapped, "\xC4\xA0" "a" "\xC4\x8A");
}

TEST(UnicodeTest, LossyDecodingReplacesMaximalInvalidSubpartsLikeRust) {
  EXPECT_EQ(Lossy("ab"), "ab");
  EXPECT_EQ(Lossy("\xC3\xA9"), "\xC3\xA9");
  EXPECT_EQ(Lossy("\xC3"), "\xEF\xBF\xBD");            // cut off at the end
  EXPECT_EQ(Lossy("\xE2\x82" "A"), "\xEF\xBF\xBD" "A");  // one U+FFFD for a broken 3-byte prefix
  EXPECT_EQ(Lossy("\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(Lossy("\xE0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong: E0 80 is not a prefix
  EXPECT_EQ(Lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(Lossy("\xF0\x9F\x98"), "\xEF\xBF\xBD");
  EXPECT_EQ(Lossy("\xFF"), "\xEF\xBF\xBD");
}

TEST(UnicodeTest, LossyDecodingOfAChunkKeepsAnIncompleteTail) {
  std::string out;
  EXPECT_EQ(AppendUtf8Lossy("a\xF0\x9F\x98", /*final_chunk=*/false, &out), 1u);
  EXPECT_EQ(out, "a");
  out.clear();
  EXPECT_EQ(AppendUtf8Lossy("a\xF0\x9F" "b", /*final_chunk=*/false, &out), 4u);
  EXPECT_EQ(out, "a\xEF\xBF\xBD" "b");
}

TEST(UnicodeTest, ValidatesUtf8AndNamesTheOffset) {
  EXPECT_TRUE(ValidateUtf8("h\xC3\xA9llo \xF0\x9F\x98\x80", "text").ok());
  const absl::Status s = ValidateUtf8("ab\xC3(", "text");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("byte offset 2"), std::string::npos) << s;
  EXPECT_FALSE(ValidateUtf8("\xED\xA0\x80", "text").ok());  // surrogates are not UTF-8
  EXPECT_FALSE(ValidateUtf8("\xC0\xAF", "text").ok());      // overlong
}

TEST(UnicodeTest, NormalizationForms) {
  const std::string decomposed = "a\xCC\x81";  // a + combining acute
  EXPECT_EQ(*Normalize(decomposed, NormalizationForm::kNfc), "\xC3\xA1");
  EXPECT_EQ(*Normalize("\xC3\xA1", NormalizationForm::kNfd), decomposed);
  EXPECT_EQ(*Normalize("\xEF\xBC\xA1\xEF\xBC\x91", NormalizationForm::kNfkc), "A1");  // full-width
  EXPECT_EQ(*Normalize("\xEF\xAC\x81", NormalizationForm::kNfkd), "fi");              // ligature
  EXPECT_EQ(*Normalize("plain", NormalizationForm::kNfc), "plain");
}

TEST(UnicodeTest, LowercaseUsesFullMappings) {
  EXPECT_EQ(ToLowercase("HeLLo \xC3\x84\xCE\xA3"), "hello \xC3\xA4\xCF\x83");  // Ä Σ
  EXPECT_EQ(ToLowercase("\xC4\xB0"), "i\xCC\x87");                             // İ -> i + dot above
}

TEST(UnicodeTest, CharacterClasses) {
  EXPECT_TRUE(IsWhitespace(U' '));
  EXPECT_TRUE(IsWhitespace(U'\u3000'));
  EXPECT_FALSE(IsWhitespace(U'a'));
  EXPECT_TRUE(IsNumeric(U'7'));
  EXPECT_TRUE(IsNumeric(U'\u0663'));  // Arabic-Indic three
  EXPECT_TRUE(IsNumeric(U'\u00BD'));  // ½ (No)
  EXPECT_TRUE(IsPunctuation(U'!'));
  EXPECT_TRUE(IsPunctuation(U'$'));   // ASCII punctuation includes symbols
  EXPECT_TRUE(IsPunctuation(U'\u3002'));
  EXPECT_FALSE(IsPunctuation(U'a'));
  EXPECT_TRUE(IsWordChar(U'_'));
  EXPECT_TRUE(IsWordChar(U'\uAC00'));
  EXPECT_TRUE(IsWordChar(U'\u0301'));  // combining mark
  EXPECT_FALSE(IsWordChar(U'-'));
}

}  // namespace
}  // namespace moe::tokenizer
