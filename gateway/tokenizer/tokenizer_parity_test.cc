// Parity with the reference tokenizers on four real model families: for every
// string of tests/testdata/tokenizers/corpus.json, the exact ids without and
// with special tokens and the exact decoded text of golden.json.
#include <iostream>
#include <string>
#include <vector>

#include "gateway/tokenizer/test_util.h"
#include "gateway/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

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

// reference_fuzz.json.gz: random texts (fragments of many scripts, emoji,
// special-token pieces, stray code points) and random id sequences, encoded
// and decoded by the Hugging Face `tokenizers` library itself (0.23.2).
TEST_P(ParityTest, MatchesTheReferenceLibraryOnRandomTextAndIds) {
  static const nlohmann::json* fuzz = new nlohmann::json(
      nlohmann::json::parse(testing::ReadGzipFile(testing::TokenizersDir() + "/reference_fuzz.json.gz")));
  const Tokenizer& tok = Family(GetParam());
  const auto& cases = (*fuzz)[GetParam()];
  ASSERT_GE(cases["encode"].size(), 400u);
  int exact = 0;
  for (const auto& c : cases["encode"]) {
    const std::string text = c["text"];
    auto ids = tok.Encode(text, {.add_special_tokens = false, .allow_special = true});
    auto with_special = tok.Encode(text, {.add_special_tokens = true, .allow_special = true});
    ASSERT_TRUE(ids.ok() && with_special.ok()) << text;
    EXPECT_EQ(*ids, c["ids"].get<std::vector<int32_t>>()) << GetParam() << ": '" << text << "'";
    EXPECT_EQ(*with_special, c["ids_with_special"].get<std::vector<int32_t>>()) << GetParam() << ": '" << text << "'";
    exact += *ids == c["ids"].get<std::vector<int32_t>>();
  }
  for (const auto& c : cases["decode"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.Decode(ids, /*skip_special_tokens=*/false).value_or("<error>"), c["decoded"].get<std::string>());
    EXPECT_EQ(tok.Decode(ids, /*skip_special_tokens=*/true).value_or("<error>"),
              c["decoded_skip_special"].get<std::string>());
  }
  std::cout << GetParam() << ": " << exact << "/" << cases["encode"].size() << " random texts encode exactly\n";
}

INSTANTIATE_TEST_SUITE_P(Families, ParityTest, ::testing::ValuesIn(Families()),
                         [](const auto& info) { return info.param; });

// tests/testdata/tiny-mixtral: a Qwen3 tokenizer cut to 4096 tokens, with the
// prompts (chat markers included) and greedy continuations of golden.json.
TEST(TinyMixtralTest, PromptsEncodeAndContinuationsDecodeAsInTheGolden) {
  const std::string dir = std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral";
  auto tok = Tokenizer::FromDirectory(dir);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->vocab_size(), 4096);
  EXPECT_EQ((*tok)->eos_id(), 4095);
  const auto golden = nlohmann::json::parse(testing::ReadFile(dir + "/golden.json"));
  ASSERT_FALSE(golden["cases"].empty());
  for (const auto& c : golden["cases"]) {
    const std::string prompt = c["prompt_text"];
    auto ids = (*tok)->Encode(prompt, {.add_special_tokens = false, .allow_special = true});
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, c["prompt_ids"].get<std::vector<int32_t>>()) << prompt;
    const auto greedy = c["greedy_ids"].get<std::vector<int32_t>>();
    auto text = (*tok)->Decode(greedy, /*skip_special_tokens=*/true);
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, c["greedy_text"].get<std::string>());
    StreamDecoder stream(tok->get(), /*skip_special_tokens=*/true);
    std::string streamed;
    for (const int32_t id : greedy) streamed += stream.Push(id).value_or("<error>");
    EXPECT_EQ(streamed + stream.Finish(), c["greedy_text"].get<std::string>());
    EXPECT_EQ(*(*tok)->Decode(c["prompt_ids"].get<std::vector<int32_t>>(), /*skip_special_tokens=*/false), prompt);
  }
}

}  // namespace
}  // namespace moe::tokenizer
