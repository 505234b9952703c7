#include "tools/loadgen/stats.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe::loadgen {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

// Values from numpy.percentile (linear interpolation).
TEST(PercentileTest, MatchesNumpyLinearInterpolation) {
  const std::vector<double> four = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(Percentile(four, 0), 1);
  EXPECT_DOUBLE_EQ(Percentile(four, 50), 2.5);
  EXPECT_DOUBLE_EQ(Percentile(four, 90), 3.7);
  EXPECT_DOUBLE_EQ(Percentile(four, 100), 4);
  const std::vector<double> five = {10, 20, 30, 40, 50};
  EXPECT_DOUBLE_EQ(Percentile(five, 50), 30);
  EXPECT_DOUBLE_EQ(Percentile(five, 99), 49.6);
  EXPECT_DOUBLE_EQ(Percentile({7}, 99), 7);
  EXPECT_DOUBLE_EQ(Percentile({}, 50), 0);
}

TEST(DistributeTest, SortsAndSummarizes) {
  const Distribution d = Distribute({40, 10, 30, 20});
  EXPECT_EQ(d.count, 4u);
  EXPECT_DOUBLE_EQ(d.mean_ms, 25);
  EXPECT_DOUBLE_EQ(d.median_ms, 25);
  EXPECT_DOUBLE_EQ(d.p90_ms, 37);
  EXPECT_DOUBLE_EQ(d.max_ms, 40);
  EXPECT_THAT(d.sorted_ms, ElementsAre(10, 20, 30, 40));
}

// A request sent at `sent` whose tokens arrive at `token_times` (one each).
RequestRecord Ok(int64_t index, double sent, std::vector<double> token_times, int prompt_tokens) {
  RequestRecord r;
  r.index = index;
  r.ok = true;
  r.sent_s = sent;
  r.scheduled_s = sent;
  r.first_token_s = token_times.front();
  r.done_s = token_times.back();
  r.prompt_tokens = prompt_tokens;
  r.output_tokens = static_cast<int>(token_times.size());
  for (double t : token_times) r.events.push_back({t, 1});
  return r;
}

TEST(SummarizeTest, CountsThroughputLatenciesAndGoodput) {
  std::vector<RequestRecord> records;
  // TTFT 100 ms, TPOT 50 ms, ITL 50, 50, e2e 200 ms.
  records.push_back(Ok(1, 0.0, {0.1, 0.15, 0.2}, 10));
  // TTFT 300 ms, TPOT 100 ms, ITL 100, e2e 400 ms; sent while the first runs.
  records.push_back(Ok(2, 0.1, {0.4, 0.5}, 20));
  RequestRecord failed;
  failed.index = 3;
  failed.status = "UNAVAILABLE";
  failed.sent_s = 1.0;
  failed.done_s = 2.0;
  records.push_back(failed);
  RequestRecord warm = Ok(0, -5, {-4.9, -4.8}, 99);
  warm.warmup = true;
  records.push_back(warm);

  const Summary s = Summarize(records, {/*ttft_ms=*/200, /*tpot_ms=*/60});
  EXPECT_EQ(s.completed, 2);
  EXPECT_EQ(s.failed, 1);
  EXPECT_THAT(s.status_counts, ElementsAre(Pair("OK", 2), Pair("UNAVAILABLE", 1)));
  EXPECT_DOUBLE_EQ(s.duration_s, 2.0);  // first send (0) to last completion (2.0)
  EXPECT_EQ(s.total_input_tokens, 30);
  EXPECT_EQ(s.total_output_tokens, 5);
  EXPECT_DOUBLE_EQ(s.request_throughput, 1.0);
  EXPECT_DOUBLE_EQ(s.output_throughput, 2.5);
  EXPECT_DOUBLE_EQ(s.total_token_throughput, 17.5);
  EXPECT_NEAR(s.ttft.mean_ms, 200, 1e-9);
  EXPECT_NEAR(s.tpot.mean_ms, 75, 1e-9);
  EXPECT_EQ(s.itl.count, 3u);
  EXPECT_NEAR(s.itl.median_ms, 50, 1e-9);
  EXPECT_NEAR(s.itl.max_ms, 100, 1e-9);
  EXPECT_NEAR(s.e2e.p99_ms, 398, 1e-9);
  // Only the first meets TTFT <= 200 and TPOT <= 60.
  EXPECT_TRUE(s.has_slo);
  EXPECT_EQ(s.good_requests, 1);
  EXPECT_DOUBLE_EQ(s.goodput, 0.5);
  EXPECT_EQ(s.max_in_flight, 2);
  // Buckets [0,1) and [1,2]: all 5 tokens in the first second; the failed
  // request's completion does not count.
  EXPECT_THAT(s.output_tokens_per_s, ElementsAre(5, 0));
  EXPECT_THAT(s.completions_per_s, ElementsAre(2, 0));
}

TEST(SummarizeTest, NoObjectivesNoGoodputAndOneTokenHasNoTpot) {
  std::vector<RequestRecord> records = {Ok(0, 0, {0.5}, 4)};
  const Summary s = Summarize(records, {});
  EXPECT_FALSE(s.has_slo);
  EXPECT_EQ(s.tpot.count, 0u);
  EXPECT_EQ(s.itl.count, 0u);
  EXPECT_EQ(s.ttft.count, 1u);
  // Half a second: the only bucket is partial, a rate over 0.5 s.
  EXPECT_THAT(s.output_tokens_per_s, ElementsAre(2));
}

TEST(SummarizeTest, BackToBackRequestsAreNotConcurrent) {
  std::vector<RequestRecord> records = {Ok(0, 0, {0.5, 1.0}, 1), Ok(1, 1.0, {1.5, 2.0}, 1)};
  EXPECT_EQ(Summarize(records, {}).max_in_flight, 1);
}

TEST(SummarizeTest, EmptyRun) {
  const Summary s = Summarize({}, {});
  EXPECT_EQ(s.completed, 0);
  EXPECT_EQ(s.duration_s, 0);
  EXPECT_TRUE(s.output_tokens_per_s.empty());
}

}  // namespace
}  // namespace moe::loadgen
