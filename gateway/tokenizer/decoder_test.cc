#include "gateway/tokenizer/decoder.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace moe::tokenizer {
namespace {

struct Decoded {
  std::string full;                 // everything, read once at the end
  std::vector<std::string> deltas;  // read after every token, then after Finish
};

Decoded DecodeAll(const std::string& json, const std::vector<std::string>& tokens) {
  auto chain = DecoderChain::FromJson(json.empty() ? nlohmann::json() : nlohmann::json::parse(json), "decoder");
  EXPECT_TRUE(chain.ok()) << chain.status();
  if (!chain.ok()) return {};
  Decoded d;
  auto full = chain->NewPipeline();
  auto stream = chain->NewPipeline();
  for (const auto& t : tokens) {
    full->PushToken(t);
    stream->PushToken(t);
    d.deltas.push_back(stream->TakeOutput());
  }
  full->Finish();
  stream->Finish();
  d.deltas.push_back(stream->TakeOutput());
  d.full = full->TakeOutput();
  std::string joined;
  for (const auto& s : d.deltas) joined += s;
  EXPECT_EQ(joined, d.full) << "streamed text differs from the full decode";
  return d;
}

constexpr char kMistral[] = R"({"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
    {"type": "ByteFallback"}, {"type": "Fuse"},
    {"type": "Strip", "content": " ", "start": 1, "stop": 0}]})";

TEST(DecoderTest, ByteLevelJoinsBytesAndWaitsForWholeCharacters) {
  const std::string bl = R"({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true})";
  EXPECT_EQ(DecodeAll(bl, {"Hello", "Ġworld"}).full, "Hello world");
  // "é" split over two tokens: Ã (C3) and © (A9).
  const Decoded d = DecodeAll(bl, {"a", "\xC3\x83", "\xC2\xA9", "b"});
  EXPECT_EQ(d.full, "a\xC3\xA9" "b");
  EXPECT_EQ(d.deltas[1], "");
  EXPECT_EQ(d.deltas[2], "\xC3\xA9");
  // A character outside the byte map: the token is taken as its UTF-8 bytes.
  EXPECT_EQ(DecodeAll(bl, {"<\xEF\xBD\x9C" "x\xEF\xBD\x9C>", "Ġy"}).full, "<\xEF\xBD\x9C" "x\xEF\xBD\x9C> y");
  // A byte that never completes becomes U+FFFD at the end.
  EXPECT_EQ(DecodeAll(bl, {"a", "\xC3\x83"}).full, "a\xEF\xBF\xBD");
}

TEST(DecoderTest, MistralChainHandlesPrefixSpaceAndByteFallback) {
  EXPECT_EQ(DecodeAll(kMistral, {"▁Hello", "▁world"}).full, "Hello world");
  EXPECT_EQ(DecodeAll(kMistral, {"▁", "▁leading"}).full, " leading");
  const Decoded euro = DecodeAll(kMistral, {"▁a", "<0xE2>", "<0x82>", "<0xAC>", "▁b"});
  EXPECT_EQ(euro.full, "a\xE2\x82\xAC b");
  // The byte run is final only once a token that is not a byte ends it.
  EXPECT_EQ(euro.deltas[3], "");
  EXPECT_EQ(euro.deltas[4], "\xE2\x82\xAC b");
  // An invalid run: one U+FFFD per byte, as the reference does.
  EXPECT_EQ(DecodeAll(kMistral, {"<0xE2>", "<0x82>", "x"}).full, "\xEF\xBF\xBD\xEF\xBF\xBDx");
  EXPECT_EQ(DecodeAll(kMistral, {}).full, "");
}

TEST(DecoderTest, MetaspaceDropsTheFirstPrefix) {
  const std::string always = R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true})";
  EXPECT_EQ(DecodeAll(always, {"▁Hey", "▁friend!"}).full, "Hey friend!");
  const std::string never = R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never"})";
  EXPECT_EQ(DecodeAll(never, {"▁Hey", "▁friend!"}).full, " Hey friend!");
}

TEST(DecoderTest, StripHoldsTrailingCharactersUntilTheTokenEnds) {
  const std::string strip = R"({"type": "Sequence", "decoders": [{"type": "Fuse"},
      {"type": "Strip", "content": " ", "start": 1, "stop": 2}]})";
  const Decoded d = DecodeAll(strip, {"  a", "   ", "b ", "  "});
  EXPECT_EQ(d.full, " a   b ");
  const std::string per_token = R"({"type": "Strip", "content": "x", "start": 1, "stop": 1})";
  EXPECT_EQ(DecodeAll(per_token, {"xxAxx", "xBx"}).full, "xAxB");
}

TEST(DecoderTest, BpeSuffixWordPieceAndNoDecoder) {
  EXPECT_EQ(DecodeAll(R"({"type": "BPEDecoder", "suffix": "</w>"})", {"hel", "lo</w>", "wor", "ld</w>"}).full,
            "hello world");
  EXPECT_EQ(DecodeAll(R"({"type": "WordPiece", "prefix": "##", "cleanup": true})", {"un", "##aff", "##able", "."}).full,
            "unaffable.");
  EXPECT_EQ(DecodeAll("", {"a", "b", "c"}).full, "a b c");
}

TEST(DecoderTest, ReplaceWithRegex) {
  EXPECT_EQ(DecodeAll(R"({"type": "Replace", "pattern": {"Regex": "_+"}, "content": " "})", {"a__b", "_c"}).full, "a b c");
}

TEST(DecoderTest, UnsupportedDecodersAreNamed) {
  auto bad = DecoderChain::FromJson(
      nlohmann::json::parse(R"({"type": "Sequence", "decoders": [{"type": "Fuse"}, {"type": "CTC"}]})"), "decoder");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("decoder.decoders[1]: unsupported type 'CTC'"), std::string::npos)
      << bad.status();
}

}  // namespace
}  // namespace moe::tokenizer
