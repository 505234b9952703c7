// The CUDA ExpertRunner against the CPU one on the same rows (ctest label
// gpu). Without a GPU (or in a build without CUDA) every test reports SKIPPED
// with the reason.
#include "experts/cuda_expert_runner.h"

#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "core/dtype.h"
#include "experts/cpu_expert_runner.h"
#include "gtest/gtest.h"
#include "tools/model_tool.h"

namespace moe {
namespace {

// $MOE_TESTDATA_DIR when set (the GPU machine runs a copy of the tree).
std::string Testdata() {
  const char* env = std::getenv("MOE_TESTDATA_DIR");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string(MOE_TESTDATA_DIR);
}

struct Model {
  std::unique_ptr<Checkpoint> checkpoint;
  std::unique_ptr<ExpertRunner> gpu;
  std::unique_ptr<CpuExpertRunner> cpu;
  std::string skip;  // why there is no GPU runner
};

// Loads `dir` on the CPU and on cuda:0.
Model Load(const std::string& dir) {
  Model m;
  auto ckpt = Checkpoint::Open(dir);
  EXPECT_TRUE(ckpt.ok()) << ckpt.status();
  if (!ckpt.ok()) return m;
  m.checkpoint = std::move(ckpt).value();
  auto shard = ExpertShard::Load(*m.checkpoint, {});
  auto cpu_shard = ExpertShard::Load(*m.checkpoint, {});
  EXPECT_TRUE(shard.ok() && cpu_shard.ok());
  m.cpu = std::make_unique<CpuExpertRunner>(std::move(cpu_shard).value(), CpuExpertOptions{});
  auto gpu = MakeCudaExpertRunner(std::move(shard).value(), 0);
  if (!gpu.ok()) {
    m.skip = std::string(gpu.status().message());
    EXPECT_EQ(gpu.status().code(), absl::StatusCode::kFailedPrecondition) << gpu.status();
    return m;
  }
  m.gpu = std::move(gpu).value();
  return m;
}

// GPU vs CPU over one call of `ids` (layer `layer`), bf16-appropriate bounds.
void Compare(ExpertRunner& gpu, ExpertRunner& cpu, int64_t h, int layer, const std::vector<uint32_t>& ids,
             uint32_t seed) {
  const int64_t n = static_cast<int64_t>(ids.size());
  std::mt19937 rng(seed);
  std::normal_distribution<float> z(0, 1);
  std::vector<float> x(n * h);
  for (float& v : x) v = z(rng);
  ExpertRows rows;
  rows.layer = layer;
  rows.hidden = h;
  rows.num_rows = n;
  rows.x = x.data();
  rows.expert_ids = ids.data();
  std::vector<float> ref(n * h), got(n * h, std::nanf(""));
  ASSERT_TRUE(cpu.Run(rows, ref.data()).ok());
  const absl::Status s = gpu.Run(rows, got.data());
  ASSERT_TRUE(s.ok()) << s;
  double err2 = 0, ref2 = 0;
  for (int64_t i = 0; i < n * h; ++i) {
    ASSERT_TRUE(std::isfinite(got[i])) << "element " << i;
    err2 += (got[i] - ref[i]) * static_cast<double>(got[i] - ref[i]);
    ref2 += ref[i] * static_cast<double>(ref[i]);
  }
  const double rms = std::sqrt(ref2 / static_cast<double>(n * h));
  EXPECT_LE(err2 / std::max(ref2, 1e-30), 5e-4) << n << " rows";
  int bad = 0;
  for (int64_t i = 0; i < n * h; ++i) {
    const double d = std::abs(got[i] - ref[i]);
    if (d > 0.02 * rms + 0.016 * std::abs(ref[i]) && ++bad <= 5) {
      ADD_FAILURE() << "row " << i / h << " col " << i % h << ": gpu " << got[i] << ", cpu " << ref[i];
    }
  }
  EXPECT_EQ(bad, 0) << n << " rows";
}

void Compare(Model& m, int layer, const std::vector<uint32_t>& ids, uint32_t seed) {
  Compare(*m.gpu, *m.cpu, m.checkpoint->config().hidden_size, layer, ids, seed);
}

TEST(CudaExpertRunnerTest, MatchesTheCpuRunnerOnAwkwardShapes) {
  Model m = Load(Testdata() + "/tiny-qwen3_moe");  // 8 experts, hidden 128, ffn 128
  if (m.gpu == nullptr) GTEST_SKIP() << m.skip;
  std::cout << "device: " << m.gpu->device() << "\n";
  std::mt19937 rng(3);
  for (int64_t n : {1, 3, 17, 127, 4096, 5000}) {
    std::vector<uint32_t> random(n), one(n, 5), some(n);
    for (int64_t i = 0; i < n; ++i) {
      random[i] = rng() % 8;
      some[i] = (rng() % 2) * 7;  // experts 0 and 7 only: the others get no rows
    }
    for (const auto* ids : {&random, &one, &some}) Compare(m, static_cast<int>(n % 2), *ids, static_cast<uint32_t>(n));
  }
}

TEST(CudaExpertRunnerTest, HiddenNotAMultipleOf64) {
  char pattern[] = "/tmp/cuda_runner_test.XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  MakeTinyOptions o;
  o.out_dir = std::string(pattern) + "/m";
  o.family = "qwen3_moe";
  o.hidden = 72;
  o.heads = 4;
  o.head_dim = 18;
  o.ffn = 100;
  o.vocab = 300;
  ASSERT_TRUE(MakeTinyModel(o).ok());
  Model m = Load(o.out_dir);
  if (m.gpu == nullptr) GTEST_SKIP() << m.skip;
  std::mt19937 rng(4);
  for (int64_t n : {1, 33, 300}) {
    std::vector<uint32_t> ids(n);
    for (auto& e : ids) e = rng() % 8;
    Compare(m, 1, ids, static_cast<uint32_t>(n));
  }
}

// f16 experts stay f16 on the GPU (GEMMs in f16, f32 accumulate).
TEST(CudaExpertRunnerTest, F16ExpertsMatchTheCpuRunner) {
  ModelConfig c;
  c.hidden_size = 96;
  c.intermediate_size = 64;
  c.num_hidden_layers = 1;
  c.num_experts = 4;
  c.num_experts_per_tok = 2;
  std::mt19937 rng(8);
  std::normal_distribution<float> z(0, 1);
  std::vector<std::vector<uint16_t>> store;
  std::map<ExpertKey, FfnWeights> views;
  auto make = [&](int64_t rows, int64_t cols) {
    store.emplace_back(static_cast<size_t>(rows * cols));
    for (uint16_t& v : store.back()) v = F32ToF16(z(rng) / std::sqrt(static_cast<float>(cols)));
    return WeightView{store.back().data(), DType::kF16, rows, cols};
  };
  store.reserve(12);
  for (int e = 0; e < 4; ++e) {
    FfnWeights w;
    w.gate = make(64, 96);
    w.up = make(64, 96);
    w.down = make(96, 64);
    views[{0, e}] = w;
  }
  const std::map<ExpertKey, FfnWeights> copy = views;
  auto gpu = MakeCudaExpertRunner(ExpertShard::FromWeights(c, std::move(views)), 0);
  if (!gpu.ok()) GTEST_SKIP() << gpu.status().message();
  EXPECT_EQ((*gpu)->weight_dtype(), "F16");
  CpuExpertRunner cpu(ExpertShard::FromWeights(c, copy), CpuExpertOptions{});
  std::vector<uint32_t> ids(77);
  for (auto& e : ids) e = rng() % 4;
  Compare(**gpu, cpu, c.hidden_size, 0, ids, 77);
}

// Experts larger than the GPU: refused at load, naming the bytes needed and
// free, before any weight is read (the views here point at a small buffer).
TEST(CudaExpertRunnerTest, ExpertsLargerThanTheGpuAreRefusedAtLoadNamingTheBytes) {
  ModelConfig c;
  c.hidden_size = 16384;
  c.intermediate_size = 65536;
  c.num_hidden_layers = 1;
  c.num_experts = 64;
  c.num_experts_per_tok = 2;
  static const uint16_t kTiny[8] = {};
  std::map<ExpertKey, FfnWeights> views;
  for (int e = 0; e < 64; ++e) {
    FfnWeights w;
    w.gate = {kTiny, DType::kBF16, c.intermediate_size, c.hidden_size};
    w.up = w.gate;
    w.down = {kTiny, DType::kBF16, c.hidden_size, c.intermediate_size};
    views[{0, e}] = w;
  }
  auto r = MakeCudaExpertRunner(ExpertShard::FromWeights(c, std::move(views)), 0);  // 412 GB of weights
  ASSERT_FALSE(r.ok());
  if (r.status().code() == absl::StatusCode::kFailedPrecondition) GTEST_SKIP() << r.status().message();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_NE(std::string(r.status().message()).find("412316860416 of weights"), std::string::npos) << r.status();
  EXPECT_NE(std::string(r.status().message()).find("are free"), std::string::npos) << r.status();
}

TEST(CudaExpertRunnerTest, ABadOrdinalIsAClearError) {
  auto ckpt = Checkpoint::Open(Testdata() + "/tiny-mixtral");
  ASSERT_TRUE(ckpt.ok());
  auto shard = ExpertShard::Load(**ckpt, {});
  ASSERT_TRUE(shard.ok());
  auto r = MakeCudaExpertRunner(std::move(shard).value(), 200);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(r.status().message()).find("cuda:200"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace moe
