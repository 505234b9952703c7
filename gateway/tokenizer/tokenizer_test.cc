// The Tokenizer API: special tokens in user text, added-token options,
// skip_special_tokens, vocabulary lookups, tokenizer_config.json, and bad
// input (tokenizer files and text) giving errors that name the culprit.
#include "gateway/tokenizer/tokenizer.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gateway/tokenizer/test_util.h"
#include "gateway/tokenizer/unicode.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace moe::tokenizer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Family;

TEST(TokenizerTest, SpecialTokensInTextNeedAllowSpecial) {
  const Tokenizer& tok = Family("qwen3");
  const std::string text = "<|im_start|>user\nhi<|im_end|>";
  auto allowed = tok.Encode(text, {.allow_special = true});
  ASSERT_TRUE(allowed.ok());
  EXPECT_EQ(allowed->front(), 151644);
  EXPECT_EQ(allowed->back(), 151645);
  auto plain = tok.Encode(text, {.allow_special = false});
  ASSERT_TRUE(plain.ok());
  for (int32_t id : *plain) EXPECT_FALSE(tok.IsSpecial(id)) << id;
  EXPECT_GT(plain->size(), allowed->size());
  // As plain text the markers decode back to themselves.
  EXPECT_EQ(*tok.Decode(*plain, /*skip_special_tokens=*/true), text);
  // Non-special added tokens are ordinary vocabulary: matched either way.
  auto tool = tok.Encode("<tool_call>", {.allow_special = false});
  ASSERT_TRUE(tool.ok());
  EXPECT_THAT(*tool, ElementsAre(*tok.TokenToId("<tool_call>")));
  EXPECT_FALSE(tok.IsSpecial((*tool)[0]));
}

TEST(TokenizerTest, SkipSpecialTokensOnDecode) {
  const Tokenizer& tok = Family("qwen3");
  auto ids = tok.Encode("<|im_start|>system\nYou are helpful.<|im_end|>\n", {.allow_special = true});
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*tok.Decode(*ids, /*skip_special_tokens=*/false), "<|im_start|>system\nYou are helpful.<|im_end|>\n");
  EXPECT_EQ(*tok.Decode(*ids, /*skip_special_tokens=*/true), "system\nYou are helpful.\n");
  const Tokenizer& mistral = Family("mistral");
  EXPECT_EQ(*mistral.Decode({1, 22557, 2}, /*skip_special_tokens=*/true), "Hello");
  EXPECT_EQ(*mistral.Decode({1, 22557, 2}, /*skip_special_tokens=*/false), "<s> Hello</s>");
}

TEST(TokenizerTest, AddSpecialTokensFollowsThePostProcessor) {
  EXPECT_THAT(*Family("mistral").Encode("Hello", {.add_special_tokens = true}), ElementsAre(1, 22557));
  EXPECT_THAT(*Family("mistral").Encode("Hello", {.add_special_tokens = false}), ElementsAre(22557));
  // Qwen3's post-processor is ByteLevel only: nothing is added.
  EXPECT_EQ(*Family("qwen3").Encode("Hello", {.add_special_tokens = true}),
            *Family("qwen3").Encode("Hello", {.add_special_tokens = false}));
}

TEST(TokenizerTest, VocabularyLookupsAndConfig) {
  const Tokenizer& qwen = Family("qwen3");
  EXPECT_EQ(qwen.vocab_size(), 151669);
  EXPECT_EQ(qwen.TokenToId("<|im_end|>"), 151645);
  EXPECT_EQ(*qwen.IdToToken(151645), "<|im_end|>");
  EXPECT_EQ(*qwen.IdToToken(9707), "Hello");
  EXPECT_TRUE(qwen.IsSpecial(151643));
  EXPECT_FALSE(qwen.IsSpecial(9707));
  EXPECT_EQ(qwen.TokenToId("no such token"), std::nullopt);
  EXPECT_FALSE(qwen.IdToToken(151669).ok());
  EXPECT_EQ(qwen.eos_id(), 151645);
  EXPECT_EQ(qwen.pad_id(), 151643);
  EXPECT_EQ(qwen.bos_id(), std::nullopt);
  EXPECT_EQ(Family("mistral").bos_id(), 1);
  EXPECT_EQ(Family("mistral").eos_id(), 2);
  EXPECT_EQ(Family("llama3").bos_id(), 128000);
  EXPECT_EQ(Family("deepseek_v3").bos_id(), 0);
}

// A tiny byte-level tokenizer.json for the added-token options.
std::string TinyJson(const std::string& added_tokens, const std::string& normalizer = "null") {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) {
    std::string s;
    AppendByteLevel(std::string(1, static_cast<char>(b)), &s);
    vocab[s] = b;
  }
  nlohmann::json j = {
      {"version", "1.0"},
      {"added_tokens", nlohmann::json::parse(added_tokens)},
      {"normalizer", nlohmann::json::parse(normalizer)},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}},
  };
  return j.dump();
}

TEST(TokenizerTest, AddedTokenOptions) {
  auto tok = Tokenizer::FromJson(TinyJson(R"([
      {"id": 300, "content": "<L>", "lstrip": true, "rstrip": false, "single_word": false, "normalized": false, "special": true},
      {"id": 301, "content": "<R>", "lstrip": false, "rstrip": true, "single_word": false, "normalized": false, "special": true},
      {"id": 302, "content": "cat", "lstrip": false, "rstrip": false, "single_word": true, "normalized": false, "special": false},
      {"id": 303, "content": "dog", "lstrip": false, "rstrip": false, "single_word": false, "normalized": true, "special": false}])",
                                          R"({"type": "Lowercase"})"),
                                 "tiny.json");
  ASSERT_TRUE(tok.ok()) << tok.status();
  const EncodeOptions allow{.allow_special = true};
  EXPECT_THAT(*(*tok)->Encode("a  <L>", allow), ElementsAre('a', 300));          // lstrip eats the spaces
  EXPECT_THAT(*(*tok)->Encode("<R>  b", allow), ElementsAre(301, 'b'));          // rstrip eats the spaces
  EXPECT_THAT(*(*tok)->Encode("a cat.", allow), ElementsAre('a', ' ', 302, '.'));  // a word on its own
  EXPECT_THAT(*(*tok)->Encode("cats", allow), ElementsAre('c', 'a', 't', 's'));  // not single_word
  // normalized=true: matched in the lowercased text.
  EXPECT_THAT(*(*tok)->Encode("DOG", allow), ElementsAre(303));
  // normalized=false: matched before lowercasing only.
  EXPECT_THAT(*(*tok)->Encode("CAT", allow), ElementsAre('c', 'a', 't'));
}

TEST(TokenizerTest, IsSafeToShareBetweenThreads) {
  const Tokenizer& tok = Family("llama3");
  const auto& cases = testing::Golden()["llama3"];
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        for (size_t i = t; i < cases.size() + t; ++i) {
          const auto& c = cases[i % cases.size()];
          auto ids = tok.Encode(c["text"].get<std::string>(), {.allow_special = true});
          if (!ids.ok() || *ids != c["ids"].get<std::vector<int32_t>>()) ++mismatches;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// Mistral has no pre-tokenizer: a whole text is one BPE word, which the model
// cuts before "▁" where no merge can join (see BpeModel). The same tokenizer
// with one more merge across a "▁" (of a token this text never has) merges
// the whole word at once: the ids must be the same.
TEST(TokenizerTest, LongSentencePieceTextEncodesAsOneWord) {
  nlohmann::json j = nlohmann::json::parse(testing::ReadGzipFile(testing::TokenizersDir() + "/mistral/tokenizer.json.gz"));
  nlohmann::json& model = j["model"];
  int64_t next_id = 0;
  for (const auto& [token, id] : model["vocab"].items()) next_id = std::max<int64_t>(next_id, id.get<int64_t>() + 1);
  model["vocab"]["<0x00>\u2581the"] = next_id;
  model["merges"].push_back("<0x00> \u2581the");
  auto whole_words = Tokenizer::FromJson(j.dump(), "mistral+merge");
  ASSERT_TRUE(whole_words.ok()) << whole_words.status();
  const Tokenizer& tok = Family("mistral");

  std::string text;
  for (int round = 0; round < 3; ++round) {
    for (const auto& c : testing::Golden()["mistral"]) text += c["text"].get<std::string>() + (round == 1 ? "   " : " ");
  }
  ASSERT_GT(text.size(), 2000u);
  for (const bool add_special_tokens : {false, true}) {
    auto cut = tok.Encode(text, {.add_special_tokens = add_special_tokens});
    auto whole = (*whole_words)->Encode(text, {.add_special_tokens = add_special_tokens});
    ASSERT_TRUE(cut.ok() && whole.ok());
    EXPECT_EQ(*cut, *whole);
    EXPECT_EQ(*tok.Decode(*cut, /*skip_special_tokens=*/true), text);
  }
}

TEST(TokenizerTest, InvalidUtf8TextIsInvalidArgument) {
  auto ids = Family("qwen3").Encode("ok \xC3\x28 bad", {});
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ids.status().message()), HasSubstr("UTF-8"));
}

TEST(TokenizerTest, DecodeNamesIdsOutsideTheVocabulary) {
  auto text = Family("llama3").Decode({9906, 999999}, /*skip_special_tokens=*/false);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(text.status().message()), HasSubstr("999999"));
  EXPECT_THAT(std::string(Family("llama3").Decode({-3}, false).status().message()), HasSubstr("-3"));
}

absl::Status LoadError(const std::string& json) {
  auto t = Tokenizer::FromJson(json, "bad.json");
  return t.ok() ? absl::OkStatus() : t.status();
}

TEST(TokenizerTest, BadTokenizerJsonNamesTheCulprit) {
  const std::string good = TinyJson("[]");
  ASSERT_TRUE(LoadError(good).ok());
  auto with = [&](const char* key, const nlohmann::json& value) {
    nlohmann::json j = nlohmann::json::parse(good);
    j[key] = value;
    return LoadError(j.dump());
  };
  EXPECT_THAT(std::string(LoadError("{\"model\": ").message()), HasSubstr("bad.json: invalid JSON"));
  EXPECT_THAT(std::string(with("normalizer", {{"type", "BertNormalizer"}}).message()),
              HasSubstr("bad.json: normalizer: unsupported type 'BertNormalizer'"));
  EXPECT_THAT(std::string(with("decoder", {{"type", "CTC"}}).message()),
              HasSubstr("bad.json: decoder: unsupported type 'CTC'"));
  EXPECT_THAT(std::string(with("post_processor", {{"type", "Magic"}}).message()),
              HasSubstr("post_processor: unsupported type 'Magic'"));
  EXPECT_THAT(std::string(with("pre_tokenizer", {{"type", "Sequence"},
                                                 {"pretokenizers", {{{"type", "ByteLevel"}}, {{"type", "Nope"}}}}})
                              .message()),
              HasSubstr("pre_tokenizer.pretokenizers[1]: unsupported type 'Nope'"));
  nlohmann::json bad_merge = nlohmann::json::parse(good);
  bad_merge["model"]["vocab"]["ab"] = 256;
  bad_merge["model"]["merges"] = {"a b", "b zzz"};
  EXPECT_THAT(std::string(LoadError(bad_merge.dump()).message()),
              HasSubstr("model.merges[1] ('b zzz'): unknown token 'zzz'"));
  nlohmann::json dup_vocab = nlohmann::json::parse(good);
  dup_vocab["model"]["vocab"]["extra"] = 65;
  EXPECT_THAT(std::string(LoadError(dup_vocab.dump()).message()), HasSubstr("duplicate id 65"));
  EXPECT_THAT(std::string(LoadError(TinyJson(R"([{"id": 300, "content": "<a>", "special": true},
                                                  {"id": 300, "content": "<b>", "special": true}])"))
                              .message()),
              HasSubstr("added_tokens[1] ('<b>'): duplicate id 300"));
  EXPECT_THAT(std::string(with("model", {{"type", "WordPiece"}}).message()),
              HasSubstr("model: unsupported type 'WordPiece'"));
  EXPECT_THAT(std::string(LoadError("[1, 2]").message()), HasSubstr("not a JSON object"));
}

TEST(TokenizerTest, FromDirectoryReadsPlainOrGzipAndNamesMissingFiles) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("moe_tokenizer_test_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto missing = Tokenizer::FromDirectory(dir.string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr(dir.string()));
  std::ofstream(dir / "tokenizer.json") << TinyJson("[]");
  auto plain = Tokenizer::FromDirectory(dir.string());
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_THAT(*(*plain)->Encode("hi", {}), ElementsAre('h', 'i'));
  std::ofstream(dir / "tokenizer_config.json") << "{not json";
  auto bad_config = Tokenizer::FromDirectory(dir.string());
  ASSERT_FALSE(bad_config.ok());
  EXPECT_THAT(std::string(bad_config.status().message()), HasSubstr("tokenizer_config.json: invalid JSON"));
  fs::remove(dir / "tokenizer_config.json");
  fs::remove(dir / "tokenizer.json");
  // A truncated gzip file is an error, not a crash.
  const std::string gz = testing::ReadFile(testing::TokenizersDir() + "/mistral/tokenizer.json.gz");
  std::ofstream(dir / "tokenizer.json.gz", std::ios::binary) << gz.substr(0, gz.size() / 2);
  auto truncated = Tokenizer::FromDirectory(dir.string());
  EXPECT_FALSE(truncated.ok());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace moe::tokenizer
