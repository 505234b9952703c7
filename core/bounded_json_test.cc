#include "core/bounded_json.h"

#include <chrono>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe {
namespace {

using ::testing::HasSubstr;
using ordered_json = nlohmann::ordered_json;
using json = nlohmann::json;

std::string Nested(int depth, const std::string& open, const std::string& close, const std::string& inner = "1") {
  std::string s;
  for (int i = 0; i < depth; ++i) s += open;
  s += inner;
  for (int i = 0; i < depth; ++i) s += close;
  return s;
}

TEST(BoundedJsonTest, ParsesLikeNlohmann) {
  const std::string text =
      R"({"b": [1, -2, 3.5, "x", true, null, {"k": []}], "a": {"z": 1, "y": {}}, "u": 18446744073709551615})";
  absl::StatusOr<ordered_json> o = ParseBoundedJson<ordered_json>(text);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(*o, ordered_json::parse(text));
  EXPECT_EQ(o->dump(), ordered_json::parse(text).dump());  // key order kept
  absl::StatusOr<json> j = ParseBoundedJson<json>(text);
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(*j, json::parse(text));
}

TEST(BoundedJsonTest, RepeatedKeysKeepFirstPositionAndLastValue) {
  // Small objects (linear search) and large ones (hash index) alike.
  for (int members : {3, 40}) {
    std::string text = R"({"dup": 1)";
    for (int i = 0; i < members; ++i) text += ", \"k" + std::to_string(i) + "\": " + std::to_string(i);
    text += R"(, "dup": {"x": 2}, "k0": "last"})";
    absl::StatusOr<ordered_json> o = ParseBoundedJson<ordered_json>(text);
    ASSERT_TRUE(o.ok()) << o.status();
    EXPECT_EQ(*o, ordered_json::parse(text)) << members;
    EXPECT_EQ(o->size(), static_cast<size_t>(members) + 1);
    EXPECT_EQ(o->begin().key(), "dup");
    EXPECT_EQ((*o)["dup"]["x"], 2);
    EXPECT_EQ((*o)["k0"], "last");
    absl::StatusOr<json> j = ParseBoundedJson<json>(text);
    ASSERT_TRUE(j.ok()) << j.status();
    EXPECT_EQ(*j, json::parse(text));
  }
}

TEST(BoundedJsonTest, DepthIsBoundedAndTheErrorNamesTheValue) {
  const JsonLimits limits{/*max_depth=*/8, /*max_values=*/1000};
  EXPECT_TRUE(ParseBoundedJson<ordered_json>(Nested(8, "[", "]"), limits).ok());
  absl::StatusOr<ordered_json> arrays = ParseBoundedJson<ordered_json>(Nested(9, "[", "]"), limits);
  EXPECT_TRUE(absl::IsInvalidArgument(arrays.status()));
  EXPECT_EQ(arrays.status().message(), "body[0][0][0][0][0][0][0][0]: nested deeper than 8 levels");

  const std::string in_object = R"({"model": "m", "messages": [{"role": "user", "content": )" +
                                Nested(100000, "[", "]") + "}]}";
  absl::StatusOr<ordered_json> o = ParseBoundedJson<ordered_json>(in_object, limits);
  EXPECT_EQ(o.status().message(), "messages[0].content[0][0][0][0][0]: nested deeper than 8 levels");
  // Past earlier siblings, the index is the element's own.
  absl::StatusOr<ordered_json> sib = ParseBoundedJson<ordered_json>(R"({"a": [1, 2, {"b": [[[[[[[1]]]]]]]}]})", limits);
  EXPECT_EQ(sib.status().message(), "a[2].b[0][0][0][0][0]: nested deeper than 8 levels");
}

TEST(BoundedJsonTest, ValueCountIsBounded) {
  const JsonLimits limits{/*max_depth=*/8, /*max_values=*/100};
  std::string text = "[0";
  for (int i = 0; i < 98; ++i) text += ",0";
  EXPECT_TRUE(ParseBoundedJson<json>(text + "]", limits).ok());  // 99 numbers + the array
  absl::StatusOr<json> r = ParseBoundedJson<json>(text + ",0]", limits);
  EXPECT_EQ(r.status().message(), "body: more than 100 JSON values");
}

TEST(BoundedJsonTest, SyntaxErrorsNameTheRootAndTheByte) {
  for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "nul", "[1] x", "\"\\ud800\"", "{\"a\":1,}"}) {
    absl::StatusOr<ordered_json> r = ParseBoundedJson<ordered_json>(bad, {}, "tokenizer.json");
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("tokenizer.json: invalid JSON")) << bad;
  }
}

// nlohmann's ordered_json parser takes O(N^2) for one object of N keys
// (1.5M keys: minutes). The bounded parser is linear: 400k keys, compared
// with a 40k-key object in the same run, cost about 10x, not 100x.
TEST(BoundedJsonTest, OneLargeObjectParsesInLinearTime) {
  auto object_of = [](int n) {
    std::string s = "{";
    for (int i = 0; i < n; ++i) {
      if (i > 0) s += ",";
      s += "\"key" + std::to_string(i) + "\":" + std::to_string(i);
    }
    return s + "}";
  };
  auto seconds = [](const std::string& text) {
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<ordered_json> r = ParseBoundedJson<ordered_json>(text);
    EXPECT_TRUE(r.ok()) << r.status();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const std::string small = object_of(40000), large = object_of(400000);
  double best_small = 1e9, best_large = 1e9;
  for (int round = 0; round < 3; ++round) {  // alternating, best of three
    best_small = std::min(best_small, seconds(small));
    best_large = std::min(best_large, seconds(large));
  }
  // Quadratic would be ~100x; linear ~10x (hash-table growth and cache
  // misses add some). 40x separates them with room for a noisy host.
  EXPECT_LT(best_large, 40 * best_small) << "40k keys " << best_small << " s, 400k keys " << best_large << " s";
  EXPECT_LT(best_large, 20.0);
}

}  // namespace
}  // namespace moe
