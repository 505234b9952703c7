#include "core/metrics.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, HistogramCountsCumulativeBucketsSumAndCount) {
  Histogram h({0.1, 1.0});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(0.5);
  h.Observe(7);
  PrometheusText p;
  p.Histogram("x_seconds", "X.", h.Get(), {{"worker", "a\"b"}});
  const std::string s = p.str();
  EXPECT_THAT(s, HasSubstr("# HELP x_seconds X.\n# TYPE x_seconds histogram\n"));
  EXPECT_THAT(s, HasSubstr("x_seconds_bucket{worker=\"a\\\"b\",le=\"0.10000000000000001\"} 1\n"));
  EXPECT_THAT(s, HasSubstr("x_seconds_bucket{worker=\"a\\\"b\",le=\"1\"} 3\n"));
  EXPECT_THAT(s, HasSubstr("x_seconds_bucket{worker=\"a\\\"b\",le=\"+Inf\"} 4\n"));
  EXPECT_THAT(s, HasSubstr("x_seconds_sum{worker=\"a\\\"b\"} 8.0500000000000007\n"));
  EXPECT_THAT(s, HasSubstr("x_seconds_count{worker=\"a\\\"b\"} 4\n"));
}

TEST(MetricsTest, FamiliesAreWrittenOnceWithAllTheirSamples) {
  PrometheusText p;
  p.Counter("c_total", "C.", 1, {{"k", "a"}});
  p.Gauge("g", "G.", 2.5);
  p.Counter("c_total", "C.", 3, {{"k", "b"}});
  EXPECT_EQ(p.str(),
            "# HELP c_total C.\n# TYPE c_total counter\nc_total{k=\"a\"} 1\nc_total{k=\"b\"} 3\n"
            "# HELP g G.\n# TYPE g gauge\ng 2.5\n");
}

}  // namespace
}  // namespace moe
