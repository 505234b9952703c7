// The router process under load, through its gRPC API: a flood of 4x its
// queue limit is refused quickly with RESOURCE_EXHAUSTED naming the limit, the
// accepted requests complete, the process's resident memory stays flat from
// round to round, and GetLoad reports the paged KV cache, which is empty of
// running sequences when idle (after cancellations too).
#include <chrono>
#include <fstream>
#include <iostream>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "deploy/local/cluster.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moe/internal/v1/router.grpc.pb.h"
#include "proto/rpc_util.h"

namespace moe {
namespace {

using ::testing::HasSubstr;
using moe::internal::v1::GetLoadRequest;
using moe::internal::v1::LoadReport;
using moe::internal::v1::RouterGenerateRequest;
using moe::internal::v1::RouterGenerateResponse;

constexpr int kRunning = 4;
constexpr int kWaiting = 8;

struct Outcome {
  grpc::Status status;
  int tokens = 0;
  std::chrono::milliseconds first_reply{0};  // time to the first message or the error
};

RouterGenerateRequest Request(uint32_t salt, int max_tokens) {
  RouterGenerateRequest req;
  for (uint32_t i = 0; i < 24; ++i) req.add_prompt_ids(i < 16 ? 7 : (salt * 31 + i) % 4000);
  req.set_max_tokens(max_tokens);
  req.mutable_sampling()->set_temperature(0);
  req.mutable_sampling()->set_ignore_eos(true);
  return req;
}

Outcome Generate(internal::v1::Router::Stub* stub, const RouterGenerateRequest& req, int cancel_after = 0) {
  grpc::ClientContext ctx;
  ctx.set_deadline(rpc::DeadlineIn(60000));
  Outcome o;
  const auto t0 = std::chrono::steady_clock::now();
  auto reader = stub->Generate(&ctx, req);
  RouterGenerateResponse msg;
  bool first = true;
  while (reader->Read(&msg)) {
    if (first) o.first_reply = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    first = false;
    o.tokens += msg.tokens_size();
    if (cancel_after > 0 && o.tokens >= cancel_after) ctx.TryCancel();
  }
  o.status = reader->Finish();
  if (first) o.first_reply = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  return o;
}

int64_t ResidentKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

class RouterOverloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LocalClusterOptions o;
    o.model_dir = std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral";
    o.num_workers = 0;
    o.bin_dir = MOE_BIN_DIR;
    o.router_threads = 1;
    o.startup_timeout_ms = 60000;
    // 1 MiB of KV cache: 64 blocks of 16 tokens for the tiny model.
    o.extra_router_flags = {"--max-running-seqs=" + std::to_string(kRunning),
                            "--max-waiting-requests=" + std::to_string(kWaiting), "--kv-cache-bytes=1048576",
                            "--kv-block-size=16"};
    cluster_ = std::make_unique<LocalCluster>(o);
    ASSERT_TRUE(cluster_->Up().ok());
    channel_ = rpc::MakeChannel(cluster_->router_address());
    // Connected before any flood, so that no request waits on the handshake
    // while the engine drains the ones ahead of it.
    ASSERT_TRUE(channel_->WaitForConnected(rpc::DeadlineIn(10000)));
    stub_ = internal::v1::Router::NewStub(channel_);
    for (const auto& c : cluster_->processes().children()) {
      if (c.name == "router") router_pid_ = c.pid;
    }
    ASSERT_GT(router_pid_, 0);
  }
  LoadReport Load(bool experts = false) {
    grpc::ClientContext ctx;
    ctx.set_deadline(rpc::DeadlineIn(5000));
    GetLoadRequest req;
    req.set_include_expert_tokens(experts);
    LoadReport load;
    EXPECT_TRUE(stub_->GetLoad(&ctx, req, &load).ok());
    return load;
  }
  LoadReport WaitIdle() {
    LoadReport l = Load();
    for (int i = 0; i < 500 && l.running_requests() + l.waiting_requests() != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      l = Load();
    }
    return l;
  }

  std::unique_ptr<LocalCluster> cluster_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<internal::v1::Router::Stub> stub_;
  pid_t router_pid_ = -1;
};

TEST_F(RouterOverloadTest, FourTimesTheQueueIsRefusedQuicklyAndMemoryStaysFlat) {
  std::ifstream log(cluster_->run_dir() + "/router.log");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_THAT(text, HasSubstr("KV cache: 1 MiB = 64 blocks of 16 tokens = 1024 tokens"));

  // Each admitted request decodes long enough (tens of milliseconds) that the
  // whole flood, released together, arrives while the queue is still full:
  // with short requests on a loaded host the engine drained the queue as fast
  // as the client threads got scheduled, and most of the flood was admitted.
  constexpr int kTokens = 64;
  int64_t rss_after_first = 0;
  for (int round = 0; round < 8; ++round) {
    constexpr int kFlood = 4 * (kRunning + kWaiting);
    std::vector<Outcome> outcomes(kFlood);
    std::vector<std::thread> clients;
    std::latch start(kFlood);
    for (int i = 0; i < kFlood; ++i) {
      clients.emplace_back([&, i] {
        const RouterGenerateRequest req = Request(round * 100 + i, kTokens);
        start.arrive_and_wait();
        outcomes[i] = Generate(stub_.get(), req);
      });
    }
    for (auto& t : clients) t.join();
    int refused = 0;
    for (const Outcome& o : outcomes) {
      if (o.status.ok()) {
        EXPECT_EQ(o.tokens, kTokens);
      } else {
        EXPECT_EQ(o.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << o.status.error_message();
        EXPECT_THAT(o.status.error_message(), HasSubstr("limit " + std::to_string(kWaiting)));
        EXPECT_LT(o.first_reply.count(), 2000) << "refusals must not wait for the engine";
        ++refused;
      }
    }
    EXPECT_GE(refused, kFlood / 2) << "round " << round;
    std::cout << "round " << round << ": " << refused << " of " << kFlood << " refused, router VmRSS "
              << ResidentKib(router_pid_) << " KiB\n";
    const LoadReport idle = WaitIdle();
    EXPECT_EQ(idle.kv_blocks_used(), 0u);
    if (round == 0) rss_after_first = ResidentKib(router_pid_);
  }
  const int64_t growth_kib = ResidentKib(router_pid_) - rss_after_first;
  EXPECT_LT(growth_kib, 8 * 1024) << "the router's resident memory grew by " << growth_kib << " KiB";

  const LoadReport load = Load(/*experts=*/true);
  EXPECT_EQ(load.kv_block_size_tokens(), 16u);
  EXPECT_EQ(load.kv_blocks_total(), 64u);
  EXPECT_EQ(load.kv_blocks_free(), 64u);
  EXPECT_GT(load.rejected_requests(), 0u);
  EXPECT_GT(load.prefix_cache_hit_tokens(), 0u);  // the prompts share 16 tokens
  EXPECT_EQ(load.num_layers(), 2u);
  EXPECT_EQ(load.num_experts(), 4u);
  ASSERT_EQ(load.expert_tokens_size(), 8);
  uint64_t layer0 = 0;
  for (int e = 0; e < 4; ++e) layer0 += load.expert_tokens(e);
  EXPECT_EQ(layer0, 2 * (load.prefill_tokens_computed() + load.decode_tokens_computed()));
  EXPECT_EQ(Load().expert_tokens_size(), 0);  // only when asked
}

TEST_F(RouterOverloadTest, CancelledStreamsFreeTheirBlocksAndTheOthersComplete) {
  std::vector<Outcome> outcomes(kRunning * 2);
  std::vector<std::thread> clients;
  for (int i = 0; i < kRunning * 2; ++i) {
    clients.emplace_back([&, i] {
      outcomes[i] = Generate(stub_.get(), Request(i, 200), /*cancel_after=*/i % 2 == 1 ? 3 : 0);
    });
  }
  for (auto& t : clients) t.join();
  for (int i = 0; i < kRunning * 2; ++i) {
    if (i % 2 == 0) {
      EXPECT_TRUE(outcomes[i].status.ok()) << outcomes[i].status.error_message();
      EXPECT_EQ(outcomes[i].tokens, 200);
    } else {
      EXPECT_EQ(outcomes[i].status.error_code(), grpc::StatusCode::CANCELLED);
    }
  }
  const LoadReport idle = WaitIdle();
  EXPECT_EQ(idle.running_requests(), 0u);
  EXPECT_EQ(idle.kv_blocks_used(), 0u);
  EXPECT_LE(idle.kv_blocks_cached(), idle.kv_blocks_total());
}

}  // namespace
}  // namespace moe
