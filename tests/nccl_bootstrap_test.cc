// The NCCL transport's bootstrap over gRPC, with real expert workers in this
// process (CPU experts) whose JoinCommunicator is answered by fake joiners:
// the unique id (NCCL's own where the build has CUDA: making one needs no
// GPU) reaches every worker with its rank; a worker that never joins fails
// the bootstrap within its deadline, named; bad requests are refused by field.
#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "expert_worker/worker_server.h"
#include "experts/cuda_expert_runner.h"
#include "experts/nccl_bootstrap.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moe/internal/v1/expert_worker.grpc.pb.h"
#include "proto/rpc_util.h"
#include "router/nccl_bootstrap.h"
#include "tests/tiny_models.h"

namespace moe {
namespace {

using ::testing::HasSubstr;

// Records what it was asked; joins at once, after a pause, or never (waits
// out the request's timeout and fails as NCCL's init would).
class FakeJoiner : public nccl::Joiner {
 public:
  enum class Mode { kJoins, kNever };
  explicit FakeJoiner(Mode mode, absl::Duration pause = absl::ZeroDuration()) : mode_(mode), pause_(pause) {}
  absl::StatusOr<std::string> Join(const nccl::JoinRequest& r) override {
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(r);
    }
    if (mode_ == Mode::kNever) {
      absl::SleepFor(absl::Milliseconds(r.timeout_ms));
      return absl::UnavailableError("rank did not see every rank join within the timeout");
    }
    absl::SleepFor(pause_);
    return std::string("cuda:0 FAKE GPU");
  }
  std::vector<nccl::JoinRequest> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  const Mode mode_;
  const absl::Duration pause_;
  absl::Mutex mu_;
  std::vector<nccl::JoinRequest> requests_ ABSL_GUARDED_BY(mu_);
};

std::unique_ptr<ExpertWorkerServer> StartWorker(nccl::Joiner* joiner) {
  const test::TinyModel* m = test::LoadTinyModel("mixtral");
  EXPECT_NE(m, nullptr);
  ExpertWorkerOptions o;
  o.compute_threads = 1;
  o.nccl_joiner = joiner;
  auto w = ExpertWorkerServer::Start(*m->checkpoint, {}, o);
  EXPECT_TRUE(w.ok()) << w.status();
  return w.ok() ? std::move(*w) : nullptr;
}

// NCCL's unique id where the build has CUDA (needs no GPU), else a fixed one.
NcclBootstrapOptions Options() {
  NcclBootstrapOptions o;
  o.join_timeout_ms = 5000;
  if (!CudaExpertsBuilt()) o.make_unique_id = [] { return std::string(nccl::kUniqueIdBytes, '\x5a'); };
  return o;
}

TEST(NcclBootstrapTest, EveryWorkerGetsTheSameUniqueIdAndItsOwnRank) {
  std::vector<std::unique_ptr<FakeJoiner>> joiners;
  std::vector<std::unique_ptr<ExpertWorkerServer>> workers;
  NcclBootstrapOptions o = Options();
  for (int w = 0; w < 3; ++w) {
    joiners.push_back(std::make_unique<FakeJoiner>(FakeJoiner::Mode::kJoins, absl::Milliseconds(20 * w)));
    workers.push_back(StartWorker(joiners.back().get()));
    ASSERT_NE(workers.back(), nullptr);
    o.worker_addresses.push_back(workers.back()->address());
  }
  std::string self_id;
  int self_nranks = 0;
  auto result = BootstrapCommunicator(o, /*generation=*/7, [&](const std::string& id, int nranks) {
    self_id = id;
    self_nranks = nranks;
    return absl::OkStatus();
  });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(static_cast<int64_t>(result->unique_id.size()), nccl::kUniqueIdBytes);
  EXPECT_EQ(self_id, result->unique_id);
  EXPECT_EQ(self_nranks, 4);
  std::set<int> ranks;
  for (int w = 0; w < 3; ++w) {
    const auto requests = joiners[w]->requests();
    ASSERT_EQ(requests.size(), 1u);
    EXPECT_EQ(requests[0].unique_id, result->unique_id);
    EXPECT_EQ(requests[0].rank, w + 1);
    EXPECT_EQ(requests[0].nranks, 4);
    EXPECT_EQ(requests[0].generation, 7u);
    EXPECT_EQ(requests[0].timeout_ms, 5000);
    ranks.insert(requests[0].rank);
    EXPECT_EQ(result->worker_devices[w], "cuda:0 FAKE GPU");
  }
  EXPECT_EQ(ranks, (std::set<int>{1, 2, 3}));
  if (CudaExpertsBuilt()) {
    // NCCL's ids are fresh each time (the rebuild after a failure needs a new one).
    auto again = BootstrapCommunicator(o, 8, [](const std::string&, int) { return absl::OkStatus(); });
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_NE(again->unique_id, result->unique_id);
  }
}

TEST(NcclBootstrapTest, NcclMakesAUniqueIdWithoutAGpuInACudaBuild) {
  auto id = nccl::MakeUniqueId();
  if (CudaExpertsBuilt()) {
    ASSERT_TRUE(id.ok()) << id.status();
    EXPECT_EQ(static_cast<int64_t>(id->size()), nccl::kUniqueIdBytes);
    EXPECT_NE(*id, std::string(nccl::kUniqueIdBytes, '\0'));
  } else {
    EXPECT_EQ(id.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(id.status().message(), HasSubstr("CUDA"));
  }
}

TEST(NcclBootstrapTest, AWorkerThatNeverJoinsFailsTheBootstrapWithinItsDeadlineNamed) {
  FakeJoiner good(FakeJoiner::Mode::kJoins), never(FakeJoiner::Mode::kNever);
  auto w0 = StartWorker(&good);
  auto w1 = StartWorker(&never);
  ASSERT_NE(w0, nullptr);
  ASSERT_NE(w1, nullptr);
  NcclBootstrapOptions o = Options();
  o.join_timeout_ms = 300;
  o.worker_addresses = {w0->address(), w1->address()};
  const absl::Time t0 = absl::Now();
  auto result = BootstrapCommunicator(o, 1, [](const std::string&, int) {
    absl::SleepFor(absl::Milliseconds(300));  // rank 0 waits out its own timeout too
    return absl::UnavailableError("rank 0 did not see every rank join");
  });
  EXPECT_LT(absl::Now() - t0, absl::Milliseconds(300 + 2000));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(result.status().message(), HasSubstr(w1->address() + " (rank 2)"));
  EXPECT_THAT(result.status().message(), HasSubstr("1 worker(s) did not join"));
}

TEST(NcclBootstrapTest, AWorkerOnTheCpuRefusesToJoinNamingItsDevice) {
  auto cpu = StartWorker(nullptr);
  ASSERT_NE(cpu, nullptr);
  NcclBootstrapOptions o = Options();
  o.worker_addresses = {cpu->address()};
  auto result = BootstrapCommunicator(o, 1, [](const std::string&, int) { return absl::OkStatus(); });
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(result.status().message(), HasSubstr(cpu->address()));
  EXPECT_THAT(result.status().message(), HasSubstr("run on cpu: the NCCL transport needs workers on GPUs"));
}

TEST(NcclBootstrapTest, BadJoinRequestsAreRefusedNamingTheField) {
  FakeJoiner joiner(FakeJoiner::Mode::kJoins, absl::Milliseconds(300));
  auto w = StartWorker(&joiner);
  ASSERT_NE(w, nullptr);
  auto stub = moe::internal::v1::ExpertWorker::NewStub(rpc::MakeChannel(w->address()));
  auto call = [&](const std::string& id, uint32_t rank, uint32_t nranks, uint64_t generation, uint32_t timeout_ms) {
    moe::internal::v1::JoinCommunicatorRequest req;
    req.set_unique_id(id);
    req.set_rank(rank);
    req.set_nranks(nranks);
    req.set_generation(generation);
    req.set_timeout_ms(timeout_ms);
    moe::internal::v1::JoinCommunicatorResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(rpc::DeadlineIn(5000));
    return stub->JoinCommunicator(&ctx, req, &resp);
  };
  const std::string id(nccl::kUniqueIdBytes, 'x');
  struct Bad {
    std::string id;
    uint32_t rank, nranks;
    uint64_t generation;
    uint32_t timeout_ms;
    const char* field;
  };
  for (const Bad& b : {Bad{id.substr(1), 1, 2, 1, 1000, "unique_id: 127 bytes"},
                       Bad{id + "y", 1, 2, 1, 1000, "unique_id: 129 bytes"},
                       Bad{id, 0, 2, 1, 1000, "rank: 0 is outside [1, 1]"},
                       Bad{id, 2, 2, 1, 1000, "rank: 2 is outside"},
                       Bad{id, 1, 1, 1, 1000, "nranks: 1 is outside [2, 257]"},
                       Bad{id, 1, 100000, 1, 1000, "nranks: 100000"},
                       Bad{id, 1, 2, 0, 1000, "generation"},
                       Bad{id, 1, 2, 1, 0, "timeout_ms: 0"},
                       Bad{id, 1, 2, 1, 4000000000u, "timeout_ms: 4000000000"}}) {
    const grpc::Status s = call(b.id, b.rank, b.nranks, b.generation, b.timeout_ms);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << b.field;
    EXPECT_THAT(s.error_message(), HasSubstr(b.field));
  }
  EXPECT_TRUE(joiner.requests().empty());
  // A second join while one is in progress is refused, and the first completes.
  std::thread first([&] { EXPECT_TRUE(call(id, 1, 2, 1, 1000).ok()); });
  for (int i = 0; i < 200 && joiner.requests().empty(); ++i) absl::SleepFor(absl::Milliseconds(5));
  const grpc::Status second = call(id, 1, 2, 2, 1000);
  EXPECT_EQ(second.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(second.error_message(), HasSubstr("already in progress"));
  first.join();
  EXPECT_EQ(joiner.requests().size(), 1u);
}

}  // namespace
}  // namespace moe
