// Continuous batching over the paged KV cache: batch invariance (with and
// without prefix caching, with forced preemption), cancellation, overload and
// prefix reuse, on the tiny-mixtral fixture with in-process experts; batch
// invariance on every family's tiny fixture.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "core/checkpoint.h"
#include "experts/expert_shard.h"
#include "experts/local_expert_backend.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "router/engine.h"
#include "router/forward.h"
#include "tests/tiny_models.h"

namespace moe {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// Collects one request's tokens; can cancel itself after `cancel_after` tokens.
class Sink : public GenerationSink {
 public:
  void OnToken(const GeneratedToken& t) override {
    absl::MutexLock lock(&mu_);
    tokens.push_back(t);
    if (cancel_after > 0 && static_cast<int>(tokens.size()) >= cancel_after) cancel = true;
  }
  void OnFinish(const absl::Status& s, FinishReason r, int, int) override {
    absl::MutexLock lock(&mu_);
    status = s;
    reason = r;
    done = true;
  }
  bool Cancelled() const override { return cancel.load(); }
  void Wait() {
    absl::MutexLock lock(&mu_);
    ASSERT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(60)));
  }

  std::vector<GeneratedToken> tokens;
  absl::Status status;
  FinishReason reason = FinishReason::kStop;
  bool done = false;
  int cancel_after = 0;
  std::atomic<bool> cancel{false};

 private:
  absl::Mutex mu_;
};

// Counts calls per layer: the engine must make one per MoE layer per step.
class CountingBackend : public ExpertBackend {
 public:
  explicit CountingBackend(ExpertBackend* inner) : inner_(inner) {}
  absl::Status Compute(const ExpertBatch& batch, float* outputs) override {
    calls.fetch_add(1);
    return inner_->Compute(batch, outputs);
  }
  std::atomic<uint64_t> calls{0};

 private:
  ExpertBackend* inner_;
};

struct Result {
  std::vector<int32_t> ids;
  std::vector<double> logprobs;
  std::vector<std::vector<std::pair<int32_t, double>>> top;
};

Result ResultOf(const Sink& s) {
  Result r;
  for (const auto& t : s.tokens) {
    r.ids.push_back(t.id);
    r.logprobs.push_back(t.logprob);
    r.top.push_back(t.top_logprobs);
  }
  return r;
}

int64_t ResidentBytes() {
  std::ifstream in("/proc/self/statm");
  int64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

class EngineBatchingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pool_ = new ThreadPool(2); }
  // The model the test runs on (tests/testdata/tiny-FAMILY).
  virtual std::string Family() const { return "mixtral"; }
  void SetUp() override {
    model_ = test::LoadTinyModel(Family());
    ASSERT_NE(model_, nullptr);
    checkpoint_ = model_->checkpoint.get();
    local_ = std::make_unique<LocalExpertBackend>(model_->shard.get(), pool_);
    counting_ = std::make_unique<CountingBackend>(local_.get());
    forward_ = std::make_unique<ForwardPass>(model_->dense.get(), counting_.get(), pool_);
  }
  const ModelConfig& config() const { return checkpoint_->config(); }
  std::unique_ptr<Engine> MakeEngine(const EngineOptions& options) {
    auto engine = Engine::Create(forward_.get(), options);
    EXPECT_TRUE(engine.ok()) << engine.status();
    return std::move(engine).value();
  }
  EngineOptions Options(bool prefix_caching, int64_t kv_blocks = 4096, int64_t block_size = 16) const {
    EngineOptions o;
    o.kv_cache.enable_prefix_caching = prefix_caching;
    o.kv_cache.block_size_tokens = block_size;
    o.kv_cache.capacity_bytes = kv_blocks * KvCache::BytesPerBlock(checkpoint_->config(), block_size);
    return o;
  }
  static GenerationRequest Greedy(const std::string& id, std::vector<int32_t> prompt, int max_tokens) {
    GenerationRequest r;
    r.client_id = id;
    r.prompt = std::move(prompt);
    r.max_tokens = max_tokens;
    r.sampling.temperature = 0;
    r.sampling.ignore_eos = true;
    r.sampling.top_logprobs = 2;
    return r;
  }
  // 64 requests: half share a 40-token prefix, all have their own tail; 10-18 tokens each.
  static std::vector<GenerationRequest> SixtyFourRequests() {
    std::vector<int32_t> shared;
    for (int i = 0; i < 40; ++i) shared.push_back((i * 37 + 11) % 4000);
    std::vector<GenerationRequest> out;
    for (int r = 0; r < 64; ++r) {
      std::vector<int32_t> p = r % 2 == 0 ? shared : std::vector<int32_t>{static_cast<int32_t>(r + 1)};
      for (int i = 0; i < 1 + (r * 5) % 23; ++i) p.push_back((r * 131 + i * 17 + 3) % 4000);
      out.push_back(Greedy("r" + std::to_string(r), p, 10 + r % 9));
    }
    return out;
  }
  // Each request alone in an idle engine without prefix caching.
  std::vector<Result> Alone(const std::vector<GenerationRequest>& requests) {
    auto engine = MakeEngine(Options(/*prefix_caching=*/false));
    std::vector<Result> out;
    for (const auto& r : requests) {
      auto sink = std::make_shared<Sink>();
      EXPECT_TRUE(engine->Submit(r, sink).ok());
      sink->Wait();
      EXPECT_TRUE(sink->status.ok()) << sink->status;
      out.push_back(ResultOf(*sink));
    }
    return out;
  }
  static void WaitIdle(Engine& engine) {
    for (int i = 0; i < 5000; ++i) {
      const EngineStats s = engine.Stats();
      if (s.running == 0 && s.preempted == 0 && s.waiting == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ADD_FAILURE() << "the engine did not become idle";
  }

  static inline ThreadPool* pool_ = nullptr;
  const test::TinyModel* model_ = nullptr;
  const Checkpoint* checkpoint_ = nullptr;
  std::unique_ptr<LocalExpertBackend> local_;
  std::unique_ptr<CountingBackend> counting_;
  std::unique_ptr<ForwardPass> forward_;
};

struct InvarianceCase {
  const char* name;
  bool prefix_caching;
  int64_t kv_blocks;
};

// Every case on every family's model.
class BatchInvarianceTest : public EngineBatchingTest,
                            public ::testing::WithParamInterface<std::tuple<std::string, InvarianceCase>> {
 protected:
  std::string Family() const override { return std::get<0>(GetParam()); }
  const InvarianceCase& Case() const { return std::get<1>(GetParam()); }
};

TEST_P(BatchInvarianceTest, SixtyFourConcurrentGreedyRequestsGiveBitwiseTheirAloneResults) {
  const auto requests = SixtyFourRequests();
  static auto* alone_of_family = new std::map<std::string, std::vector<Result>>();
  if (alone_of_family->count(Family()) == 0) (*alone_of_family)[Family()] = Alone(requests);
  const std::vector<Result>& alone = alone_of_family->at(Family());
  EngineOptions o = Options(Case().prefix_caching, Case().kv_blocks);
  o.max_batch_tokens = 96;  // prompts are prefilled in chunks, next to decodes
  auto engine = MakeEngine(o);
  std::vector<std::shared_ptr<Sink>> sinks;
  for (const auto& r : requests) {
    sinks.push_back(std::make_shared<Sink>());
    ASSERT_TRUE(engine->Submit(r, sinks.back()).ok());
  }
  for (size_t i = 0; i < sinks.size(); ++i) {
    sinks[i]->Wait();
    ASSERT_TRUE(sinks[i]->status.ok()) << sinks[i]->status;
    const Result got = ResultOf(*sinks[i]);
    EXPECT_EQ(got.ids, alone[i].ids) << "request " << i;
    EXPECT_EQ(got.logprobs, alone[i].logprobs) << "request " << i;  // exact, not near
    EXPECT_EQ(got.top, alone[i].top) << "request " << i;
  }
  WaitIdle(*engine);
  const EngineStats s = engine->Stats();
  EXPECT_EQ(s.kv_blocks_used, 0);
  EXPECT_EQ(s.finished_requests, 64u);
  if (Case().prefix_caching) {
    EXPECT_GT(s.prefix_cache_hit_tokens, 0u);
  } else {
    EXPECT_EQ(s.prefix_cache_hit_tokens, 0u);
    EXPECT_EQ(s.kv_blocks_cached, 0);
  }
  if (Case().kv_blocks < 64) {
    EXPECT_GT(s.preemptions, 0u);
  } else {
    EXPECT_EQ(s.preemptions, 0u);
  }
  std::cout << Family() << " " << Case().name << ": " << s.steps << " steps, " << s.preemptions << " preemptions, "
            << s.prefix_cache_hit_tokens << " prefix-cache hit tokens, " << s.prefill_tokens_computed
            << " prefill tokens computed\n";
}

INSTANTIATE_TEST_SUITE_P(Engine, BatchInvarianceTest,
                         ::testing::Combine(::testing::ValuesIn(test::TinyFamilies()),
                                            ::testing::Values(InvarianceCase{"PrefixCachingOn", true, 4096},
                                                              InvarianceCase{"PrefixCachingOff", false, 4096},
                                                              InvarianceCase{"TinyKvPreemptsWithPrefixCaching", true, 24},
                                                              InvarianceCase{"TinyKvPreemptsWithoutPrefixCaching", false, 24})),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + std::get<1>(info.param).name;
                         });

TEST_F(EngineBatchingTest, OneExpertDispatchPerLayerPerStepForTheWholeBatch) {
  auto engine = MakeEngine(Options(/*prefix_caching=*/true));
  std::vector<std::shared_ptr<Sink>> sinks;
  for (const auto& r : SixtyFourRequests()) {
    sinks.push_back(std::make_shared<Sink>());
    ASSERT_TRUE(engine->Submit(r, sinks.back()).ok());
  }
  for (auto& s : sinks) s->Wait();
  WaitIdle(*engine);
  const EngineStats s = engine->Stats();
  EXPECT_EQ(counting_->calls.load(), s.steps * static_cast<uint64_t>(config().num_hidden_layers));
  EXPECT_LT(s.steps, 64u * 10u / 4u);  // far fewer steps than one per sequence per token
  // Every token computed went through top_k experts in every layer.
  const uint64_t tokens = s.prefill_tokens_computed + s.decode_tokens_computed;
  EXPECT_EQ(s.decode_tokens_computed, s.generated_tokens - 64);  // a last token is never fed back
  for (int64_t l = 0; l < s.num_layers; ++l) {
    uint64_t sum = 0;
    for (int64_t e = 0; e < s.num_experts; ++e) sum += s.expert_tokens[l * s.num_experts + e];
    EXPECT_EQ(sum, tokens * config().num_experts_per_tok) << "layer " << l;
  }
}

TEST_F(EngineBatchingTest, CancellingHalfOfSixtyFourStreamsLeavesTheOthersExactAndFreesTheirBlocks) {
  auto requests = SixtyFourRequests();
  for (auto& r : requests) r.max_tokens = 24;
  std::vector<GenerationRequest> survivors;
  for (size_t i = 0; i < requests.size(); i += 2) survivors.push_back(requests[i]);
  const std::vector<Result> alone = Alone(survivors);

  auto engine = MakeEngine(Options(/*prefix_caching=*/true, /*kv_blocks=*/256));
  std::vector<std::shared_ptr<Sink>> sinks;
  std::vector<uint64_t> ids;
  for (size_t i = 0; i < requests.size(); ++i) {
    sinks.push_back(std::make_shared<Sink>());
    if (i % 4 == 1) sinks.back()->cancel_after = 2 + static_cast<int>(i % 11);  // client cancel mid-way
    absl::StatusOr<uint64_t> id = engine->Submit(requests[i], sinks.back());
    ASSERT_TRUE(id.ok()) << id.status();
    ids.push_back(*id);
  }
  // The other odd ones are aborted by id once they have streamed a token or more.
  for (size_t i = 3; i < requests.size(); i += 4) {
    for (int spin = 0; spin < 10000 && sinks[i]->tokens.empty() && !sinks[i]->done; ++spin) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    engine->Abort(ids[i]);
  }
  for (size_t i = 0; i < sinks.size(); ++i) {
    sinks[i]->Wait();
    ASSERT_TRUE(sinks[i]->status.ok()) << sinks[i]->status;
    if (i % 2 == 0) {
      EXPECT_EQ(sinks[i]->reason, FinishReason::kLength);
      EXPECT_EQ(ResultOf(*sinks[i]).ids, alone[i / 2].ids) << "request " << i;
      EXPECT_EQ(ResultOf(*sinks[i]).logprobs, alone[i / 2].logprobs) << "request " << i;
    } else {
      EXPECT_EQ(sinks[i]->reason, FinishReason::kCancelled) << "request " << i;
      EXPECT_LT(sinks[i]->tokens.size(), 24u) << "request " << i;
    }
  }
  WaitIdle(*engine);
  const EngineStats s = engine->Stats();
  EXPECT_EQ(s.kv_blocks_used, 0);  // only the prefix cache holds blocks now
  EXPECT_EQ(s.kv_blocks_free, s.kv_blocks_total);
  EXPECT_GT(s.kv_blocks_cached, 0);
  EXPECT_LE(s.kv_blocks_cached, s.kv_blocks_total);
}

TEST_F(EngineBatchingTest, DeadlineEndsWaitingAndRunningRequests) {
  auto engine = MakeEngine(Options(/*prefix_caching=*/false));
  auto running = std::make_shared<Sink>();
  GenerationRequest r = Greedy("late", {1, 2, 3}, 4000);
  r.deadline = absl::Now() + absl::Milliseconds(50);
  ASSERT_TRUE(engine->Submit(r, running).ok());
  auto expired = std::make_shared<Sink>();
  GenerationRequest e = Greedy("expired", {4, 5}, 10);
  e.deadline = absl::Now() - absl::Seconds(1);
  ASSERT_TRUE(engine->Submit(e, expired).ok());
  running->Wait();
  expired->Wait();
  EXPECT_EQ(running->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(running->status.message()), HasSubstr("late"));
  EXPECT_LT(running->tokens.size(), 4000u);
  EXPECT_EQ(expired->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(expired->tokens.empty());
  WaitIdle(*engine);
  EXPECT_EQ(engine->Stats().kv_blocks_used, 0);
}

TEST_F(EngineBatchingTest, OverloadIsRejectedQuicklyAcceptedRequestsCompleteAndMemoryStaysBounded) {
  EngineOptions o = Options(/*prefix_caching=*/true, /*kv_blocks=*/512);
  o.max_running_seqs = 4;
  o.max_waiting_requests = 16;
  auto engine = MakeEngine(o);
  int64_t resident_after_first = 0;
  for (int round = 0; round < 3; ++round) {
    std::vector<std::shared_ptr<Sink>> accepted;
    absl::Mutex mu;
    std::atomic<int> exhausted{0};
    std::atomic<int64_t> slowest_us{0};
    std::vector<std::thread> clients;
    for (int c = 0; c < 4; ++c) {
      clients.emplace_back([&, c] {
        for (int i = 0; i < 16; ++i) {  // 4 x 16 = 4x the queue limit, all at once
          auto sink = std::make_shared<Sink>();
          std::vector<int32_t> prompt(200, 7);
          prompt.push_back(c * 16 + i);
          const auto t0 = Clock::now();
          const absl::Status s = engine->Submit(Greedy("o", prompt, 12), sink).status();
          const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
          int64_t prev = slowest_us.load();
          while (us > prev && !slowest_us.compare_exchange_weak(prev, us)) {
          }
          if (s.ok()) {
            absl::MutexLock lock(&mu);
            accepted.push_back(sink);
          } else {
            EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
            EXPECT_THAT(std::string(s.message()), HasSubstr("limit 16"));
            ++exhausted;
          }
        }
      });
    }
    for (auto& t : clients) t.join();
    EXPECT_GE(exhausted.load(), 64 - 16 - 4 - 8);  // a few may be admitted while others submit
    EXPECT_LE(engine->Stats().waiting, 16);
    EXPECT_LT(slowest_us.load(), 100000) << "Submit must not wait for the engine";
    for (auto& s : accepted) {
      s->Wait();
      EXPECT_TRUE(s->status.ok()) << s->status;
      EXPECT_EQ(s->tokens.size(), 12u);
    }
    WaitIdle(*engine);
    if (round == 0) resident_after_first = ResidentBytes();
  }
  // Later rounds reuse what the first one allocated.
  EXPECT_LT(ResidentBytes() - resident_after_first, int64_t{16} << 20);
  const EngineStats s = engine->Stats();
  EXPECT_GE(s.rejected_requests, 3u * (64 - 16 - 4 - 8));
  EXPECT_EQ(s.kv_blocks_used, 0);
}

TEST_F(EngineBatchingTest, WaitingTokenLimitAndRequestsThatNeverFitAreResourceExhausted) {
  EngineOptions o = Options(/*prefix_caching=*/false, /*kv_blocks=*/8);
  o.max_running_seqs = 1;
  o.max_waiting_tokens = 50;
  auto engine = MakeEngine(o);
  // 8 blocks of 16 hold 128 tokens.
  absl::Status s = engine->Submit(Greedy("big", std::vector<int32_t>(100, 3), 40), std::make_shared<Sink>()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()), HasSubstr("needs 9 KV blocks"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("holds 8 blocks"));
  std::vector<std::shared_ptr<Sink>> sinks;
  int exhausted = 0;
  for (int i = 0; i < 6; ++i) {
    sinks.push_back(std::make_shared<Sink>());
    s = engine->Submit(Greedy("w", std::vector<int32_t>(20, 5 + i), 100), sinks.back()).status();
    if (!s.ok()) {
      EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
      EXPECT_THAT(std::string(s.message()), HasSubstr("limit of 50"));
      ++exhausted;
      sinks.pop_back();
    }
  }
  EXPECT_GE(exhausted, 2);
  for (auto& k : sinks) k->cancel = true;
  for (auto& k : sinks) k->Wait();
}

TEST_F(EngineBatchingTest, ASecondRequestSharingA200TokenPrefixComputesOnlyItsNewTokens) {
  std::vector<int32_t> prefix;
  for (int i = 0; i < 200; ++i) prefix.push_back((i * 53 + 9) % 4000);
  std::vector<int32_t> first = prefix, second = prefix;
  for (int i = 0; i < 10; ++i) first.push_back(1000 + i);
  for (int i = 0; i < 15; ++i) second.push_back(2000 + i);
  const std::vector<Result> alone = Alone({Greedy("b", second, 6)});
  for (int64_t block_size : {8, 16}) {
    auto engine = MakeEngine(Options(/*prefix_caching=*/true, /*kv_blocks=*/1024, block_size));
    auto a = std::make_shared<Sink>();
    ASSERT_TRUE(engine->Submit(Greedy("a", first, 6), a).ok());
    a->Wait();
    WaitIdle(*engine);
    const EngineStats before = engine->Stats();
    EXPECT_EQ(before.prefill_tokens_computed, 210u);
    auto b = std::make_shared<Sink>();
    ASSERT_TRUE(engine->Submit(Greedy("b", second, 6), b).ok());
    b->Wait();
    WaitIdle(*engine);
    const EngineStats after = engine->Stats();
    const uint64_t reused = 200 / block_size * block_size;  // whole blocks only
    EXPECT_EQ(after.prefix_cache_hit_tokens - before.prefix_cache_hit_tokens, reused);
    EXPECT_EQ(after.prefill_tokens_computed - before.prefill_tokens_computed, 215 - reused)
        << "block size " << block_size;
    EXPECT_EQ(ResultOf(*b).ids, alone[0].ids);
    EXPECT_EQ(ResultOf(*b).logprobs, alone[0].logprobs);  // bitwise: reuse is exact
  }
}

}  // namespace
}  // namespace moe
