#include "router/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <vector>

#include "core/vector_ops.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe {
namespace {

using ::testing::HasSubstr;

const std::vector<float> kLogits = {2.0f, 1.5f, 1.2f, 1.0f, 0.5f, 0.3f, 0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f};

// The analytically filtered distribution, written independently of the
// sampler in the plainest way: full sorts, double precision.
std::vector<double> Expected(const std::vector<float>& logits, const SamplingOptions& o) {
  const size_t V = logits.size();
  std::vector<int> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return logits[a] != logits[b] ? logits[a] > logits[b] : a < b; });
  std::vector<bool> keep(V, true);
  auto probs = [&] {
    std::vector<double> p(V, 0.0);
    double z = 0;
    for (size_t i = 0; i < V; ++i)
      if (keep[i]) z += std::exp(static_cast<double>(logits[i]));
    for (size_t i = 0; i < V; ++i)
      if (keep[i]) p[i] = std::exp(static_cast<double>(logits[i])) / z;
    return p;
  };
  if (o.top_k > 0) {
    for (size_t r = o.top_k; r < V; ++r) keep[order[r]] = false;
  }
  if (o.typical_p < 1) {
    const std::vector<double> p = probs();
    double h = 0;
    for (size_t i = 0; i < V; ++i)
      if (keep[i]) h -= p[i] * std::log(p[i]);
    std::vector<int> by_dev;
    for (int i : order)
      if (keep[i]) by_dev.push_back(i);
    std::stable_sort(by_dev.begin(), by_dev.end(), [&](int a, int b) {
      return std::abs(-std::log(p[a]) - h) < std::abs(-std::log(p[b]) - h);
    });
    double mass = 0;
    std::vector<bool> k2(V, false);
    for (int i : by_dev) {
      k2[i] = true;
      mass += p[i];
      if (mass >= o.typical_p) break;
    }
    keep = k2;
  }
  if (o.top_p < 1) {
    const std::vector<double> p = probs();
    double mass = 0;
    bool done = false;
    for (int i : order) {
      if (!keep[i]) continue;
      if (done) {
        keep[i] = false;
        continue;
      }
      mass += p[i];
      if (mass >= o.top_p) done = true;
    }
  }
  if (o.min_p > 0) {
    const std::vector<double> p = probs();
    const double pmax = *std::max_element(p.begin(), p.end());
    for (size_t i = 0; i < V; ++i)
      if (keep[i] && p[i] < o.min_p * pmax) keep[i] = false;
  }
  std::vector<double> q(V, 0.0);
  double z = 0;
  for (size_t i = 0; i < V; ++i)
    if (keep[i]) z += q[i] = std::exp(static_cast<double>(logits[i]) / o.temperature);
  for (double& v : q) v /= z;
  return q;
}

// Chi-square critical values at significance 0.001 for 1..11 degrees of
// freedom. The draws use fixed seeds, so the test is deterministic; a correct
// sampler passes it with probability 0.999 per seed, and this seed passes.
constexpr double kChiSquare999[] = {10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88, 29.59, 31.26};

void CheckDistribution(SamplingOptions o, const std::string& name) {
  o.seed = 20261125;
  Sampler sampler(o, {}, {});
  constexpr int kDraws = 100000;
  std::vector<int> counts(kLogits.size(), 0);
  for (int i = 0; i < kDraws; ++i) ++counts[sampler.Sample(kLogits).id];
  const std::vector<double> want = Expected(kLogits, o);
  double chi2 = 0;
  int categories = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i] == 0) {
      EXPECT_EQ(counts[i], 0) << name << ": token " << i << " was filtered out but drawn";
      continue;
    }
    const double e = want[i] * kDraws;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
    ++categories;
  }
  ASSERT_GE(categories, 2) << name;
  EXPECT_LT(chi2, kChiSquare999[categories - 2]) << name << " (" << categories << " categories)";
}

TEST(SamplerDistributionTest, EachFilterMatchesTheAnalyticDistribution) {
  SamplingOptions o;
  o.temperature = 0.7f;
  CheckDistribution(o, "temperature 0.7");
  o = {};
  o.top_k = 5;
  CheckDistribution(o, "top_k 5");
  o = {};
  o.top_p = 0.8f;
  CheckDistribution(o, "top_p 0.8");
  o = {};
  o.min_p = 0.2f;
  CheckDistribution(o, "min_p 0.2");
  o = {};
  o.typical_p = 0.6f;
  CheckDistribution(o, "typical_p 0.6");
  o = {};
  o.top_k = 8;
  o.top_p = 0.9f;
  o.min_p = 0.05f;
  o.temperature = 1.3f;
  CheckDistribution(o, "top_k 8 + top_p 0.9 + min_p 0.05 + temperature 1.3");
}

// Top-p's histogram selection against its definition: sort by (logit desc,
// id asc), sum the weights in that order, keep the shortest prefix reaching
// the target, in id order. Peaked, flat, tied and masked logits; candidates
// in id order (the top-p path) and in logit order (after top-k).
TEST(TopPFilterTest, MatchesTheSortingDefinition) {
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(-1.0f, 0.0f);
  TopPScratch scratch;
  int checked = 0;
  for (int trial = 0; trial < 800; ++trial) {
    const int64_t V = std::vector<int64_t>{1, 2, 17, 1000, 4096, 152064}[trial % 6];
    std::vector<float> l(V);
    const int mode = trial % 4;
    for (int64_t i = 0; i < V; ++i) {
      if (mode == 0) l[i] = 3.0f * normal(rng) + (i % 97 == 0 ? 12.0f : 0.0f);  // peaked
      if (mode == 1) l[i] = uniform(rng);                                           // flat
      if (mode == 2) l[i] = static_cast<float>(static_cast<int>(rng() % 4)) - 3.0f;  // many ties
      if (mode == 3) l[i] = rng() % 5 == 0 ? -std::numeric_limits<float>::infinity() : normal(rng);  // masked
    }
    const float mx = *std::max_element(l.begin(), l.end());
    if (mx == -std::numeric_limits<float>::infinity()) l[0] = 0.0f;
    std::vector<int32_t> ids(V);
    std::iota(ids.begin(), ids.end(), 0);
    auto key = [&](int32_t a, int32_t b) { return l[a] != l[b] ? l[a] > l[b] : a < b; };
    if (trial % 3 == 2) {  // the top-k path: the first k by logit, in logit order
      std::sort(ids.begin(), ids.end(), key);
      ids.resize(std::max<int64_t>(1, V / 3));
    }
    const float top = *std::max_element(l.begin(), l.end());
    std::vector<double> w(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) w[i] = std::exp(static_cast<double>(l[ids[i]]) - top);
    const double total = std::accumulate(w.begin(), w.end(), 0.0);
    const double top_p = std::vector<double>{0.1, 0.5, 0.9, 0.99, 0.999999}[trial % 5];
    const double target = top_p * total;
    // The definition.
    std::vector<size_t> order(ids.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key(ids[a], ids[b]); });
    double mass = 0;
    size_t keep = order.size();
    for (size_t i = 0; i < order.size(); ++i) {
      mass += w[order[i]];
      if (mass >= target) {
        keep = i + 1;
        break;
      }
    }
    order.resize(keep);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ids[a] < ids[b]; });
    std::vector<int32_t> want_ids;
    std::vector<double> want_w;
    for (size_t i : order) {
      want_ids.push_back(ids[i]);
      want_w.push_back(w[i]);
    }
    if (trial % 3 != 2) {
      // The sampler's form: candidates in id order with their logits and
      // finite range; the kept sum comes back added in id order.
      std::vector<int32_t> ids2 = ids;
      std::vector<double> w2 = w;
      std::vector<float> values;
      float hi = -std::numeric_limits<float>::infinity(), lo = std::numeric_limits<float>::infinity();
      for (int32_t id : ids2) {
        values.push_back(l[id]);
        if (l[id] == -std::numeric_limits<float>::infinity()) continue;
        hi = std::max(hi, l[id]);
        lo = std::min(lo, l[id]);
      }
      const double sum = TopPFilterInIdOrder(values, hi, lo, target, &ids2, &w2, &scratch);
      ASSERT_EQ(ids2, want_ids) << "trial " << trial;
      ASSERT_EQ(w2, want_w) << "trial " << trial;
      ASSERT_EQ(sum, std::accumulate(want_w.begin(), want_w.end(), 0.0)) << "trial " << trial;
    }
    TopPFilter(l, target, &ids, &w, &scratch);
    ASSERT_EQ(ids, want_ids) << "trial " << trial << " V " << V << " mode " << mode << " top_p " << top_p;
    ASSERT_EQ(w, want_w) << "trial " << trial;
    ++checked;
  }
  EXPECT_EQ(checked, 800);
}

TEST(SumReachesTest, AgreesWithTheInOrderSumEvenAtTheEdge) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  int checked = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<double> w(1 + rng() % 50000);
    for (double& x : w) x = trial % 2 == 0 ? u(rng) : std::exp(-30.0 * u(rng));
    const double serial = std::accumulate(w.begin(), w.end(), 0.0);
    // Targets on both sides of the in-order sum, down to one ulp.
    for (double target : {serial, std::nextafter(serial, 0.0), std::nextafter(serial, 1e300), serial * 0.5,
                          serial * (1 + 1e-12), serial * (1 - 1e-12), serial * 2}) {
      ASSERT_EQ(SumReaches(w, target), serial >= target) << "trial " << trial << " target " << target;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 2100);
}

TEST(SamplerTest, GreedyTakesTheMaximumAndReportsRawLogprobs) {
  SamplingOptions o;
  o.temperature = 0;
  o.top_logprobs = 5;
  Sampler s(o, {}, {});
  const GeneratedToken t = s.Sample(kLogits);
  EXPECT_EQ(t.id, 0);
  double z = 0;
  for (float l : kLogits) z += std::exp(static_cast<double>(l));
  EXPECT_NEAR(t.logprob, 2.0 - std::log(z), 1e-5);
  ASSERT_EQ(t.top_logprobs.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(t.top_logprobs[i].first, static_cast<int32_t>(i));
    EXPECT_NEAR(t.top_logprobs[i].second, kLogits[i] - std::log(z), 1e-5);
    if (i > 0) {
      EXPECT_GE(t.top_logprobs[i - 1].second, t.top_logprobs[i].second);
    }
  }
}

// A constraint that allows a fixed mask and says whether it is complete.
class FixedConstraint : public grammar::TokenConstraint {
 public:
  FixedConstraint(grammar::TokenMask mask, bool complete) : mask_(std::move(mask)), complete_(complete) {}
  const grammar::TokenMask& Mask() override { return mask_; }
  bool Complete() const override { return complete_; }
  absl::Status Advance(int32_t) override { return absl::OkStatus(); }
  bool Exhausted() override { return false; }

 private:
  grammar::TokenMask mask_;
  bool complete_;
};

TEST(SamplerTest, GreedyUnderAConstraintIsTheBestAllowedToken) {
  // Written plainly: the allowed logits (and the end ids once complete), the
  // highest, the lowest id on ties; the first end id when none is finite.
  auto expected = [](const std::vector<float>& l, const grammar::TokenMask& m, bool complete,
                     const std::vector<int32_t>& ends) {
    float best = -std::numeric_limits<float>::infinity();
    int32_t id = -1;
    for (int32_t i = 0; i < static_cast<int32_t>(l.size()); ++i) {
      const bool allowed = (static_cast<size_t>(i >> 6) < m.size() && ((m[i >> 6] >> (i & 63)) & 1)) ||
                           (complete && std::find(ends.begin(), ends.end(), i) != ends.end());
      if (allowed && l[i] > best) {
        best = l[i];
        id = i;
      }
    }
    return id >= 0 ? id : (ends.empty() ? 0 : ends[0]);
  };
  std::mt19937_64 rng(7);
  int checked = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const int V = 1 + static_cast<int>(rng() % 700);
    std::vector<float> l(V);
    for (float& x : l) x = static_cast<float>(static_cast<int>(rng() % 9)) * 0.5f;  // many ties
    if (trial % 7 == 0) {
      for (float& x : l) x = -std::numeric_limits<float>::infinity();
    }
    // Words wholly allowed, wholly refused, mixed; sometimes shorter than V.
    grammar::TokenMask m((V + 63) / 64 - (trial % 5 == 0 ? 1 : 0));
    for (uint64_t& w : m) {
      const int kind = static_cast<int>(rng() % 4);
      w = kind == 0 ? ~uint64_t{0} : kind == 1 ? 0 : rng() & rng();
    }
    const bool complete = trial % 3 == 0;
    std::vector<int32_t> ends;
    if (trial % 4 != 0) ends = {static_cast<int32_t>(rng() % V)};
    SamplingOptions o;
    o.temperature = 0;
    Sampler fast(o, {}, ends, std::make_unique<FixedConstraint>(m, complete));
    // The masked copy path (a zero logit bias forces it): the same choice.
    SamplingOptions ob = o;
    ob.logit_bias.push_back({0, 0.0f});
    Sampler copied(ob, {}, ends, std::make_unique<FixedConstraint>(m, complete));
    const int32_t want = expected(l, m, complete, ends);
    ASSERT_EQ(fast.Sample(l).id, want) << "trial " << trial;
    ASSERT_EQ(copied.Sample(l).id, want) << "trial " << trial;
    ++checked;
  }
  EXPECT_EQ(checked, 400);
}

TEST(SamplerTest, LogprobsOnALargeVocabularyMatchDoubleLogSoftmax) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0, 3);
  std::vector<float> logits(151936);
  for (auto& v : logits) v = nd(rng);
  double mx = *std::max_element(logits.begin(), logits.end()), z = 0;
  for (float v : logits) z += std::exp(v - mx);
  const double lse = mx + std::log(z);
  SamplingOptions o;
  o.top_p = 0.9f;
  o.seed = 1;
  o.top_logprobs = 20;
  Sampler s(o, {}, {});
  for (int i = 0; i < 20; ++i) {
    const GeneratedToken t = s.Sample(logits);
    EXPECT_NEAR(t.logprob, logits[t.id] - lse, 1e-5);
    ASSERT_EQ(t.top_logprobs.size(), 20u);
    for (size_t k = 0; k < 20; ++k) EXPECT_NEAR(t.top_logprobs[k].second, logits[t.top_logprobs[k].first] - lse, 1e-5);
    for (size_t k = 1; k < 20; ++k) EXPECT_GE(t.top_logprobs[k - 1].second, t.top_logprobs[k].second);
  }
}

TEST(SamplerTest, SameSeedSameTokensAndSampleIndexGivesAnotherStream) {
  SamplingOptions o;
  o.seed = 42;
  Sampler a(o, {}, {}), b(o, {}, {});
  o.sample_index = 1;
  Sampler c(o, {}, {});
  std::vector<int32_t> ta, tb, tc;
  for (int i = 0; i < 64; ++i) {
    ta.push_back(a.Sample(kLogits).id);
    tb.push_back(b.Sample(kLogits).id);
    tc.push_back(c.Sample(kLogits).id);
  }
  EXPECT_EQ(ta, tb);
  EXPECT_NE(ta, tc);
}

TEST(SamplerTest, PenaltiesBiasAndMinTokens) {
  const std::vector<float> two = {1.0f, 0.9f, -5.0f};
  SamplingOptions o;
  o.temperature = 0;
  o.presence_penalty = 0.5f;
  Sampler presence(o, {}, {});
  EXPECT_EQ(presence.Sample(two).id, 0);
  EXPECT_EQ(presence.Sample(two).id, 1);  // 1.0 - 0.5 < 0.9
  o = {};
  o.temperature = 0;
  o.frequency_penalty = 0.06f;
  Sampler freq(o, {}, {});
  EXPECT_EQ(freq.Sample(two).id, 0);  // 1.0
  EXPECT_EQ(freq.Sample(two).id, 0);  // 0.94
  EXPECT_EQ(freq.Sample(two).id, 1);  // 0.88 < 0.9
  o = {};
  o.temperature = 0;
  o.repetition_penalty = 1.2f;
  Sampler rep(o, /*prompt=*/{0}, {});
  EXPECT_EQ(rep.Sample(two).id, 1);  // 1.0 / 1.2 < 0.9
  o = {};
  o.temperature = 0;
  o.logit_bias = {{2, 10.0f}};
  Sampler bias(o, {}, {});
  EXPECT_EQ(bias.Sample(two).id, 2);
  o = {};
  o.temperature = 0;
  o.min_tokens = 2;
  Sampler min_tokens(o, {}, /*end_ids=*/{0});
  EXPECT_EQ(min_tokens.Sample(two).id, 1);
  EXPECT_EQ(min_tokens.Sample(two).id, 1);
  EXPECT_EQ(min_tokens.Sample(two).id, 0);  // end token allowed from now on
}

TEST(SamplerTest, ValidationNamesTheFieldAndRange) {
  auto msg = [](SamplingOptions o) { return std::string(ValidateSamplingOptions(o, 100).message()); };
  SamplingOptions o;
  EXPECT_TRUE(ValidateSamplingOptions(o, 100).ok());
  o.temperature = NAN;
  EXPECT_THAT(msg(o), HasSubstr("temperature"));
  o = {};
  o.top_p = 0;
  EXPECT_THAT(msg(o), HasSubstr("top_p: must be in (0, 1]"));
  o = {};
  o.top_k = 101;
  EXPECT_THAT(msg(o), HasSubstr("top_k"));
  o = {};
  o.min_p = 1.5f;
  EXPECT_THAT(msg(o), HasSubstr("min_p"));
  o = {};
  o.typical_p = -0.1f;
  EXPECT_THAT(msg(o), HasSubstr("typical_p"));
  o = {};
  o.repetition_penalty = 0;
  EXPECT_THAT(msg(o), HasSubstr("repetition_penalty"));
  o = {};
  o.presence_penalty = 3;
  EXPECT_THAT(msg(o), HasSubstr("presence_penalty"));
  o = {};
  o.frequency_penalty = -2.5f;
  EXPECT_THAT(msg(o), HasSubstr("frequency_penalty"));
  o = {};
  o.logit_bias = {{100, 1.0f}};
  EXPECT_THAT(msg(o), HasSubstr("logit_bias: token id 100"));
  o = {};
  o.top_logprobs = 21;
  EXPECT_THAT(msg(o), HasSubstr("logprobs"));
}

void CheckDoubleReferences() {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0, 4);
  for (int64_t n : {1, 15, 16, 17, 1000, 151936}) {
    std::vector<float> x(n);
    for (auto& v : x) v = nd(rng);
    const float mx = *std::max_element(x.begin(), x.end());
    EXPECT_EQ(MaxValue(x.data(), n), mx);
    double ref = 0;
    for (float v : x) ref += std::exp((static_cast<double>(v) - mx) * 0.5);
    EXPECT_NEAR(SumExp(x.data(), n, mx, 0.5f), ref, ref * 1e-6);
    std::vector<int32_t> ids(n);
    const int64_t k = IndicesAbove(x.data(), n, 1.0f, ids.data());
    std::vector<int32_t> want;
    for (int64_t i = 0; i < n; ++i)
      if (x[i] > 1.0f) want.push_back(static_cast<int32_t>(i));
    ids.resize(k);
    EXPECT_EQ(ids, want);
  }
}

// The top-p passes against their scalar definitions, on lengths around the
// vector width and with -0, ties and -inf.
void CheckTopPPasses() {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0, 3);
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t n : {0, 1, 15, 16, 17, 31, 32, 33, 1000, 151936}) {
    std::vector<float> x(n);
    for (auto& v : x) {
      v = nd(rng);
      if (rng() % 7 == 0) v = std::round(v);  // ties
      if (rng() % 50 == 0) v = -0.0f;
      if (rng() % 40 == 0) v = -inf;
    }
    // SelectAbove.
    std::vector<int32_t> ids(n);
    std::vector<float> vals(n);
    float lo = 0, hi = 0;
    const int64_t k = SelectAbove(x.data(), n, 0.5f, ids.data(), vals.data(), &lo, &hi);
    std::vector<int32_t> want_ids;
    std::vector<float> want_vals;
    float want_lo = inf, want_hi = -inf;
    for (int64_t i = 0; i < n; ++i) {
      if (x[i] > 0.5f) {
        want_ids.push_back(static_cast<int32_t>(i));
        want_vals.push_back(x[i]);
        want_lo = std::min(want_lo, x[i]);
        want_hi = std::max(want_hi, x[i]);
      }
    }
    ids.resize(k);
    vals.resize(k);
    EXPECT_EQ(ids, want_ids) << n;
    EXPECT_EQ(vals, want_vals) << n;
    EXPECT_EQ(lo, want_lo) << n;
    EXPECT_EQ(hi, want_hi) << n;
    // ExpShiftedWide is ExpShifted widened, element by element.
    std::vector<float> finite = x;
    for (auto& v : finite) v = v == -inf ? -100.0f : v;
    std::vector<float> narrow(n);
    std::vector<double> wide(n);
    ExpShifted(finite.data(), n, 12.0f, 0.7f, narrow.data());
    ExpShiftedWide(finite.data(), n, 12.0f, 0.7f, wide.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(wide[i], static_cast<double>(narrow[i])) << n << " " << i;
    // SumAnyOrder: within the any-order bound of the in-order sum.
    const double in_order = std::accumulate(wide.begin(), wide.end(), 0.0);
    EXPECT_NEAR(SumAnyOrder(wide.data(), n), in_order, 2.0 * (n + 1) * 2.3e-16 * in_order) << n;
    // BucketIndices.
    const float top_v = n > 0 ? *std::max_element(x.begin(), x.end()) : 0.0f;
    std::vector<uint16_t> buckets(n);
    BucketIndices(x.data(), n, top_v, 2047.0f / 20.0f, 2047, buckets.data());
    for (int64_t i = 0; i < n; ++i) {
      const float b = x[i] == -inf ? 2047.0f : (top_v - x[i]) * (2047.0f / 20.0f);
      ASSERT_EQ(buckets[i], static_cast<uint16_t>(static_cast<int>(b < 2047.0f ? b : 2047.0f))) << n << " " << i;
    }
    // IndicesEqual.
    for (uint16_t value : {uint16_t{0}, uint16_t{40}, uint16_t{2047}}) {
      std::vector<int32_t> at(n);
      const int64_t m = IndicesEqual(buckets.data(), n, value, at.data());
      std::vector<int32_t> want;
      for (int64_t i = 0; i < n; ++i)
        if (buckets[i] == value) want.push_back(static_cast<int32_t>(i));
      at.resize(m);
      EXPECT_EQ(at, want) << n << " " << value;
    }
    // KeepThroughLogitOrder, cut at a few (logit, id) points incl. ties and -0.
    for (int trial = 0; trial < 4 && n > 0; ++trial) {
      const int64_t at = static_cast<int64_t>(rng() % n);
      const float cut = trial == 3 ? 0.0f : x[at];
      const int32_t cut_id = static_cast<int32_t>(at);
      std::vector<int32_t> kid(n);
      std::iota(kid.begin(), kid.end(), 0);
      std::vector<double> kw(n);
      for (int64_t i = 0; i < n; ++i) kw[i] = 0.5 + static_cast<double>(i);
      std::vector<int32_t> want_kid;
      std::vector<double> want_kw;
      for (int64_t i = 0; i < n; ++i) {
        // (logit desc, id asc): x[i] before cut, or equal (-0 == +0) and id not after.
        if (x[i] > cut || (x[i] == cut && i <= cut_id)) {
          want_kid.push_back(static_cast<int32_t>(i));
          want_kw.push_back(kw[i]);
        }
      }
      const int64_t kept = KeepThroughLogitOrder(x.data(), kid.data(), kw.data(), n, cut, cut_id);
      kid.resize(kept);
      kw.resize(kept);
      EXPECT_EQ(kid, want_kid) << n << " " << trial;
      EXPECT_EQ(kw, want_kw) << n << " " << trial;
    }
  }
}

// Each check on both paths: AVX-512 where this CPU has it, and the portable
// one (which a CPU with AVX-512 would otherwise never run).
template <typename Check>
void OnEveryPath(const Check& check) {
  for (bool avx512 : {true, false}) {
    if (!SetVectorOpsAvx512ForTesting(avx512)) continue;  // no AVX-512 here: the portable path is the only one
    SCOPED_TRACE(avx512 ? "AVX-512 path" : "portable path");
    check();
  }
  SetVectorOpsAvx512ForTesting(true);  // back to the default (a no-op without AVX-512)
}

TEST(VectorOpsTest, MatchDoubleReferences) { OnEveryPath(CheckDoubleReferences); }

TEST(VectorOpsTest, TopPPassesMatchScalarDefinitions) { OnEveryPath(CheckTopPPasses); }

}  // namespace
}  // namespace moe
