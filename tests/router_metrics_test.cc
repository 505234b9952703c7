// The router's /metrics on a live cluster: the names users know, MoE figures,
// and `promtool check metrics` on the scrape.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "deploy/local/cluster.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "moe/v1/inference.grpc.pb.h"
#include "proto/rpc_util.h"
#include "tests/shell_command.h"

namespace moe {
namespace {

using ::testing::HasSubstr;

std::string RunCommand(const std::string& cmd, int* code) {
  test::ShellResult r = test::RunShellCommand(cmd);
  *code = r.exit_code;
  return std::move(r.output);
}

TEST(MetricsTest, LiveRouterAndGatewayScrapesHaveTheMetricsAndPassPromtool) {
  const std::string dir = (std::filesystem::temp_directory_path() / ("moe_metrics_" + std::to_string(getpid()))).string();
  std::filesystem::create_directories(dir);
  LocalClusterOptions o;
  o.model_dir = std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral";
  o.num_workers = 2;
  o.bin_dir = MOE_BIN_DIR;
  o.worker_threads = 1;
  o.router_threads = 1;
  o.extra_router_flags = {"--metrics-listen=127.0.0.1:0", "--metrics-address-file=" + dir + "/metrics.addr"};
  o.http_port = 0;
  LocalCluster cluster(o);
  ASSERT_TRUE(cluster.Up().ok());
  auto stub = moe::v1::Inference::NewStub(rpc::MakeChannel(cluster.gateway_address()));
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(rpc::DeadlineIn(30000));
    // The cluster just started and the machine may be busy: wait for the
    // connection instead of failing fast on a transient connect error.
    ctx.set_wait_for_ready(true);
    moe::v1::GenerateRequest req;
    for (uint32_t id : {1u, 2u, 3u}) req.mutable_token_ids()->add_ids(id);
    req.set_max_tokens(5);
    moe::v1::CompleteResponse resp;
    ASSERT_TRUE(stub->Complete(&ctx, req, &resp).ok());
  }
  std::string addr;
  std::getline(std::ifstream(dir + "/metrics.addr"), addr);
  ASSERT_FALSE(addr.empty());
  httplib::Client client("http://" + addr);
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  const std::string& body = res->body;
  for (const char* name :
       {"moe_time_to_first_token_seconds_bucket", "moe_inter_token_latency_seconds_count",
        "moe_e2e_request_latency_seconds_sum", "moe_request_queue_time_seconds_count", "moe_num_requests_running",
        "moe_num_requests_waiting", "moe_kv_cache_usage_perc", "moe_prompt_tokens_total 9",
        "moe_generation_tokens_total 15", "moe_request_success_total{finished_reason=\"length\"} 3",
        "moe_expert_tokens_total{layer=\"1\",expert=\"3\"}", "moe_dispatch_latency_seconds_bucket{worker=\"",
        "moe_dispatch_bytes_total{worker=\"", "moe_worker_up{worker=\""}) {
    EXPECT_THAT(body, HasSubstr(name));
  }
  EXPECT_THAT(body, HasSubstr("moe_worker_up{worker=\"" + cluster.worker_addresses()[0] + "\"} 1"));
  const std::string file = dir + "/scrape.txt";
  std::ofstream(file) << body;
  int code = 0;
  const std::string out = RunCommand("promtool check metrics < " + file, &code);
  EXPECT_EQ(code, 0) << out;

  // The gateway's own figures, on its HTTP listener.
  httplib::Client gw("http://" + cluster.gateway_http_address());
  auto gres = gw.Get("/metrics");
  ASSERT_TRUE(gres);
  ASSERT_EQ(gres->status, 200);
  EXPECT_THAT(gres->body, HasSubstr("moe_gateway_requests_total{code=\"OK\"} 3"));
  EXPECT_THAT(gres->body, HasSubstr("moe_time_to_first_token_seconds_count 3"));
  EXPECT_THAT(gres->body, HasSubstr("moe_generation_tokens_total 15"));
  std::ofstream(dir + "/gateway.txt") << gres->body;
  const std::string gout = RunCommand("promtool check metrics < " + dir + "/gateway.txt", &code);
  EXPECT_EQ(code, 0) << gout;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace moe
