// StreamDecoder on the real tokenizers: the deltas never end inside a UTF-8
// character and add up to the full decode, for every corpus string of every
// family, with and without special tokens, and for random id sequences.
#include <random>
#include <string>
#include <vector>

#include "gateway/tokenizer/test_util.h"
#include "gateway/tokenizer/tokenizer.h"
#include "gateway/tokenizer/unicode.h"
#include "gtest/gtest.h"

namespace moe::tokenizer {
namespace {

using testing::Families;
using testing::Family;
using testing::Golden;

// Streams `ids`; checks every delta is whole UTF-8; returns the deltas.
std::vector<std::string> Stream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip_special) {
  StreamDecoder dec(&tok, skip_special);
  std::vector<std::string> deltas;
  for (const int32_t id : ids) {
    auto delta = dec.Push(id);
    EXPECT_TRUE(delta.ok()) << delta.status();
    deltas.push_back(delta.value_or("<error>"));
  }
  deltas.push_back(dec.Finish());
  for (const auto& d : deltas) EXPECT_TRUE(ValidateUtf8(d, "delta").ok()) << "partial character in a delta";
  return deltas;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string s;
  for (const auto& p : parts) s += p;
  return s;
}

class StreamTest : public ::testing::TestWithParam<std::string> {};

TEST_P(StreamTest, ConcatenationEqualsFullDecodeForEveryCorpusString) {
  const Tokenizer& tok = Family(GetParam());
  for (const auto& c : Golden()[GetParam()]) {
    for (const char* key : {"ids", "ids_with_special"}) {
      const auto ids = c[key].get<std::vector<int32_t>>();
      for (const bool skip : {false, true}) {
        auto full = tok.Decode(ids, skip);
        ASSERT_TRUE(full.ok()) << full.status();
        EXPECT_EQ(Join(Stream(tok, ids, skip)), *full) << GetParam() << " " << key << " skip=" << skip;
      }
    }
  }
}

// Arbitrary ids (as a sampler can produce) split characters anywhere and make
// invalid byte sequences: the stream must still add up and stay whole UTF-8.
TEST_P(StreamTest, RandomIdSequencesStreamConsistently) {
  const Tokenizer& tok = Family(GetParam());
  std::mt19937 rng(7);
  // Mostly low ids (single bytes and short pieces in these vocabularies).
  std::uniform_int_distribution<int32_t> low(0, 600);
  std::uniform_int_distribution<int32_t> any(0, static_cast<int32_t>(tok.vocab_size()) - 1);
  for (int round = 0; round < 200; ++round) {
    std::vector<int32_t> ids;
    for (int i = 0; i < 12; ++i) {
      const int32_t id = round % 2 ? low(rng) : any(rng);
      if (tok.IdToToken(id).ok()) ids.push_back(id);
    }
    for (const bool skip : {false, true}) {
      auto full = tok.Decode(ids, skip);
      ASSERT_TRUE(full.ok()) << full.status();
      EXPECT_EQ(Join(Stream(tok, ids, skip)), *full) << GetParam() << " round " << round;
    }
  }
}

TEST_P(StreamTest, KoreanAndEmojiStreamWithoutBrokenCharacters) {
  const Tokenizer& tok = Family(GetParam());
  const std::string text = "안녕하세요 👍🏽 🇰🇷 섞인 😀";
  auto ids = tok.Encode(text, {});
  ASSERT_TRUE(ids.ok()) << ids.status();
  const auto deltas = Stream(tok, *ids, /*skip_special=*/true);
  EXPECT_EQ(Join(deltas), text);
  // Some ids carry only part of a character: their deltas are empty, and the
  // character comes out whole with a later id.
  int empty = 0;
  for (size_t i = 0; i + 1 < deltas.size(); ++i) empty += deltas[i].empty();
  EXPECT_GT(empty, 0) << GetParam();
}

TEST_P(StreamTest, RejectsIdsOutsideTheVocabularyAndGoesOn) {
  const Tokenizer& tok = Family(GetParam());
  StreamDecoder dec(&tok, /*skip_special_tokens=*/true);
  auto ids = tok.Encode("Hello world", {});
  ASSERT_TRUE(ids.ok());
  std::string text;
  text += *dec.Push((*ids)[0]);
  const int32_t bad = static_cast<int32_t>(tok.vocab_size()) + 5;
  auto r = dec.Push(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(std::to_string(bad)), std::string::npos) << r.status();
  EXPECT_FALSE(dec.Push(-1).ok());
  for (size_t i = 1; i < ids->size(); ++i) text += *dec.Push((*ids)[i]);
  text += dec.Finish();
  EXPECT_EQ(text, "Hello world");
}

INSTANTIATE_TEST_SUITE_P(Families, StreamTest, ::testing::ValuesIn(Families()),
                         [](const auto& info) { return info.param; });

TEST(StreamDecoderTest, MistralStripsOnlyTheFirstPrefixSpace) {
  const Tokenizer& tok = Family("mistral");
  auto ids = tok.Encode("Hello world", {.add_special_tokens = true});
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ((*ids)[0], 1);  // <s>
  const auto deltas = Stream(tok, *ids, /*skip_special=*/true);
  EXPECT_EQ(deltas[0], "");
  EXPECT_EQ(deltas[1], "Hello");
  EXPECT_EQ(deltas[2], " world");
  const auto kept = Stream(tok, *ids, /*skip_special=*/false);
  EXPECT_EQ(Join(kept), "<s> Hello world");
}

TEST(StreamDecoderTest, MistralByteFallbackKoreanComesOutWhole) {
  const Tokenizer& tok = Family("mistral");
  // "섞" is not in the Mistral vocabulary: three byte tokens <0xEC><0x84><0x9E>.
  auto ids = tok.Encode("섞a", {});
  ASSERT_TRUE(ids.ok());
  ASSERT_GE(ids->size(), 4u);
  const auto deltas = Stream(tok, *ids, /*skip_special=*/true);
  EXPECT_EQ(Join(deltas), "섞a");
  for (size_t i = 0; i + 1 < deltas.size(); ++i) {
    EXPECT_TRUE(deltas[i].empty() || deltas[i].find("섞") != std::string::npos) << i << ": " << deltas[i];
  }
}

TEST(StreamDecoderTest, FinishTurnsAnIncompleteCharacterIntoReplacement) {
  const Tokenizer& tok = Family("qwen3");
  const auto c3 = tok.TokenToId("\xC3\x83");  // byte C3, the lead of a 2-byte character
  ASSERT_TRUE(c3.has_value());
  StreamDecoder dec(&tok, /*skip_special_tokens=*/true);
  EXPECT_EQ(*dec.Push(*c3), "");
  EXPECT_EQ(dec.Finish(), "\xEF\xBF\xBD");
  // The decoder starts over after Finish.
  auto hello = tok.Encode("Hi", {});
  ASSERT_TRUE(hello.ok());
  std::string again;
  for (int32_t id : *hello) again += *dec.Push(id);
  EXPECT_EQ(again + dec.Finish(), "Hi");
}

}  // namespace
}  // namespace moe::tokenizer
