// moe-loadgen run as a user runs it, against the local cluster (two expert
// workers, a router, a gateway on loopback): a 10 s closed-loop run gives a
// complete JSON report with no failures and a well-formed SVG; an open-loop
// run from a JSONL file; the HTTP backend against the gateway's OpenAI-style
// API. MoE figures come from the router's GetLoad and Prometheus metrics.
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>

#include "deploy/local/cluster.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/shell_command.h"
#include "tools/loadgen/xml_check.h"

namespace moe {
namespace {

using ::testing::HasSubstr;

const std::string kModel = std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral";
const std::string kBin = std::string(MOE_BIN_DIR);

struct Result {
  int exit_code = -1;
  std::string out;
};

// Runs `command` through the shell; stdout is returned, stderr goes to `err_path`.
Result RunShell(const std::string& command, const std::string& err_path) {
  test::ShellResult s = test::RunShellCommand(command + " 2> " + err_path, /*merge_stderr=*/false);
  return {s.exit_code, std::move(s.output)};
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Well-formed per Python's XML parser where /usr/bin/python3 exists, and per
// the small C++ check always.
void ExpectWellFormedSvg(const std::string& path, const std::string& dir) {
  const std::string svg = Slurp(path);
  ASSERT_FALSE(svg.empty()) << path;
  const absl::Status own = loadgen::CheckWellFormedXml(svg);
  EXPECT_TRUE(own.ok()) << own;
  if (access("/usr/bin/python3", X_OK) == 0) {
    const Result py = RunShell("/usr/bin/python3 -c \"import sys, xml.etree.ElementTree as E; "
                          "r = E.parse(sys.argv[1]).getroot(); print(r.tag, len(r.findall('.//{*}polyline')))\" " +
                              path,
                          dir + "/python.err");
    EXPECT_EQ(py.exit_code, 0) << Slurp(dir + "/python.err");
    EXPECT_THAT(py.out, HasSubstr("{http://www.w3.org/2000/svg}svg"));
  }
}

// Every figure the report promises, present and of the right type.
void ExpectCompleteReport(const nlohmann::json& j) {
  for (const char* key : {"date", "backend", "traffic", "workload", "percentile_method"}) {
    ASSERT_TRUE(j.contains(key) && j[key].is_string()) << key;
  }
  for (const char* key : {"completed", "failed", "duration_s", "total_input_tokens", "total_output_tokens",
                          "request_throughput", "output_throughput", "peak_output_throughput",
                          "total_token_throughput", "max_in_flight"}) {
    ASSERT_TRUE(j.contains(key) && j[key].is_number()) << key;
  }
  for (const char* key : {"ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"}) {
    ASSERT_TRUE(j.contains(key) && j[key].is_object()) << key;
    for (const char* stat : {"count", "mean", "median", "p90", "p99", "max"}) {
      ASSERT_TRUE(j[key].contains(stat) && j[key][stat].is_number()) << key << "." << stat;
    }
    EXPECT_GT(j[key]["count"].get<int64_t>(), 0) << key;
    EXPECT_LE(j[key]["median"].get<double>(), j[key]["p90"].get<double>()) << key;
    EXPECT_LE(j[key]["p90"].get<double>(), j[key]["p99"].get<double>()) << key;
  }
  ASSERT_TRUE(j.contains("config") && j["config"].is_object());
  ASSERT_TRUE(j.contains("status_counts") && j["status_counts"].is_object());
  ASSERT_TRUE(j.contains("warmup") && j["warmup"].is_object());
  ASSERT_TRUE(j.contains("goodput"));
  ASSERT_TRUE(j.contains("throughput_over_time") && j["throughput_over_time"]["output_tokens_per_s"].is_array());
  ASSERT_TRUE(j.contains("moe") && j["moe"].is_object());
}

class LoadgenTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "loadgen_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = new std::string(tmpl);
    metrics_url_ = new std::string();
    LocalClusterOptions o;
    o.model_dir = kModel;
    o.num_workers = 2;
    o.bin_dir = kBin;
    o.worker_threads = 1;
    o.router_threads = 1;
    o.startup_timeout_ms = 60000;
    o.run_dir = *dir_ + "/cluster";
    o.http_port = 0;  // the gateway's OpenAI-compatible HTTP API
    o.extra_router_flags = {"--metrics-listen=127.0.0.1:0", "--metrics-address-file=" + *dir_ + "/metrics.addr"};
    cluster_ = new LocalCluster(o);
    const absl::Status up = cluster_->Up();
    ASSERT_TRUE(up.ok()) << up;
    std::ifstream(*dir_ + "/metrics.addr") >> *metrics_url_;
    ASSERT_FALSE(metrics_url_->empty());
    *metrics_url_ = "http://" + *metrics_url_;
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
    if (dir_ != nullptr) std::filesystem::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
    delete metrics_url_;
    metrics_url_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(cluster_, nullptr); }

  static std::string* dir_;
  static std::string* metrics_url_;  // the router's Prometheus endpoint
  static LocalCluster* cluster_;
};

std::string* LoadgenTest::dir_ = nullptr;
std::string* LoadgenTest::metrics_url_ = nullptr;
LocalCluster* LoadgenTest::cluster_ = nullptr;

TEST_F(LoadgenTest, ClosedLoopForTenSecondsGivesACompleteReport) {
  const std::string json = *dir_ + "/closed.json", svg = *dir_ + "/closed.svg";
  const Result r = RunShell(kBin + "/moe-loadgen --gateway " + cluster_->gateway_address() + " --router " +
                           cluster_->router_address() + " --router-metrics " + *metrics_url_ +
                           " --concurrency 4 --duration 10 --input-len 32 --input-len-range 0.25 --output-len 16"
                           " --warmup-requests 4 --slo-ttft 2000 --slo-tpot 500 --save-requests --json " +
                           json + " --svg " + svg,
                       *dir_ + "/closed.err");
  ASSERT_EQ(r.exit_code, 0) << r.out << Slurp(*dir_ + "/closed.err");
  EXPECT_THAT(r.out, HasSubstr("============ Serving Benchmark Result ============"));
  EXPECT_THAT(r.out, HasSubstr("Failed requests:                         0"));
  EXPECT_THAT(r.out, HasSubstr("Expert imbalance (max/mean):"));
  // No progress bar: stdout is a pipe.
  EXPECT_EQ(r.out.find('\r'), std::string::npos);

  const nlohmann::json j = nlohmann::json::parse(Slurp(json));
  ExpectCompleteReport(j);
  const int64_t completed = j["completed"];
  EXPECT_GT(completed, 10);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_EQ(j["status_counts"], nlohmann::json({{"OK", completed}}));
  EXPECT_EQ(j["warmup"]["requests"], 4);
  EXPECT_EQ(j["warmup"]["failed"], 0);
  EXPECT_GE(j["duration_s"].get<double>(), 9.5);
  EXPECT_LT(j["duration_s"].get<double>(), 60);
  EXPECT_EQ(j["total_output_tokens"], completed * 16);  // ignore_eos: every request gets its 16 tokens
  EXPECT_LE(j["max_in_flight"].get<int>(), 4);
  EXPECT_EQ(j["traffic"], "closed loop, 4 clients");
  EXPECT_EQ(j["config"]["concurrency"], 4);
  EXPECT_EQ(j["goodput"]["slo_ttft_ms"], 2000.0);
  EXPECT_LE(j["goodput"]["good_requests"].get<int64_t>(), completed);
  EXPECT_GE(j["throughput_over_time"]["output_tokens_per_s"].size(), 9u);
  ASSERT_EQ(j["requests"].size(), static_cast<size_t>(completed));
  for (const nlohmann::json& req : j["requests"]) {
    EXPECT_EQ(req["status"], "OK");
    EXPECT_EQ(req["output_tokens"], 16);
    EXPECT_GE(req["prompt_tokens"].get<int>(), 24);
    EXPECT_LE(req["prompt_tokens"].get<int>(), 40);
  }

  // MoE figures from the router over the measured phase.
  const nlohmann::json& moe = j["moe"];
  EXPECT_EQ(moe["router"], cluster_->router_address());
  EXPECT_EQ(moe["status"], "ok");
  EXPECT_GE(moe["engine"]["generated_tokens"].get<int64_t>(), completed * 16);
  ASSERT_TRUE(moe["expert_tokens"].is_object()) << moe.dump();
  EXPECT_EQ(moe["expert_tokens"]["num_experts"], 4);
  EXPECT_EQ(moe["expert_tokens"]["num_layers"], 2);
  const auto per_expert = moe["expert_tokens"]["tokens_per_expert"].get<std::vector<int64_t>>();
  // Every token of a step goes to top-2 experts in each of 2 layers.
  EXPECT_GT(std::accumulate(per_expert.begin(), per_expert.end(), int64_t{0}), completed * 16 * 4);
  EXPECT_GE(moe["expert_tokens"]["imbalance"].get<double>(), 1.0);
  // Dispatch latency per worker, from the router's Prometheus histograms.
  EXPECT_EQ(moe["router_metrics"], *metrics_url_);
  ASSERT_TRUE(moe["dispatch_latency"].is_array()) << moe.dump();
  ASSERT_EQ(moe["dispatch_latency"].size(), cluster_->worker_addresses().size());
  for (const nlohmann::json& w : moe["dispatch_latency"]) {
    EXPECT_THAT(cluster_->worker_addresses(), testing::Contains(w["worker"].get<std::string>()));
    EXPECT_GT(w["calls"].get<int64_t>(), 0);
    EXPECT_EQ(w["failures"], 0);
    EXPECT_GT(w["mean_ms"].get<double>(), 0);
    EXPECT_LE(w["p50_ms"].get<double>(), w["p99_ms"].get<double>());
  }
  EXPECT_THAT(r.out, HasSubstr("exchanges:"));

  ExpectWellFormedSvg(svg, *dir_);
}

TEST_F(LoadgenTest, OpenLoopFromJsonlPrompts) {
  const std::string prompts = *dir_ + "/prompts.jsonl", json = *dir_ + "/open.json", svg = *dir_ + "/open.svg";
  std::ofstream(prompts) << "{\"prompt\": \"Hello, my dog is cute\", \"max_tokens\": 6}\n"
                            "{\"prompt\": \"The capital of France is\"}\n";
  const Result r = RunShell(kBin + "/moe-loadgen --gateway " + cluster_->gateway_address() + " --jsonl " + prompts +
                           " --output-len 9 --request-rate 20 --burstiness 0.5 --seed 3 --num-requests 20"
                           " --save-requests --json " + json + " --svg " + svg,
                       *dir_ + "/open.err");
  ASSERT_EQ(r.exit_code, 0) << r.out << Slurp(*dir_ + "/open.err");
  const nlohmann::json j = nlohmann::json::parse(Slurp(json));
  ExpectCompleteReport(j);
  EXPECT_EQ(j["completed"], 20);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_EQ(j["traffic"], "gamma (burstiness 0.50), 20.00 req/s");
  EXPECT_EQ(j["total_output_tokens"], 10 * 6 + 10 * 9);
  EXPECT_EQ(j["moe"]["status"], "not measured");
  EXPECT_THAT(r.out, HasSubstr("not measured (give --router ADDR and/or --router-metrics URL)"));
  for (const nlohmann::json& req : j["requests"]) {
    EXPECT_EQ(req["output_tokens"], req["index"].get<int>() % 2 == 0 ? 6 : 9);
    EXPECT_GT(req["prompt_tokens"].get<int>(), 0);  // from the gateway's usage
  }
  ExpectWellFormedSvg(svg, *dir_);
}

TEST_F(LoadgenTest, HttpBackendAgainstTheGatewaysOpenAiApi) {
  const std::string http_address = cluster_->gateway_http_address();
  ASSERT_FALSE(http_address.empty());
  const std::string json = *dir_ + "/http.json", svg = *dir_ + "/http.svg";
  const Result r = RunShell(kBin + "/moe-loadgen --backend http --base-url http://" + http_address +
                           " --vocab-size 4096 --concurrency 2 --num-requests 12 --input-len 16 --output-len 8"
                           " --router-metrics " + *metrics_url_ + " --json " + json + " --svg " + svg,
                       *dir_ + "/http.err");
  ASSERT_EQ(r.exit_code, 0) << r.out << Slurp(*dir_ + "/http.err");
  const nlohmann::json j = nlohmann::json::parse(Slurp(json));
  ExpectCompleteReport(j);
  EXPECT_EQ(j["completed"], 12);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_EQ(j["total_output_tokens"], 12 * 8);  // from the streamed usage
  EXPECT_EQ(j["total_input_tokens"], 12 * 16);
  EXPECT_THAT(j["backend"].get<std::string>(), HasSubstr("/v1/completions"));
  // Metrics only: dispatch latency and tokens per expert, no engine counters.
  EXPECT_EQ(j["moe"]["status"], "ok");
  EXPECT_EQ(j["moe"]["engine"], "not measured");
  EXPECT_TRUE(j["moe"]["dispatch_latency"].is_array());
  EXPECT_TRUE(j["moe"]["expert_tokens"].is_object());
  ExpectWellFormedSvg(svg, *dir_);
}

}  // namespace
}  // namespace moe
