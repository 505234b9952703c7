#include "gateway/tokenizer/byte_level.h"

#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace moe::tokenizer {
namespace {

const std::string kDir = std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral";

TEST(ByteLevelTest, MapIsABijectionOnBytes) {
  for (int b = 0; b < 256; ++b) EXPECT_EQ(CodepointToByte(ByteToCodepoint(static_cast<uint8_t>(b))), b);
  EXPECT_EQ(ByteToCodepoint(' '), U'\u0120');  // 'Ġ'
  EXPECT_EQ(ByteToCodepoint('\n'), U'\u010A');  // 'Ċ'
  EXPECT_EQ(ByteToCodepoint('A'), U'A');
}

TEST(ByteLevelTest, StreamedTextEqualsGoldenDecodedContinuation) {
  auto vocab = ByteLevelVocab::FromFile(kDir + "/tokenizer.json");
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  EXPECT_EQ(vocab->size(), 4096);
  std::ifstream in(kDir + "/golden.json");
  const nlohmann::json golden = nlohmann::json::parse(in);
  for (const auto& c : golden["cases"]) {
    StreamingDecoder dec(&*vocab, /*skip_special_tokens=*/true);
    std::string text;
    for (int32_t id : c["greedy_ids"].get<std::vector<int32_t>>()) {
      auto delta = dec.Push(id);
      ASSERT_TRUE(delta.ok());
      text += *delta;
    }
    text += dec.Finish();
    EXPECT_EQ(text, c["greedy_text"].get<std::string>());
    // Prompts round-trip too.
    StreamingDecoder pdec(&*vocab, /*skip_special_tokens=*/false);
    std::string prompt;
    for (int32_t id : c["prompt_ids"].get<std::vector<int32_t>>()) prompt += *pdec.Push(id);
    EXPECT_EQ(prompt + pdec.Finish(), c["prompt_text"].get<std::string>());
  }
}

TEST(ByteLevelTest, NeverEmitsAPartialCharacter) {
  auto vocab = ByteLevelVocab::FromFile(kDir + "/tokenizer.json");
  ASSERT_TRUE(vocab.ok());
  // Find single-byte tokens for the UTF-8 bytes of "é" (C3 A9).
  int32_t c3 = -1, a9 = -1;
  for (int32_t id = 0; id < vocab->size(); ++id) {
    if (*vocab->Bytes(id) == "\xC3") c3 = id;
    if (*vocab->Bytes(id) == "\xA9") a9 = id;
  }
  ASSERT_GE(c3, 0);
  ASSERT_GE(a9, 0);
  StreamingDecoder dec(&*vocab, true);
  EXPECT_EQ(*dec.Push(c3), "");
  EXPECT_EQ(*dec.Push(a9), "\xC3\xA9");
  EXPECT_EQ(*dec.Push(c3), "");
  EXPECT_EQ(dec.Finish(), "\xEF\xBF\xBD");
}

TEST(ByteLevelTest, RejectsIdsOutsideTheVocabulary) {
  auto vocab = ByteLevelVocab::FromFile(kDir + "/tokenizer.json");
  ASSERT_TRUE(vocab.ok());
  StreamingDecoder dec(&*vocab, true);
  auto r = dec.Push(5000);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("5000"), std::string::npos);
  EXPECT_FALSE(ByteLevelVocab::FromTokenizerJson("{", "bad.json").ok());
}

}  // namespace
}  // namespace moe::tokenizer
