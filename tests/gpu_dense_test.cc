// The router's dense model on the GPU (CudaDenseDevice) against the CPU
// forward pass on every family's tiny fixture (ctest label gpu; SKIPPED with
// the reason where there is no GPU or no CUDA build).
//
// The GPU converts activations to the weights' 16-bit type for its GEMMs and
// orders reductions differently, so it agrees with the CPU to rounding, not
// bitwise: per step, the logits' normalised MSE (sum (gpu - cpu)^2 / sum cpu^2)
// is at most 5e-4, and the argmax is the CPU's at every step whose CPU top-2
// margin exceeds 1e-2. Steps are teacher-forced with the CPU's greedy ids, so
// every step compares the same inputs.
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "experts/cuda_expert_runner.h"
#include "experts/local_expert_backend.h"
#include "gtest/gtest.h"
#include "router/cuda/cuda_dense_device.h"
#include "router/engine.h"
#include "router/forward.h"
#include "tests/tiny_models.h"

namespace moe {
namespace {

constexpr double kMaxNmse = 5e-4;
constexpr double kMarginForEqualIds = 1e-2;

double Nmse(const float* got, const float* want, int64_t n) {
  double err = 0, ref = 0;
  for (int64_t i = 0; i < n; ++i) {
    err += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    ref += static_cast<double>(want[i]) * want[i];
  }
  return ref > 0 ? err / ref : err;
}

// The argmax and the gap between the two largest values.
std::pair<int32_t, double> Top1AndMargin(const float* row, int64_t n) {
  int32_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (row[i] > row[best]) best = static_cast<int32_t>(i);
  }
  double second = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    if (i != best) second = std::max(second, static_cast<double>(row[i]));
  }
  return {best, static_cast<double>(row[best]) - second};
}

class GpuDenseTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (absl::Status s = CudaDeviceUsable(0); !s.ok()) GTEST_SKIP() << s.message();
    model_ = test::LoadTinyModel(GetParam());
    ASSERT_NE(model_, nullptr);
    cpu_experts_ = std::make_unique<LocalExpertBackend>(model_->shard.get(), nullptr);
    cpu_ = std::make_unique<ForwardPass>(model_->dense.get(), cpu_experts_.get(), nullptr);
  }
  const ModelConfig& config() const { return model_->config(); }

  // Prefill each golden prompt (in chunks of `chunk` tokens, 0: at once), then
  // `steps` decode steps teacher-forced with the CPU's greedy ids; compares
  // every logits row the CPU and `gpu` produce. Returns the rows compared.
  int CompareWithCpu(DenseDevice& gpu, int64_t chunk, int steps) {
    const ModelConfig& c = config();
    const int64_t V = c.vocab_size;
    int rows = 0, ids_checked = 0;
    double worst = 0;
    for (const auto& golden_case : test::TinyGolden(GetParam())["cases"]) {
      const auto prompt = golden_case["prompt_ids"].get<std::vector<int32_t>>();
      const KvCacheOptions kv_options = KvCache::OptionsForTokens(c, static_cast<int64_t>(prompt.size()) + steps + 1);
      auto cpu_cache = cpu_->CreateKvCache(kv_options);
      auto gpu_cache = gpu.CreateKvCache(kv_options);
      EXPECT_TRUE(cpu_cache.ok() && gpu_cache.ok());
      if (!cpu_cache.ok() || !gpu_cache.ok()) return rows;
      SequenceKv cpu_kv(cpu_cache->get()), gpu_kv(gpu_cache->get());
      std::vector<float> want, got;
      // The prompt, every position's logits.
      {
        SequenceInput in{&cpu_kv, prompt, /*all_logits=*/true};
        EXPECT_TRUE(cpu_->Forward({&in, 1}, &want).ok());
      }
      const int64_t n = static_cast<int64_t>(prompt.size());
      const int64_t step = chunk > 0 ? chunk : n;
      for (int64_t at = 0; at < n; at += step) {
        std::vector<float> part;
        const absl::Span<const int32_t> tokens(prompt.data() + at, std::min(step, n - at));
        SequenceInput in{&gpu_kv, tokens, /*all_logits=*/true};
        const absl::Status st = gpu.Forward({&in, 1}, &part);
        EXPECT_TRUE(st.ok()) << st;
        if (!st.ok()) return rows;
        got.insert(got.end(), part.begin(), part.end());
      }
      EXPECT_EQ(got.size(), want.size());
      if (got.size() != want.size()) return rows;
      std::vector<int32_t> forced;
      auto compare_rows = [&](int64_t count, const std::string& what) {
        for (int64_t r = 0; r < count; ++r) {
          const double e = Nmse(&got[r * V], &want[r * V], V);
          worst = std::max(worst, e);
          EXPECT_LE(e, kMaxNmse) << GetParam() << " " << what << " row " << r;
          const auto [cpu_top, margin] = Top1AndMargin(&want[r * V], V);
          const auto [gpu_top, unused] = Top1AndMargin(&got[r * V], V);
          if (margin > kMarginForEqualIds) {
            EXPECT_EQ(gpu_top, cpu_top) << GetParam() << " " << what << " row " << r << " (margin " << margin << ")";
            ++ids_checked;
          }
          ++rows;
          forced.assign(1, cpu_top);
        }
      };
      compare_rows(n, "prompt " + golden_case["prompt_text"].get<std::string>());
      for (int s = 0; s < steps; ++s) {
        SequenceInput cin{&cpu_kv, forced}, gin{&gpu_kv, forced};
        EXPECT_TRUE(cpu_->Forward({&cin, 1}, &want).ok());
        const absl::Status st = gpu.Forward({&gin, 1}, &got);
        EXPECT_TRUE(st.ok()) << st;
        if (!st.ok()) return rows;
        compare_rows(1, "decode step " + std::to_string(s));
      }
    }
    std::cout << GetParam() << " on " << gpu.name() << ": " << rows << " rows, worst NMSE " << worst << ", "
              << ids_checked << " argmaxes checked\n";
    EXPECT_GT(ids_checked, rows / 2);
    return rows;
  }

  const test::TinyModel* model_ = nullptr;
  std::unique_ptr<LocalExpertBackend> cpu_experts_;
  std::unique_ptr<ForwardPass> cpu_;
};

TEST_P(GpuDenseTest, PromptAndDecodeLogitsMatchTheCpuWithCpuExperts) {
  auto gpu = MakeCudaDenseDevice(model_->dense.get(), cpu_experts_.get(), 0);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  EXPECT_GT(CompareWithCpu(**gpu, /*chunk=*/0, /*steps=*/12), 50);
}

TEST_P(GpuDenseTest, ChunkedPrefillOverEarlierBlocksMatchesTheCpu) {
  auto gpu = MakeCudaDenseDevice(model_->dense.get(), cpu_experts_.get(), 0);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  // Chunks of 3 tokens over blocks of 16: chunks start inside blocks and span them.
  EXPECT_GT(CompareWithCpu(**gpu, /*chunk=*/3, /*steps=*/4), 20);
}

TEST_P(GpuDenseTest, WithTheExpertsOnTheSameGpu) {
  auto shard = ExpertShard::Load(*model_->checkpoint, {});
  ASSERT_TRUE(shard.ok()) << shard.status();
  auto runner = MakeCudaExpertRunner(std::move(*shard), 0);
  ASSERT_TRUE(runner.ok()) << runner.status();
  LocalExpertBackend gpu_experts(runner->get());
  auto gpu = MakeCudaDenseDevice(model_->dense.get(), &gpu_experts, 0);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  EXPECT_GT(CompareWithCpu(**gpu, /*chunk=*/0, /*steps=*/12), 50);
}

TEST_P(GpuDenseTest, TheSameSequenceAloneAndInABatchOfEight) {
  auto gpu = MakeCudaDenseDevice(model_->dense.get(), cpu_experts_.get(), 0);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  const ModelConfig& c = config();
  auto cache = (*gpu)->CreateKvCache(KvCache::OptionsForTokens(c, 64, 9));
  ASSERT_TRUE(cache.ok()) << cache.status();
  std::vector<std::vector<int32_t>> prompts;
  for (int s = 0; s < 8; ++s) {
    std::vector<int32_t> p;
    for (int i = 0; i < 5 + 3 * s; ++i) p.push_back((s * 131 + i * 17 + 3) % static_cast<int32_t>(c.vocab_size));
    prompts.push_back(p);
  }
  std::vector<std::unique_ptr<SequenceKv>> kvs;
  std::vector<SequenceInput> batch;
  for (const auto& p : prompts) {
    kvs.push_back(std::make_unique<SequenceKv>(cache->get()));
    batch.push_back({kvs.back().get(), p});
  }
  std::vector<float> batched;
  ASSERT_TRUE((*gpu)->Forward(batch, &batched).ok());
  for (size_t s = 0; s < prompts.size(); ++s) {
    SequenceKv alone_kv(cache->get());
    SequenceInput in{&alone_kv, prompts[s]};
    std::vector<float> alone;
    ASSERT_TRUE((*gpu)->Forward({&in, 1}, &alone).ok());
    // cuBLAS may pick another algorithm for another batch size: near, not bitwise.
    EXPECT_LE(Nmse(&batched[s * c.vocab_size], alone.data(), c.vocab_size), 1e-6) << "sequence " << s;
  }
}

// Collects one request's tokens.
class Sink : public GenerationSink {
 public:
  void OnToken(const GeneratedToken& t) override {
    absl::MutexLock lock(&mu_);
    tokens.push_back(t);
  }
  void OnFinish(const absl::Status& s, FinishReason, int, int) override {
    absl::MutexLock lock(&mu_);
    status = s;
    done_ = true;
  }
  void Wait() {
    absl::MutexLock lock(&mu_);
    ASSERT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&done_), absl::Seconds(120)));
  }
  std::vector<GeneratedToken> tokens;
  absl::Status status;

 private:
  absl::Mutex mu_;
  bool done_ = false;
};

GenerationRequest Greedy(int r, int64_t vocab) {
  GenerationRequest req;
  req.client_id = "r" + std::to_string(r);
  const bool shared = r % 2 == 0;  // half share a 40-token prefix
  for (int i = 0; i < 40 && shared; ++i) req.prompt.push_back((i * 37 + 11) % static_cast<int32_t>(vocab));
  if (!shared) req.prompt.push_back(r + 1);
  for (int i = 0; i < 1 + (r * 5) % 23; ++i) req.prompt.push_back((r * 131 + i * 17 + 3) % static_cast<int32_t>(vocab));
  req.max_tokens = 10 + r % 9;
  req.sampling.temperature = 0;
  req.sampling.ignore_eos = true;
  req.sampling.top_logprobs = 2;
  return req;
}

TEST_P(GpuDenseTest, SixtyFourConcurrentRequestsWithPreemptionGiveTheirAloneIds) {
  auto gpu = MakeCudaDenseDevice(model_->dense.get(), cpu_experts_.get(), 0);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  const ModelConfig& c = config();
  auto run = [&](int64_t kv_blocks, bool together) {
    EngineOptions o;
    o.kv_cache.enable_prefix_caching = true;
    o.kv_cache.capacity_bytes = kv_blocks * KvCache::BytesPerBlock(c, o.kv_cache.block_size_tokens);
    o.max_batch_tokens = 96;
    auto engine = Engine::Create(gpu->get(), o);
    EXPECT_TRUE(engine.ok()) << engine.status();
    std::vector<std::shared_ptr<Sink>> sinks;
    for (int r = 0; r < 64; ++r) {
      sinks.push_back(std::make_shared<Sink>());
      EXPECT_TRUE((*engine)->Submit(Greedy(r, c.vocab_size), sinks.back()).ok());
      if (!together) sinks.back()->Wait();
    }
    for (auto& s : sinks) s->Wait();
    std::cout << GetParam() << (together ? " together" : " alone") << ": " << (*engine)->Stats().preemptions
              << " preemptions\n";
    if (together) {
      EXPECT_GT((*engine)->Stats().preemptions, 0u);
    }
    return sinks;
  };
  const auto alone = run(4096, /*together=*/false);
  const auto together = run(24, /*together=*/true);  // 24 blocks of 16: preemption is forced
  int checked = 0;
  for (int r = 0; r < 64; ++r) {
    ASSERT_TRUE(together[r]->status.ok()) << together[r]->status;
    ASSERT_EQ(together[r]->tokens.size(), alone[r]->tokens.size());
    for (size_t i = 0; i < alone[r]->tokens.size(); ++i) {
      const auto& top = alone[r]->tokens[i].top_logprobs;
      ASSERT_EQ(top.size(), 2u);
      if (top[0].second - top[1].second <= kMarginForEqualIds) break;  // a near tie: later steps may follow either
      EXPECT_EQ(together[r]->tokens[i].id, alone[r]->tokens[i].id) << "request " << r << " token " << i;
      ++checked;
    }
  }
  EXPECT_GT(checked, 300);
}

TEST_P(GpuDenseTest, AKvCacheLargerThanTheDeviceIsRefusedWithTheSizes) {
  auto gpu = MakeCudaDenseDevice(model_->dense.get(), cpu_experts_.get(), 0);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  KvCacheOptions o;
  o.capacity_bytes = int64_t{1} << 46;  // 64 TiB
  o.block_size_tokens = 4096;
  auto cache = (*gpu)->CreateKvCache(o);
  ASSERT_FALSE(cache.ok());
  EXPECT_EQ(cache.status().code(), absl::StatusCode::kResourceExhausted) << cache.status();
  EXPECT_NE(cache.status().message().find("bytes"), std::string::npos) << cache.status();
}

INSTANTIATE_TEST_SUITE_P(Families, GpuDenseTest, ::testing::ValuesIn(test::TinyFamilies()), test::FamilyName());

TEST(GpuDenseErrorsTest, NoSuchDeviceIsAFailedPrecondition) {
  const test::TinyModel* model = test::LoadTinyModel("mixtral");
  ASSERT_NE(model, nullptr);
  LocalExpertBackend experts(model->shard.get(), nullptr);
  auto gpu = MakeCudaDenseDevice(model->dense.get(), &experts, 255);
  ASSERT_FALSE(gpu.ok());
  EXPECT_EQ(gpu.status().code(), absl::StatusCode::kFailedPrecondition) << gpu.status();
  EXPECT_NE(gpu.status().message().find("cuda:255"), std::string::npos) << gpu.status();
}

}  // namespace
}  // namespace moe
