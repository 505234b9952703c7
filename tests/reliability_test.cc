// Failure modes of the cluster as an outside client (or attacker) meets
// them, on real processes over loopback: undecodable gRPC requests, health
// per service. Each case here was found failing by a hostile-input and
// fault campaign (docs/reliability.md lists them all).
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <vector>

#include "deploy/local/cluster.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "moe/internal/v1/expert_worker.grpc.pb.h"
#include "moe/internal/v1/router.grpc.pb.h"
#include "moe/v1/inference.grpc.pb.h"
#include "proto/rpc_util.h"

namespace moe {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class ReliabilityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char dir[] = "/tmp/moe-reliability-test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    run_dir_ = dir;
    LocalClusterOptions o;
    o.model_dir = std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral";
    o.num_workers = 1;
    o.bin_dir = MOE_BIN_DIR;
    o.worker_threads = 1;
    o.router_threads = 1;
    o.run_dir = run_dir_ + "/cluster";
    cluster_ = new LocalCluster(o);
    const absl::Status up = cluster_->Up();
    ASSERT_TRUE(up.ok()) << up;
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
    std::filesystem::remove_all(run_dir_);
  }

  // One call with raw request bytes; the status it ended with.
  static grpc::Status RawCall(const std::string& address, const std::string& method, const std::string& bytes) {
    grpc::GenericStub stub(rpc::MakeChannel(address));
    grpc::ClientContext context;
    context.set_deadline(rpc::DeadlineIn(10000));
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1), response;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                   [&done](grpc::Status s) { done.set_value(std::move(s)); });
    return done.get_future().get();
  }

  static inline LocalCluster* cluster_ = nullptr;
  static inline std::string run_dir_;
};

// A proto3 `string` field holding invalid UTF-8, and a truncated message:
// INVALID_ARGUMENT saying the request could not be parsed (gRPC's default is
// UNIMPLEMENTED with an empty message), no protobuf ERROR line in the
// server's log, and the server keeps serving.
TEST_F(ReliabilityTest, UndecodableRequestsAreInvalidArgument) {
  // GenerateRequest{text = "\xff\xfe"}: field 2, length-delimited.
  const std::string bad_utf8 = std::string("\x12\x02\xff\xfe", 4);
  moe::v1::GenerateRequest ok;
  ok.set_text("Hello there, a prompt");
  ok.set_max_tokens(4);
  const std::string truncated = ok.SerializeAsString().substr(0, 6);  // inside the text field
  struct Case {
    std::string address, method, bytes, type, why;
  };
  moe::internal::v1::ExpertRequest expert;
  expert.set_rows(std::string(64, 'x'));
  const std::vector<Case> cases = {
      {cluster_->gateway_address(), "/moe.v1.Inference/Generate", bad_utf8, "GenerateRequest", "invalid UTF-8"},
      {cluster_->gateway_address(), "/moe.v1.Inference/Complete", bad_utf8, "GenerateRequest", "invalid UTF-8"},
      {cluster_->gateway_address(), "/moe.v1.Inference/Complete", truncated, "GenerateRequest", "not a valid"},
      {cluster_->gateway_address(), "/moe.v1.Inference/Tokenize", "\x0a\x01\xc3", "TokenizeRequest", "invalid UTF-8"},
      {cluster_->router_address(), "/moe.internal.v1.Router/Generate", "\x18\xff\xff", "RouterGenerateRequest",
       "not a valid"},
      {cluster_->router_address(), "/moe.internal.v1.Router/Abort", "\x0a\x01\xff", "AbortRequest", "invalid UTF-8"},
      {cluster_->worker_addresses()[0], "/moe.internal.v1.ExpertWorker/RunExperts",
       expert.SerializeAsString().substr(0, 20), "ExpertRequest", "not a valid"},
  };
  for (const Case& c : cases) {
    const grpc::Status s = RawCall(c.address, c.method, c.bytes);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.method << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.type + " could not be parsed")) << c.method;
    EXPECT_THAT(s.error_message(), HasSubstr(c.why)) << c.method;
  }
  // Still serving: a good request through the same gateway.
  auto stub = moe::v1::Inference::NewStub(rpc::MakeChannel(cluster_->gateway_address()));
  grpc::ClientContext context;
  context.set_deadline(rpc::DeadlineIn(30000));
  moe::v1::CompleteResponse response;
  const grpc::Status good = stub->Complete(&context, ok, &response);
  EXPECT_TRUE(good.ok()) << good.error_message();
  for (const char* name : {"gateway", "router", "worker-0"}) {
    EXPECT_THAT(ReadFile(cluster_->run_dir() + "/" + std::string(name) + ".log"), Not(HasSubstr("libprotobuf ERROR"))) << name;
  }
}

// Every served service answers on the health service by name (was
// NOT_FOUND), as well as the server overall.
TEST_F(ReliabilityTest, HealthAnswersForEveryServedService) {
  struct Case {
    std::string address, service;
  };
  for (const Case& c : std::vector<Case>{
           {cluster_->gateway_address(), ""},
           {cluster_->gateway_address(), "moe.v1.Inference"},
           {cluster_->router_address(), "moe.internal.v1.Router"},
           {cluster_->worker_addresses()[0], "moe.internal.v1.ExpertWorker"},
       }) {
    auto stub = grpc::health::v1::Health::NewStub(rpc::MakeChannel(c.address));
    grpc::ClientContext context;
    context.set_deadline(rpc::DeadlineIn(5000));
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(c.service);
    grpc::health::v1::HealthCheckResponse response;
    const grpc::Status s = stub->Check(&context, request, &response);
    ASSERT_TRUE(s.ok()) << c.service << ": " << s.error_message();
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING) << c.service;
  }
}

}  // namespace
}  // namespace moe
