#include "tools/loadgen/workload.h"

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe::loadgen {
namespace {

using ::testing::HasSubstr;

WorkloadOptions Synthetic() {
  WorkloadOptions o;
  o.input_len_tokens = 32;
  o.output_len_tokens = 16;
  o.vocab_size = 50;
  o.excluded_ids = {49, 7};
  o.seed = 3;
  return o;
}

TEST(WorkloadTest, SyntheticPromptsHaveTheLengthsAndAvoidExcludedIds) {
  auto w = Workload::Create(Synthetic());
  ASSERT_TRUE(w.ok()) << w.status();
  for (int i = 0; i < 200; ++i) {
    const RequestSpec spec = w->Next();
    ASSERT_EQ(spec.token_ids.size(), 32u);
    EXPECT_EQ(spec.max_tokens, 16);
    EXPECT_TRUE(spec.text.empty());
    EXPECT_TRUE(spec.ignore_eos);
    for (uint32_t id : spec.token_ids) {
      EXPECT_LT(id, 50u);
      EXPECT_NE(id, 49u);
      EXPECT_NE(id, 7u);
    }
  }
}

TEST(WorkloadTest, RangesDrawUniformLengthsWithinBounds) {
  WorkloadOptions o = Synthetic();
  o.input_len_range = 0.5;   // [16, 48]
  o.output_len_range = 0.25;  // [12, 20]
  auto w = Workload::Create(o);
  ASSERT_TRUE(w.ok());
  size_t lo = 1000, hi = 0;
  double sum = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const RequestSpec spec = w->Next();
    lo = std::min(lo, spec.token_ids.size());
    hi = std::max(hi, spec.token_ids.size());
    sum += static_cast<double>(spec.token_ids.size());
    EXPECT_GE(spec.max_tokens, 12);
    EXPECT_LE(spec.max_tokens, 20);
  }
  EXPECT_EQ(lo, 16u);
  EXPECT_EQ(hi, 48u);
  EXPECT_NEAR(sum / n, 32, 0.5);
}

TEST(WorkloadTest, SameSeedSamePrompts) {
  auto a = Workload::Create(Synthetic());
  auto b = Workload::Create(Synthetic());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a->Next().token_ids, b->Next().token_ids);
}

TEST(WorkloadTest, RejectsBadOptions) {
  WorkloadOptions o = Synthetic();
  o.vocab_size = 0;
  EXPECT_THAT(Workload::Create(o).status().message(), HasSubstr("vocabulary"));
  o = Synthetic();
  o.input_len_range = 1;
  EXPECT_FALSE(Workload::Create(o).ok());
  o = Synthetic();
  o.output_len_tokens = 0;
  EXPECT_FALSE(Workload::Create(o).ok());
}

TEST(JsonlTest, ParsesPromptsAndMaxTokens) {
  auto p = ParseJsonlPrompts("{\"prompt\": \"hello\", \"max_tokens\": 5}\n\n{\"prompt\": \"w\\u00f6rld\"}\n", "f.jsonl");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->size(), 2u);
  EXPECT_EQ((*p)[0].prompt, "hello");
  EXPECT_EQ((*p)[0].max_tokens, 5);
  EXPECT_EQ((*p)[1].prompt, "w\xc3\xb6rld");
  EXPECT_EQ((*p)[1].max_tokens, 0);
}

TEST(JsonlTest, ErrorsNameTheLine) {
  EXPECT_THAT(ParseJsonlPrompts("{\"prompt\": \"a\"}\nnot json\n", "f.jsonl").status().message(),
              HasSubstr("f.jsonl:2: not a JSON object"));
  EXPECT_THAT(ParseJsonlPrompts("{\"text\": \"a\"}\n", "f.jsonl").status().message(),
              HasSubstr("f.jsonl:1: no string \"prompt\""));
  EXPECT_THAT(ParseJsonlPrompts("{\"prompt\": \"a\", \"max_tokens\": -1}\n", "f.jsonl").status().message(),
              HasSubstr("f.jsonl:1: \"max_tokens\" must be a positive integer"));
  EXPECT_THAT(ParseJsonlPrompts("\n", "f.jsonl").status().message(), HasSubstr("no prompts"));
}

TEST(JsonlTest, WorkloadCyclesTheFile) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("loadgen_prompts_" + std::to_string(getpid()) + ".jsonl")).string();
  std::ofstream(path) << "{\"prompt\": \"a\", \"max_tokens\": 3}\n{\"prompt\": \"b\"}\n";
  WorkloadOptions o;
  o.jsonl_path = path;
  o.output_len_tokens = 9;
  auto w = Workload::Create(o);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->Describe(), "jsonl: " + path + " (2 prompts)");
  const RequestSpec a = w->Next(), b = w->Next(), c = w->Next();
  EXPECT_EQ(a.text, "a");
  EXPECT_EQ(a.max_tokens, 3);
  EXPECT_EQ(b.text, "b");
  EXPECT_EQ(b.max_tokens, 9);
  EXPECT_EQ(c.text, "a");
  EXPECT_TRUE(a.token_ids.empty());
  std::filesystem::remove(path);
  o.jsonl_path = path;
  EXPECT_THAT(Workload::Create(o).status().message(), HasSubstr("cannot open"));
}

}  // namespace
}  // namespace moe::loadgen
