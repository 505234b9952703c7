// Failure modes of the cluster as an outside client (or attacker) meets
// them, on real processes over loopback: undecodable gRPC requests, health
// per service. Each case here was found failing by a hostile-input and
// fault campaign (docs/reliability.md lists them all).
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

#include "deploy/local/cluster.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "httplib.h"
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

// A tiny-mixtral cluster (one worker, one thread each) in a fresh directory
// under /tmp named after `what`; the directory goes to *run_dir.
LocalClusterOptions TinyCluster(const std::string& what, std::string* run_dir) {
  std::string dir = "/tmp/moe-" + what + ".XXXXXX";
  EXPECT_NE(mkdtemp(dir.data()), nullptr);
  *run_dir = dir;
  LocalClusterOptions o;
  o.model_dir = std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral";
  o.num_workers = 1;
  o.bin_dir = MOE_BIN_DIR;
  o.worker_threads = 1;
  o.router_threads = 1;
  o.run_dir = dir + "/cluster";
  return o;
}

class ReliabilityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new LocalCluster(TinyCluster("reliability-test", &run_dir_));
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
      {cluster_->router_address(), "/moe.internal.v1.Router/Abort", "\x10\xff\xff", "AbortRequest", "not a valid"},
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

// --- Expert replicas: three workers, every expert on two of them ---------------

// One stream's outcome: the status, the token ids and their logprobs, and the
// longest wait between two messages.
struct StreamResult {
  grpc::Status status;
  std::vector<uint32_t> ids;
  std::vector<double> logprobs;
  double max_gap_s = 0;
};

class ReplicaTest : public ::testing::Test {
 protected:
  static constexpr int kStreams = 16;
  static constexpr int kTokens = 40;
  static constexpr int64_t kDeadlineMs = 1500;

  void SetUp() override {
    LocalClusterOptions o = TinyCluster("replica-test", &run_dir_);
    // tiny-mixtral has 4 experts: worker i holds those with e mod 3 != i.
    o.worker_specs = {"1,2", "0,2,3", "0,1,3"};
    o.extra_router_flags = {absl::StrCat("--dispatch-deadline-ms=", kDeadlineMs)};
    o.http_port = 0;
    cluster_ = std::make_unique<LocalCluster>(o);
    const absl::Status up = cluster_->Up();
    ASSERT_TRUE(up.ok()) << up;
  }
  void TearDown() override {
    for (pid_t p : stopped_) kill(p, SIGCONT);
    cluster_.reset();
    std::filesystem::remove_all(run_dir_);
  }

  pid_t WorkerPid(const std::string& name) {
    pid_t pid = -1;
    for (const auto& c : cluster_->processes().children()) {
      if (c.name == name && !c.exited) pid = c.pid;
    }
    return pid;
  }

  // kStreams concurrent greedy streams of kTokens tokens (prompt i varies
  // with i); `during` runs once every stream has its first token.
  std::vector<StreamResult> RunStreams(const std::function<void()>& during = {}) {
    std::vector<StreamResult> results(kStreams);
    std::atomic<int> started{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kStreams; ++i) {
      threads.emplace_back([&, i] {
        auto stub = moe::v1::Inference::NewStub(rpc::MakeChannel(cluster_->gateway_address()));
        grpc::ClientContext context;
        context.set_deadline(rpc::DeadlineIn(120000));
        moe::v1::GenerateRequest request;
        request.set_text(absl::StrCat("Replica test prompt number ", i, ": the experts"));
        request.set_max_tokens(kTokens);
        request.mutable_sampling()->set_temperature(0);
        request.mutable_sampling()->set_ignore_eos(true);
        auto reader = stub->Generate(&context, request);
        moe::v1::GenerateResponse m;
        auto last = std::chrono::steady_clock::now();
        bool first = true;
        while (reader->Read(&m)) {
          const auto now = std::chrono::steady_clock::now();
          if (!first) {
            results[i].max_gap_s = std::max(results[i].max_gap_s, std::chrono::duration<double>(now - last).count());
          }
          last = now;
          for (const auto& t : m.tokens()) {
            results[i].ids.push_back(t.id());
            results[i].logprobs.push_back(t.logprob());
          }
          if (first && m.tokens_size() > 0) {
            first = false;
            started.fetch_add(1);
          }
        }
        results[i].status = reader->Finish();
        if (first) started.fetch_add(1);
      });
    }
    while (started.load() < kStreams) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (during) during();
    for (auto& t : threads) t.join();
    return results;
  }

  static void ExpectSame(const std::vector<StreamResult>& got, const std::vector<StreamResult>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_TRUE(got[i].status.ok()) << "stream " << i << ": " << got[i].status.error_message();
      EXPECT_EQ(got[i].ids, want[i].ids) << "stream " << i;
      EXPECT_EQ(got[i].logprobs, want[i].logprobs) << "stream " << i;  // bitwise
    }
  }

  std::unique_ptr<LocalCluster> cluster_;
  std::string run_dir_;
  std::vector<pid_t> stopped_;
};

TEST_F(ReplicaTest, AWorkerKilledMidStreamLosesNoStreamAndChangesNoToken) {
  const std::vector<StreamResult> want = RunStreams();
  for (const StreamResult& r : want) {
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    ASSERT_EQ(r.ids.size(), static_cast<size_t>(kTokens));
  }
  const pid_t victim = WorkerPid("worker-1");
  ASSERT_GT(victim, 0);
  const std::vector<StreamResult> got = RunStreams([&] { kill(victim, SIGKILL); });
  ExpectSame(got, want);
}

TEST_F(ReplicaTest, AStoppedWorkerDelaysAStepByAtMostOneDeadline) {
  const std::vector<StreamResult> want = RunStreams();
  const pid_t victim = WorkerPid("worker-2");
  ASSERT_GT(victim, 0);
  const std::vector<StreamResult> got = RunStreams([&] {
    kill(victim, SIGSTOP);
    stopped_.push_back(victim);
  });
  ExpectSame(got, want);
  double worst = 0;
  for (const StreamResult& r : got) worst = std::max(worst, r.max_gap_s);
  std::printf("longest gap between tokens with a stopped worker: %.3f s (deadline %.3f s)\n", worst,
              kDeadlineMs / 1000.0);
  // One deadline, plus the retried exchange and the step's own compute on a
  // loaded 2-core host.
  EXPECT_LT(worst, kDeadlineMs / 1000.0 + 1.0);
}

TEST_F(ReplicaTest, LosingEveryReplicaOfAnExpertIsUnavailableNamingIt) {
  // Expert 2 lives on workers 0 and 1.
  for (const char* name : {"worker-0", "worker-1"}) {
    const pid_t pid = WorkerPid(name);
    ASSERT_GT(pid, 0);
    kill(pid, SIGKILL);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto stub = moe::v1::Inference::NewStub(rpc::MakeChannel(cluster_->gateway_address()));
  // Enough tokens that some step routes to expert 2.
  grpc::ClientContext context;
  context.set_deadline(rpc::DeadlineIn(60000));
  moe::v1::GenerateRequest request;
  request.set_text("Every replica of an expert is gone");
  request.set_max_tokens(64);
  request.mutable_sampling()->set_ignore_eos(true);
  moe::v1::CompleteResponse response;
  const auto t0 = std::chrono::steady_clock::now();
  const grpc::Status s = stub->Complete(&context, request, &response);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("no healthy expert worker left for experts"));
  EXPECT_THAT(s.error_message(), testing::ContainsRegex("experts [0-9, ]*2"));
  // The router marks the workers' failure (trailing metadata moe-error-origin),
  // so the gateway does not blame the router for it.
  EXPECT_THAT(s.error_message(), testing::Not(testing::StartsWith("router ")));
  EXPECT_LT(seconds, kDeadlineMs / 1000.0 + 1.0);
}

TEST_F(ReplicaTest, ADeadWorkerIsRestartedAndTheRouterUsesItAgain) {
  const pid_t victim = WorkerPid("worker-0");
  ASSERT_GT(victim, 0);
  kill(victim, SIGKILL);
  auto router = moe::internal::v1::Router::NewStub(rpc::MakeChannel(cluster_->router_address()));
  auto worker_healthy = [&](bool want) {
    grpc::ClientContext context;
    context.set_deadline(rpc::DeadlineIn(2000));
    moe::internal::v1::LoadReport load;
    if (!router->GetLoad(&context, moe::internal::v1::GetLoadRequest(), &load).ok()) return false;
    for (const auto& w : load.workers()) {
      if (w.address() == cluster_->worker_addresses()[0]) return w.healthy() == want;
    }
    return false;
  };
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool restarted = false, healthy_again = false;
  while (std::chrono::steady_clock::now() < until && !healthy_again) {
    absl::StatusOr<std::vector<std::string>> report = cluster_->Supervise();
    ASSERT_TRUE(report.ok()) << report.status();
    restarted = restarted || cluster_->restarts() > 0;
    healthy_again = restarted && worker_healthy(true);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(restarted);
  EXPECT_TRUE(healthy_again) << "the router did not take the restarted worker back";
  EXPECT_GT(WorkerPid("worker-0"), 0);
  EXPECT_NE(WorkerPid("worker-0"), victim);
}

// Supervision stops at a dead router (the cluster cannot serve without it)
// and says which process died and where its log is.
TEST_F(ReplicaTest, ARouterThatDiesIsReportedNotRestarted) {
  const pid_t router = WorkerPid("router");
  ASSERT_GT(router, 0);
  kill(router, SIGKILL);
  absl::StatusOr<std::vector<std::string>> report;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    report = cluster_->Supervise();
  } while (report.ok() && std::chrono::steady_clock::now() < until);
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(std::string(report.status().message()), HasSubstr("router exited (signal 9)"));
  EXPECT_THAT(std::string(report.status().message()), HasSubstr("router.log"));
  EXPECT_EQ(cluster_->restarts(), 0);
}

grpc::health::v1::HealthCheckResponse::ServingStatus HealthOf(const std::string& address) {
  auto stub = grpc::health::v1::Health::NewStub(rpc::MakeChannel(address));
  grpc::ClientContext context;
  context.set_deadline(rpc::DeadlineIn(2000));
  grpc::health::v1::HealthCheckResponse response;
  if (!stub->Check(&context, grpc::health::v1::HealthCheckRequest(), &response).ok()) {
    return grpc::health::v1::HealthCheckResponse::UNKNOWN;
  }
  return response.status();
}

int HttpHealthStatus(const std::string& address) {
  httplib::Client c(address.substr(0, address.rfind(':')), std::stoi(address.substr(address.rfind(':') + 1)));
  c.set_read_timeout(10, 0);
  httplib::Result r = c.Get("/health");
  return r ? r->status : -1;
}

// The gateway's gRPC health and its HTTP /health agree: both fail once no
// router can serve (the gRPC one used to stay SERVING).
TEST_F(ReplicaTest, GatewayHealthFollowsItsRouters) {
  EXPECT_EQ(HealthOf(cluster_->gateway_address()), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(HttpHealthStatus(cluster_->gateway_http_address()), 200);
  const pid_t router = WorkerPid("router");
  ASSERT_GT(router, 0);
  kill(router, SIGKILL);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  auto status = HealthOf(cluster_->gateway_address());
  while (status == grpc::health::v1::HealthCheckResponse::SERVING && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    status = HealthOf(cluster_->gateway_address());
  }
  EXPECT_EQ(status, grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(HttpHealthStatus(cluster_->gateway_http_address()), 503);
}

// --- Graceful drain on SIGTERM ------------------------------------------------

class DrainTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> router_flags, std::vector<std::string> gateway_flags) {
    LocalClusterOptions o = TinyCluster("drain-test", &run_dir_);
    o.extra_router_flags = std::move(router_flags);
    o.extra_gateway_flags = std::move(gateway_flags);
    cluster_ = std::make_unique<LocalCluster>(o);
    const absl::Status up = cluster_->Up();
    ASSERT_TRUE(up.ok()) << up;
  }
  void TearDown() override {
    cluster_.reset();
    if (!run_dir_.empty()) std::filesystem::remove_all(run_dir_);
  }
  pid_t Pid(const std::string& name) {
    for (const auto& c : cluster_->processes().children()) {
      if (c.name == name && !c.exited) return c.pid;
    }
    return -1;
  }
  // Waits (up to `seconds`) for child `name` to exit; its waitpid status, or -1.
  int WaitExit(const std::string& name, double seconds) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < until) {
      for (const auto& c : cluster_->processes().Reap()) {
        if (c.name == name) return c.status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  struct Opened {
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::ClientReader<moe::v1::GenerateResponse>> reader;
    size_t tokens = 0;
  };
  // A greedy stream of `max_tokens` through `address` (the gateway), with its
  // first message read.
  Opened Open(int max_tokens) {
    Opened o;
    o.context = std::make_unique<grpc::ClientContext>();
    o.context->set_deadline(rpc::DeadlineIn(120000));
    moe::v1::GenerateRequest request;
    request.set_text("Draining: a long answer follows");
    request.set_max_tokens(max_tokens);
    request.mutable_sampling()->set_ignore_eos(true);
    stubs_.push_back(moe::v1::Inference::NewStub(rpc::MakeChannel(cluster_->gateway_address())));
    o.reader = stubs_.back()->Generate(o.context.get(), request);
    moe::v1::GenerateResponse m;
    EXPECT_TRUE(o.reader->Read(&m));
    o.tokens += m.tokens_size();
    return o;
  }
  static grpc::Status ReadToEnd(Opened& o) {
    moe::v1::GenerateResponse m;
    while (o.reader->Read(&m)) o.tokens += m.tokens_size();
    return o.reader->Finish();
  }
  grpc::Status CompleteOnce() {
    auto stub = moe::v1::Inference::NewStub(rpc::MakeChannel(cluster_->gateway_address()));
    grpc::ClientContext context;
    context.set_deadline(rpc::DeadlineIn(10000));
    moe::v1::GenerateRequest request;
    request.set_text("A new request");
    request.set_max_tokens(2);
    moe::v1::CompleteResponse response;
    return stub->Complete(&context, request, &response);
  }

  std::unique_ptr<LocalCluster> cluster_;
  std::string run_dir_;
  std::vector<std::unique_ptr<moe::v1::Inference::Stub>> stubs_;
};

// Router SIGTERM: NOT_SERVING at once, new requests UNAVAILABLE, open
// streams run to their end (they used to end at once, OK + CANCELLED), exit 0.
TEST_F(DrainTest, RouterFinishesOpenStreamsAndRefusesNewOnes) {
  Start({"--drain-timeout-s=60"}, {});
  std::vector<Opened> open;
  for (int i = 0; i < 4; ++i) open.push_back(Open(300));
  const std::string router = cluster_->router_address();
  kill(Pid("router"), SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(HealthOf(router), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  const grpc::Status refused = CompleteOnce();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  EXPECT_THAT(refused.error_message(), HasSubstr("draining"));
  for (Opened& o : open) {
    const grpc::Status s = ReadToEnd(o);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(o.tokens, 300u);
  }
  const int status = WaitExit("router", 30);
  ASSERT_NE(status, -1) << "the router did not exit after draining";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << DescribeExit(status);
}

// Past --drain-timeout-s, what is left ends with UNAVAILABLE, never OK.
TEST_F(DrainTest, RouterDrainTimeoutEndsTheRestUnavailable) {
  Start({"--drain-timeout-s=1"}, {});
  Opened o = Open(3500);
  const auto t0 = std::chrono::steady_clock::now();
  kill(Pid("router"), SIGTERM);
  const grpc::Status s = ReadToEnd(o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_LT(o.tokens, 3500u);
  EXPECT_LT(seconds, 10.0);
  const int status = WaitExit("router", 30);
  EXPECT_TRUE(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0) << DescribeExit(status);
}

// Gateway SIGTERM: NOT_SERVING at once, new calls UNAVAILABLE, open streams
// finish (they were cut after 2 s), exit 0.
TEST_F(DrainTest, GatewayFinishesOpenStreamsAndRefusesNewOnes) {
  Start({}, {"--drain-timeout-s=60"});
  std::vector<Opened> open;
  for (int i = 0; i < 3; ++i) open.push_back(Open(600));
  const std::string gateway = cluster_->gateway_address();
  kill(Pid("gateway"), SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(HealthOf(gateway), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  const grpc::Status refused = CompleteOnce();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  for (Opened& o : open) {
    const grpc::Status s = ReadToEnd(o);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(o.tokens, 600u);
  }
  const int status = WaitExit("gateway", 30);
  ASSERT_NE(status, -1);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << DescribeExit(status);
}

// A second signal during a drain exits at once.
TEST_F(DrainTest, ASecondSignalExitsAtOnce) {
  Start({"--drain-timeout-s=600"}, {});
  Opened o = Open(3500);
  kill(Pid("router"), SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto t0 = std::chrono::steady_clock::now();
  kill(Pid("router"), SIGTERM);
  const int status = WaitExit("router", 10);
  ASSERT_NE(status, -1) << "still draining after the second signal";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << DescribeExit(status);
  EXPECT_FALSE(ReadToEnd(o).ok());
}

// An expert worker drains on SIGTERM: NOT_SERVING at once, exits 0.
TEST_F(DrainTest, WorkerDrainsAndExits) {
  Start({}, {});
  const std::string worker = cluster_->worker_addresses()[0];
  EXPECT_EQ(HealthOf(worker), grpc::health::v1::HealthCheckResponse::SERVING);
  kill(Pid("worker-0"), SIGTERM);
  const int status = WaitExit("worker-0", 30);
  ASSERT_NE(status, -1);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << DescribeExit(status);
}

// A killed worker (no replica) that comes back serves at once: requests
// sent right after it reports SERVING succeed (11-12 of them used to fail in
// the first 0.6-0.7 s, while the router's channel sat in reconnect back-off).
TEST_F(DrainTest, ARestartedWorkerServesAsSoonAsItReportsServing) {
  Start({"--dispatch-deadline-ms=1000"}, {});
  const std::string worker = cluster_->worker_addresses()[0];
  ASSERT_TRUE(CompleteOnce().ok());
  kill(Pid("worker-0"), SIGKILL);
  // Requests fail while it is gone (no replica): that moves the router's
  // channel into reconnect back-off.
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(CompleteOnce().ok());
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (cluster_->restarts() == 0 && std::chrono::steady_clock::now() < until) {
    ASSERT_TRUE(cluster_->Supervise().ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(cluster_->restarts(), 1);
  while (HealthOf(worker) != grpc::health::v1::HealthCheckResponse::SERVING &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  int failed = 0;
  std::string first_error;
  for (int i = 0; i < 12; ++i) {
    const grpc::Status s = CompleteOnce();
    if (!s.ok() && failed++ == 0) first_error = s.error_message();
  }
  EXPECT_EQ(failed, 0) << "first error: " << first_error << "\nrouter log:\n"
                       << ReadFile(cluster_->run_dir() + "/router.log");
}

// --- HTTP clients that leave ----------------------------------------------------

// A raw HTTP/1.1 connection: the request is sent, nothing is read, and the
// socket is closed when the test says so (as a client that gives up does).
class RawHttp {
 public:
  RawHttp(const std::string& address, const std::string& path, const std::string& body) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1))));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    EXPECT_EQ(connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    const std::string request = absl::StrCat("POST ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                                             "Content-Type: application/json\r\nContent-Length: ", body.size(),
                                             "\r\n\r\n", body);
    EXPECT_EQ(send(fd_, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
  }
  ~RawHttp() { Close(); }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

class HttpDisconnectTest : public DrainTest {
 protected:
  void SetUp() override {
    LocalClusterOptions o = TinyCluster("disconnect-test", &run_dir_);
    o.http_port = 0;
    o.extra_router_flags = {"--max-running-seqs=1"};  // a second request waits in the queue
    cluster_ = std::make_unique<LocalCluster>(o);
    const absl::Status up = cluster_->Up();
    ASSERT_TRUE(up.ok()) << up;
  }
  moe::internal::v1::LoadReport Load() {
    auto router = moe::internal::v1::Router::NewStub(rpc::MakeChannel(cluster_->router_address()));
    grpc::ClientContext context;
    context.set_deadline(rpc::DeadlineIn(2000));
    moe::internal::v1::LoadReport load;
    EXPECT_TRUE(router->GetLoad(&context, moe::internal::v1::GetLoadRequest(), &load).ok());
    return load;
  }
  // Waits up to `seconds` for `done(load)`; the seconds it took, or -1.
  double WaitFor(const std::function<bool(const moe::internal::v1::LoadReport&)>& done, double seconds) {
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
      if (done(Load())) return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }
  static std::string LongCompletion(bool stream) {
    return absl::StrCat(R"({"model": "tiny-mixtral", "prompt": "A long answer", "max_tokens": 3500, )",
                        R"("ignore_eos": true, "stream": )", stream ? "true" : "false", "}");
  }
};

// A non-streamed completion whose client leaves stops generating at once
// (it used to run to its end: 2,934 more tokens).
TEST_F(HttpDisconnectTest, ANonStreamedRequestStopsWhenItsClientLeaves) {
  RawHttp client(cluster_->gateway_http_address(), "/v1/completions", LongCompletion(false));
  ASSERT_GE(WaitFor([](const auto& l) { return l.running_requests() == 1 && l.generated_tokens() > 0; }, 20), 0);
  client.Close();
  const uint64_t at_close = Load().generated_tokens();
  const double took = WaitFor([](const auto& l) { return l.running_requests() == 0; }, 5);
  ASSERT_GE(took, 0) << "still generating 5 s after the client left";
  std::printf("router idle %.3f s after the client left; %llu tokens after the close\n", took,
              static_cast<unsigned long long>(Load().generated_tokens() - at_close));
  EXPECT_LT(took, 1.0);
  EXPECT_LT(Load().generated_tokens(), 3500u);
}

// An SSE client that leaves while its request waits in the router's queue:
// the request leaves the queue (it used to stay until admitted).
TEST_F(HttpDisconnectTest, AQueuedStreamLeavesTheQueueWhenItsClientLeaves) {
  Opened running = Open(3500);  // takes the only running slot
  RawHttp client(cluster_->gateway_http_address(), "/v1/completions", LongCompletion(true));
  ASSERT_GE(WaitFor([](const auto& l) { return l.waiting_requests() == 1; }, 20), 0);
  client.Close();
  const double took = WaitFor([](const auto& l) { return l.waiting_requests() == 0; }, 5);
  ASSERT_GE(took, 0) << "still queued 5 s after the client left";
  EXPECT_LT(took, 1.0);
  EXPECT_EQ(Load().running_requests(), 1u);  // the other one runs on
  running.context->TryCancel();
  ReadToEnd(running);
  const double idle = WaitFor([](const auto& l) { return l.running_requests() == 0; }, 5);
  std::printf("cancelled gRPC stream: router idle after %.3f s\n", idle);
}

}  // namespace
}  // namespace moe
