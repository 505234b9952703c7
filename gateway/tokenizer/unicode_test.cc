#include "gateway/tokenizer/unicode.h"

#include <utf8proc.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
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

// NFC runs utf8proc only around code points that are not NFC-inert; the
// result must equal utf8proc on the whole text. Random strings drawn from the
// characters that compose, reorder or decompose (Latin with marks, Hangul
// jamo and syllables, Indic vowel signs, Greek, CJK compatibility, ...).
TEST(UnicodeTest, NfcPiecewiseEqualsUtf8procOnWholeText) {
  const std::vector<std::pair<char32_t, char32_t>> ranges = {
      {'a', 'f'},         {' ', ' '},         {0xC0, 0x17F},      {0x300, 0x36F},     {0x390, 0x3CF},
      {0x1100, 0x1112},   {0x1161, 0x1175},   {0x11A8, 0x11C2},   {0xAC00, 0xAC1F},   {0x0B3E, 0x0B57},
      {0x0BBE, 0x0BD7},   {0x0DCA, 0x0DDF},   {0x1F00, 0x1FFF},   {0x2126, 0x212B},   {0x226E, 0x2270},
      {0x0338, 0x0338},   {'<', '>'},         {0xF900, 0xF90F},   {0x2F800, 0x2F80F}, {0x1109A, 0x110BA},
      {0x0344, 0x0344},   {0x0F71, 0x0F81},   {0x3099, 0x309A},   {0x304B, 0x3052},   {0x1F600, 0x1F602}};
  uint64_t state = 12345;
  auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
  };
  for (int n = 0; n < 20000; ++n) {
    std::string text;
    const int len = 1 + static_cast<int>(next() % 8);
    for (int k = 0; k < len; ++k) {
      const auto& [lo, hi] = ranges[next() % ranges.size()];
      AppendUtf8(lo + static_cast<char32_t>(next() % (hi - lo + 1)), &text);
    }
    utf8proc_uint8_t* mapped = nullptr;
    const utf8proc_ssize_t size =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), static_cast<utf8proc_ssize_t>(text.size()),
                     &mapped, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    ASSERT_GE(size, 0);
    const std::string expected(reinterpret_cast<const char*>(mapped), static_cast<size_t>(size));
    std::free(mapped);
    auto nfc = Normalize(text, NormalizationForm::kNfc);
    ASSERT_TRUE(nfc.ok()) << nfc.status();
    ASSERT_EQ(*nfc, expected) << "input: " << absl::CEscape(text);
  }
  EXPECT_FALSE(Normalize("caf\xC3\xA9 \xFF", NormalizationForm::kNfc).ok());  // invalid UTF-8 stays an error
  EXPECT_FALSE(Normalize("\xE1\x84", NormalizationForm::kNfc).ok());           // cut-off sequence
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
