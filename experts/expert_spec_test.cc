#include "experts/expert_spec.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<ExpertKey> Parse(const std::string& spec, int64_t layers = 2, int64_t experts = 8) {
  auto keys = ParseExpertSpec(spec, layers, experts);
  EXPECT_TRUE(keys.ok()) << spec << ": " << keys.status();
  return keys.ok() ? *keys : std::vector<ExpertKey>{};
}

std::string Error(const std::string& spec, int64_t layers = 2, int64_t experts = 8) {
  auto keys = ParseExpertSpec(spec, layers, experts);
  EXPECT_FALSE(keys.ok()) << spec;
  if (keys.ok()) return "";
  EXPECT_EQ(keys.status().code(), absl::StatusCode::kInvalidArgument) << spec;
  return std::string(keys.status().message());
}

TEST(ExpertSpecTest, AllSelectsEveryExpertOfEveryLayer) {
  const auto keys = Parse("all", 3, 4);
  ASSERT_EQ(keys.size(), 12u);
  EXPECT_EQ(keys.front(), (ExpertKey{0, 0}));
  EXPECT_EQ(keys.back(), (ExpertKey{2, 3}));
}

TEST(ExpertSpecTest, DenseLayersHaveNoExperts) {
  const std::vector<int> dense = {0, 2};
  auto keys = ParseExpertSpec("all", 3, 2, dense);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_THAT(*keys, ElementsAre(ExpertKey{1, 0}, ExpertKey{1, 1}));
  keys = ParseExpertSpec("mod:1/2", 3, 2, dense);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_THAT(*keys, ElementsAre(ExpertKey{1, 1}));
  keys = ParseExpertSpec("0-1", 3, 2, dense);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_THAT(*keys, ElementsAre(ExpertKey{1, 0}, ExpertKey{1, 1}));
  keys = ParseExpertSpec("2:0", 3, 2, dense);
  ASSERT_FALSE(keys.ok());
  EXPECT_THAT(std::string(keys.status().message()), HasSubstr("bad item '2:0': layer 2 is a dense MLP layer"));
}

TEST(ExpertSpecTest, ModIsTheDefaultPlacement) {
  EXPECT_THAT(Parse("mod:1/3"), ElementsAre(ExpertKey{0, 1}, ExpertKey{0, 4}, ExpertKey{0, 7}, ExpertKey{1, 1},
                                            ExpertKey{1, 4}, ExpertKey{1, 7}));
  EXPECT_EQ(Parse("mod:0/1").size(), 16u);
  // The four shards of mod:i/4 partition the experts.
  std::vector<ExpertKey> all;
  for (int i = 0; i < 4; ++i)
    for (const ExpertKey& k : Parse("mod:" + std::to_string(i) + "/4")) all.push_back(k);
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, Parse("all"));
}

TEST(ExpertSpecTest, ListOfExpertsRangesAndLayerItems) {
  EXPECT_THAT(Parse("1,3-4", 1, 8), ElementsAre(ExpertKey{0, 1}, ExpertKey{0, 3}, ExpertKey{0, 4}));
  EXPECT_THAT(Parse("1:2,0:5-6,1:2"), ElementsAre(ExpertKey{0, 5}, ExpertKey{0, 6}, ExpertKey{1, 2}));
  EXPECT_THAT(Parse("7,1:0"), ElementsAre(ExpertKey{0, 7}, ExpertKey{1, 0}, ExpertKey{1, 7}));
}

TEST(ExpertSpecTest, ErrorsNameTheBadItem) {
  EXPECT_THAT(Error("1,x"), HasSubstr("'x'"));
  EXPECT_THAT(Error("1,8"), HasSubstr("'8': expert 8 is outside the model (8 experts"));
  EXPECT_THAT(Error("2:1"), HasSubstr("'2:1': layer 2 is outside the model (2 layers"));
  EXPECT_THAT(Error("5-3"), HasSubstr("'5-3': range 5-3 is empty"));
  EXPECT_THAT(Error("0:1-"), HasSubstr("'0:1-'"));
  EXPECT_THAT(Error("1,,2"), HasSubstr("empty item"));
  EXPECT_THAT(Error("-1"), HasSubstr("'-1'"));
  EXPECT_THAT(Error("a:1"), HasSubstr("layer number"));
  EXPECT_THAT(Error(""), HasSubstr("empty spec"));
  EXPECT_THAT(Error("mod:4/4"), HasSubstr("I must be below N"));
  EXPECT_THAT(Error("mod:0/0"), HasSubstr("N must be at least 1"));
  EXPECT_THAT(Error("mod:1"), HasSubstr("mod:I/N"));
  EXPECT_THAT(Error("mod:5/8", 2, 4), HasSubstr("selects no expert"));
  EXPECT_THAT(Error("99999999999999999999"), HasSubstr("'99999999999999999999'"));
}

TEST(ExpertSpecTest, DescribeListsLayers) {
  EXPECT_EQ(DescribeExperts(Parse("mod:0/4")), "4 experts: layer 0: 0,4; layer 1: 0,4");
}

}  // namespace
}  // namespace moe
