// The GPU path's host-side pieces, checked on the CPU: the GEMM arguments
// (executed with column-major semantics) against the row-major definition,
// and the element math shared with the CUDA kernels against double precision.
#include "experts/expert_gemm.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "experts/cuda_expert_runner.h"
#include "experts/ffn_math.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe {
namespace {

TEST(ExpertGemmTest, ColumnMajorArgumentsComputeTheRowMajorExpertFfn) {
  const int64_t h = 24, f = 10;
  const int slots = 3;
  // Groups as the runner makes them: awkward sizes, one expert with no rows.
  const std::vector<ExpertGroup> groups = {{2, 0, 5}, {0, 5, 1}, {1, 6, 0}, {1, 6, 17}};
  int64_t rows = 0;
  for (const ExpertGroup& g : groups) rows += g.rows;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> w13(slots * 2 * f * h), w2(slots * h * f), x(rows * h);
  for (auto* v : {&w13, &w2, &x}) {
    for (float& e : *v) e = u(rng);
  }
  const ExpertGemms gemms = BuildExpertGemms(groups, h, f);
  ASSERT_EQ(gemms.gate_up.size(), 3u);  // the empty group gets none
  std::vector<float> gu(rows * 2 * f, std::nanf("")), act(rows * f), y(rows * h, std::nanf(""));
  for (const ColumnMajorGemm& g : gemms.gate_up) ReferenceColumnMajorGemm(g, w13.data(), x.data(), gu.data());
  for (int64_t i = 0; i < rows * f; ++i) {
    const int64_t r = i / f, j = i % f;
    act[i] = SiluMul(gu[r * 2 * f + j], gu[r * 2 * f + f + j]);
  }
  for (const ColumnMajorGemm& g : gemms.down) ReferenceColumnMajorGemm(g, w2.data(), act.data(), y.data());

  for (const ExpertGroup& g : groups) {
    for (int64_t r = g.row_begin; r < g.row_begin + g.rows; ++r) {
      // Row-major definition: gate/up rows of W13 are [2f, h], W2 is [h, f].
      std::vector<double> a(f);
      for (int64_t j = 0; j < f; ++j) {
        double gate = 0, up = 0;
        for (int64_t k = 0; k < h; ++k) {
          gate += static_cast<double>(x[r * h + k]) * w13[(g.weight_slot * 2 * f + j) * h + k];
          up += static_cast<double>(x[r * h + k]) * w13[(g.weight_slot * 2 * f + f + j) * h + k];
        }
        EXPECT_NEAR(gu[r * 2 * f + j], gate, 1e-5) << "row " << r;
        EXPECT_NEAR(gu[r * 2 * f + f + j], up, 1e-5) << "row " << r;
        a[j] = gate / (1 + std::exp(-gate)) * up;
      }
      for (int64_t o = 0; o < h; ++o) {
        double want = 0;
        for (int64_t j = 0; j < f; ++j) want += a[j] * w2[(g.weight_slot * h + o) * f + j];
        EXPECT_NEAR(y[r * h + o], want, 1e-4) << "row " << r << " out " << o;
      }
    }
  }
}

TEST(FfnMathTest, SiluMulMatchesDoublePrecision) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-30, 30);
  for (int i = 0; i < 100000; ++i) {
    const float g = u(rng), up = u(rng) / 7;
    const double want = static_cast<double>(g) / (1 + std::exp(-static_cast<double>(g))) * up;
    EXPECT_NEAR(SiluMul(g, up), want, 4e-7 * std::abs(want) + 1e-30) << g << " " << up;
  }
  EXPECT_EQ(SiluMul(0.0f, 5.0f), 0.0f);
  EXPECT_TRUE(std::isfinite(SiluMul(-100.0f, 1.0f)));
}

TEST(FfnMathTest, Bf16RoundingIsNearestEvenLikeTheCheckpointConversion) {
  std::mt19937 rng(9);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    uint32_t b = bits(rng);
    float f;
    std::memcpy(&f, &b, sizeof(f));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(Bf16ToF32Exact(F32ToBf16Rne(f))));
      continue;
    }
    EXPECT_EQ(F32ToBf16Rne(f), F32ToBf16(f)) << f;
    // The bf16 value is the nearest: no other bf16 is closer.
    const double got = Bf16ToF32Exact(F32ToBf16Rne(f));
    if (std::isfinite(got)) {
      const double up = Bf16ToF32Exact(static_cast<uint16_t>(F32ToBf16Rne(f) + 1));
      const double dn = Bf16ToF32Exact(static_cast<uint16_t>(F32ToBf16Rne(f) - 1));
      if (std::isfinite(up) && std::isfinite(dn)) {
        EXPECT_LE(std::abs(got - f), std::abs(up - f));
        EXPECT_LE(std::abs(got - f), std::abs(dn - f));
      }
    }
    EXPECT_EQ(Bf16ToF32Exact(static_cast<uint16_t>(b >> 16)), Bf16ToF32(static_cast<uint16_t>(b >> 16)));
  }
}

TEST(FfnMathTest, F16RoundingMatchesTheCheckpointConversion) {
  std::mt19937 rng(12);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    const uint32_t b = bits(rng) >> (i % 3 == 0 ? 3 : 0);  // also many small magnitudes (subnormals)
    float f;
    std::memcpy(&f, &b, sizeof(f));
    if (std::isnan(f)) continue;
    EXPECT_EQ(F32ToF16Rne(f), F32ToF16(f)) << f;
  }
  for (float f : {0.0f, -0.0f, 65504.0f, 65520.0f, 1e-8f, -3e-5f, 6.1e-5f}) EXPECT_EQ(F32ToF16Rne(f), F32ToF16(f)) << f;
}

TEST(ExpertDeviceTest, ParsesCpuAndCudaOrdinals) {
  EXPECT_FALSE(ParseExpertDevice("cpu")->cuda);
  absl::StatusOr<ExpertDevice> d = ParseExpertDevice("cuda:3");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->cuda);
  EXPECT_EQ(d->ordinal, 3);
  EXPECT_EQ(d->ToString(), "cuda:3");
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:256", "cuda:0001", "CPU", ""}) {
    absl::StatusOr<ExpertDevice> b = ParseExpertDevice(bad);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_THAT(std::string(b.status().message()), ::testing::HasSubstr("expected cpu or cuda:N"));
  }
}

}  // namespace
}  // namespace moe
