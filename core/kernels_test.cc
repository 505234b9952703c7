#include "core/kernels.h"

#include <algorithm>
#include <numeric>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/attention.h"
#include "core/thread_pool.h"
#include "gtest/gtest.h"

namespace moe {
namespace {

struct Matrix {
  DType dtype;
  int64_t rows, cols;
  std::vector<uint16_t> half;  // bf16 / f16 storage
  std::vector<float> f32;      // f32 storage
  std::vector<double> exact;   // the values the storage holds, as doubles

  WeightView view() const {
    return {dtype == DType::kF32 ? static_cast<const void*>(f32.data()) : half.data(), dtype, rows,
            cols};
  }
};

Matrix RandomMatrix(DType dt, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  Matrix m{dt, rows, cols, {}, {}, {}};
  for (int64_t i = 0; i < rows * cols; ++i) {
    const float v = u(rng);
    if (dt == DType::kF32) {
      m.f32.push_back(v);
      m.exact.push_back(v);
    } else if (dt == DType::kBF16) {
      m.half.push_back(F32ToBf16(v));
      m.exact.push_back(Bf16ToF32(m.half.back()));
    } else {
      m.half.push_back(F32ToF16(v));
      m.exact.push_back(F16ToF32(m.half.back()));
    }
  }
  return m;
}

std::vector<float> RandomRows(int64_t m, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  std::vector<float> x(m * k);
  for (auto& v : x) v = u(rng);
  return x;
}

std::vector<std::string> AvailableIsas() {
  std::vector<std::string> out;
  for (const char* isa : {"avx512", "avx2", "portable"})
    if (SetKernelIsaForTesting(isa)) out.push_back(isa);
  SetKernelIsaForTesting(out.front());
  return out;
}

class MatMulTest : public ::testing::TestWithParam<DType> {};

TEST_P(MatMulTest, MatchesDoublePrecisionLoopOnAwkwardSizes) {
  const DType dt = GetParam();
  ThreadPool pool(3);
  for (const std::string& isa : AvailableIsas()) {
    ASSERT_TRUE(SetKernelIsaForTesting(isa));
    for (int64_t m : {1, 3, 17, 127}) {
      for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {5, 7}, {33, 45}, {70, 129}, {19, 256}}) {
        const Matrix w = RandomMatrix(dt, n, k, static_cast<uint32_t>(m * 1000 + n * 7 + k));
        const std::vector<float> x = RandomRows(m, k, static_cast<uint32_t>(k + m));
        std::vector<float> y(m * n, NAN);
        MatMul(x.data(), m, k, w.view(), y.data(), n, &pool);
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < n; ++j) {
            double ref = 0, mag = 0;
            for (int64_t l = 0; l < k; ++l) {
              ref += static_cast<double>(x[i * k + l]) * w.exact[j * k + l];
              mag += std::fabs(static_cast<double>(x[i * k + l]) * w.exact[j * k + l]);
            }
            ASSERT_NEAR(y[i * n + j], ref, 1e-6 * mag + 1e-6)
                << isa << " m=" << m << " n=" << n << " k=" << k << " at " << i << "," << j;
          }
        }
      }
    }
  }
  SetKernelIsaForTesting(AvailableIsas().front());
}

TEST_P(MatMulTest, RowResultDoesNotDependOnBatchThreadsOrIsa) {
  const DType dt = GetParam();
  const int64_t n = 61, k = 300;
  const Matrix w = RandomMatrix(dt, n, k, 42);
  const std::vector<float> x = RandomRows(127, k, 7);
  ThreadPool pool1(1), pool3(3);
  std::vector<float> reference;
  for (const std::string& isa : AvailableIsas()) {
    ASSERT_TRUE(SetKernelIsaForTesting(isa));
    for (int64_t m : {1, 3, 17, 127}) {
      for (ThreadPool* pool : {&pool1, &pool3}) {
        std::vector<float> y(m * n);
        MatMul(x.data(), m, k, w.view(), y.data(), n, pool);
        // Row 0 must be bitwise the same whatever else is in the batch.
        std::vector<float> row0(y.begin(), y.begin() + n);
        if (reference.empty()) reference = row0;
        ASSERT_EQ(0, std::memcmp(reference.data(), row0.data(), n * sizeof(float)))
            << isa << " m=" << m << " threads=" << pool->num_threads();
      }
    }
  }
  SetKernelIsaForTesting(AvailableIsas().front());
}

TEST_P(MatMulTest, ManyProductsInOneLoopAreBitwiseTheSingleProducts) {
  const DType dt = GetParam();
  // Awkward sizes, one product too small to split, one with no rows.
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{61, 300}, {1000, 64}, {5, 7}, {300, 257}, {48, 96}};
  const std::vector<int64_t> batch = {1, 3, 17, 0, 40};
  std::vector<Matrix> w;
  std::vector<std::vector<float>> x;
  for (size_t i = 0; i < shapes.size(); ++i) {
    w.push_back(RandomMatrix(dt, shapes[i].first, shapes[i].second, static_cast<uint32_t>(11 + i)));
    x.push_back(RandomRows(std::max<int64_t>(batch[i], 1), shapes[i].second, static_cast<uint32_t>(5 + i)));
  }
  ThreadPool pool1(1), pool2(2), pool3(3);
  for (const std::string& isa : AvailableIsas()) {
    ASSERT_TRUE(SetKernelIsaForTesting(isa));
    for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &pool1, &pool2, &pool3}) {
      std::vector<std::vector<float>> want, got;
      std::vector<MatMulTask> tasks;
      for (size_t i = 0; i < shapes.size(); ++i) {
        const int64_t m = batch[i], n = shapes[i].first, k = shapes[i].second;
        want.emplace_back(std::max<int64_t>(m, 1) * n, -7.0f);
        got.emplace_back(std::max<int64_t>(m, 1) * n, -7.0f);
        MatMul(x[i].data(), m, k, w[i].view(), want.back().data(), n, nullptr);
      }
      for (size_t i = 0; i < shapes.size(); ++i) {
        tasks.push_back({x[i].data(), batch[i], shapes[i].second, w[i].view(), got[i].data(), shapes[i].first});
      }
      MatMuls(tasks.data(), static_cast<int>(tasks.size()), pool);
      for (size_t i = 0; i < shapes.size(); ++i) {
        ASSERT_EQ(0, std::memcmp(want[i].data(), got[i].data(), want[i].size() * sizeof(float)))
            << isa << " product " << i << " threads=" << (pool == nullptr ? 0 : pool->num_threads());
      }
    }
  }
  SetKernelIsaForTesting(AvailableIsas().front());
}

TEST_P(MatMulTest, SeveralSwiGluBlocksAreBitwiseEachAloneAndTheDefinition) {
  const DType dt = GetParam();
  const int64_t h = 256, f = 640;  // large enough to be split into pieces
  const std::vector<int64_t> rows = {1, 4, 1, 23};
  std::vector<Matrix> gate, up, down;
  std::vector<FfnWeights> weights;
  std::vector<std::vector<float>> x;
  for (size_t e = 0; e < rows.size(); ++e) {
    gate.push_back(RandomMatrix(dt, f, h, static_cast<uint32_t>(100 + e)));
    up.push_back(RandomMatrix(dt, f, h, static_cast<uint32_t>(200 + e)));
    down.push_back(RandomMatrix(dt, h, f, static_cast<uint32_t>(300 + e)));
    x.push_back(RandomRows(rows[e], h, static_cast<uint32_t>(400 + e)));
  }
  for (size_t e = 0; e < rows.size(); ++e) weights.push_back({gate[e].view(), down[e].view(), up[e].view()});
  // The definition, one expert and one row at a time, serial.
  std::vector<std::vector<float>> want;
  for (size_t e = 0; e < rows.size(); ++e) {
    want.emplace_back(rows[e] * h);
    for (int64_t r = 0; r < rows[e]; ++r) {
      std::vector<float> g(f), u(f), a(f);
      MatMul(&x[e][r * h], 1, h, gate[e].view(), g.data(), f, nullptr);
      MatMul(&x[e][r * h], 1, h, up[e].view(), u.data(), f, nullptr);
      for (int64_t j = 0; j < f; ++j) a[j] = (g[j] / (1.0f + std::exp(-g[j]))) * u[j];
      MatMul(a.data(), 1, f, down[e].view(), &want[e][r * h], h, nullptr);
    }
  }
  ThreadPool pool2(2), pool3(3);
  for (const std::string& isa : AvailableIsas()) {
    ASSERT_TRUE(SetKernelIsaForTesting(isa));
    for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &pool2, &pool3}) {
      std::vector<std::vector<float>> together(rows.size()), alone(rows.size());
      std::vector<FfnScratch> scratch(rows.size());
      std::vector<FfnTask> tasks;
      for (size_t e = 0; e < rows.size(); ++e) {
        together[e].assign(rows[e] * h, -7.0f);
        alone[e].assign(rows[e] * h, -7.0f);
        tasks.push_back({&weights[e], x[e].data(), rows[e], together[e].data(), &scratch[e]});
      }
      SwiGluFfns(tasks.data(), static_cast<int>(tasks.size()), pool);
      for (size_t e = 0; e < rows.size(); ++e) {
        FfnScratch s;
        SwiGluFfn(weights[e], x[e].data(), rows[e], alone[e].data(), pool, &s);
        const std::string where = isa + " expert " + std::to_string(e) + " threads=" +
                                  std::to_string(pool == nullptr ? 0 : pool->num_threads());
        ASSERT_EQ(0, std::memcmp(want[e].data(), together[e].data(), want[e].size() * sizeof(float))) << where;
        ASSERT_EQ(0, std::memcmp(want[e].data(), alone[e].data(), want[e].size() * sizeof(float))) << where;
      }
    }
  }
  SetKernelIsaForTesting(AvailableIsas().front());
}

INSTANTIATE_TEST_SUITE_P(AllDTypes, MatMulTest,
                         ::testing::Values(DType::kBF16, DType::kF16, DType::kF32),
                         [](const auto& info) { return std::string(DTypeName(info.param)); });

TEST(DotTest, MatchesMatMulBitwise) {
  for (int64_t k : {1, 15, 16, 17, 64, 100}) {
    const std::vector<float> a = RandomRows(1, k, 1), b = RandomRows(1, k, 2);
    float y;
    MatMul(a.data(), 1, k, WeightView{b.data(), DType::kF32, 1, k}, &y, 1, nullptr);
    EXPECT_EQ(y, Dot(a.data(), b.data(), k)) << "k=" << k;
  }
}

TEST(DotRowsTest, EveryPairIsDotBitwiseOnEveryIsa) {
  for (const std::string& isa : AvailableIsas()) {
    ASSERT_TRUE(SetKernelIsaForTesting(isa));
    for (int64_t n : {1, 15, 16, 17, 64, 100}) {
      for (int64_t m : {1, 3, 4, 5, 9, 33}) {
        for (int64_t nq : {1, 2, 4, 7}) {  // 7: more queries than one tile holds
          const int64_t stride = n + 7, ldq = n + 2, ldo = m + 5;
          const std::vector<float> q = RandomRows(nq, ldq, 6), rows = RandomRows(m, stride, 7);
          std::vector<float> out(nq * ldo, -1.0f);
          DotRows(q.data(), ldq, nq, rows.data(), stride, m, n, out.data(), ldo);
          for (int64_t i = 0; i < nq; ++i) {
            for (int64_t j = 0; j < ldo; ++j) {
              if (j >= m) {
                ASSERT_EQ(out[i * ldo + j], -1.0f) << "written past the rows";
                continue;
              }
              ASSERT_EQ(out[i * ldo + j], Dot(q.data() + i * ldq, rows.data() + j * stride, n))
                  << isa << " n=" << n << " m=" << m << " nq=" << nq << " i=" << i << " j=" << j;
            }
          }
        }
      }
    }
  }
  SetKernelIsaForTesting(AvailableIsas().front());
}

// Each element a multiply then an add, rows in order: the same bits on every
// ISA, for any column count and however the rows are split over calls.
TEST(AddScaledRowsTest, BitwiseTheDefinitionOnEveryIsaAndSplit) {
  for (const std::string& isa : AvailableIsas()) {
    ASSERT_TRUE(SetKernelIsaForTesting(isa));
    for (int64_t n : {1, 15, 16, 17, 64, 100, 128, 130, 200}) {
      const int64_t m = 37, stride = n + 3;
      const std::vector<float> rows = RandomRows(m, stride, 3), p = RandomRows(1, m, 4);
      std::vector<float> want(n), start = RandomRows(1, n, 5);
      for (int64_t d = 0; d < n; ++d) {
        volatile float a = start[d];  // one rounding per operation, as the kernels
        for (int64_t j = 0; j < m; ++j) {
          volatile float prod = p[j] * rows[j * stride + d];
          a = a + prod;
        }
        want[d] = a;
      }
      for (int64_t split : {m, int64_t{1}, int64_t{16}}) {
        std::vector<float> acc = start;
        for (int64_t j0 = 0; j0 < m; j0 += split) {
          AddScaledRows(p.data() + j0, m, 1, std::min(split, m - j0), rows.data() + j0 * stride, stride, n,
                        acc.data(), n);
        }
        ASSERT_EQ(acc, want) << isa << " n=" << n << " split=" << split;
      }
    }
  }
  SetKernelIsaForTesting(AvailableIsas().front());
}

// Several queries over the same rows in one call: each query's columns are
// bitwise what it gets alone (1 to 9 queries: every group size of the
// AVX-512 version and more than one group).
TEST(AddScaledRowsTest, SeveralQueriesAreEachAloneBitwiseOnEveryIsa) {
  for (const std::string& isa : AvailableIsas()) {
    ASSERT_TRUE(SetKernelIsaForTesting(isa));
    for (int64_t n : {15, 64, 100, 130}) {
      const int64_t m = 21, stride = n + 3, ldp = m + 2, ldacc = n + 4;
      const std::vector<float> rows = RandomRows(m, stride, 8);
      for (int64_t np = 1; np <= 9; ++np) {
        const std::vector<float> p = RandomRows(np, ldp, 9 + np), start = RandomRows(np, ldacc, 30 + np);
        std::vector<float> together = start;
        AddScaledRows(p.data(), ldp, np, m, rows.data(), stride, n, together.data(), ldacc);
        for (int64_t i = 0; i < np; ++i) {
          std::vector<float> alone(start.begin() + i * ldacc, start.begin() + (i + 1) * ldacc);
          AddScaledRows(p.data() + i * ldp, m, 1, m, rows.data(), stride, n, alone.data(), n);
          for (int64_t d = 0; d < ldacc; ++d) {
            // Columns past n are untouched.
            ASSERT_EQ(0, std::memcmp(&together[i * ldacc + d], &alone[d], sizeof(float)))
                << isa << " n=" << n << " np=" << np << " query " << i << " column " << d;
          }
        }
      }
    }
  }
  SetKernelIsaForTesting(AvailableIsas().front());
}

TEST(RmsNormTest, MatchesDefinition) {
  const int64_t d = 37;
  const std::vector<float> x = RandomRows(3, d, 5);
  const Matrix w = RandomMatrix(DType::kBF16, 1, d, 9);
  std::vector<float> y(3 * d);
  RmsNorm(x.data(), 3, d, w.view(), 1e-5, y.data());
  for (int64_t i = 0; i < 3; ++i) {
    double ss = 0;
    for (int64_t k = 0; k < d; ++k) ss += x[i * d + k] * static_cast<double>(x[i * d + k]);
    const double inv = 1.0 / std::sqrt(ss / d + 1e-5);
    for (int64_t k = 0; k < d; ++k) EXPECT_NEAR(y[i * d + k], x[i * d + k] * inv * w.exact[k], 1e-5);
  }
}

TEST(DTypeTest, HalfConversionsRoundTrip) {
  for (float v : {0.f, -0.f, 1.f, -2.5f, 65504.f, 6.1035e-05f, 5.96e-08f, 3.14159f}) {
    EXPECT_NEAR(F16ToF32(F32ToF16(v)), v, std::fabs(v) * 1e-3 + 1e-7) << v;
    EXPECT_NEAR(Bf16ToF32(F32ToBf16(v)), v, std::fabs(v) * 1e-2) << v;
  }
  EXPECT_TRUE(std::isinf(F16ToF32(F32ToF16(1e6f))));
  EXPECT_TRUE(std::isnan(F16ToF32(F32ToF16(NAN))));
}

// Paged attention: K/V of n positions laid out in blocks of `bs` positions in
// the order of `table`, rows of `stride` floats, the head at column `col`.
struct PagedFixture {
  int64_t hd, n, bs, stride, col;
  std::vector<float> q, k, v;      // [n, hd] contiguous, the truth
  std::vector<float> arena;        // blocks: [K: bs x stride][V: bs x stride] each
  std::vector<int32_t> table;

  PagedFixture(int64_t head_dim, int64_t positions, int64_t block_size, uint32_t seed)
      : hd(head_dim), n(positions), bs(block_size), stride(head_dim * 2 + 3), col(head_dim + 1) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-2.f, 2.f);
    for (int64_t i = 0; i < hd; ++i) q.push_back(u(rng));
    for (int64_t i = 0; i < n * hd; ++i) k.push_back(u(rng));
    for (int64_t i = 0; i < n * hd; ++i) v.push_back(u(rng));
    const int64_t blocks = (n + bs - 1) / bs;
    table.resize(blocks);
    std::iota(table.begin(), table.end(), 0);
    std::shuffle(table.begin(), table.end(), rng);  // not contiguous
    arena.assign(static_cast<size_t>((blocks + 1) * 2 * bs * stride), std::nanf(""));
    for (int64_t p = 0; p < n; ++p) {
      float* row = &arena[static_cast<size_t>(table[p / bs] * 2 * bs * stride + (p % bs) * stride + col)];
      std::copy_n(&k[p * hd], hd, row);
      std::copy_n(&v[p * hd], hd, row + bs * stride);
    }
  }
  PagedKvHead view() const {
    return {arena.data() + col, table.data(), bs, 2 * bs * stride, stride, bs * stride};
  }
  std::vector<float> Run(float scale) const {
    std::vector<float> scores(n), out(hd);
    PagedAttentionHead(q.data(), hd, n, view(), scale, scores.data(), out.data());
    return out;
  }
};

TEST(PagedAttentionTest, MatchesDoublePrecisionSoftmaxAttention) {
  for (int64_t hd : {16, 32, 48, 20}) {  // 20: the tail path (not a multiple of 16)
    for (int64_t n : {1, 7, 40}) {
      SCOPED_TRACE("head_dim " + std::to_string(hd) + ", positions " + std::to_string(n));
      const PagedFixture f(hd, n, 4, static_cast<uint32_t>(hd * 100 + n));
      const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
      std::vector<double> s(n);
      double mx = -1e300, z = 0;
      for (int64_t p = 0; p < n; ++p) {
        double dot = 0;
        for (int64_t d = 0; d < hd; ++d) dot += static_cast<double>(f.q[d]) * f.k[p * hd + d];
        s[p] = dot * scale;
        mx = std::max(mx, s[p]);
      }
      for (int64_t p = 0; p < n; ++p) z += s[p] = std::exp(s[p] - mx);
      const std::vector<float> got = f.Run(static_cast<float>(scale));
      for (int64_t d = 0; d < hd; ++d) {
        double want = 0;
        for (int64_t p = 0; p < n; ++p) want += s[p] / z * f.v[p * hd + d];
        EXPECT_NEAR(got[d], want, 2e-5 * (1 + std::abs(want))) << "dim " << d;
      }
    }
  }
}

TEST(PagedAttentionTest, BitwiseTheSameWhateverTheBlockSizeLayoutOrIsa) {
  for (int64_t hd : {32, 48, 20}) {
    const PagedFixture contiguous(hd, 45, 64, 7);  // one block holds everything
    ASSERT_TRUE(SetKernelIsaForTesting(AvailableIsas().front()));
    const std::vector<float> ref = contiguous.Run(0.125f);
    for (const std::string& isa : AvailableIsas()) {
      ASSERT_TRUE(SetKernelIsaForTesting(isa));
      for (int64_t bs : {1, 3, 16}) {
        PagedFixture paged(hd, 45, bs, 7);
        // Same values as the contiguous fixture (the generator ran the same way).
        ASSERT_EQ(paged.k, contiguous.k);
        const std::vector<float> got = paged.Run(0.125f);
        EXPECT_EQ(0, std::memcmp(got.data(), ref.data(), ref.size() * sizeof(float)))
            << "head_dim " << hd << ", block size " << bs << ", " << isa;
      }
    }
    SetKernelIsaForTesting(AvailableIsas().front());
  }
}

// Consecutive tokens of a sequence and the query heads of a grouped-query
// group in one call: each query is bitwise what it gives alone (its own
// causal count), on every ISA and block size.
TEST(PagedAttentionTest, ABlockOfTokensAndHeadsIsEachQueryAloneBitwise) {
  for (const std::string& isa : AvailableIsas()) {
    ASSERT_TRUE(SetKernelIsaForTesting(isa));
    for (int64_t hd : {64, 20}) {
      for (int64_t bs : {1, 16}) {
        for (int64_t tokens : {1, 3, 4}) {
          for (int64_t heads : {1, 2, 4, 5}) {
            const int64_t positions = 37, n = positions - tokens + 1;  // the first token's count
            const PagedFixture f(hd, positions, bs, 11);
            const int64_t nq = tokens * heads;
            const std::vector<float> q = RandomRows(nq, hd, static_cast<uint32_t>(12 + nq));
            std::vector<float> scores(nq * positions), out(nq * hd);
            PagedAttention(q.data(), tokens, heads, hd, n, f.view(), 0.125f, scores.data(), out.data());
            for (int64_t i = 0; i < nq; ++i) {
              const int64_t count = n + i / heads;
              std::vector<float> one_scores(count), one(hd);
              PagedAttentionHead(q.data() + i * hd, hd, count, f.view(), 0.125f, one_scores.data(), one.data());
              EXPECT_EQ(0, std::memcmp(&out[i * hd], one.data(), hd * sizeof(float)))
                  << isa << " head_dim " << hd << ", block size " << bs << ", " << tokens << " tokens x " << heads
                  << " heads, query " << i;
            }
          }
        }
      }
    }
  }
  SetKernelIsaForTesting(AvailableIsas().front());
}

}  // namespace
}  // namespace moe
