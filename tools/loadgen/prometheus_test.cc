#include "tools/loadgen/prometheus.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe::loadgen {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

// As the router writes it (core/metrics.cc).
constexpr char kRouterMetrics[] = R"(# HELP moe_engine_steps_total Forward steps run by the engine.
# TYPE moe_engine_steps_total counter
moe_engine_steps_total 42
# HELP moe_expert_tokens_total Tokens the gates routed to each expert.
# TYPE moe_expert_tokens_total counter
moe_expert_tokens_total{layer="0",expert="0"} 5
moe_expert_tokens_total{layer="0",expert="1"} 7
moe_expert_tokens_total{layer="1",expert="0"} 9
moe_expert_tokens_total{layer="1",expert="1"} 3
# HELP moe_dispatch_latency_seconds Round trip of one MoE-layer exchange with a worker.
# TYPE moe_dispatch_latency_seconds histogram
moe_dispatch_latency_seconds_bucket{worker="127.0.0.1:7001",le="0.001"} 3
moe_dispatch_latency_seconds_bucket{worker="127.0.0.1:7001",le="0.01"} 4
moe_dispatch_latency_seconds_bucket{worker="127.0.0.1:7001",le="+Inf"} 4
moe_dispatch_latency_seconds_sum{worker="127.0.0.1:7001"} 0.0062
moe_dispatch_latency_seconds_count{worker="127.0.0.1:7001"} 4
moe_dispatch_failures_total{worker="127.0.0.1:7001"} 1
)";

TEST(ParsePrometheusTextTest, SamplesWithLabels) {
  auto samples = ParsePrometheusText(kRouterMetrics);
  ASSERT_TRUE(samples.ok()) << samples.status();
  ASSERT_EQ(samples->size(), 11u);
  EXPECT_EQ((*samples)[0].name, "moe_engine_steps_total");
  EXPECT_EQ((*samples)[0].value, 42);
  EXPECT_THAT((*samples)[1].labels, ElementsAre(Pair("expert", "0"), Pair("layer", "0")));
  EXPECT_EQ((*samples)[7].value, 4);
  EXPECT_EQ((*samples)[7].labels.at("le"), "+Inf");
}

TEST(ParsePrometheusTextTest, EscapesTimestampsAndErrors) {
  auto s = ParsePrometheusText("m{a=\"x\\\"y\\\\z\\n\", b=\"\"} +Inf 1700000000\nn NaN\n");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)[0].labels.at("a"), "x\"y\\z\n");
  EXPECT_TRUE(std::isinf((*s)[0].value));
  EXPECT_TRUE(std::isnan((*s)[1].value));
  EXPECT_THAT(ParsePrometheusText("ok 1\nbad{a=\"1\" 2\n").status().message(), HasSubstr("metrics line 2"));
  EXPECT_FALSE(ParsePrometheusText("x\n").ok());
}

TEST(AddRouterMetricsTest, DispatchAndExpertTokens) {
  auto samples = ParsePrometheusText(kRouterMetrics);
  ASSERT_TRUE(samples.ok());
  RouterLoad load;
  AddRouterMetrics(*samples, &load);
  ASSERT_TRUE(load.dispatch_reported);
  ASSERT_EQ(load.dispatch.size(), 1u);
  const WorkerDispatch& w = load.dispatch[0];
  EXPECT_EQ(w.address, "127.0.0.1:7001");
  EXPECT_EQ(w.calls, 4u);
  EXPECT_DOUBLE_EQ(w.total_latency_s, 0.0062);
  EXPECT_EQ(w.failures, 1u);
  ASSERT_EQ(w.buckets.size(), 3u);
  EXPECT_DOUBLE_EQ(w.buckets[0].first, 0.001);
  EXPECT_TRUE(std::isinf(w.buckets[2].first));
  EXPECT_EQ(load.num_layers, 2u);
  EXPECT_EQ(load.num_experts, 2u);
  EXPECT_THAT(load.expert_tokens, ElementsAre(5, 7, 9, 3));
  EXPECT_FALSE(load.engine_reported);

  // GetLoad's expert counters win when present.
  RouterLoad from_get_load;
  from_get_load.num_layers = 1;
  from_get_load.num_experts = 1;
  from_get_load.expert_tokens = {100};
  AddRouterMetrics(*samples, &from_get_load);
  EXPECT_THAT(from_get_load.expert_tokens, ElementsAre(100));
  EXPECT_TRUE(from_get_load.dispatch_reported);
}

TEST(AddRouterMetricsTest, NoWorkersNoDispatch) {
  auto samples = ParsePrometheusText("moe_engine_steps_total 1\n");
  RouterLoad load;
  AddRouterMetrics(*samples, &load);
  EXPECT_FALSE(load.dispatch_reported);
  EXPECT_TRUE(load.expert_tokens.empty());
}

}  // namespace
}  // namespace moe::loadgen
