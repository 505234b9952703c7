// The NCCL expert transport on one GPU (ctest label gpu; SKIPPED with the
// reason without a GPU): a single-rank communicator, the router sending to
// itself through the same phases as with workers, against the gRPC transport
// (a worker on the same GPU, in this process) and against the in-process
// runner: a transport only moves bytes, so logits are bitwise equal. A
// stalled peer (simulated: the in-process side posts no receive) is aborted
// within the deadline, and the next exchange succeeds on a rebuilt
// communicator. The router's refusals need no GPU and run everywhere.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "expert_worker/worker_server.h"
#include "experts/cuda_expert_runner.h"
#include "experts/local_expert_backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "router/cuda/cuda_dense_device.h"
#include "router/cuda/nccl_experts.h"
#include "router/forward.h"
#include "router/remote_experts.h"
#include "router/router.h"
#include "tests/tiny_models.h"

namespace moe {
namespace {

using ::testing::HasSubstr;

// Every golden prompt of the model (or a synthetic one) prefilled, then
// `steps` greedy decode steps: every logits row, concatenated.
std::vector<float> Logits(DenseDevice& device, const std::vector<std::vector<int32_t>>& prompts, int steps) {
  const ModelConfig& c = device.config();
  std::vector<float> all;
  for (const auto& prompt : prompts) {
    auto cache = device.CreateKvCache(KvCache::OptionsForTokens(c, static_cast<int64_t>(prompt.size()) + steps + 1));
    EXPECT_TRUE(cache.ok()) << cache.status();
    if (!cache.ok()) return all;
    SequenceKv kv(cache->get());
    std::vector<float> logits;
    SequenceInput in{&kv, prompt};
    EXPECT_TRUE(device.Forward({&in, 1}, &logits).ok());
    for (int s = 0; s <= steps; ++s) {
      all.insert(all.end(), logits.begin(), logits.end());
      if (s == steps || logits.empty()) break;
      const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      SequenceInput step{&kv, {&next, 1}};
      const absl::Status st = device.Forward({&step, 1}, &logits);
      EXPECT_TRUE(st.ok()) << st;
      if (!st.ok()) break;
    }
  }
  return all;
}

std::vector<std::vector<int32_t>> Prompts(const std::string& model_dir, const ModelConfig& c) {
  std::vector<std::vector<int32_t>> prompts;
  std::ifstream golden(model_dir + "/golden.json");
  if (golden) {
    for (const auto& g : nlohmann::json::parse(golden)["cases"]) prompts.push_back(g["prompt_ids"]);
  } else {
    for (int p = 0; p < 3; ++p) {
      std::vector<int32_t> ids;
      for (int i = 0; i < 24 + 40 * p; ++i) ids.push_back((i * 7919 + p * 104729 + 13) % (c.vocab_size - 3));
      prompts.push_back(ids);
    }
  }
  return prompts;
}

// The same model's logits through three expert paths on cuda:0: the CUDA
// runner in process, NCCL (one rank), and gRPC to a worker on the GPU.
void ExpectTransportsBitwiseEqual(const std::string& model_dir, bool dense_on_gpu) {
  auto checkpoint = Checkpoint::Open(model_dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  auto dense = DenseModel::Load(**checkpoint);
  ASSERT_TRUE(dense.ok()) << dense.status();
  auto shard = ExpertShard::Load(**checkpoint, {});
  ASSERT_TRUE(shard.ok()) << shard.status();
  auto runner = MakeCudaExpertRunner(std::move(*shard), 0);
  ASSERT_TRUE(runner.ok()) << runner.status();
  const ModelConfig& c = (*checkpoint)->config();
  LocalExpertBackend local(runner->get());
  NcclExpertsOptions no;
  no.local_runner = runner->get();
  auto nccl = MakeNcclExpertBackend(c, no);
  ASSERT_TRUE(nccl.ok()) << nccl.status();
  ExpertWorkerOptions wo;
  wo.device = "cuda:0";
  auto worker = ExpertWorkerServer::Start(**checkpoint, {}, wo);
  ASSERT_TRUE(worker.ok()) << worker.status();
  RemoteExpertsOptions ro;
  ro.worker_addresses = {(*worker)->address()};
  auto grpc = RemoteExpertBackend::Connect(c, ro);
  ASSERT_TRUE(grpc.ok()) << grpc.status();
  ThreadPool pool(2);
  auto device_for = [&](ExpertBackend* experts) -> std::unique_ptr<DenseDevice> {
    if (!dense_on_gpu) return std::make_unique<ForwardPass>(dense->get(), experts, &pool);
    auto d = MakeCudaDenseDevice(dense->get(), experts, 0);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? std::move(*d) : nullptr;
  };
  const auto prompts = Prompts(model_dir, c);
  std::vector<std::vector<float>> logits;
  for (ExpertBackend* experts : {static_cast<ExpertBackend*>(&local), nccl->get(), static_cast<ExpertBackend*>(grpc->get())}) {
    std::unique_ptr<DenseDevice> device = device_for(experts);
    ASSERT_NE(device, nullptr);
    logits.push_back(Logits(*device, prompts, 6));
  }
  ASSERT_FALSE(logits[0].empty());
  EXPECT_TRUE(logits[1] == logits[0]) << "NCCL vs the in-process runner differ";
  EXPECT_TRUE(logits[1] == logits[2]) << "NCCL vs gRPC differ";
  std::cout << model_dir << (dense_on_gpu ? " (dense on the GPU)" : " (dense on the CPU)") << ": "
            << logits[0].size() / c.vocab_size << " logits rows bitwise equal over the three paths\n";
}

class GpuNcclTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (absl::Status s = CudaDeviceUsable(0); !s.ok()) GTEST_SKIP() << s.message();
  }
};

TEST_F(GpuNcclTest, OneRankIsBitwiseTheGrpcTransportOnTheTinyModel) {
  ExpectTransportsBitwiseEqual(test::TinyModelDir("mixtral"), /*dense_on_gpu=*/false);
  ExpectTransportsBitwiseEqual(test::TinyModelDir("mixtral"), /*dense_on_gpu=*/true);
}

TEST_F(GpuNcclTest, OneRankIsBitwiseTheGrpcTransportOnTheMixtralShapedModel) {
  // Made by scripts/device-check.sh (moe-model make-tiny, 12 GB): not in the repository.
  const char* dir = std::getenv("MOE_GPU_BENCH_MODEL");
  if (dir == nullptr || *dir == '\0') GTEST_SKIP() << "MOE_GPU_BENCH_MODEL is not set (the device check sets it)";
  ExpectTransportsBitwiseEqual(dir, /*dense_on_gpu=*/true);
}

TEST_F(GpuNcclTest, AStalledPeerIsAbortedWithinTheDeadlineAndTheNextExchangeSucceeds) {
  const test::TinyModel* m = test::LoadTinyModel("mixtral");
  ASSERT_NE(m, nullptr);
  auto shard = ExpertShard::Load(*m->checkpoint, {});
  ASSERT_TRUE(shard.ok());
  auto runner = MakeCudaExpertRunner(std::move(*shard), 0);
  ASSERT_TRUE(runner.ok()) << runner.status();
  std::atomic<int> stall{1};
  NcclExpertsOptions no;
  no.local_runner = runner->get();
  no.dispatch_deadline_ms = 300;
  no.test_stall_exchanges = &stall;
  auto nccl = MakeNcclExpertBackend(m->config(), no);
  ASSERT_TRUE(nccl.ok()) << nccl.status();
  LocalExpertBackend local(runner->get());
  const ModelConfig& c = m->config();
  const int64_t T = 5, K = c.num_experts_per_tok, D = c.hidden_size;
  std::vector<float> hidden(T * D);
  for (size_t i = 0; i < hidden.size(); ++i) hidden[i] = static_cast<float>((i * 37) % 101) / 50.0f - 1.0f;
  std::vector<int32_t> experts;
  std::vector<float> weights;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t j = 0; j < K; ++j) {
      experts.push_back(static_cast<int32_t>((t + j) % c.num_experts));
      weights.push_back(0.5f);
    }
  }
  ExpertBatch b;
  b.layer = 1;
  b.num_tokens = T;
  b.top_k = static_cast<int>(K);
  b.hidden = D;
  b.hidden_states = hidden.data();
  b.experts = experts.data();
  b.weights = weights.data();
  std::vector<float> got(T * K * D), want(T * K * D);
  const absl::Time t0 = absl::Now();
  const absl::Status stalled = (*nccl)->Compute(b, got.data());
  const absl::Duration took = absl::Now() - t0;
  EXPECT_EQ(stalled.code(), absl::StatusCode::kUnavailable) << stalled;
  EXPECT_THAT(stalled.message(), HasSubstr("did not complete within the dispatch deadline"));
  EXPECT_LT(took, absl::Milliseconds(300 + 100 + 500)) << "deadline + 100 ms + the abort";
  // The next exchange builds a new communicator and succeeds.
  ASSERT_TRUE((*nccl)->Compute(b, got.data()).ok());
  ASSERT_TRUE(local.Compute(b, want.data()).ok());
  EXPECT_TRUE(got == want);
}

TEST(NcclRouterOptionsTest, TheRouterRefusesNcclWithoutAGpuAndUnknownTransports) {
  RouterOptions o;
  o.model_dir = test::TinyModelDir("mixtral");
  o.expert_transport = "carrier-pigeon";
  auto bad = Router::Create(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("'carrier-pigeon' is not grpc or nccl"));
  o.expert_transport = "nccl";  // local experts on the CPU
  auto cpu = Router::Create(o);
  ASSERT_FALSE(cpu.ok());
  EXPECT_EQ(cpu.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(cpu.status().message(), HasSubstr("--expert-device cuda:N"));
  o.worker_addresses = {"127.0.0.1:1"};  // remote workers, router on the CPU
  auto remote = Router::Create(o);
  ASSERT_FALSE(remote.ok());
  EXPECT_THAT(remote.status().message(), HasSubstr("needs the router on a GPU (--device cuda:N)"));
}

}  // namespace
}  // namespace moe
