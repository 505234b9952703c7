// The cluster as users run it: real worker, router and gateway processes on
// 127.0.0.1 with ports chosen by the OS, driven through the public gRPC API.
#include <signal.h>
#include <sys/wait.h>

#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <sstream>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "core/cpu_affinity.h"
#include "deploy/local/cluster.h"
#include "gmock/gmock.h"
#include "google/protobuf/io/coded_stream.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "moe/internal/v1/router.grpc.pb.h"
#include "moe/v1/inference.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "proto/rpc_util.h"
#include "tests/shell_command.h"
#include "tests/tiny_models.h"

namespace moe {
namespace {

using ::testing::HasSubstr;

const std::string kModel = std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral";

nlohmann::json Golden() {
  std::ifstream in(kModel + "/golden.json");
  return nlohmann::json::parse(in);
}

LocalClusterOptions Options(int workers) {
  LocalClusterOptions o;
  o.model_dir = kModel;
  o.num_workers = workers;
  o.bin_dir = MOE_BIN_DIR;
  o.worker_threads = 1;
  o.router_threads = 1;
  o.startup_timeout_ms = 60000;
  o.extra_router_flags = {"--dispatch-deadline-ms=3000"};
  return o;
}

struct Generation {
  grpc::Status status;
  std::vector<uint32_t> ids;
  std::vector<std::vector<std::pair<uint32_t, double>>> top;  // per step
  std::string text;
  moe::v1::FinishReason finish = moe::v1::FINISH_REASON_UNSPECIFIED;
};

moe::v1::GenerateRequest GreedyRequest(const std::vector<uint32_t>& prompt, int max_tokens) {
  moe::v1::GenerateRequest req;
  for (uint32_t id : prompt) req.mutable_token_ids()->add_ids(id);
  req.set_max_tokens(max_tokens);
  req.mutable_sampling()->set_temperature(0);
  req.mutable_sampling()->set_ignore_eos(true);
  req.mutable_sampling()->set_logprobs(5);
  return req;
}

Generation Generate(const std::string& gateway, const moe::v1::GenerateRequest& req, int64_t timeout_ms = 60000,
                    const std::function<void(int)>& on_token = nullptr) {
  auto stub = moe::v1::Inference::NewStub(rpc::MakeChannel(gateway));
  grpc::ClientContext ctx;
  ctx.set_deadline(rpc::DeadlineIn(timeout_ms));
  // The cluster just started and the machine may be busy: wait for the
  // connection instead of failing fast on a transient connect error.
  ctx.set_wait_for_ready(true);
  Generation g;
  auto reader = stub->Generate(&ctx, req);
  moe::v1::GenerateResponse msg;
  while (reader->Read(&msg)) {
    g.text += msg.text();
    for (const auto& t : msg.tokens()) {
      g.ids.push_back(t.id());
      std::vector<std::pair<uint32_t, double>> top;
      for (const auto& a : t.top_logprobs()) top.emplace_back(a.id(), a.logprob());
      g.top.push_back(top);
      if (on_token) on_token(static_cast<int>(g.ids.size()));
    }
    if (msg.finish_reason() != moe::v1::FINISH_REASON_UNSPECIFIED) g.finish = msg.finish_reason();
  }
  g.status = reader->Finish();
  return g;
}

// Golden prompts through the gateway, for a given number of workers;
// `inspect` sees the running cluster before it stops.
std::vector<Generation> RunGolden(LocalClusterOptions options,
                                  const std::function<void(LocalCluster&)>& inspect = nullptr) {
  LocalCluster cluster(std::move(options));
  const absl::Status up = cluster.Up();
  EXPECT_TRUE(up.ok()) << up;
  std::vector<Generation> out;
  if (!up.ok()) return out;
  std::ifstream in(cluster.options().model_dir + "/golden.json");
  const nlohmann::json golden = nlohmann::json::parse(in);
  for (const auto& c : golden["cases"]) {
    out.push_back(Generate(cluster.gateway_address(),
                           GreedyRequest(c["prompt_ids"].get<std::vector<uint32_t>>(), 16)));
  }
  if (inspect) inspect(cluster);
  return out;
}
std::vector<Generation> RunGolden(int workers) { return RunGolden(Options(workers)); }

// One line of /proc/PID/task/TID/status, e.g. "Cpus_allowed_list".
std::string TaskStatus(pid_t pid, const std::string& tid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + tid + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      std::string v = line.substr(key.size() + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return "";
}

// The scheduling policy of a thread: field 41 of /proc/PID/task/TID/stat.
int TaskPolicy(pid_t pid, const std::string& tid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + tid + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));  // after "pid (comm) "
  std::string field;
  for (int i = 3; i <= 41 && rest >> field; ++i) {
  }
  return std::stoi(field);
}

TEST(ClusterTest, GoldenGreedyIdsWithOneTwoFourWorkersBitwiseEqualToLocal) {
  const nlohmann::json golden = Golden();
  const std::vector<Generation> local = RunGolden(0);
  ASSERT_EQ(local.size(), golden["cases"].size());
  for (size_t i = 0; i < local.size(); ++i) {
    ASSERT_TRUE(local[i].status.ok()) << local[i].status.error_message();
    EXPECT_EQ(local[i].ids, golden["cases"][i]["greedy_ids"].get<std::vector<uint32_t>>());
    EXPECT_EQ(local[i].text, golden["cases"][i]["greedy_text"].get<std::string>());
    EXPECT_EQ(local[i].finish, moe::v1::FINISH_REASON_LENGTH);
    for (size_t step = 0; step < local[i].top.size(); ++step) {
      EXPECT_NEAR(local[i].top[step][0].second,
                  golden["cases"][i]["top5_logprobs_each_step"][step][0][1].get<double>(), 1e-4);
    }
  }
  for (int workers : {1, 2, 4}) {
    const std::vector<Generation> remote = RunGolden(workers);
    ASSERT_EQ(remote.size(), local.size()) << workers << " workers";
    for (size_t i = 0; i < remote.size(); ++i) {
      ASSERT_TRUE(remote[i].status.ok()) << workers << " workers: " << remote[i].status.error_message();
      EXPECT_EQ(remote[i].ids, local[i].ids) << workers << " workers, case " << i;
      // Log-probabilities come from the logits: bitwise equal means the logits were.
      EXPECT_EQ(remote[i].top, local[i].top) << workers << " workers, case " << i;
    }
  }
}

// The other families through the cluster: golden tokens and log-probabilities,
// and two workers bitwise equal to in-process experts (Mixtral: the test above).
class ClusterFamilyTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ClusterFamilyTest, GoldenWithTwoWorkersBitwiseEqualToInProcess) {
  const nlohmann::json golden = test::TinyGolden(GetParam());
  LocalClusterOptions o = Options(0);
  o.model_dir = test::TinyModelDir(GetParam());
  const std::vector<Generation> local = RunGolden(o);
  ASSERT_EQ(local.size(), golden["cases"].size());
  double worst = 0;
  for (size_t i = 0; i < local.size(); ++i) {
    const auto& c = golden["cases"][i];
    ASSERT_TRUE(local[i].status.ok()) << local[i].status.error_message();
    EXPECT_EQ(local[i].ids, c["greedy_ids"].get<std::vector<uint32_t>>()) << "case " << i;
    EXPECT_EQ(local[i].text, c["greedy_text"].get<std::string>()) << "case " << i;
    ASSERT_EQ(local[i].top.size(), 16u);
    for (size_t step = 0; step < local[i].top.size(); ++step) {
      ASSERT_EQ(local[i].top[step].size(), 5u);
      for (size_t k = 0; k < 5; ++k) {
        const double want = c["top5_logprobs_each_step"][step][k][1].get<double>();
        EXPECT_EQ(local[i].top[step][k].first, c["top5_logprobs_each_step"][step][k][0].get<uint32_t>());
        EXPECT_NEAR(local[i].top[step][k].second, want, 1e-4) << "case " << i << " step " << step;
        worst = std::max(worst, std::abs(local[i].top[step][k].second - want));
      }
    }
  }
  std::cout << GetParam() << ": max |logprob - golden| through the gateway = " << worst << "\n";
  o.num_workers = 2;
  const std::vector<Generation> remote = RunGolden(o);
  ASSERT_EQ(remote.size(), local.size());
  for (size_t i = 0; i < remote.size(); ++i) {
    ASSERT_TRUE(remote[i].status.ok()) << remote[i].status.error_message();
    EXPECT_EQ(remote[i].ids, local[i].ids) << "case " << i;
    EXPECT_EQ(remote[i].top, local[i].top) << "case " << i;  // bitwise: the logits were
  }
}

INSTANTIATE_TEST_SUITE_P(Families, ClusterFamilyTest, ::testing::Values("qwen2_moe", "qwen3_moe", "olmoe"),
                         test::FamilyName());

// A Qwen2-MoE with a dense MLP layer (mlp_only_layers): workers hold the
// experts of the MoE layers only, and two of them give bitwise the logits of
// in-process experts.
TEST(ClusterTest, ModelWithDenseMlpLayersServesBitwiseTheSameThroughWorkers) {
  char pattern[] = "/tmp/cluster_test.XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  const std::string dir = std::string(pattern) + "/model";
  const test::ShellResult made = test::RunShellCommand(std::string(MOE_BIN_DIR) +
                                                       "/moe-model make-tiny --family qwen2_moe --layers 3 "
                                                       "--mlp-only-layers 1 --seed 9 --out " + dir);
  ASSERT_EQ(made.exit_code, 0) << made.output;
  LocalClusterOptions o = Options(0);
  o.model_dir = dir;
  const std::vector<uint32_t> prompt = {11, 22, 33, 44, 55, 66, 77};
  std::vector<Generation> runs;
  for (int workers : {0, 2}) {
    o.num_workers = workers;
    LocalCluster cluster(o);
    const absl::Status up = cluster.Up();
    ASSERT_TRUE(up.ok()) << up;
    runs.push_back(Generate(cluster.gateway_address(), GreedyRequest(prompt, 12)));
    ASSERT_TRUE(runs.back().status.ok()) << runs.back().status.error_message();
    ASSERT_EQ(runs.back().ids.size(), 12u);
  }
  EXPECT_EQ(runs[1].ids, runs[0].ids);
  EXPECT_EQ(runs[1].top, runs[0].top);
  std::filesystem::remove_all(pattern);
}

TEST(ClusterTest, PlacedWorkersRunWhereTheyWereToldAndGiveBitwiseTheSameLogprobs) {
  // moe-cluster --place-workers: worker i's serving threads on the i-th CPU,
  // its kernel pool's helper on every CPU, every thread under SCHED_BATCH.
  const std::vector<Generation> local = RunGolden(0);
  LocalClusterOptions o = Options(2);
  o.place_workers = true;
  o.worker_threads = 2;
  const std::vector<int> cpus = AllowedCpus();
  ASSERT_FALSE(cpus.empty());
  const std::string all = FormatCpuList(cpus);  // the kernel's own format
  int workers_seen = 0;
  const std::vector<Generation> placed = RunGolden(o, [&](LocalCluster& cluster) {
    for (const auto& c : cluster.processes().children()) {
      if (c.name.rfind("worker-", 0) != 0) continue;
      const int i = std::stoi(c.name.substr(7));
      ++workers_seen;
      const std::string mine = std::to_string(cpus[i % cpus.size()]);
      int on_mine = 0, on_all = 0;
      for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(c.pid) + "/task")) {
        const std::string tid = task.path().filename().string();
        const std::string list = TaskStatus(c.pid, tid, "Cpus_allowed_list");
        if (list == mine) ++on_mine;
        if (list == all) ++on_all;
        EXPECT_TRUE(list == mine || list == all) << c.name << " thread " << tid << " on " << list;
        EXPECT_EQ(TaskPolicy(c.pid, tid), SCHED_BATCH) << c.name << " thread " << tid;
      }
      EXPECT_EQ(TaskStatus(c.pid, std::to_string(c.pid), "Cpus_allowed_list"), mine) << c.name << "'s main thread";
      EXPECT_GE(on_mine, 2) << c.name << ": the main thread and gRPC's";
      if (cpus.size() > 1) {
        EXPECT_GE(on_all, 1) << c.name << ": the kernel pool's helper";
      }
    }
  });
  EXPECT_EQ(workers_seen, 2);
  ASSERT_EQ(placed.size(), local.size());
  for (size_t i = 0; i < placed.size(); ++i) {
    ASSERT_TRUE(placed[i].status.ok()) << placed[i].status.error_message();
    EXPECT_EQ(placed[i].ids, local[i].ids) << "case " << i;
    EXPECT_EQ(placed[i].top, local[i].top) << "case " << i;
  }
}

TEST(ClusterTest, WorkerRefusesACpuListItCannotUse) {
  for (const auto& [flag, message] : std::vector<std::pair<std::string, std::string>>{
           {"--cpus=4095", "--cpus=4095: CPU 4095 is not one this process may use"},
           {"--cpus=0-", "--cpus=0-: \"0-\" is not a CPU number or a range A-B"},
           {"--threads=-1", "--threads is -1; want >= 0"}}) {
    const test::ShellResult r = test::RunShellCommand(std::string(MOE_BIN_DIR) + "/moe-expert-worker --model=" +
                                                      kModel + " --listen=127.0.0.1:0 " + flag);
    EXPECT_EQ(r.exit_code, 2) << flag << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr(message)) << flag;
  }
}

TEST(ClusterTest, KilledWorkerEndsStreamWithUnavailableAndARestartedWorkerServesAgain) {
  LocalCluster cluster(Options(2));
  ASSERT_TRUE(cluster.Up().ok());
  const std::string victim = cluster.worker_addresses()[1];
  pid_t victim_pid = -1;
  for (const auto& c : cluster.processes().children()) {
    if (c.name == "worker-1") victim_pid = c.pid;
  }
  ASSERT_GT(victim_pid, 0);
  const auto start = std::chrono::steady_clock::now();
  bool killed = false;
  const Generation g = Generate(cluster.gateway_address(), GreedyRequest({1, 2, 3}, 3000), 60000, [&](int n) {
    if (n == 5 && !killed) {
      killed = true;
      kill(victim_pid, SIGKILL);
    }
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(killed);
  EXPECT_EQ(g.status.error_code(), grpc::StatusCode::UNAVAILABLE) << g.status.error_message();
  EXPECT_THAT(g.status.error_message(), HasSubstr(victim));
  EXPECT_LT(secs, 15.0);
  EXPECT_LT(g.ids.size(), 3000u);

  // Router and gateway stay up; a worker restarted at the same address serves again.
  ProcessGroup restarted;
  ASSERT_TRUE(restarted
                  .Spawn("worker-1b", {std::string(MOE_BIN_DIR) + "/moe-expert-worker", "--model=" + kModel,
                                       "--experts=mod:1/2", "--listen=" + victim, "--threads=1"})
                  .ok());
  ASSERT_TRUE(rpc::WaitForServing(victim, 30000).ok());
  Generation after;
  for (int attempt = 0; attempt < 20; ++attempt) {  // the router's channel reconnects with back-off
    after = Generate(cluster.gateway_address(), GreedyRequest({1, 2, 3}, 8));
    if (after.status.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_TRUE(after.status.ok()) << after.status.error_message();
  EXPECT_EQ(after.ids.size(), 8u);
  restarted.StopAll();
}

TEST(ClusterTest, ClientCancelAndDeadlineFreeTheRouterWithinAStep) {
  LocalCluster cluster(Options(2));
  ASSERT_TRUE(cluster.Up().ok());
  auto router = moe::internal::v1::Router::NewStub(rpc::MakeChannel(cluster.router_address()));
  auto running = [&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(rpc::DeadlineIn(5000));
    // The cluster just started and the machine may be busy: wait for the
    // connection instead of failing fast on a transient connect error.
    ctx.set_wait_for_ready(true);
    moe::internal::v1::LoadReport load;
    EXPECT_TRUE(router->GetLoad(&ctx, moe::internal::v1::GetLoadRequest(), &load).ok());
    return load.running_requests() + load.waiting_requests();
  };
  auto wait_idle = [&] {
    for (int i = 0; i < 200 && running() != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return running();
  };
  // Cancel: the client goes away after a few tokens.
  {
    auto stub = moe::v1::Inference::NewStub(rpc::MakeChannel(cluster.gateway_address()));
    grpc::ClientContext ctx;
    auto reader = stub->Generate(&ctx, GreedyRequest({1, 2, 3}, 3000));
    moe::v1::GenerateResponse msg;
    int tokens = 0;
    while (tokens < 3 && reader->Read(&msg)) tokens += msg.tokens_size();
    EXPECT_EQ(running(), 1u);
    ctx.TryCancel();
    while (reader->Read(&msg)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
    EXPECT_EQ(wait_idle(), 0u);
  }
  // Deadline: the client's deadline reaches the router through the gateway.
  {
    moe::v1::GenerateRequest req = GreedyRequest({4, 5, 6}, 4000);
    const Generation g = Generate(cluster.gateway_address(), req, /*timeout_ms=*/300);
    EXPECT_EQ(g.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << g.status.error_message();
    EXPECT_EQ(wait_idle(), 0u);
  }
}

// The router keys requests by its own handle, not the client's id: two
// concurrent requests with the same request_id are two requests, and
// aborting one (by handle) leaves the other to complete.
TEST(ClusterTest, SameClientIdTwiceAtTheRouterAbortingOneLeavesTheOther) {
  LocalCluster cluster(Options(0));
  ASSERT_TRUE(cluster.Up().ok());
  auto router = moe::internal::v1::Router::NewStub(rpc::MakeChannel(cluster.router_address()));
  auto start = [&](grpc::ClientContext* ctx, int max_tokens) {
    moe::internal::v1::RouterGenerateRequest req;
    req.set_request_id("same-id");
    for (uint32_t id : {1u, 2u, 3u}) req.add_prompt_ids(id);
    req.set_max_tokens(max_tokens);
    req.mutable_sampling()->set_temperature(0);
    req.mutable_sampling()->set_ignore_eos(true);
    ctx->set_deadline(rpc::DeadlineIn(60000));
    ctx->set_wait_for_ready(true);
    return router->Generate(ctx, req);
  };
  grpc::ClientContext long_ctx, short_ctx;
  auto long_reader = start(&long_ctx, 3000);
  auto short_reader = start(&short_ctx, 40);
  moe::internal::v1::RouterGenerateResponse first_long, first_short;
  ASSERT_TRUE(long_reader->Read(&first_long));
  ASSERT_TRUE(short_reader->Read(&first_short));
  ASSERT_NE(first_long.request_handle(), 0u);
  EXPECT_NE(first_long.request_handle(), first_short.request_handle());

  grpc::ClientContext abort_ctx;
  abort_ctx.set_deadline(rpc::DeadlineIn(5000));
  moe::internal::v1::AbortRequest abort;
  abort.set_request_handle(first_long.request_handle());
  moe::internal::v1::AbortResponse found;
  ASSERT_TRUE(router->Abort(&abort_ctx, abort, &found).ok());
  EXPECT_TRUE(found.found());

  auto drain = [](auto& reader, moe::internal::v1::RouterGenerateResponse first) {
    int tokens = first.tokens_size();
    moe::v1::FinishReason finish = first.finish_reason();
    moe::internal::v1::RouterGenerateResponse msg;
    while (reader->Read(&msg)) {
      tokens += msg.tokens_size();
      if (msg.finish_reason() != moe::v1::FINISH_REASON_UNSPECIFIED) finish = msg.finish_reason();
    }
    EXPECT_TRUE(reader->Finish().ok());
    return std::make_pair(tokens, finish);
  };
  const auto [long_tokens, long_finish] = drain(long_reader, first_long);
  const auto [short_tokens, short_finish] = drain(short_reader, first_short);
  EXPECT_EQ(long_finish, moe::v1::FINISH_REASON_CANCELLED);
  EXPECT_LT(long_tokens, 3000);
  EXPECT_EQ(short_finish, moe::v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(short_tokens, 40);
}

TEST(ClusterTest, MalformedPublicRequestsAreInvalidArgumentNamingTheField) {
  LocalCluster cluster(Options(0));
  ASSERT_TRUE(cluster.Up().ok());
  auto check = [&](const moe::v1::GenerateRequest& req, const std::string& field) {
    const Generation g = Generate(cluster.gateway_address(), req);
    EXPECT_EQ(g.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << field;
    EXPECT_THAT(g.status.error_message(), HasSubstr(field));
  };
  check(moe::v1::GenerateRequest(), "prompt");
  check(GreedyRequest({1, 99999}, 4), "99999");
  check(GreedyRequest({1, 2}, 0), "max_tokens");
  check(GreedyRequest({1, 2}, 5000), "max_tokens");
  moe::v1::GenerateRequest empty_text;
  empty_text.set_text("");
  check(empty_text, "text");
  moe::v1::GenerateRequest bad_p = GreedyRequest({1, 2}, 4);
  bad_p.mutable_sampling()->set_top_p(1.5f);
  check(bad_p, "top_p");
  // ... and the server keeps serving.
  const Generation ok = Generate(cluster.gateway_address(), GreedyRequest({1, 2}, 4));
  EXPECT_TRUE(ok.status.ok()) << ok.status.error_message();
  EXPECT_EQ(ok.ids.size(), 4u);
}

TEST(ClusterTest, UnaryCompleteTokenizeDetokenizeAndModelInfo) {
  LocalCluster cluster(Options(2));
  ASSERT_TRUE(cluster.Up().ok());
  auto stub = moe::v1::Inference::NewStub(rpc::MakeChannel(cluster.gateway_address()));
  const nlohmann::json c = Golden()["cases"][0];
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(rpc::DeadlineIn(30000));
    // The cluster just started and the machine may be busy: wait for the
    // connection instead of failing fast on a transient connect error.
    ctx.set_wait_for_ready(true);
    moe::v1::CompleteResponse resp;
    ASSERT_TRUE(stub->Complete(&ctx, GreedyRequest(c["prompt_ids"].get<std::vector<uint32_t>>(), 16), &resp).ok());
    ASSERT_EQ(resp.choices_size(), 1);
    EXPECT_EQ(resp.choices(0).text(), c["greedy_text"].get<std::string>());
    EXPECT_EQ(resp.choices(0).finish_reason(), moe::v1::FINISH_REASON_LENGTH);
    EXPECT_EQ(resp.usage().completion_tokens(), 16u);
    EXPECT_EQ(resp.usage().prompt_tokens(), c["prompt_ids"].size());
  }
  {
    grpc::ClientContext ctx;
    moe::v1::TokenizeRequest req;
    req.set_text(c["prompt_text"].get<std::string>());
    req.set_allow_special_tokens(true);
    moe::v1::TokenizeResponse resp;
    ASSERT_TRUE(stub->Tokenize(&ctx, req, &resp).ok());
    EXPECT_EQ(std::vector<uint32_t>(resp.ids().begin(), resp.ids().end()),
              c["prompt_ids"].get<std::vector<uint32_t>>());
  }
  {
    grpc::ClientContext ctx;
    moe::v1::DetokenizeRequest req;
    for (uint32_t id : c["greedy_ids"].get<std::vector<uint32_t>>()) req.add_ids(id);
    moe::v1::DetokenizeResponse resp;
    ASSERT_TRUE(stub->Detokenize(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.text(), c["greedy_text"].get<std::string>());
  }
  {
    grpc::ClientContext ctx;
    moe::v1::ModelInfo info;
    ASSERT_TRUE(stub->GetModelInfo(&ctx, moe::v1::GetModelInfoRequest(), &info).ok());
    EXPECT_EQ(info.family(), "mixtral");
    EXPECT_EQ(info.vocab_size(), 4096u);
    EXPECT_EQ(info.context_length(), 4096u);
    EXPECT_EQ(info.num_layers(), 2u);
    EXPECT_EQ(info.num_experts(), 4u);
    EXPECT_EQ(info.experts_per_token(), 2u);
    EXPECT_EQ(info.workers_size(), 2);
  }
}

// Lists services through server reflection with a generic call: the request
// and the response are encoded by hand (grpc.reflection.v1alpha wire format).
std::vector<std::string> ReflectionListServices(const std::string& address) {
  grpc::GenericStub stub(rpc::MakeChannel(address));
  grpc::ClientContext ctx;
  ctx.set_deadline(rpc::DeadlineIn(10000));
  // The cluster just started and the machine may be busy: wait for the
  // connection instead of failing fast on a transient connect error.
  ctx.set_wait_for_ready(true);
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag;
  bool ok;
  call->StartCall(reinterpret_cast<void*>(1));
  cq.Next(&tag, &ok);
  const std::string request("\x3a\x01*", 3);  // field 7 (list_services) = "*"
  grpc::Slice slice(request);
  grpc::ByteBuffer out(&slice, 1);
  call->Write(out, reinterpret_cast<void*>(2));
  cq.Next(&tag, &ok);
  call->WritesDone(reinterpret_cast<void*>(3));
  cq.Next(&tag, &ok);
  grpc::ByteBuffer in;
  call->Read(&in, reinterpret_cast<void*>(4));
  cq.Next(&tag, &ok);
  std::vector<std::string> names;
  if (!ok) return names;
  std::vector<grpc::Slice> slices;
  (void)in.Dump(&slices);
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  // ServerReflectionResponse.list_services_response (6) -> service (1) -> name (1).
  google::protobuf::io::CodedInputStream top(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  for (uint32_t t; (t = top.ReadTag()) != 0;) {
    if (t >> 3 == 6 && (t & 7) == 2) {
      uint32_t len;
      top.ReadVarint32(&len);
      std::string list;
      top.ReadString(&list, len);
      google::protobuf::io::CodedInputStream ls(reinterpret_cast<const uint8_t*>(list.data()), list.size());
      for (uint32_t u; (u = ls.ReadTag()) != 0;) {
        uint32_t n;
        ls.ReadVarint32(&n);
        std::string svc;
        ls.ReadString(&svc, n);
        if (u >> 3 != 1) continue;
        google::protobuf::io::CodedInputStream ss(reinterpret_cast<const uint8_t*>(svc.data()), svc.size());
        for (uint32_t v; (v = ss.ReadTag()) != 0;) {
          uint32_t m;
          ss.ReadVarint32(&m);
          std::string name;
          ss.ReadString(&name, m);
          if (v >> 3 == 1) names.push_back(name);
        }
      }
    } else if (!google::protobuf::internal::WireFormatLite::SkipField(&top, t)) {
      break;
    }
  }
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return names;
}

TEST(ClusterTest, ReflectionListsTheGatewayServices) {
  LocalCluster cluster(Options(0));
  ASSERT_TRUE(cluster.Up().ok());
  const std::vector<std::string> names = ReflectionListServices(cluster.gateway_address());
  EXPECT_THAT(names, ::testing::Contains("moe.v1.Inference"));
  EXPECT_THAT(names, ::testing::Contains("grpc.health.v1.Health"));
}

TEST(ClusterTest, GatewayReportsServingOnlyOnceARouterHasTheModelLoaded) {
  ProcessGroup procs;
  const std::string dir = (std::filesystem::temp_directory_path() / ("moe_health_" + std::to_string(getpid()))).string();
  std::filesystem::create_directories(dir);
  // A router address that nobody serves yet: pick a free port, then release it.
  std::string router_addr;
  {
    rpc::ServerOptions so;
    so.listen_address = "127.0.0.1:0";
    auto probe = rpc::RunningServer::Start(so, {});
    ASSERT_TRUE(probe.ok());
    router_addr = (*probe)->address();
  }
  ASSERT_TRUE(procs
                  .Spawn("gateway", {std::string(MOE_BIN_DIR) + "/moe-gateway", "--model=" + kModel,
                                     "--routers=" + router_addr, "--listen=127.0.0.1:0",
                                     "--address-file=" + dir + "/gw.addr", "--connect-deadline-ms=60000"})
                  .ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  // No router yet: the gateway is not SERVING (not even listening).
  EXPECT_FALSE(std::filesystem::exists(dir + "/gw.addr"));
  ASSERT_TRUE(procs
                  .Spawn("router", {std::string(MOE_BIN_DIR) + "/moe-router", "--model=" + kModel, "--workers=local",
                                    "--listen=" + router_addr, "--threads=1"})
                  .ok());
  std::string gw;
  for (int i = 0; i < 600 && gw.empty(); ++i) {
    std::ifstream in(dir + "/gw.addr");
    std::getline(in, gw);
    if (gw.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(gw.empty());
  EXPECT_TRUE(rpc::WaitForServing(gw, 30000).ok());
  EXPECT_TRUE(rpc::IsServing(router_addr, 5000));
  procs.StopAll();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace moe
