#include "experts/nccl_plan.h"

#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe::nccl {
namespace {

using ::testing::HasSubstr;

// A random dispatch plan: per worker, rows per local expert (empty workers,
// zero-row experts, one row, the maximum all appear).
struct Plan {
  int64_t hidden = 0;
  std::vector<std::vector<uint32_t>> rows;  // [worker][local expert]
};

Plan RandomPlan(std::mt19937_64& rng, uint32_t max_rows_per_expert) {
  Plan p;
  p.hidden = std::vector<int64_t>{1, 7, 64, 4096}[rng() % 4];
  const int workers = 1 + static_cast<int>(rng() % 8);
  for (int w = 0; w < workers; ++w) {
    const int experts = static_cast<int>(rng() % 9);  // 0: a worker holding nothing of this layer
    std::vector<uint32_t> r;
    for (int e = 0; e < experts; ++e) {
      switch (rng() % 4) {
        case 0: r.push_back(0); break;
        case 1: r.push_back(1); break;
        case 2: r.push_back(max_rows_per_expert); break;
        default: r.push_back(static_cast<uint32_t>(rng() % (max_rows_per_expert + 1))); break;
      }
    }
    p.rows.push_back(r);
  }
  return p;
}

// Both sides' operations for `plan`, the workers' derived from the header
// bytes the router would send them.
std::map<int, std::vector<P2pOp>> OpsOf(const Plan& plan, uint64_t step) {
  std::vector<int64_t> rows_of_worker;
  std::map<int, std::vector<P2pOp>> ops;
  for (size_t w = 0; w < plan.rows.size(); ++w) {
    ExchangeHeader h;
    h.step = step;
    h.layer = 3;
    h.rows = plan.rows[w];
    rows_of_worker.push_back(h.total_rows());
    auto bytes = EncodeHeader(h);
    EXPECT_TRUE(bytes.ok());
    auto back = DecodeHeader(*bytes);
    EXPECT_TRUE(back.ok()) << back.status();
    ops[static_cast<int>(w) + 1] = WorkerOps(back->total_rows(), plan.hidden);
  }
  ops[0] = RouterOps(rows_of_worker, plan.hidden);
  return ops;
}

TEST(NcclPlanTest, RouterAndWorkerSchedulesPairForRandomPlans) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 2000; ++i) {
    const Plan plan = RandomPlan(rng, i % 2 == 0 ? 4096 : 3);
    const auto ops = OpsOf(plan, i);
    ASSERT_TRUE(CheckPairing(ops).ok()) << CheckPairing(ops) << " (plan " << i << ")";
    // Workers without rows are skipped symmetrically: a header and nothing else.
    for (size_t w = 0; w < plan.rows.size(); ++w) {
      int64_t rows = 0;
      for (uint32_t r : plan.rows[w]) rows += r;
      EXPECT_EQ(ops.at(static_cast<int>(w) + 1).size(), rows > 0 ? 3u : 1u);
    }
  }
}

TEST(NcclPlanTest, EveryMismatchIsFoundAndNamed) {
  std::mt19937_64 rng(7);
  int checked = 0;
  for (int i = 0; i < 500; ++i) {
    const Plan plan = RandomPlan(rng, 64);
    auto ops = OpsOf(plan, i);
    // Pick an operation of some rank and break it one way or another.
    std::vector<int> ranks;
    for (const auto& [rank, list] : ops) {
      if (!list.empty()) ranks.push_back(rank);
    }
    const int rank = ranks[rng() % ranks.size()];
    std::vector<P2pOp>& list = ops[rank];
    const size_t at = rng() % list.size();
    switch (rng() % 4) {
      case 0: list[at].count += 1; break;  // one element off
      case 1: list[at].type = list[at].type == DataType::kUint8 ? DataType::kFloat32 : DataType::kUint8; break;
      case 2: list.erase(list.begin() + static_cast<std::ptrdiff_t>(at)); break;  // a missing operation
      default: list.push_back(list[at]); break;  // one too many
    }
    const absl::Status st = CheckPairing(ops);
    ASSERT_FALSE(st.ok()) << "plan " << i;
    EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(st.message(), HasSubstr("rank "));
    ++checked;
  }
  EXPECT_EQ(checked, 500);
}

TEST(NcclPlanTest, TwoSendsInTheWrongOrderDoNotPair) {
  // Rows before the header: same counts in total, wrong order.
  std::map<int, std::vector<P2pOp>> ops;
  ops[0] = RouterOps(std::vector<int64_t>{5}, 8);
  std::swap(ops[0][0], ops[0][1]);
  ops[1] = WorkerOps(5, 8);
  EXPECT_THAT(CheckPairing(ops).message(), HasSubstr("rank 0 -> rank 1, message 0"));
}

TEST(NcclPlanTest, OneRankSendingToItselfPairsInEachPhase) {
  for (int64_t rows : {0, 1, 17, 4096}) {
    const std::vector<P2pOp> self = SelfOps(rows, 4096);
    EXPECT_TRUE(CheckPairing({{0, self}}).ok()) << rows;
    for (const P2pOp& op : self) EXPECT_EQ(op.peer, 0);
    // Within each phase, the send is posted together with its receive.
    for (size_t i = 1; i < self.size(); ++i) EXPECT_GE(self[i].phase, self[i - 1].phase);
    EXPECT_EQ(self.size(), rows > 0 ? 6u : 2u);
  }
}

TEST(NcclHeaderTest, RoundTripsEveryField) {
  ExchangeHeader h;
  h.kind = HeaderKind::kExchange;
  h.generation = 0x0102030405060708ull;
  h.step = 0xfffffffffffffff0ull;
  h.layer = 31;
  for (uint32_t i = 0; i < static_cast<uint32_t>(kMaxHeaderExperts); ++i) h.rows.push_back(i * 7919u);
  auto bytes = EncodeHeader(h);
  ASSERT_TRUE(bytes.ok());
  auto back = DecodeHeader(*bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->kind, h.kind);
  EXPECT_EQ(back->generation, h.generation);
  EXPECT_EQ(back->step, h.step);
  EXPECT_EQ(back->layer, h.layer);
  EXPECT_EQ(back->rows, h.rows);
}

TEST(NcclHeaderTest, TooManyExpertsAreRefusedWhenEncoding) {
  ExchangeHeader h;
  h.rows.assign(kMaxHeaderExperts + 1, 1);
  EXPECT_EQ(EncodeHeader(h).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(NcclHeaderTest, AnyFlippedBitOrWrongSizeIsDataLoss) {
  ExchangeHeader h;
  h.step = 9;
  h.layer = 2;
  h.rows = {3, 0, 5};
  auto bytes = EncodeHeader(h);
  ASSERT_TRUE(bytes.ok());
  for (int64_t at = 0; at < kHeaderBytes; at += 13) {
    HeaderBytes b = *bytes;
    b[at] ^= 0x10;
    const auto decoded = DecodeHeader(b);
    EXPECT_FALSE(decoded.ok()) << "byte " << at;
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss) << decoded.status();
  }
  EXPECT_THAT(DecodeHeader(absl::MakeConstSpan(bytes->data(), kHeaderBytes - 1)).status().message(),
              HasSubstr("bytes, expected"));
}

TEST(NcclHeaderTest, TheWorkerDetectsADesync) {
  HeaderChecker check({{0, 2}, {1, 2}, {3, 0}}, /*generation=*/4, /*max_rows=*/100);
  auto header = [](uint64_t step, uint32_t layer, std::vector<uint32_t> rows, uint64_t generation = 4) {
    ExchangeHeader h;
    h.generation = generation;
    h.step = step;
    h.layer = layer;
    h.rows = std::move(rows);
    return h;
  };
  EXPECT_TRUE(check.Check(header(1, 0, {1, 2})).ok());
  EXPECT_TRUE(check.Check(header(1, 1, {0, 0})).ok());
  EXPECT_TRUE(check.Check(header(1, 3, {})).ok());  // a layer it holds nothing of: a header, no rows
  // The same layer again, an earlier step, another generation, a wrong entry
  // count, too many rows: each a desync, named.
  EXPECT_THAT(check.Check(header(1, 3, {})).message(), HasSubstr("desync: header for step 1 layer 3 after step 1"));
  EXPECT_THAT(check.Check(header(0, 0, {1, 1})).message(), HasSubstr("desync"));
  EXPECT_THAT(check.Check(header(2, 0, {1, 1}, 5)).message(), HasSubstr("generation 5"));
  EXPECT_THAT(check.Check(header(2, 0, {1})).message(), HasSubstr("has 1 local experts, this worker holds 2"));
  EXPECT_THAT(check.Check(header(2, 0, {60, 41})).message(), HasSubstr("101 rows, at most 100"));
  EXPECT_EQ(check.Check(header(2, 0, {1})).code(), absl::StatusCode::kInternal);
  // After refusals the next good header still passes.
  EXPECT_TRUE(check.Check(header(2, 0, {50, 50})).ok());
}

}  // namespace
}  // namespace moe::nccl
