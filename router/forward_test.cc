#include "router/forward.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "core/safetensors.h"
#include "experts/expert_shard.h"
#include "experts/local_expert_backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "absl/synchronization/mutex.h"
#include "router/engine.h"
#include "router/generated_token.h"
#include "tools/model_tool.h"
#include "tests/tiny_models.h"

namespace moe {
namespace {

// Every test runs on the tiny checkpoint of every supported family.
class TinyModelTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() { pool_ = new ThreadPool(2); }
  void SetUp() override {
    model_ = test::LoadTinyModel(GetParam());
    ASSERT_NE(model_, nullptr);
  }

  // A fresh forward pass over the shared weights.
  std::unique_ptr<ForwardPass> MakeForward() {
    backends_.push_back(std::make_unique<LocalExpertBackend>(model_->shard.get(), pool_));
    return std::make_unique<ForwardPass>(model_->dense.get(), backends_.back().get(), pool_);
  }
  const ModelConfig& config() const { return model_->config(); }
  // A paged cache with room for a few sequences of the whole context.
  std::unique_ptr<KvCache> Cache(int64_t block_size_tokens = 16, bool prefix_caching = false) {
    KvCacheOptions o;
    o.block_size_tokens = block_size_tokens;
    o.enable_prefix_caching = prefix_caching;
    o.capacity_bytes = KvCache::BytesPerBlock(config(), block_size_tokens) *
                       (8 * config().max_position_embeddings / block_size_tokens + 8);
    auto cache = KvCache::Create(config(), o);
    EXPECT_TRUE(cache.ok()) << cache.status();
    return std::move(cache).value();
  }

  nlohmann::json Golden() const { return test::TinyGolden(GetParam()); }

  static inline ThreadPool* pool_ = nullptr;
  const test::TinyModel* model_ = nullptr;
  std::vector<std::unique_ptr<LocalExpertBackend>> backends_;
};

INSTANTIATE_TEST_SUITE_P(Families, TinyModelTest, ::testing::ValuesIn(test::TinyFamilies()), test::FamilyName());

TEST_P(TinyModelTest, GreedyIdsAndLogprobsMatchGolden) {
  const nlohmann::json golden = Golden();
  ASSERT_EQ(golden["cases"].size(), 6u);
  double worst = 0;
  for (const auto& c : golden["cases"]) {
    const std::vector<int32_t> prompt = c["prompt_ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> want = c["greedy_ids"].get<std::vector<int32_t>>();
    auto fwd = MakeForward();
    auto cache = Cache();
    SequenceKv kv(cache.get());
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
  std::cout << GetParam() << ": max |logprob - golden| = " << worst << "\n";
}

// The engine (what the router and moe-generate run) streams the golden
// continuation with sorted top log-probabilities.
class CollectTokens : public GenerationSink {
 public:
  void OnToken(const GeneratedToken& t) override {
    absl::MutexLock lock(&mu_);
    tokens_.push_back(t);
  }
  void OnFinish(const absl::Status& status, FinishReason, int, int) override {
    absl::MutexLock lock(&mu_);
    status_ = status;
    done_ = true;
  }
  std::vector<GeneratedToken> Wait() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
    EXPECT_TRUE(status_.ok()) << status_;
    return tokens_;
  }

 private:
  absl::Mutex mu_;
  std::vector<GeneratedToken> tokens_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

TEST_P(TinyModelTest, EngineStreamsTheGoldenContinuation) {
  const nlohmann::json golden = Golden();
  auto fwd = MakeForward();
  EngineOptions options;
  options.kv_cache.capacity_bytes = 64 * KvCache::BytesPerBlock(config(), options.kv_cache.block_size_tokens);
  auto engine = Engine::Create(fwd.get(), options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  for (const auto& c : golden["cases"]) {
    GenerationRequest r;
    r.prompt = c["prompt_ids"].get<std::vector<int32_t>>();
    r.max_tokens = 16;
    r.sampling.temperature = 0;
    r.sampling.top_logprobs = 5;
    r.sampling.ignore_eos = true;
    auto sink = std::make_shared<CollectTokens>();
    ASSERT_TRUE((*engine)->Submit(r, sink).ok());
    std::vector<int32_t> got;
    for (const GeneratedToken& t : sink->Wait()) {
      got.push_back(t.id);
      ASSERT_EQ(t.top_logprobs.size(), 5u);
      EXPECT_EQ(t.top_logprobs[0].first, t.id);
      for (size_t i = 1; i < 5; ++i) EXPECT_GE(t.top_logprobs[i - 1].second, t.top_logprobs[i].second);
    }
    EXPECT_EQ(got, c["greedy_ids"].get<std::vector<int32_t>>()) << c["prompt_text"];
  }
}

std::vector<int32_t> Prompt(int len, int salt) {
  std::vector<int32_t> p;
  for (int i = 0; i < len; ++i) p.push_back((i * 131 + salt * 977 + 7) % 4093);
  return p;
}

TEST_P(TinyModelTest, LogitsAreBitwiseTheSameAloneOrBatchedWithSevenOthers) {
  const std::vector<int32_t> target = Prompt(23, 0);
  auto alone = MakeForward();
  auto cache = Cache();
  SequenceKv kv_alone(cache.get());
  std::vector<float> ref;
  SequenceInput in{&kv_alone, target, /*all_logits=*/true};
  ASSERT_TRUE(alone->Forward({&in, 1}, &ref).ok());

  std::vector<std::vector<int32_t>> prompts;
  for (int s = 1; s <= 7; ++s) prompts.push_back(Prompt(3 + 5 * s, s));
  prompts.insert(prompts.begin() + 3, target);
  std::vector<std::unique_ptr<SequenceKv>> kvs;
  std::vector<SequenceInput> batch;
  for (const auto& p : prompts) {
    kvs.push_back(std::make_unique<SequenceKv>(cache.get()));
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

TEST_P(TinyModelTest, PrefillAtOnceEqualsTokenByToken) {
  const std::vector<int32_t> prompt = Prompt(40, 9);
  auto once = MakeForward();
  auto cache = Cache();
  SequenceKv kv1(cache.get());
  std::vector<float> a;
  SequenceInput in{&kv1, prompt};
  ASSERT_TRUE(once->Forward({&in, 1}, &a).ok());

  auto stepwise = MakeForward();
  SequenceKv kv2(cache.get());
  std::vector<float> b;
  for (size_t i = 0; i < prompt.size(); i += (i % 3) + 1) {  // chunks of 1, 2, 3 ... tokens
    const size_t n = std::min(prompt.size() - i, (i % 3) + 1);
    SequenceInput chunk{&kv2, absl::Span<const int32_t>(prompt).subspan(i, n)};
    ASSERT_TRUE(stepwise->Forward({&chunk, 1}, &b).ok());
  }
  ASSERT_EQ(kv1.length(), kv2.length());
  ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
}

// Prefill in uneven chunks, then a few decode steps; every row of logits.
std::vector<float> RunPaged(ForwardPass& fwd, SequenceKv& kv, const std::vector<int32_t>& prompt,
                            const std::vector<int32_t>& decode, SequenceKv* interleaved = nullptr) {
  std::vector<float> all, out;
  const int32_t filler = 5;
  for (size_t i = 0; i < prompt.size();) {
    const size_t n = std::min(prompt.size() - i, 1 + (i * 7) % 11);
    std::vector<SequenceInput> batch = {{&kv, absl::Span<const int32_t>(prompt).subspan(i, n), /*all_logits=*/true}};
    // Another sequence growing at the same time makes the blocks non-contiguous.
    if (interleaved != nullptr) batch.push_back({interleaved, {&filler, 1}, /*all_logits=*/false, /*no_logits=*/true});
    EXPECT_TRUE(fwd.Forward(batch, &out).ok());
    all.insert(all.end(), out.begin(), out.end());
    i += n;
  }
  for (const int32_t& id : decode) {
    SequenceInput in{&kv, {&id, 1}};
    EXPECT_TRUE(fwd.Forward({&in, 1}, &out).ok());
    all.insert(all.end(), out.begin(), out.end());
  }
  return all;
}

TEST_P(TinyModelTest, LogitsAreBitwiseTheSameWhateverTheBlockSizeAndLayout) {
  const std::vector<int32_t> prompt = Prompt(45, 3);
  const std::vector<int32_t> decode = {11, 22, 33, 44, 55, 66, 77};
  auto fwd = MakeForward();
  // Reference: one block holds the whole sequence (the contiguous layout).
  auto contiguous = Cache(/*block_size_tokens=*/64);
  SequenceKv ref_kv(contiguous.get());
  const std::vector<float> ref = RunPaged(*fwd, ref_kv, prompt, decode);
  ASSERT_EQ(ref_kv.blocks().size(), 1u);
  for (int64_t bs : {1, 3, 16}) {
    auto cache = Cache(bs);
    SequenceKv other(cache.get());
    SequenceKv kv(cache.get());
    const std::vector<float> got = RunPaged(*fwd, kv, prompt, decode, &other);
    ASSERT_EQ(got.size(), ref.size());
    EXPECT_EQ(0, std::memcmp(got.data(), ref.data(), ref.size() * sizeof(float))) << "block size " << bs;
    if (bs == 1) {
      ASSERT_GE(kv.blocks().size(), 2u);
      EXPECT_NE(kv.blocks()[1], kv.blocks()[0] + 1);  // really interleaved
    }
  }
}

TEST_P(TinyModelTest, PrefixCacheHitGivesTheSameLogitsAsRecomputing) {
  auto fwd = MakeForward();
  const std::vector<int32_t> a = Prompt(40, 4);
  std::vector<int32_t> b(a.begin(), a.begin() + 35);
  for (int i = 0; i < 10; ++i) b.push_back(900 + i);

  // Reference: b computed from scratch, no prefix caching.
  auto plain = Cache(/*block_size_tokens=*/8);
  SequenceKv ref_kv(plain.get());
  std::vector<float> ref;
  SequenceInput ref_in{&ref_kv, b, /*all_logits=*/true};
  ASSERT_TRUE(fwd->Forward({&ref_in, 1}, &ref).ok());

  auto cache = Cache(/*block_size_tokens=*/8, /*prefix_caching=*/true);
  SequenceKv kv_a(cache.get());
  std::vector<float> out;
  SequenceInput in_a{&kv_a, a};
  ASSERT_TRUE(fwd->Forward({&in_a, 1}, &out).ok());
  kv_a.RegisterFullBlocks(a);
  EXPECT_EQ(cache->num_used_blocks(), 5);

  SequenceKv kv_b(cache.get());
  // Blocks 0-3 (positions 0-31) match; block 4 holds a's 32-39, b differs at 35.
  ASSERT_EQ(kv_b.AttachCachedPrefix(b, static_cast<int64_t>(b.size()) - 1), 32);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(kv_b.blocks()[i], kv_a.blocks()[i]);
  EXPECT_EQ(cache->num_used_blocks(), 5);
  SequenceInput in_b{&kv_b, absl::Span<const int32_t>(b).subspan(32), /*all_logits=*/true};
  ASSERT_TRUE(fwd->Forward({&in_b, 1}, &out).ok());
  const size_t V = static_cast<size_t>(config().vocab_size);
  ASSERT_EQ(out.size(), (b.size() - 32) * V);
  EXPECT_EQ(0, std::memcmp(out.data(), ref.data() + 32 * V, out.size() * sizeof(float)));

  // After a is gone its blocks stay cached; a third copy of a hits all but the last.
  kv_a.Release();
  EXPECT_EQ(cache->num_cached_blocks(), 1);  // block 4; blocks 0-3 are still held by b
  SequenceKv kv_c(cache.get());
  EXPECT_EQ(kv_c.AttachCachedPrefix(a, static_cast<int64_t>(a.size()) - 1), 32);
  EXPECT_EQ(kv_c.AttachCachedPrefix(a, static_cast<int64_t>(a.size())), 32);  // not on a non-empty sequence
  SequenceKv kv_d(cache.get());
  EXPECT_EQ(kv_d.AttachCachedPrefix(a, static_cast<int64_t>(a.size())), 40);
}

TEST_P(TinyModelTest, TooFewFreeBlocksIsResourceExhaustedAndAppendsNothing) {
  auto fwd = MakeForward();
  KvCacheOptions o;
  o.block_size_tokens = 16;
  o.capacity_bytes = 2 * KvCache::BytesPerBlock(config(), 16);
  auto cache = KvCache::Create(config(), o);
  ASSERT_TRUE(cache.ok()) << cache.status();
  SequenceKv small((*cache).get()), big((*cache).get());
  const std::vector<int32_t> p10 = Prompt(10, 1), p40 = Prompt(40, 2);
  std::vector<SequenceInput> batch = {{&small, p10}, {&big, p40}};
  std::vector<float> logits;
  const absl::Status s = fwd->Forward(batch, &logits);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("needs 3 more blocks, 1 are free"));
  EXPECT_EQ(small.length(), 0);
  EXPECT_EQ(big.length(), 0);
  EXPECT_EQ((*cache)->num_used_blocks(), 0);
  EXPECT_TRUE(fwd->Forward({&batch[0], 1}, &logits).ok());
  EXPECT_EQ(small.length(), 10);
}

TEST_P(TinyModelTest, CountsTokensPerExpertPerLayer) {
  auto fwd = MakeForward();
  auto cache = Cache();
  SequenceKv kv(cache.get());
  const std::vector<int32_t> prompt = Prompt(12, 5);
  std::vector<float> logits;
  SequenceInput in{&kv, prompt};
  ASSERT_TRUE(fwd->Forward({&in, 1}, &logits).ok());
  const std::vector<uint64_t> counts = fwd->ExpertTokenCounts();
  ASSERT_EQ(counts.size(), static_cast<size_t>(config().num_hidden_layers * config().num_experts));
  for (int l = 0; l < config().num_hidden_layers; ++l) {
    uint64_t sum = 0;
    for (int e = 0; e < config().num_experts; ++e) sum += counts[l * config().num_experts + e];
    EXPECT_EQ(sum, 12u * config().num_experts_per_tok) << "layer " << l;
  }
}

// The engine validates requests; Forward only checks the invariant, and a
// broken one is INTERNAL, with nothing appended.
TEST_P(TinyModelTest, ATokenOutsideTheVocabularyIsABrokenInvariant) {
  auto fwd = MakeForward();
  auto cache = Cache();
  SequenceKv kv(cache.get());
  const std::vector<int32_t> bad = {1, 4096};
  std::vector<float> logits;
  SequenceInput in{&kv, bad};
  const absl::Status s = fwd->Forward({&in, 1}, &logits);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("invariant broken"));
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("4096"));
  EXPECT_EQ(kv.length(), 0);
  EXPECT_EQ(cache->num_used_blocks(), 0);
}

// ---------------------------------------------------------------------------
// Switches no golden fixture exercises (dense MLP layers, o_proj biases,
// clip_qkv), checked against equivalent checkpoints built by make-tiny.

class FamilySwitchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/forward_test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Make(const std::string& name, MakeTinyOptions o) {
    o.out_dir = dir_ + "/" + name;
    o.hidden = 64;
    o.vocab = 512;
    o.seed = 7;
    const absl::Status s = MakeTinyModel(o);
    EXPECT_TRUE(s.ok()) << s;
    return o.out_dir;
  }

  // Rewrites DIR/model.safetensors with every tensor's bytes from `source`'s
  // checkpoint, under the name `rename` gives (identity when it returns "").
  // `zero` tensors are written as zeros.
  void CopyWeights(const std::string& dir, const std::string& source,
                   const std::function<std::string(const std::string&)>& rename,
                   const std::function<bool(const std::string&)>& zero = nullptr) {
    auto from = Checkpoint::Open(source);
    ASSERT_TRUE(from.ok()) << from.status();
    auto config = LoadModelConfig(dir);
    ASSERT_TRUE(config.ok()) << config.status();
    std::vector<TensorToWrite> tensors;
    for (const ExpectedTensor& t : ExpectedTensors(*config)) {
      std::string name = rename(t.name);
      if (name.empty()) name = t.name;
      auto view = (*from)->store().Get(name, t.shape);
      if (!view.ok() && zero && zero(t.name)) {
        int64_t n = 1;
        for (int64_t d : t.shape) n *= d;
        tensors.push_back({t.name, DType::kBF16, t.shape, std::string(static_cast<size_t>(n) * 2, '\0')});
        continue;
      }
      ASSERT_TRUE(view.ok()) << view.status();
      std::string bytes(reinterpret_cast<const char*>(view->data), view->nbytes());
      if (zero && zero(t.name)) bytes.assign(bytes.size(), '\0');
      tensors.push_back({t.name, view->dtype(), t.shape, std::move(bytes)});
    }
    ASSERT_TRUE(WriteSafetensors(dir + "/model.safetensors", tensors).ok());
  }

  // All logits of a 20-token prompt and 3 decode steps, in process.
  static std::vector<float> Logits(const std::string& dir, std::vector<uint64_t>* expert_counts = nullptr) {
    auto ckpt = Checkpoint::Open(dir);
    EXPECT_TRUE(ckpt.ok()) << ckpt.status();
    if (!ckpt.ok()) return {};
    auto dense = DenseModel::Load(**ckpt);
    auto shard = ExpertShard::Load(**ckpt, {});
    EXPECT_TRUE(dense.ok() && shard.ok());
    LocalExpertBackend experts(shard->get(), nullptr);
    ForwardPass fwd(dense->get(), &experts, nullptr);
    KvCacheOptions o;
    o.block_size_tokens = 16;
    o.capacity_bytes = 8 * KvCache::BytesPerBlock((*ckpt)->config(), 16);
    auto cache = KvCache::Create((*ckpt)->config(), o);
    SequenceKv kv(cache->get());
    std::vector<int32_t> prompt;
    for (int i = 0; i < 20; ++i) prompt.push_back((i * 53 + 11) % 509);
    std::vector<float> all, out;
    SequenceInput in{&kv, prompt, /*all_logits=*/true};
    EXPECT_TRUE(fwd.Forward({&in, 1}, &all).ok());
    for (int32_t id : {7, 300, 42}) {
      SequenceInput step{&kv, {&id, 1}};
      EXPECT_TRUE(fwd.Forward({&step, 1}, &out).ok());
      all.insert(all.end(), out.begin(), out.end());
    }
    if (expert_counts != nullptr) *expert_counts = fwd.ExpertTokenCounts();
    return all;
  }

  static bool Same(const std::vector<float>& a, const std::vector<float>& b) {
    return !a.empty() && a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
  }

  std::string dir_;
};

// A dense MLP layer computes exactly what a one-expert MoE layer with the same
// weights does (the gate's weight is then exactly 1).
TEST_F(FamilySwitchTest, DenseMlpLayerEqualsAOneExpertLayerWithItsWeights) {
  MakeTinyOptions o;
  o.family = "qwen3_moe";
  o.experts = 1;
  o.top_k = 1;
  o.ffn = 96;
  const std::string moe = Make("moe", o);
  o.mlp_only_layers = {0};
  o.dense_ffn = 96;
  const std::string dense = Make("dense", o);
  CopyWeights(dense, moe, [](const std::string& name) -> std::string {
    const std::string prefix = "model.layers.0.mlp.";
    for (const char* proj : {"gate_proj", "down_proj", "up_proj"}) {
      if (name == prefix + proj + ".weight") return prefix + "experts.0." + proj + ".weight";
    }
    return "";
  });
  std::vector<uint64_t> counts;
  const std::vector<float> a = Logits(moe), b = Logits(dense, &counts);
  EXPECT_TRUE(Same(a, b));
  ASSERT_EQ(counts.size(), 2u);  // [layer * experts + expert]
  EXPECT_EQ(counts[0], 0u);      // nothing routed in the dense layer
  EXPECT_EQ(counts[1], 23u);

  // The dense layer's weights are used: other weights, other logits.
  const std::string other = Make("other", o);
  EXPECT_FALSE(Same(Logits(other), b));
}

// With attention_bias, Qwen3-MoE and OLMoE add biases on q, k, v and o: zero
// biases change nothing, each non-zero one changes the logits.
TEST_F(FamilySwitchTest, AttentionBiasesIncludingOProjAreApplied) {
  for (const std::string family : {"qwen3_moe", "olmoe"}) {
    SCOPED_TRACE(family);
    MakeTinyOptions o;
    o.family = family;
    const std::string plain = Make(family + "-plain", o);
    o.attention_bias = true;
    const std::string zero = Make(family + "-zero", o);
    auto is_bias = [](const std::string& n) { return n.size() > 5 && n.substr(n.size() - 5) == ".bias"; };
    CopyWeights(zero, plain, [](const std::string&) { return std::string(); }, is_bias);
    const std::vector<float> base = Logits(plain);
    EXPECT_TRUE(Same(Logits(zero), base));
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
      const std::string only = Make(family + "-" + proj, o);
      const std::string keep = std::string("self_attn.") + proj + ".bias";
      CopyWeights(only, Make(family + "-" + proj + "-src", o), [](const std::string&) { return std::string(); },
                  [&](const std::string& n) { return is_bias(n) && n.find(keep) == std::string::npos; });
      EXPECT_FALSE(Same(Logits(only), base)) << proj << " bias not applied";
    }
  }
}

// OLMoE's clip_qkv clamps q, k and v: a bound above every value changes
// nothing, a tight one changes the logits.
TEST_F(FamilySwitchTest, OlmoeClipQkv) {
  MakeTinyOptions o;
  o.family = "olmoe";
  const std::vector<float> base = Logits(Make("plain", o));
  o.clip_qkv = 1e30;
  EXPECT_TRUE(Same(Logits(Make("loose", o)), base));
  o.clip_qkv = 0.05;
  EXPECT_FALSE(Same(Logits(Make("tight", o)), base));
}

}  // namespace
}  // namespace moe
