// The worker's gRPC service against a real server on 127.0.0.1 (OS-chosen
// port) holding half of the tiny fixture's experts.
#include "expert_worker/worker_service.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "core/checkpoint.h"
#include "expert_worker/expert_executor.h"
#include "experts/cpu_expert_runner.h"
#include "experts/expert_spec.h"
#include "expert_worker/worker_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe {
namespace {

namespace pb = ::moe::internal::v1;
using ::testing::HasSubstr;

const std::string kModelDir = std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral";

class WorkerServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto ckpt = Checkpoint::Open(kModelDir);
    ASSERT_TRUE(ckpt.ok()) << ckpt.status();
    checkpoint_ = std::move(*ckpt).release();
    const ModelConfig& c = checkpoint_->config();
    auto keys = ParseExpertSpec("mod:0/2", c.num_hidden_layers, c.num_experts);  // experts 0 and 2
    ASSERT_TRUE(keys.ok());
    ExpertWorkerOptions options;
    options.compute_threads = 2;
    auto worker = ExpertWorkerServer::Start(*checkpoint_, *keys, options);
    ASSERT_TRUE(worker.ok()) << worker.status();
    worker_ = std::move(*worker).release();
    auto shard = ExpertShard::Load(*checkpoint_, {});
    ASSERT_TRUE(shard.ok());
    reference_ = std::move(*shard).release();
  }
  static void TearDownTestSuite() {
    delete worker_;
    delete reference_;
    delete checkpoint_;
  }

  void SetUp() override {
    channel_ = rpc::MakeChannel(worker_->address());
    stub_ = pb::ExpertWorker::NewStub(channel_);
  }

  static int64_t hidden() { return checkpoint_->config().hidden_size; }

  // num_rows deterministic rows for `experts` of `layer`.
  static pb::ExpertRequest Request(int layer, const std::vector<uint32_t>& experts, int salt = 0) {
    pb::ExpertRequest r;
    r.set_layer(layer);
    r.set_step(42);
    r.set_dtype(pb::ACTIVATION_DTYPE_F32);
    r.set_num_rows(experts.size());
    r.set_hidden_size(hidden());
    std::vector<float> rows(experts.size() * hidden());
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>(((i * 37 + salt * 11) % 101) - 50) / 40.0f;
    r.set_rows(std::string(reinterpret_cast<const char*>(rows.data()), rows.size() * sizeof(float)));
    for (uint32_t e : experts) r.add_expert_ids(e);
    return r;
  }

  // What the request's outputs must be, row by row, from a local shard.
  static std::string Expected(const pb::ExpertRequest& r) {
    std::string out(r.rows().size(), '\0');
    const size_t row_bytes = hidden() * sizeof(float);
    std::vector<float> x(hidden()), y(hidden());
    FfnScratch scratch;
    for (int i = 0; i < static_cast<int>(r.num_rows()); ++i) {
      std::memcpy(x.data(), r.rows().data() + i * row_bytes, row_bytes);
      EXPECT_TRUE(reference_->Run(r.layer(), r.expert_ids(i), x.data(), 1, y.data(), nullptr, &scratch).ok());
      std::memcpy(out.data() + i * row_bytes, y.data(), row_bytes);
    }
    return out;
  }

  grpc::Status Call(const pb::ExpertRequest& request, pb::ExpertResponse* response) {
    grpc::ClientContext ctx;
    ctx.set_deadline(rpc::DeadlineIn(5000));
    return stub_->RunExperts(&ctx, request, response);
  }

  static inline Checkpoint* checkpoint_ = nullptr;
  static inline ExpertWorkerServer* worker_ = nullptr;
  static inline ExpertShard* reference_ = nullptr;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::ExpertWorker::Stub> stub_;
};

TEST_F(WorkerServiceTest, GetInfoListsTheHeldExpertsAndDims) {
  grpc::ClientContext ctx;
  ctx.set_deadline(rpc::DeadlineIn(5000));
  pb::WorkerInfo info;
  ASSERT_TRUE(stub_->GetInfo(&ctx, pb::GetWorkerInfoRequest(), &info).ok());
  ASSERT_EQ(info.experts_size(), 4);
  EXPECT_EQ(info.experts(1).layer(), 0u);
  EXPECT_EQ(info.experts(1).expert(), 2u);
  EXPECT_EQ(info.experts(3).layer(), 1u);
  EXPECT_EQ(info.hidden_size(), 128u);
  EXPECT_EQ(info.intermediate_size(), 256u);
  EXPECT_EQ(info.num_layers(), 2u);
  EXPECT_EQ(info.num_experts(), 4u);
  EXPECT_EQ(info.model_type(), "mixtral");
  EXPECT_EQ(info.weight_dtype(), "BF16");
}

TEST_F(WorkerServiceTest, MalformedRequestsAreInvalidArgumentNamingTheField) {
  struct Case {
    std::function<void(pb::ExpertRequest&)> mutate;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](pb::ExpertRequest& r) { r.set_dtype(pb::ACTIVATION_DTYPE_UNSPECIFIED); }, "dtype"},
      {[](pb::ExpertRequest& r) { r.mutable_rows()->resize(r.rows().size() - 4); },
       "rows holds 1532 bytes; num_rows 3 x hidden_size 128 x 4 = 1536"},
      {[](pb::ExpertRequest& r) { r.set_num_rows(4); }, "num_rows 4"},
      {[](pb::ExpertRequest& r) { r.set_hidden_size(64); }, "hidden_size is 64, the model's is 128"},
      {[](pb::ExpertRequest& r) { r.add_expert_ids(0); }, "expert_ids has 4 entries for num_rows 3"},
      {[](pb::ExpertRequest& r) { r.set_layer(7); }, "layer 7 is outside the model (2 layers)"},
      {[](pb::ExpertRequest& r) { r.set_expert_ids(1, 1); },
       "does not hold expert 1 of layer 1 (expert_ids[1])"},
      {[](pb::ExpertRequest& r) { r.set_expert_ids(2, 9); }, "expert_ids[2] = 9 is outside the model (4 experts)"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    pb::ExpertRequest r = Request(/*layer=*/1, {0, 2, 0});
    cases[i].mutate(r);
    pb::ExpertResponse response;
    const grpc::Status s = Call(r, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "case " << i << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(cases[i].message)) << "case " << i;
    EXPECT_THAT(s.error_message(), HasSubstr("layer")) << "case " << i;
  }
  // The worker is still there, and a valid request equals ExpertShard::Run bitwise.
  const pb::ExpertRequest r = Request(/*layer=*/1, {2, 0, 2, 2, 0});
  pb::ExpertResponse response;
  ASSERT_TRUE(Call(r, &response).ok());
  EXPECT_EQ(response.dtype(), pb::ACTIVATION_DTYPE_F32);
  EXPECT_EQ(response.num_rows(), 5u);
  EXPECT_EQ(response.hidden_size(), 128u);
  EXPECT_TRUE(response.outputs() == Expected(r));
}

TEST_F(WorkerServiceTest, ExpertsOfOneRequestRunOnSeveralThreadsWithBitwiseTheSameOutputs) {
  // Every expert of the model, three kernel threads: with more than 16 rows
  // for some expert the executor runs the request's experts concurrently
  // (largest first), each whole on one thread; with few rows per expert
  // (decode) the threads share every expert's rows; a request for one expert
  // runs on the whole pool, or on its own two threads with lone_expert_threads.
  std::vector<uint32_t> mixed, lone(29, 2), few = {3, 1, 0, 3, 2, 1, 3};
  for (int i = 0; i < 45; ++i) mixed.push_back(i % 5 == 0 ? 1 : i % 3 == 0 ? 2 : i % 7 == 0 ? 0 : 3);
  ASSERT_GT(std::count(mixed.begin(), mixed.end(), 3u), 16);
  for (int lone_threads : {0, 2}) {
    auto shard = ExpertShard::Load(*checkpoint_, {});
    ASSERT_TRUE(shard.ok());
    CpuExpertOptions options;
    options.compute_threads = 3;
    options.lone_expert_threads = lone_threads;
    ExpertExecutor executor(std::make_unique<CpuExpertRunner>(std::move(*shard), options));
    for (int layer = 0; layer < 2; ++layer) {
      for (const std::vector<uint32_t>* experts : {&mixed, &few, &lone}) {
        const pb::ExpertRequest r = Request(layer, *experts, layer + 5);
        ExpertRowsView v;
        v.layer = r.layer();
        v.num_rows = r.num_rows();
        v.hidden_size = r.hidden_size();
        v.rows = r.rows();
        v.expert_ids = absl::MakeConstSpan(r.expert_ids().data(), r.expert_ids().size());
        ASSERT_TRUE(ValidateExpertRows(v, executor.runner()).ok());
        std::string out(r.rows().size(), '\0');
        absl::Notification done;
        absl::Status status;
        executor.Post([&](ExpertExecutor& e) {
          status = e.Run(v, out.data());
          done.Notify();
        });
        done.WaitForNotification();
        ASSERT_TRUE(status.ok()) << status;
        EXPECT_TRUE(out == Expected(r)) << "layer " << layer << ", " << experts->size() << " rows, lone threads "
                                        << lone_threads;
      }
    }
  }
}

TEST_F(WorkerServiceTest, ZeroRowsGetAnEmptyReply) {
  pb::ExpertRequest r = Request(/*layer=*/0, {});
  pb::ExpertResponse response;
  const grpc::Status s = Call(r, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.num_rows(), 0u);
  EXPECT_TRUE(response.outputs().empty());
}

TEST_F(WorkerServiceTest, ManyConcurrentUnaryCallsAllComplete) {
  constexpr int kCalls = 32;
  std::vector<pb::ExpertRequest> requests;
  for (int i = 0; i < kCalls; ++i) requests.push_back(Request(i % 2, {static_cast<uint32_t>(2 * (i % 2))}, i));
  std::vector<pb::ExpertResponse> responses(kCalls);
  std::vector<grpc::ClientContext> contexts(kCalls);
  std::vector<grpc::Status> statuses(kCalls);
  absl::Mutex mu;
  int done = 0;
  for (int i = 0; i < kCalls; ++i) {
    contexts[i].set_deadline(rpc::DeadlineIn(5000));
    stub_->async()->RunExperts(&contexts[i], &requests[i], &responses[i], [&, i](grpc::Status s) {
      absl::MutexLock lock(&mu);
      statuses[i] = std::move(s);
      ++done;
    });
  }
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(+[](int* d) { return *d == kCalls; }, &done));
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << statuses[i].error_message();
    EXPECT_TRUE(responses[i].outputs() == Expected(requests[i])) << i;
  }
}


}  // namespace
}  // namespace moe
