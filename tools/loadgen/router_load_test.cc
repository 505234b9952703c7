#include "tools/loadgen/router_load.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe::loadgen {
namespace {

using ::testing::DoubleEq;
using ::testing::ElementsAre;

TEST(ImbalanceTest, MaxOverMean) {
  EXPECT_DOUBLE_EQ(Imbalance({10, 10, 10, 10}), 1.0);
  EXPECT_DOUBLE_EQ(Imbalance({40, 0, 0, 0}), 4.0);
  EXPECT_DOUBLE_EQ(Imbalance({30, 10}), 1.5);
  EXPECT_DOUBLE_EQ(Imbalance({0, 0}), 0);
  EXPECT_DOUBLE_EQ(Imbalance({}), 0);
}

TEST(CompareRouterLoadsTest, DifferencesOverTheRun) {
  RouterLoad before, after;
  before.steps = 100;
  after.steps = 150;
  before.generated_tokens = 1000;
  after.generated_tokens = 1400;
  after.prefix_cache_queried_tokens = 200;
  after.prefix_cache_hit_tokens = 50;
  before.admitted_requests = 10;
  after.admitted_requests = 14;
  before.queue_seconds_total = 1.0;
  after.queue_seconds_total = 1.2;
  // 2 layers x 3 experts.
  before.num_layers = after.num_layers = 2;
  before.num_experts = after.num_experts = 3;
  before.expert_tokens = {5, 5, 5, 1, 1, 1};
  after.expert_tokens = {15, 15, 15, 31, 1, 1};  // layer 0: 10 10 10; layer 1: 30 0 0
  const MoeFigures f = CompareRouterLoads(before, after);
  EXPECT_EQ(f.steps, 50u);
  EXPECT_EQ(f.generated_tokens, 400u);
  EXPECT_DOUBLE_EQ(f.prefix_cache_hit_rate, 0.25);
  EXPECT_NEAR(f.mean_queue_ms, 50, 1e-9);
  ASSERT_TRUE(f.expert_tokens_reported);
  EXPECT_THAT(f.tokens_per_expert, ElementsAre(40, 10, 10));
  EXPECT_DOUBLE_EQ(f.imbalance, 2.0);
  EXPECT_THAT(f.layer_imbalance, ElementsAre(DoubleEq(1.0), DoubleEq(3.0)));
  EXPECT_DOUBLE_EQ(f.mean_layer_imbalance, 2.0);
  EXPECT_EQ(f.worst_layer, 1);
  EXPECT_FALSE(f.dispatch_reported);
}

TEST(CompareRouterLoadsTest, NoExpertCountersNotReported) {
  const MoeFigures f = CompareRouterLoads(RouterLoad(), RouterLoad());
  EXPECT_FALSE(f.expert_tokens_reported);
  EXPECT_EQ(f.worst_layer, -1);
}

TEST(CompareRouterLoadsTest, DispatchLatencyPerWorker) {
  RouterLoad before, after;
  before.dispatch_reported = after.dispatch_reported = true;
  // Cumulative buckets: before, 10 calls all under 1 ms; after, 10 more
  // between 1 and 10 ms (and w1, new, with 4 calls under 1 ms).
  before.dispatch = {{"w0", 10, 0.005, 1, {{0.001, 10}, {0.01, 10}, {INFINITY, 10}}}};
  after.dispatch = {{"w0", 20, 0.055, 3, {{0.001, 10}, {0.01, 20}, {INFINITY, 20}}},
                    {"w1", 4, 0.2, 0, {{0.001, 4}, {0.01, 4}, {INFINITY, 4}}}};
  const MoeFigures f = CompareRouterLoads(before, after);
  ASSERT_EQ(f.workers.size(), 2u);
  EXPECT_EQ(f.workers[0].calls, 10u);
  EXPECT_EQ(f.workers[0].failures, 2u);
  EXPECT_NEAR(f.workers[0].mean_latency_ms, 5, 1e-9);
  EXPECT_NEAR(f.workers[0].p50_ms, 5.5, 1e-9);  // 1 + (10 - 1) * 0.5
  EXPECT_NEAR(f.workers[0].p99_ms, 9.91, 1e-9);
  EXPECT_EQ(f.workers[1].calls, 4u);
  EXPECT_NEAR(f.workers[1].mean_latency_ms, 50, 1e-9);
  EXPECT_NEAR(f.workers[1].p50_ms, 0.5, 1e-9);
}

TEST(HistogramQuantileTest, LinearWithinTheBucket) {
  const std::vector<std::pair<double, double>> h = {{1, 2}, {2, 6}, {4, 8}, {INFINITY, 10}};
  EXPECT_DOUBLE_EQ(HistogramQuantile(h, 0.1), 0.5);   // rank 1 of 2 in [0, 1]
  EXPECT_DOUBLE_EQ(HistogramQuantile(h, 0.4), 1.5);   // rank 4: 2 of 4 in [1, 2]
  EXPECT_DOUBLE_EQ(HistogramQuantile(h, 0.7), 3.0);   // rank 7: 1 of 2 in [2, 4]
  EXPECT_DOUBLE_EQ(HistogramQuantile(h, 0.95), 4.0);  // in the +inf bucket: the largest bound
  EXPECT_DOUBLE_EQ(HistogramQuantile({}, 0.5), 0);
  EXPECT_DOUBLE_EQ(HistogramQuantile({{1, 0}, {INFINITY, 0}}, 0.5), 0);
}

}  // namespace
}  // namespace moe::loadgen
