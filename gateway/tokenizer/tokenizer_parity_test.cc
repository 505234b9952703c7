// Parity with the reference tokenizers on four real model families: for every
// string of tests/testdata/tokenizers/corpus.json, the exact ids without and
// with special tokens and the exact decoded text of golden.json.
#include <string>
#include <vector>

#include "gateway/tokenizer/test_util.h"
#include "gateway/tokenizer/tokenizer.h"
#include "gtest/gtest.h"

namespace moe::tokenizer {
namespace {

using testing::Families;
using testing::Family;
using testing::Golden;

class ParityTest : public ::testing::TestWithParam<std::string> {};

// The golden ids come from a reference that always recognises special tokens
// written in the text (Qwen3's corpus has "<|im_start|>"), so allow_special.
TEST_P(ParityTest, EncodesEveryCorpusStringExactly) {
  const Tokenizer& tok = Family(GetParam());
  int exact = 0;
  const auto& cases = Golden()[GetParam()];
  for (const auto& c : cases) {
    const std::string text = c["text"];
    auto ids = tok.Encode(text, {.add_special_tokens = false, .allow_special = true});
    ASSERT_TRUE(ids.ok()) << ids.status();
    auto with_special = tok.Encode(text, {.add_special_tokens = true, .allow_special = true});
    ASSERT_TRUE(with_special.ok()) << with_special.status();
    EXPECT_EQ(*ids, c["ids"].get<std::vector<int32_t>>()) << GetParam() << ": '" << text << "'";
    EXPECT_EQ(*with_special, c["ids_with_special"].get<std::vector<int32_t>>()) << GetParam() << ": '" << text << "'";
    exact += *ids == c["ids"].get<std::vector<int32_t>>() &&
             *with_special == c["ids_with_special"].get<std::vector<int32_t>>();
  }
  std::cout << GetParam() << ": " << exact << "/" << cases.size() << " corpus strings encode exactly\n";
}

// `decoded` is the decode of `ids` keeping special tokens (Qwen3's decoded
// corpus keeps "<|im_start|>").
TEST_P(ParityTest, DecodesEveryCorpusStringExactly) {
  const Tokenizer& tok = Family(GetParam());
  int exact = 0;
  const auto& cases = Golden()[GetParam()];
  for (const auto& c : cases) {
    auto text = tok.Decode(c["ids"].get<std::vector<int32_t>>(), /*skip_special_tokens=*/false);
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, c["decoded"].get<std::string>()) << GetParam();
    exact += *text == c["decoded"].get<std::string>();
  }
  std::cout << GetParam() << ": " << exact << "/" << cases.size() << " corpus strings decode exactly\n";
}

INSTANTIATE_TEST_SUITE_P(Families, ParityTest, ::testing::ValuesIn(Families()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace moe::tokenizer
