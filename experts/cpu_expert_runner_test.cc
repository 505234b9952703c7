#include "experts/cpu_expert_runner.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "experts/local_expert_backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe {
namespace {

class CpuExpertRunnerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto ckpt = Checkpoint::Open(std::string(MOE_TESTDATA_DIR) + "/tiny-qwen3_moe");
    ASSERT_TRUE(ckpt.ok()) << ckpt.status();
    checkpoint_ = std::move(ckpt).value().release();
    auto shard = ExpertShard::Load(*checkpoint_, {});
    ASSERT_TRUE(shard.ok()) << shard.status();
    shard_ = std::move(shard).value().release();
  }
  static std::vector<float> Rows(int64_t n, int salt) {
    const int64_t h = checkpoint_->config().hidden_size;
    std::vector<float> x(n * h);
    for (int64_t i = 0; i < n * h; ++i) x[i] = static_cast<float>(((i * 7919 + salt * 131) % 2001) - 1000) / 700.0f;
    return x;
  }
  // Row r through its expert alone, with no pool: the reference.
  static std::vector<float> OneByOne(int layer, const std::vector<float>& x, const std::vector<uint32_t>& ids,
                                     int64_t repeat) {
    const int64_t h = checkpoint_->config().hidden_size;
    std::vector<float> out(ids.size() * h);
    FfnScratch scratch;
    for (size_t r = 0; r < ids.size(); ++r) {
      EXPECT_TRUE(shard_->Run(layer, static_cast<int>(ids[r]), &x[(r / repeat) * h], 1, &out[r * h], nullptr, &scratch)
                      .ok());
    }
    return out;
  }
  static inline Checkpoint* checkpoint_ = nullptr;
  static inline ExpertShard* shard_ = nullptr;
};

TEST_F(CpuExpertRunnerTest, GroupedAndThreadedRowsAreBitwiseEachRowAlone) {
  const int64_t h = checkpoint_->config().hidden_size;
  std::vector<uint32_t> mixed, lone(19, 5);
  for (int i = 0; i < 41; ++i) mixed.push_back(static_cast<uint32_t>((i * 5 + i / 3) % 8));
  ThreadPool pool(2);
  CpuExpertRunner serial(shard_, nullptr), pooled(shard_, &pool);
  CpuExpertOptions options;
  options.compute_threads = 3;
  options.lone_expert_threads = 2;
  auto owned = ExpertShard::Load(*checkpoint_, {});
  ASSERT_TRUE(owned.ok());
  CpuExpertRunner own(std::move(owned).value(), options);
  for (int layer = 0; layer < 2; ++layer) {
    for (const std::vector<uint32_t>* ids : {&mixed, &lone}) {
      const std::vector<float> x = Rows(static_cast<int64_t>(ids->size()), layer);
      const std::vector<float> want = OneByOne(layer, x, *ids, 1);
      for (CpuExpertRunner* runner : {&serial, &pooled, &own}) {
        std::vector<float> out(want.size(), -1.0f);
        ExpertRows rows;
        rows.layer = layer;
        rows.hidden = h;
        rows.num_rows = static_cast<int64_t>(ids->size());
        rows.x = x.data();
        rows.expert_ids = ids->data();
        ASSERT_TRUE(runner->Run(rows, out.data()).ok());
        EXPECT_EQ(0, std::memcmp(out.data(), want.data(), want.size() * sizeof(float)));
      }
    }
  }
  EXPECT_EQ(own.device(), "cpu");
  EXPECT_EQ(own.weight_dtype(), "BF16");
  EXPECT_EQ(own.keys().size(), 16u);
}

TEST_F(CpuExpertRunnerTest, LocalBackendRepeatsEachTokenForItsTopKChoices) {
  const int64_t h = checkpoint_->config().hidden_size, tokens = 9, k = 2;
  const std::vector<float> x = Rows(tokens, 3);
  std::vector<int32_t> experts;
  std::vector<uint32_t> ids;
  for (int64_t c = 0; c < tokens * k; ++c) {
    experts.push_back(static_cast<int32_t>((c * 3) % 8));
    ids.push_back(static_cast<uint32_t>((c * 3) % 8));
  }
  const std::vector<float> want = OneByOne(1, x, ids, k);
  ThreadPool pool(2);
  LocalExpertBackend backend(shard_, &pool);
  std::vector<float> weights(tokens * k, 0.5f), out(tokens * k * h);
  ExpertBatch b;
  b.layer = 1;
  b.num_tokens = tokens;
  b.top_k = static_cast<int>(k);
  b.hidden = h;
  b.hidden_states = x.data();
  b.experts = experts.data();
  b.weights = weights.data();
  ASSERT_TRUE(backend.Compute(b, out.data()).ok());
  EXPECT_EQ(0, std::memcmp(out.data(), want.data(), want.size() * sizeof(float)));
}

TEST_F(CpuExpertRunnerTest, AnExpertNotHeldIsFailedPrecondition) {
  auto part = ExpertShard::Load(*checkpoint_, {{0, 1}});
  ASSERT_TRUE(part.ok());
  CpuExpertRunner runner(part->get(), nullptr);
  const std::vector<float> x = Rows(1, 0);
  const uint32_t id = 2;
  ExpertRows rows;
  rows.layer = 0;
  rows.hidden = checkpoint_->config().hidden_size;
  rows.num_rows = 1;
  rows.x = x.data();
  rows.expert_ids = &id;
  std::vector<float> out(x.size());
  const absl::Status s = runner.Run(rows, out.data());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("expert 2 of layer 0"));
}

}  // namespace
}  // namespace moe
