#include "gateway/tokenizer/bpe_model.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace moe::tokenizer {
namespace {

using ::testing::ElementsAre;

std::unique_ptr<BpeModel> Model(const std::string& json) {
  auto m = BpeModel::FromJson(nlohmann::json::parse(json), "model");
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::move(*m) : nullptr;
}

std::vector<int32_t> Ids(const BpeModel& m, const std::string& word) {
  std::vector<int32_t> ids;
  const absl::Status s = m.Tokenize(word, &ids);
  EXPECT_TRUE(s.ok()) << s;
  return ids;
}

constexpr char kVocab[] = R"("vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4, "abc": 5, "<unk>": 6, "aa": 7})";

TEST(BpeModelTest, AppliesMergesByRankThenLeftmost) {
  auto m = Model(std::string(R"({"type": "BPE", )") + kVocab + R"(, "merges": ["a b", "ab c", "a a"]})");
  EXPECT_THAT(Ids(*m, "abc"), ElementsAre(5));
  EXPECT_THAT(Ids(*m, "aaa"), ElementsAre(7, 0));  // equal ranks: the leftmost pair first
  auto ranked = Model(std::string(R"({"type": "BPE", )") + kVocab + R"(, "merges": ["b c", "a b", "ab c"]})");
  EXPECT_THAT(Ids(*ranked, "abc"), ElementsAre(0, 4));  // "b c" ranks first and blocks "ab"
}

TEST(BpeModelTest, MergesAsPairsEqualMergesAsStrings) {
  auto pairs = Model(std::string(R"({"type": "BPE", )") + kVocab + R"(, "merges": [["a", "b"], ["ab", "c"]]})");
  EXPECT_THAT(Ids(*pairs, "abc"), ElementsAre(5));
  EXPECT_THAT(Ids(*pairs, "cab"), ElementsAre(2, 3));
}

TEST(BpeModelTest, UnknownCharactersAndFuseUnk) {
  auto m = Model(std::string(R"({"type": "BPE", "unk_token": "<unk>", )") + kVocab + R"(, "merges": ["a b"]})");
  EXPECT_THAT(Ids(*m, "abdd"), ElementsAre(3, 6, 6));
  auto fused = Model(std::string(R"({"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, )") + kVocab +
                     R"(, "merges": ["a b"]})");
  EXPECT_THAT(Ids(*fused, "abdd"), ElementsAre(3, 6));
  auto no_unk = Model(std::string(R"({"type": "BPE", )") + kVocab + R"(, "merges": ["a b"]})");
  EXPECT_THAT(Ids(*no_unk, "adc"), ElementsAre(0, 2));  // unknown characters are dropped
}

TEST(BpeModelTest, ByteFallbackSpellsUnknownCharactersAsBytes) {
  auto m = Model(R"({"type": "BPE", "byte_fallback": true, "unk_token": "<unk>",
      "vocab": {"<unk>": 0, "<0xC3>": 1, "<0xA9>": 2, "a": 3, "<0x64>": 4}, "merges": []})");
  EXPECT_THAT(Ids(*m, "a\xC3\xA9" "d"), ElementsAre(3, 1, 2, 4));
  EXPECT_THAT(Ids(*m, "\xE2\x82\xAC"), ElementsAre(0));  // E2 has no byte token: the whole char is unknown
}

TEST(BpeModelTest, IgnoreMergesTakesWholeWordsFromTheVocabulary) {
  const std::string vocab_merges = std::string(kVocab) + R"(, "merges": ["a b"])";
  auto plain = Model(R"({"type": "BPE", )" + vocab_merges + "}");
  EXPECT_THAT(Ids(*plain, "abc"), ElementsAre(3, 2));
  auto ignore = Model(R"({"type": "BPE", "ignore_merges": true, )" + vocab_merges + "}");
  EXPECT_THAT(Ids(*ignore, "abc"), ElementsAre(5));
  EXPECT_THAT(Ids(*ignore, "cab"), ElementsAre(2, 3));
}

TEST(BpeModelTest, SubwordPrefixAndWordSuffix) {
  auto prefix = Model(R"({"type": "BPE", "continuing_subword_prefix": "##",
      "vocab": {"a": 0, "##b": 1, "ab": 2, "##c": 3}, "merges": ["a ##b"]})");
  EXPECT_THAT(Ids(*prefix, "abc"), ElementsAre(2, 3));
  auto suffix = Model(R"({"type": "BPE", "end_of_word_suffix": "</w>",
      "vocab": {"a": 0, "b</w>": 1, "ab</w>": 2, "b": 3}, "merges": ["a b</w>"]})");
  EXPECT_THAT(Ids(*suffix, "ab"), ElementsAre(2));
  EXPECT_THAT(Ids(*suffix, "ba"), ElementsAre(3));  // "a</w>" is unknown and dropped
}

TEST(BpeModelTest, CacheGivesTheSameAnswer) {
  auto m = Model(std::string(R"({"type": "BPE", )") + kVocab + R"(, "merges": ["a b", "ab c"]})");
  for (int i = 0; i < 3; ++i) EXPECT_THAT(Ids(*m, "abcab"), ElementsAre(5, 3));
  const std::string long_word(1000, 'a');
  EXPECT_EQ(Ids(*m, long_word).size(), 1000u);
}

TEST(BpeModelTest, VocabularyLookups) {
  auto m = Model(std::string(R"({"type": "BPE", )") + kVocab + R"(, "merges": []})");
  EXPECT_EQ(m->TokenToId("bc"), 4);
  EXPECT_EQ(m->TokenToId("zz"), std::nullopt);
  ASSERT_NE(m->IdToToken(5), nullptr);
  EXPECT_EQ(*m->IdToToken(5), "abc");
  EXPECT_EQ(m->IdToToken(99), nullptr);
  EXPECT_EQ(m->id_bound(), 8);
}

TEST(BpeModelTest, BadModelsAreNamed) {
  auto unknown = BpeModel::FromJson(nlohmann::json::parse(std::string(R"({"type": "BPE", )") + kVocab +
                                                          R"(, "merges": ["a b", "ab zz"]})"),
                                    "model");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("model.merges[1] ('ab zz'): unknown token 'zz'"), std::string::npos)
      << unknown.status();
  auto dup = BpeModel::FromJson(nlohmann::json::parse(R"({"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []})"),
                                "model");
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("duplicate id 0"), std::string::npos) << dup.status();
  auto merged_missing = BpeModel::FromJson(
      nlohmann::json::parse(R"({"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]})"), "model");
  ASSERT_FALSE(merged_missing.ok());
  EXPECT_NE(merged_missing.status().message().find("merged token 'ab'"), std::string::npos) << merged_missing.status();
  auto bad_merge = BpeModel::FromJson(
      nlohmann::json::parse(R"({"type": "BPE", "vocab": {"a": 0}, "merges": ["ab"]})"), "model");
  ASSERT_FALSE(bad_merge.ok());
  EXPECT_NE(bad_merge.status().message().find("model.merges[0]"), std::string::npos) << bad_merge.status();
  auto unigram = BpeModel::FromJson(nlohmann::json::parse(R"({"type": "Unigram", "vocab": []})"), "model");
  ASSERT_FALSE(unigram.ok());
  EXPECT_NE(unigram.status().message().find("model: unsupported type 'Unigram'"), std::string::npos)
      << unigram.status();
  auto bad_unk = BpeModel::FromJson(
      nlohmann::json::parse(R"({"type": "BPE", "unk_token": "<unk>", "vocab": {"a": 0}, "merges": []})"), "model");
  ASSERT_FALSE(bad_unk.ok());
  EXPECT_NE(bad_unk.status().message().find("<unk>"), std::string::npos) << bad_unk.status();
}

// SentencePiece-style models encode the whole text as one word; a long word
// is cut before each "▁" that follows another character and the pieces are
// merged apart. The ids must be those of merging the whole word, and a merge
// that joins across "▁" must turn the cutting off.
TEST(BpeModelTest, LongWordsCutAtMetaspaceGiveTheSameIds) {
  const std::string vocab = R"("vocab": {"\u2581": 0, "a": 1, "b": 2, "\u2581a": 3, "\u2581ab": 4, "ab": 5,
      "\u2581\u2581": 6, "b\u2581": 7, "Q": 8, "\u2581Z": 9, "Q\u2581Z": 10, "Z": 11})";
  const std::string merges = R"("\u2581 \u2581", "\u2581 a", "\u2581a b", "a b")";
  auto cut = Model(R"({"type": "BPE", )" + vocab + R"(, "merges": [)" + merges + "]}");
  // One merge across a "▁" (of tokens this text never has): no cutting.
  auto whole = Model(R"({"type": "BPE", )" + vocab + R"(, "merges": [)" + merges + R"(, "\u2581 Z", "Q \u2581Z"]})");
  const std::string sp = "\xE2\x96\x81";
  std::string word;
  for (int i = 0; word.size() < 2000; ++i) word += (i % 3 == 0 ? sp + sp : sp) + (i % 2 ? "ab" : "aab") + "b";
  const std::vector<int32_t> ids = Ids(*cut, word);
  EXPECT_EQ(ids, Ids(*whole, word));
  EXPECT_EQ(ids, Ids(*cut, word));  // again, from the cache

  // "b ▁" joins across the cut: honoured on a long word too.
  auto crossing = Model(R"({"type": "BPE", )" + vocab + R"(, "merges": [)" + merges + R"(, "b \u2581"]})");
  std::string bs;
  while (bs.size() < 1000) bs += "b" + sp;
  const std::vector<int32_t> joined = Ids(*crossing, bs);
  EXPECT_EQ(joined, std::vector<int32_t>(bs.size() / 4, 7));
}

// TokenizeWords gives what Tokenize gives word by word, hit or miss.
TEST(BpeModelTest, TokenizeWordsEqualsTokenizeOneByOne) {
  auto m = Model(std::string(R"({"type": "BPE", )") + kVocab + R"(, "merges": ["a b", "ab c", "a a"]})");
  const std::string long_word(300, 'a');  // longer than the cache takes
  const std::vector<absl::string_view> words = {"abc", "", "aaa", long_word, "cab", "abc"};
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<int32_t> batched, single;
    ASSERT_TRUE(m->TokenizeWords(words, &batched).ok());
    for (absl::string_view w : words) ASSERT_TRUE(m->Tokenize(w, &single).ok());
    EXPECT_EQ(batched, single);
  }
}

}  // namespace
}  // namespace moe::tokenizer
