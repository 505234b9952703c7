// RemoteExpertBackend against in-process expert workers on 127.0.0.1
// (OS-chosen ports), compared bitwise with the in-process backend.
#include "router/remote_experts.h"

#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/checkpoint.h"
#include "experts/expert_shard.h"
#include "experts/local_expert_backend.h"
#include "experts/expert_spec.h"
#include "expert_worker/worker_server.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moe/internal/v1/expert_worker.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "proto/rpc_util.h"
#include "router/forward.h"
#include "tests/tiny_models.h"

namespace moe {
namespace {

using ::testing::HasSubstr;

class RemoteExpertsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const test::TinyModel* m = test::LoadTinyModel("mixtral");
    ASSERT_NE(m, nullptr);
    checkpoint_ = m->checkpoint.get();
    dense_ = m->dense.get();
    shard_ = m->shard.get();
    pool_ = new ThreadPool(2);
  }
  static void TearDownTestSuite() { delete pool_; }

  static const ModelConfig& config() { return checkpoint_->config(); }

  // A worker holding the experts `spec` selects, on `address`.
  static std::unique_ptr<ExpertWorkerServer> StartWorker(const std::string& spec,
                                                         const std::string& address = "127.0.0.1:0") {
    auto keys = ParseExpertSpec(spec, config().num_hidden_layers, config().num_experts);
    EXPECT_TRUE(keys.ok()) << keys.status();
    ExpertWorkerOptions options;
    options.listen_address = address;
    options.compute_threads = 1;
    auto worker = ExpertWorkerServer::Start(*checkpoint_, *keys, options);
    EXPECT_TRUE(worker.ok()) << worker.status();
    return worker.ok() ? std::move(*worker) : nullptr;
  }

  // N workers, worker i holding mod:i/N.
  static std::vector<std::unique_ptr<ExpertWorkerServer>> StartWorkers(int n, RemoteExpertsOptions* options) {
    std::vector<std::unique_ptr<ExpertWorkerServer>> workers;
    for (int i = 0; i < n; ++i) {
      workers.push_back(StartWorker("mod:" + std::to_string(i) + "/" + std::to_string(n)));
      options->worker_addresses.push_back(workers.back()->address());
    }
    return workers;
  }

  // Logits of teacher-forced greedy decoding of every golden case, one step
  // per golden token (prompt first); also checks the greedy ids.
  static std::vector<std::vector<float>> GoldenLogits(ExpertBackend* experts) {
    const nlohmann::json golden = test::TinyGolden("mixtral");
    std::vector<std::vector<float>> all;
    for (const auto& c : golden["cases"]) {
      ForwardPass forward(dense_, experts, pool_);
      const std::vector<int32_t> want = c["greedy_ids"].get<std::vector<int32_t>>();
      std::unique_ptr<KvCache> cache = KvCache::ForTokens(config(), config().max_position_embeddings);
      SequenceKv kv(cache.get());
      std::vector<int32_t> next = c["prompt_ids"].get<std::vector<int32_t>>();
      std::vector<int32_t> got;
      for (size_t step = 0; step < want.size(); ++step) {
        std::vector<float> logits;
        SequenceInput input{&kv, next};
        const absl::Status s = forward.Forward({&input, 1}, &logits);
        EXPECT_TRUE(s.ok()) << s;
        if (!s.ok()) return all;
        got.push_back(static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin()));
        all.push_back(std::move(logits));
        next.assign(1, want[step]);
      }
      EXPECT_EQ(got, want) << c["prompt_text"];
    }
    return all;
  }

  // One layer-0 batch in which every expert has rows.
  struct Batch {
    std::vector<float> hidden;
    std::vector<int32_t> experts;
    std::vector<float> weights;
    ExpertBatch view;
  };
  static Batch MakeBatch(int64_t tokens = 6) {
    Batch b;
    const int64_t h = config().hidden_size;
    const int top_k = static_cast<int>(config().num_experts_per_tok);
    for (int64_t i = 0; i < tokens * h; ++i) b.hidden.push_back(static_cast<float>((i * 29) % 17 - 8) / 9.0f);
    for (int64_t c = 0; c < tokens * top_k; ++c) {
      b.experts.push_back(static_cast<int32_t>(c % config().num_experts));
      b.weights.push_back(0.5f);
    }
    b.view = ExpertBatch{0, tokens, top_k, h, b.hidden.data(), b.experts.data(), b.weights.data()};
    return b;
  }
  static std::vector<float> LocalOutputs(const Batch& b) {
    LocalExpertBackend local(shard_, pool_);
    std::vector<float> out(b.experts.size() * config().hidden_size);
    EXPECT_TRUE(local.Compute(b.view, out.data()).ok());
    return out;
  }

  static inline const Checkpoint* checkpoint_ = nullptr;
  static inline const DenseModel* dense_ = nullptr;
  static inline const ExpertShard* shard_ = nullptr;
  static inline ThreadPool* pool_ = nullptr;
};

TEST_F(RemoteExpertsTest, LogitsAreBitwiseTheSameOn1_2And4WorkersAsInProcess) {
  LocalExpertBackend local(shard_, pool_);
  const std::vector<std::vector<float>> want = GoldenLogits(&local);
  ASSERT_FALSE(want.empty());
  for (int n : {1, 2, 4}) {
    RemoteExpertsOptions options;
    auto workers = StartWorkers(n, &options);
    auto remote = RemoteExpertBackend::Connect(config(), options);
    ASSERT_TRUE(remote.ok()) << remote.status();
    const std::vector<std::vector<float>> got = GoldenLogits(remote->get());
    ASSERT_EQ(got.size(), want.size()) << n << " workers";
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_EQ(0, std::memcmp(got[i].data(), want[i].data(), want[i].size() * sizeof(float)))
          << n << " workers, step " << i;
    }
    uint64_t calls = 0;
    for (const auto& s : (*remote)->Stats()) {
      EXPECT_GT(s.calls, 0u) << s.address;
      EXPECT_GT(s.bytes_sent, 0u);
      EXPECT_GT(s.bytes_received, 0u);
      EXPECT_GT(s.total_latency_s, 0.0);
      calls += s.calls;
    }
    EXPECT_GE(calls, want.size() * config().num_hidden_layers);
  }
}

TEST_F(RemoteExpertsTest, AMultiTokenBatchMatchesInProcess) {
  RemoteExpertsOptions options;
  auto workers = StartWorkers(2, &options);
  auto remote = RemoteExpertBackend::Connect(config(), options);
  ASSERT_TRUE(remote.ok()) << remote.status();
  const Batch b = MakeBatch(/*tokens=*/37);
  std::vector<float> out(b.experts.size() * config().hidden_size);
  ASSERT_TRUE((*remote)->Compute(b.view, out.data()).ok());
  EXPECT_EQ(out, LocalOutputs(b));
}

TEST_F(RemoteExpertsTest, ReplicasShareTheLoad) {
  auto all = StartWorker("all");
  auto half = StartWorker("mod:0/2");
  RemoteExpertsOptions options;
  options.worker_addresses = {half->address(), all->address()};
  auto remote = RemoteExpertBackend::Connect(config(), options);
  ASSERT_TRUE(remote.ok()) << remote.status();
  const Batch b = MakeBatch();
  std::vector<float> out(b.experts.size() * config().hidden_size);
  ASSERT_TRUE((*remote)->Compute(b.view, out.data()).ok());
  EXPECT_EQ(out, LocalOutputs(b));
  const auto stats = (*remote)->Stats();
  EXPECT_EQ(stats[0].calls, 1u);  // experts 0 and 2
  EXPECT_EQ(stats[1].calls, 1u);  // experts 1 and 3
}

TEST_F(RemoteExpertsTest, RefusesACoverageGapNamingTheFirstUncoveredExpert) {
  auto a = StartWorker("0:0-3,1:0,1:2");
  auto b = StartWorker("1:3");
  RemoteExpertsOptions options;
  options.worker_addresses = {a->address(), b->address()};
  auto remote = RemoteExpertBackend::Connect(config(), options);
  ASSERT_FALSE(remote.ok());
  EXPECT_EQ(remote.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(remote.status().message()), HasSubstr("no expert worker holds expert 1 of layer 1"));
}

TEST_F(RemoteExpertsTest, RefusesAWorkerOfAnotherModel) {
  auto a = StartWorker("all");
  RemoteExpertsOptions options;
  options.worker_addresses = {a->address()};
  ModelConfig other = config();
  other.intermediate_size = 512;
  auto remote = RemoteExpertBackend::Connect(other, options);
  ASSERT_FALSE(remote.ok());
  EXPECT_EQ(remote.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(remote.status().message()),
              HasSubstr("expert worker " + a->address() + " serves a different model: intermediate_size 256"));
}

TEST_F(RemoteExpertsTest, UnreachableWorkerIsUnavailableNamingItsAddress) {
  auto a = StartWorker("all");
  std::string gone;
  {
    auto b = StartWorker("all");
    gone = b->address();
  }
  RemoteExpertsOptions options;
  options.worker_addresses = {a->address(), gone};
  options.connect_deadline_ms = 300;
  const auto t0 = std::chrono::steady_clock::now();
  auto remote = RemoteExpertBackend::Connect(config(), options);
  ASSERT_FALSE(remote.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  EXPECT_EQ(remote.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(remote.status().message()), HasSubstr("expert worker " + gone + " is unreachable"));
}

// GetInfo of a fake worker that claims every expert of `c`.
void ClaimEveryExpert(const ModelConfig& c, moe::internal::v1::WorkerInfo* info) {
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    for (int e = 0; e < c.num_experts; ++e) {
      auto* id = info->add_experts();
      id->set_layer(l);
      id->set_expert(e);
    }
  }
  info->set_hidden_size(c.hidden_size);
  info->set_intermediate_size(c.intermediate_size);
  info->set_num_layers(c.num_hidden_layers);
  info->set_num_experts(c.num_experts);
  info->set_model_type(c.model_type);
}

// A worker that claims every expert and answers with one row too few.
class ShortReplyWorker final : public moe::internal::v1::ExpertWorker::CallbackService {
 public:
  explicit ShortReplyWorker(const ModelConfig& c) : config_(c) {}
  grpc::ServerUnaryReactor* GetInfo(grpc::CallbackServerContext* ctx, const moe::internal::v1::GetWorkerInfoRequest*,
                                    moe::internal::v1::WorkerInfo* info) override {
    ClaimEveryExpert(config_, info);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* RunExperts(grpc::CallbackServerContext* ctx, const moe::internal::v1::ExpertRequest* req,
                                       moe::internal::v1::ExpertResponse* resp) override {
    resp->set_dtype(moe::internal::v1::ACTIVATION_DTYPE_F32);
    resp->set_num_rows(req->num_rows() - 1);
    resp->set_hidden_size(req->hidden_size());
    resp->set_outputs(std::string(req->rows().size() - req->hidden_size() * 4, '\0'));
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const ModelConfig config_;
};

TEST_F(RemoteExpertsTest, AMalformedReplyIsInternalNamingTheWorker) {
  ShortReplyWorker fake(config());
  rpc::ServerOptions server_options;
  server_options.listen_address = "127.0.0.1:0";
  auto server = rpc::RunningServer::Start(server_options, {&fake});
  ASSERT_TRUE(server.ok()) << server.status();
  RemoteExpertsOptions options;
  options.worker_addresses = {(*server)->address()};
  auto remote = RemoteExpertBackend::Connect(config(), options);
  ASSERT_TRUE(remote.ok()) << remote.status();
  const Batch b = MakeBatch();
  std::vector<float> out(b.experts.size() * config().hidden_size);
  const absl::Status s = (*remote)->Compute(b.view, out.data());
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("expert worker " + (*server)->address() + " sent a malformed reply for layer 0"));
  (*server)->Shutdown(std::chrono::milliseconds(0));
}

// Every expert on two of three workers; one goes away: the step still
// succeeds, bitwise equal to in-process experts, by retrying the lost rows on
// the other replicas within the same call.
TEST_F(RemoteExpertsTest, AFailedWorkersRowsAreRetriedOnAReplicaInTheSameStep) {
  // Worker i holds experts e with e mod 3 != i: each expert on two workers.
  std::vector<std::unique_ptr<ExpertWorkerServer>> workers;
  RemoteExpertsOptions options;
  for (int i = 0; i < 3; ++i) {
    std::vector<std::string> experts;
    for (int e = 0; e < config().num_experts; ++e) {
      if (e % 3 != i) experts.push_back(std::to_string(e));
    }
    workers.push_back(StartWorker(absl::StrJoin(experts, ",")));
    options.worker_addresses.push_back(workers.back()->address());
  }
  options.dispatch_deadline_ms = 2000;
  auto remote = RemoteExpertBackend::Connect(config(), options);
  ASSERT_TRUE(remote.ok()) << remote.status();
  const Batch b = MakeBatch(12);
  const std::vector<float> want = LocalOutputs(b);
  std::vector<float> out(b.experts.size() * config().hidden_size);
  ASSERT_TRUE((*remote)->Compute(b.view, out.data()).ok());
  EXPECT_EQ(out, want);
  for (const auto& st : (*remote)->Stats()) EXPECT_EQ(st.calls, 1u) << st.address;  // spread over all three

  workers[1]->Shutdown(std::chrono::milliseconds(0));
  std::fill(out.begin(), out.end(), 0.0f);
  const absl::Status s = (*remote)->Compute(b.view, out.data());
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(out, want);
  EXPECT_GE((*remote)->failovers(), 1u);
  EXPECT_GE((*remote)->retries(), 1u);
  EXPECT_FALSE((*remote)->Stats()[1].up);
  EXPECT_TRUE((*remote)->Serviceable());
  // The next step avoids the failed worker from the start.
  const uint64_t retries = (*remote)->retries();
  ASSERT_TRUE((*remote)->Compute(b.view, out.data()).ok());
  EXPECT_EQ(out, want);
  EXPECT_EQ((*remote)->retries(), retries);

  // Both holders of expert 1 (workers 0 and 2 hold it; 1 is gone): UNAVAILABLE naming it.
  workers[2]->Shutdown(std::chrono::milliseconds(0));
  const absl::Status lost = (*remote)->Compute(b.view, out.data());
  EXPECT_EQ(lost.code(), absl::StatusCode::kUnavailable) << lost;
  EXPECT_THAT(std::string(lost.message()), HasSubstr("no healthy expert worker left for experts"));
  EXPECT_THAT(std::string(lost.message()), HasSubstr("of layer 0"));
}

// A worker that accepts exchanges and never answers (a stopped process):
// the step waits one deadline for it, then finishes on the replica; the
// next steps do not wait for it again.
class SilentWorker final : public moe::internal::v1::ExpertWorker::CallbackService {
 public:
  explicit SilentWorker(const ModelConfig& c) : config_(c) {}
  grpc::ServerUnaryReactor* GetInfo(grpc::CallbackServerContext* ctx, const moe::internal::v1::GetWorkerInfoRequest*,
                                    moe::internal::v1::WorkerInfo* info) override {
    ClaimEveryExpert(config_, info);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* RunExperts(grpc::CallbackServerContext*, const moe::internal::v1::ExpertRequest*,
                                       moe::internal::v1::ExpertResponse*) override {
    return new Silence();  // finished only when the client gives up
  }
  class Silence final : public grpc::ServerUnaryReactor {
    void OnCancel() override { Finish(grpc::Status::CANCELLED); }
    void OnDone() override { delete this; }
  };

 private:
  const ModelConfig config_;
};

TEST_F(RemoteExpertsTest, AWorkerThatStopsAnsweringCostsOneDeadlineThenItsReplicaServes) {
  SilentWorker silent(config());
  rpc::ServerOptions server_options;
  server_options.listen_address = "127.0.0.1:0";
  auto server = rpc::RunningServer::Start(server_options, {&silent});  // health stays NOT_SERVING
  ASSERT_TRUE(server.ok()) << server.status();
  auto real = StartWorker("all");
  RemoteExpertsOptions options;
  options.worker_addresses = {(*server)->address(), real->address()};
  options.dispatch_deadline_ms = 400;
  auto remote = RemoteExpertBackend::Connect(config(), options);
  ASSERT_TRUE(remote.ok()) << remote.status();
  const Batch b = MakeBatch(12);
  const std::vector<float> want = LocalOutputs(b);
  std::vector<float> out(b.experts.size() * config().hidden_size);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE((*remote)->Compute(b.view, out.data()).ok());
  const auto first = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(out, want);
  EXPECT_GE(first, std::chrono::milliseconds(options.dispatch_deadline_ms));
  EXPECT_LT(first, std::chrono::milliseconds(2 * options.dispatch_deadline_ms)) << "more than one deadline";
  EXPECT_GE((*remote)->failovers(), 1u);
  t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE((*remote)->Compute(b.view, out.data()).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(options.dispatch_deadline_ms))
      << "the silent worker was waited for again";
  EXPECT_EQ(out, want);
  (*server)->Shutdown(std::chrono::milliseconds(0));
}

TEST_F(RemoteExpertsTest, AWorkerThatGoesAwayIsUnavailableAndWorksAgainAfterRestartOnTheSamePort) {
  RemoteExpertsOptions options;
  auto workers = StartWorkers(2, &options);
  options.dispatch_deadline_ms = 500;
  auto remote = RemoteExpertBackend::Connect(config(), options);
  ASSERT_TRUE(remote.ok()) << remote.status();
  const Batch b = MakeBatch();
  const std::vector<float> want = LocalOutputs(b);
  std::vector<float> out(b.experts.size() * config().hidden_size);
  ASSERT_TRUE((*remote)->Compute(b.view, out.data()).ok());

  const std::string address = workers[1]->address();
  workers[1]->Shutdown(std::chrono::milliseconds(0));
  workers[1].reset();
  for (int attempt = 0; attempt < 3; ++attempt) {  // in-flight reset, reconnect refused, known failing
    const auto t0 = std::chrono::steady_clock::now();
    const absl::Status s = (*remote)->Compute(b.view, out.data());
    const auto elapsed = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("expert worker " + address + " failed at layer 0"));
    EXPECT_LT(elapsed, std::chrono::milliseconds(options.dispatch_deadline_ms + 500)) << "attempt " << attempt;
  }

  workers[1] = StartWorker("mod:1/2", address);
  ASSERT_NE(workers[1], nullptr);
  ASSERT_EQ(workers[1]->address(), address);
  // The channel reconnects within its back-off (at most 1 s); a call made
  // while it still counts the worker as failing fails fast.
  absl::Status s;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  do {
    std::fill(out.begin(), out.end(), 0.0f);
    s = (*remote)->Compute(b.view, out.data());
    if (!s.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (!s.ok() && std::chrono::steady_clock::now() < until);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(out, want);
  // And it keeps working.
  ASSERT_TRUE((*remote)->Compute(b.view, out.data()).ok());
  EXPECT_EQ(out, want);
}

TEST_F(RemoteExpertsTest, AWorkerRestartedBetweenCallsIsUsedAgainAtOnce) {
  RemoteExpertsOptions options;
  auto workers = StartWorkers(2, &options);
  auto remote = RemoteExpertBackend::Connect(config(), options);
  ASSERT_TRUE(remote.ok()) << remote.status();
  const Batch b = MakeBatch();
  const std::vector<float> want = LocalOutputs(b);
  std::vector<float> out(b.experts.size() * config().hidden_size);
  ASSERT_TRUE((*remote)->Compute(b.view, out.data()).ok());
  const std::string address = workers[0]->address();
  workers[0]->Shutdown(std::chrono::milliseconds(0));
  workers[0] = StartWorker("mod:0/2", address);
  ASSERT_NE(workers[0], nullptr);
  // No call failed in between, so the channel waits for the new worker.
  const absl::Status s = (*remote)->Compute(b.view, out.data());
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(out, want);
}

}  // namespace
}  // namespace moe
