#include "router/forward.h"

#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "expert_worker/expert_shard.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "router/generator.h"

namespace moe {
namespace {

const std::string kModelDir = std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral";

class TinyMixtral : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto ckpt = Checkpoint::Open(kModelDir);
    ASSERT_TRUE(ckpt.ok()) << ckpt.status();
    checkpoint_ = std::move(*ckpt).release();
    auto dense = DenseModel::Load(*checkpoint_);
    ASSERT_TRUE(dense.ok()) << dense.status();
    dense_ = std::move(*dense).release();
    auto shard = ExpertShard::Load(*checkpoint_, {});
    ASSERT_TRUE(shard.ok()) << shard.status();
    shard_ = std::move(*shard).release();
    pool_ = new ThreadPool(2);
  }

  // A fresh forward pass over the shared weights.
  std::unique_ptr<ForwardPass> MakeForward() {
    backends_.push_back(std::make_unique<LocalExpertBackend>(shard_, pool_));
    return std::make_unique<ForwardPass>(dense_, backends_.back().get(), pool_);
  }
  const ModelConfig& config() const { return checkpoint_->config(); }

  static nlohmann::json Golden() {
    std::ifstream in(kModelDir + "/golden.json");
    return nlohmann::json::parse(in);
  }

  static inline Checkpoint* checkpoint_ = nullptr;
  static inline DenseModel* dense_ = nullptr;
  static inline ExpertShard* shard_ = nullptr;
  static inline ThreadPool* pool_ = nullptr;
  std::vector<std::unique_ptr<LocalExpertBackend>> backends_;
};

TEST_F(TinyMixtral, GreedyIdsAndLogprobsMatchGolden) {
  const nlohmann::json golden = Golden();
  ASSERT_EQ(golden["cases"].size(), 6u);
  double worst = 0;
  for (const auto& c : golden["cases"]) {
    const std::vector<int32_t> prompt = c["prompt_ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> want = c["greedy_ids"].get<std::vector<int32_t>>();
    auto fwd = MakeForward();
    SequenceKv kv(config());
    std::vector<int32_t> next = prompt, got;
    std::vector<float> logits;
    for (size_t step = 0; step < want.size(); ++step) {
      SequenceInput in{&kv, next};
      ASSERT_TRUE(fwd->Forward({&in, 1}, &logits).ok());
      const std::vector<double> lp = LogSoftmax(logits);
      const int32_t id = TopLogprobs(lp, 1)[0].first;
      got.push_back(id);
      for (const auto& pair : c["top5_logprobs_each_step"][step]) {
        const int32_t gid = pair[0].get<int32_t>();
        const double glp = pair[1].get<double>();
        EXPECT_NEAR(lp[gid], glp, 1e-4) << c["prompt_text"] << " step " << step << " id " << gid;
        worst = std::max(worst, std::abs(lp[gid] - glp));
      }
      next.assign(1, want[step]);  // teacher-force so one miss does not cascade
    }
    EXPECT_EQ(got, want) << c["prompt_text"];
  }
  std::cout << "max |logprob - golden| = " << worst << "\n";
}

TEST_F(TinyMixtral, GenerateGreedyStreamsTheGoldenContinuation) {
  const nlohmann::json golden = Golden();
  const auto& c = golden["cases"][0];
  auto fwd = MakeForward();
  std::vector<int32_t> got;
  GreedyOptions opts;
  opts.max_tokens = 16;
  opts.top_logprobs = 5;
  opts.stop_at_eos = false;
  const std::vector<int32_t> prompt = c["prompt_ids"].get<std::vector<int32_t>>();
  ASSERT_TRUE(GenerateGreedy(*fwd, config(), prompt, opts, [&](const GeneratedToken& t) {
                got.push_back(t.id);
                ASSERT_EQ(t.top_logprobs.size(), 5u);
                EXPECT_EQ(t.top_logprobs[0].first, t.id);
                for (size_t i = 1; i < 5; ++i) EXPECT_GE(t.top_logprobs[i - 1].second, t.top_logprobs[i].second);
              }).ok());
  EXPECT_EQ(got, c["greedy_ids"].get<std::vector<int32_t>>());
}

std::vector<int32_t> Prompt(int len, int salt) {
  std::vector<int32_t> p;
  for (int i = 0; i < len; ++i) p.push_back((i * 131 + salt * 977 + 7) % 4093);
  return p;
}

TEST_F(TinyMixtral, LogitsAreBitwiseTheSameAloneOrBatchedWithSevenOthers) {
  const std::vector<int32_t> target = Prompt(23, 0);
  auto alone = MakeForward();
  SequenceKv kv_alone(config());
  std::vector<float> ref;
  SequenceInput in{&kv_alone, target, /*all_logits=*/true};
  ASSERT_TRUE(alone->Forward({&in, 1}, &ref).ok());

  std::vector<std::vector<int32_t>> prompts;
  for (int s = 1; s <= 7; ++s) prompts.push_back(Prompt(3 + 5 * s, s));
  prompts.insert(prompts.begin() + 3, target);
  std::vector<std::unique_ptr<SequenceKv>> kvs;
  std::vector<SequenceInput> batch;
  for (const auto& p : prompts) {
    kvs.push_back(std::make_unique<SequenceKv>(config()));
    batch.push_back({kvs.back().get(), p, /*all_logits=*/true});
  }
  auto batched = MakeForward();
  std::vector<float> out;
  ASSERT_TRUE(batched->Forward(batch, &out).ok());
  size_t offset = 0;
  for (size_t s = 0; s < 3; ++s) offset += prompts[s].size();
  ASSERT_EQ(0, std::memcmp(ref.data(), out.data() + offset * config().vocab_size, ref.size() * sizeof(float)));

  // A decode step of the target inside the batch equals its decode step alone.
  std::vector<float> ref_step, batch_step;
  const int32_t next_id = 1234;
  SequenceInput step_alone{&kv_alone, {&next_id, 1}};
  ASSERT_TRUE(alone->Forward({&step_alone, 1}, &ref_step).ok());
  std::vector<int32_t> ids(batch.size(), 77);
  ids[3] = next_id;
  for (size_t s = 0; s < batch.size(); ++s) batch[s] = {kvs[s].get(), {&ids[s], 1}};
  ASSERT_TRUE(batched->Forward(batch, &batch_step).ok());
  ASSERT_EQ(0, std::memcmp(ref_step.data(), batch_step.data() + 3 * config().vocab_size,
                           ref_step.size() * sizeof(float)));
}

TEST_F(TinyMixtral, PrefillAtOnceEqualsTokenByToken) {
  const std::vector<int32_t> prompt = Prompt(40, 9);
  auto once = MakeForward();
  SequenceKv kv1(config());
  std::vector<float> a;
  SequenceInput in{&kv1, prompt};
  ASSERT_TRUE(once->Forward({&in, 1}, &a).ok());

  auto stepwise = MakeForward();
  SequenceKv kv2(config());
  std::vector<float> b;
  for (size_t i = 0; i < prompt.size(); i += (i % 3) + 1) {  // chunks of 1, 2, 3 ... tokens
    const size_t n = std::min(prompt.size() - i, (i % 3) + 1);
    SequenceInput chunk{&kv2, absl::Span<const int32_t>(prompt).subspan(i, n)};
    ASSERT_TRUE(stepwise->Forward({&chunk, 1}, &b).ok());
  }
  ASSERT_EQ(kv1.length(), kv2.length());
  ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
}

TEST_F(TinyMixtral, RejectsTokenOutsideVocabulary) {
  auto fwd = MakeForward();
  SequenceKv kv(config());
  const std::vector<int32_t> bad = {1, 4096};
  std::vector<float> logits;
  SequenceInput in{&kv, bad};
  const absl::Status s = fwd->Forward({&in, 1}, &logits);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("4096"));
  EXPECT_EQ(kv.length(), 0);
}

}  // namespace
}  // namespace moe
