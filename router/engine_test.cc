#include "router/engine.h"
#include "router/forward.h"
#include "tests/tiny_models.h"

#include <fstream>
#include <memory>
#include <vector>

#include "core/checkpoint.h"
#include "experts/expert_shard.h"
#include "experts/local_expert_backend.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace moe {
namespace {

using ::testing::HasSubstr;

// Collects one request's tokens; Wait() blocks until OnFinish.
class CollectingSink : public GenerationSink {
 public:
  void OnToken(const GeneratedToken& t) override {
    absl::MutexLock lock(&mu_);
    tokens.push_back(t);
  }
  void OnFinish(const absl::Status& s, FinishReason r, int prompt, int completion) override {
    absl::MutexLock lock(&mu_);
    status = s;
    reason = r;
    prompt_tokens = prompt;
    completion_tokens = completion;
    done = true;
  }
  bool Cancelled() const override { return cancel.load(); }
  void Wait() {
    absl::MutexLock lock(&mu_);
    ASSERT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(60)));
  }
  std::vector<int32_t> Ids() const {
    std::vector<int32_t> ids;
    for (const auto& t : tokens) ids.push_back(t.id);
    return ids;
  }

  std::vector<GeneratedToken> tokens;
  absl::Status status;
  FinishReason reason = FinishReason::kStop;
  int prompt_tokens = 0, completion_tokens = 0;
  bool done = false;
  std::atomic<bool> cancel{false};

 private:
  absl::Mutex mu_;
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = test::LoadTinyModel("mixtral");
    ASSERT_NE(model_, nullptr);
    pool_ = std::make_unique<ThreadPool>(2);
    backend_ = std::make_unique<LocalExpertBackend>(model_->shard.get(), pool_.get());
    forward_ = std::make_unique<ForwardPass>(model_->dense.get(), backend_.get(), pool_.get());
  }
  std::unique_ptr<Engine> MakeEngine(EngineOptions options = {}) {
    auto engine = Engine::Create(forward_.get(), options);
    EXPECT_TRUE(engine.ok()) << engine.status();
    return std::move(engine).value();
  }
  static nlohmann::json Golden() { return test::TinyGolden("mixtral"); }
  static GenerationRequest Greedy(const std::string& id, std::vector<int32_t> prompt, int max_tokens) {
    GenerationRequest r;
    r.client_id = id;
    r.prompt = std::move(prompt);
    r.max_tokens = max_tokens;
    r.sampling.temperature = 0;
    r.sampling.ignore_eos = true;
    return r;
  }

  const test::TinyModel* model_ = nullptr;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<LocalExpertBackend> backend_;
  std::unique_ptr<ForwardPass> forward_;
};

TEST_F(EngineTest, ConcurrentGreedyRequestsGiveTheGoldenTokensAndLogprobs) {
  auto engine = MakeEngine();
  const nlohmann::json golden = Golden();
  std::vector<std::shared_ptr<CollectingSink>> sinks;
  for (int copy = 0; copy < 3; ++copy) {
    for (const auto& c : golden["cases"]) {
      sinks.push_back(std::make_shared<CollectingSink>());
      ASSERT_TRUE(engine->Submit(Greedy("g", c["prompt_ids"].get<std::vector<int32_t>>(), 16), sinks.back()).ok());
    }
  }
  for (size_t i = 0; i < sinks.size(); ++i) {
    sinks[i]->Wait();
    const auto& c = golden["cases"][i % golden["cases"].size()];
    ASSERT_TRUE(sinks[i]->status.ok()) << sinks[i]->status;
    EXPECT_EQ(sinks[i]->reason, FinishReason::kLength);
    EXPECT_EQ(sinks[i]->Ids(), c["greedy_ids"].get<std::vector<int32_t>>());
    EXPECT_EQ(sinks[i]->completion_tokens, 16);
    EXPECT_EQ(sinks[i]->prompt_tokens, static_cast<int>(c["prompt_ids"].size()));
    for (size_t step = 0; step < 16; ++step) {
      EXPECT_NEAR(sinks[i]->tokens[step].logprob, c["top5_logprobs_each_step"][step][0][1].get<double>(), 1e-4);
    }
  }
}

TEST_F(EngineTest, SeededSamplingIsTheSameAloneAndInABusyBatch) {
  auto engine = MakeEngine();
  auto seeded = [](const std::string& id) {
    GenerationRequest r = Greedy(id, {39, 301, 385, 11}, 24);
    r.sampling.temperature = 0.9f;
    r.sampling.top_p = 0.95f;
    r.sampling.seed = 1234;
    return r;
  };
  auto alone = std::make_shared<CollectingSink>();
  ASSERT_TRUE(engine->Submit(seeded("alone"), alone).ok());
  alone->Wait();
  std::vector<std::shared_ptr<CollectingSink>> others;
  for (int i = 0; i < 6; ++i) {
    others.push_back(std::make_shared<CollectingSink>());
    GenerationRequest r = Greedy("other", {static_cast<int32_t>(100 + i), 7, 8}, 30);
    r.sampling.temperature = 1.0f;
    ASSERT_TRUE(engine->Submit(r, others.back()).ok());
  }
  auto busy = std::make_shared<CollectingSink>();
  ASSERT_TRUE(engine->Submit(seeded("busy"), busy).ok());
  busy->Wait();
  for (auto& o : others) o->Wait();
  EXPECT_EQ(alone->Ids(), busy->Ids());
}

TEST_F(EngineTest, StopsAtEosAndStopIdsAndMaxTokens) {
  auto engine = MakeEngine();
  const nlohmann::json c = Golden()["cases"][0];
  const auto want = c["greedy_ids"].get<std::vector<int32_t>>();
  auto sink = std::make_shared<CollectingSink>();
  GenerationRequest r = Greedy("s", c["prompt_ids"].get<std::vector<int32_t>>(), 16);
  r.stop_token_ids = {want[4]};
  ASSERT_TRUE(engine->Submit(r, sink).ok());
  sink->Wait();
  EXPECT_EQ(sink->reason, FinishReason::kStop);
  EXPECT_EQ(sink->Ids(), std::vector<int32_t>(want.begin(), want.begin() + 5));
  auto len = std::make_shared<CollectingSink>();
  ASSERT_TRUE(engine->Submit(Greedy("l", c["prompt_ids"].get<std::vector<int32_t>>(), 3), len).ok());
  len->Wait();
  EXPECT_EQ(len->reason, FinishReason::kLength);
  EXPECT_EQ(len->Ids().size(), 3u);
}

// The client's id is for logs only: two requests with the same one are two
// requests, and aborting one leaves the other running.
TEST_F(EngineTest, SameClientIdTwiceIsTwoRequestsAbortingOneLeavesTheOther) {
  auto engine = MakeEngine();
  auto first = std::make_shared<CollectingSink>();
  auto second = std::make_shared<CollectingSink>();
  absl::StatusOr<uint64_t> a = engine->Submit(Greedy("same", {4, 5, 6}, 4000), first);
  absl::StatusOr<uint64_t> b = engine->Submit(Greedy("same", {4, 5, 6}, 30), second);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(engine->Abort(*a));
  first->Wait();
  second->Wait();
  EXPECT_EQ(first->reason, FinishReason::kCancelled);
  EXPECT_LT(first->tokens.size(), 4000u);
  EXPECT_EQ(second->reason, FinishReason::kLength);
  EXPECT_EQ(second->tokens.size(), 30u);
}

// Samples share the request's id: one sample, or all of them, can be stopped.
TEST_F(EngineTest, AbortStopsOneSampleOrEverySampleOfARequest) {
  auto engine = MakeEngine();
  const uint64_t id = engine->NewRequestId();
  std::vector<std::shared_ptr<CollectingSink>> sinks;
  for (uint64_t i = 0; i < 3; ++i) {
    GenerationRequest r = Greedy("n3", {1, 2, 3}, i == 2 ? 25 : 4000);
    r.id = id;
    r.sampling.sample_index = i;
    sinks.push_back(std::make_shared<CollectingSink>());
    absl::StatusOr<uint64_t> got = engine->Submit(r, sinks.back());
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, id);
  }
  EXPECT_TRUE(engine->Abort(id, /*sample_index=*/1));
  sinks[1]->Wait();
  EXPECT_EQ(sinks[1]->reason, FinishReason::kCancelled);
  sinks[2]->Wait();
  EXPECT_EQ(sinks[2]->reason, FinishReason::kLength);  // untouched
  EXPECT_TRUE(engine->Abort(id));  // the rest
  sinks[0]->Wait();
  EXPECT_EQ(sinks[0]->reason, FinishReason::kCancelled);
  EXPECT_LT(sinks[0]->tokens.size(), 4000u);
  for (int i = 0; i < 1000 && engine->Abort(id); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_FALSE(engine->Abort(id));  // no longer live
}

TEST_F(EngineTest, CancelAndAbortEndRequestsAndOthersComplete) {
  auto engine = MakeEngine();
  auto cancelled = std::make_shared<CollectingSink>();
  auto aborted = std::make_shared<CollectingSink>();
  auto normal = std::make_shared<CollectingSink>();
  ASSERT_TRUE(engine->Submit(Greedy("c", {1, 2, 3}, 4000), cancelled).ok());
  absl::StatusOr<uint64_t> a = engine->Submit(Greedy("a", {4, 5, 6}, 4000), aborted);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(engine->Submit(Greedy("n", {7, 8, 9}, 20), normal).ok());
  cancelled->cancel = true;
  EXPECT_TRUE(engine->Abort(*a));
  EXPECT_FALSE(engine->Abort(*a + 1000));
  cancelled->Wait();
  aborted->Wait();
  normal->Wait();
  EXPECT_EQ(cancelled->reason, FinishReason::kCancelled);
  EXPECT_EQ(aborted->reason, FinishReason::kCancelled);
  EXPECT_LT(cancelled->tokens.size(), 4000u);
  EXPECT_EQ(normal->reason, FinishReason::kLength);
  EXPECT_EQ(normal->tokens.size(), 20u);
  // The load figure is updated at the end of the step that finished them.
  for (int i = 0; i < 1000 && engine->Load().running != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(engine->Load().running, 0);
}

TEST_F(EngineTest, SamplesOfOnePromptShareItsFullKvBlocks) {
  // The n samples of one request arrive together with the same prompt: the
  // later ones wait a step and take the first one's full blocks from the
  // prefix cache (40 tokens = 2 full blocks of 16).
  auto engine = MakeEngine();
  std::vector<int32_t> prompt;
  for (int i = 0; i < 40; ++i) prompt.push_back(100 + i);
  std::vector<std::shared_ptr<CollectingSink>> sinks;
  for (int i = 0; i < 4; ++i) {
    sinks.push_back(std::make_shared<CollectingSink>());
    GenerationRequest r = Greedy("n", prompt, 4);
    r.sampling.temperature = 1.0f;
    r.sampling.seed = 5;
    r.sampling.sample_index = static_cast<uint64_t>(i);
    ASSERT_TRUE(engine->Submit(r, sinks.back()).ok());
  }
  for (auto& s : sinks) s->Wait();
  for (int i = 0; i < 200 && engine->Stats().prefix_cache_hit_tokens < 96; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(engine->Stats().prefix_cache_hit_tokens, 3u * 32u);
}

TEST_F(EngineTest, RejectsBadRequestsNamingTheField) {
  auto engine = MakeEngine();
  auto sink = std::make_shared<CollectingSink>();
  absl::Status s = engine->Submit(Greedy("x", {}, 4), sink).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("prompt"));
  s = engine->Submit(Greedy("x", {1, 4096}, 4), sink).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("4096"));
  s = engine->Submit(Greedy("x", {1, 2}, 4095), sink).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("4095"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("4096"));
  GenerationRequest bad = Greedy("x", {1}, 4);
  bad.sampling.top_p = 0;
  s = engine->Submit(bad, sink).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("top_p"));
  bad = Greedy("x", {1}, 4);
  bad.sampling.temperature = -1;
  EXPECT_THAT(std::string(engine->Submit(bad, sink).status().message()), HasSubstr("temperature"));
}

TEST_F(EngineTest, FullWaitingQueueIsResourceExhausted) {
  EngineOptions opts;
  opts.max_running_seqs = 1;
  opts.max_waiting_requests = 2;
  auto engine = MakeEngine(opts);
  std::vector<std::shared_ptr<CollectingSink>> sinks;
  int exhausted = 0;
  for (int i = 0; i < 8; ++i) {
    sinks.push_back(std::make_shared<CollectingSink>());
    const absl::Status s = engine->Submit(Greedy("q", {1, 2, 3}, 200), sinks.back()).status();
    if (s.code() == absl::StatusCode::kResourceExhausted) {
      ++exhausted;
      EXPECT_THAT(std::string(s.message()), HasSubstr("limit 2"));
      sinks.pop_back();
    } else {
      ASSERT_TRUE(s.ok()) << s;
    }
  }
  EXPECT_GE(exhausted, 4);
  for (auto& s : sinks) s->cancel = true;
  for (auto& s : sinks) s->Wait();
}

}  // namespace
}  // namespace moe
