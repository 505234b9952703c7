#include "tools/loadgen/arrivals.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe::loadgen {
namespace {

struct Moments {
  double mean = 0;
  double cv2 = 0;  // variance / mean^2
};

Moments Sample(const ArrivalOptions& options, int n) {
  ArrivalProcess arrivals(options);
  double sum = 0, sum2 = 0;
  for (int i = 0; i < n; ++i) {
    const double gap = arrivals.NextGapSeconds();
    EXPECT_GE(gap, 0);
    sum += gap;
    sum2 += gap * gap;
  }
  Moments m;
  m.mean = sum / n;
  m.cv2 = (sum2 / n - m.mean * m.mean) / (m.mean * m.mean);
  return m;
}

TEST(ArrivalProcessTest, PoissonGapsHaveTheMeanRateAndUnitVariation) {
  const Moments m = Sample({/*request_rate_per_s=*/8.0, /*burstiness=*/1.0, /*seed=*/1}, 200000);
  EXPECT_NEAR(m.mean, 1.0 / 8.0, 0.01 / 8.0);  // 1% (the standard error is 0.22%)
  EXPECT_NEAR(m.cv2, 1.0, 0.03);
}

TEST(ArrivalProcessTest, GammaBurstinessSetsTheVariationAtTheSameRate) {
  for (double k : {0.25, 0.5, 2.0, 4.0}) {
    SCOPED_TRACE(k);
    const Moments m = Sample({/*request_rate_per_s=*/5.0, /*burstiness=*/k, /*seed=*/7}, 400000);
    EXPECT_NEAR(m.mean, 0.2, 0.2 * 0.015);
    EXPECT_NEAR(m.cv2, 1.0 / k, 0.06 / k);  // CV^2 = 1/k
  }
}

TEST(ArrivalProcessTest, SameSeedSameArrivals) {
  ArrivalProcess a({3.0, 0.5, 42}), b({3.0, 0.5, 42}), c({3.0, 0.5, 43});
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const double x = a.NextGapSeconds();
    EXPECT_EQ(x, b.NextGapSeconds());
    differs |= x != c.NextGapSeconds();
  }
  EXPECT_TRUE(differs);
}

TEST(ArrivalProcessTest, InfiniteRateSendsEverythingAtOnce) {
  ArrivalProcess a({std::numeric_limits<double>::infinity(), 1.0, 0});
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.NextGapSeconds(), 0);
  EXPECT_EQ(a.Describe(), "all at once");
}

TEST(ArrivalProcessTest, Describes) {
  EXPECT_EQ(ArrivalProcess({4.0, 1.0, 0}).Describe(), "Poisson, 4.00 req/s");
  EXPECT_EQ(ArrivalProcess({4.0, 0.5, 0}).Describe(), "gamma (burstiness 0.50), 4.00 req/s");
}

}  // namespace
}  // namespace moe::loadgen
