#include "tools/loadgen/report.h"

#include <cmath>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/loadgen/svg.h"
#include "tools/loadgen/xml_check.h"

namespace moe::loadgen {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pointwise;

RequestRecord Ok(int64_t index, double sent, std::vector<double> token_times) {
  RequestRecord r;
  r.index = index;
  r.ok = true;
  r.sent_s = sent;
  r.first_token_s = token_times.front();
  r.done_s = token_times.back();
  r.prompt_tokens = 8;
  r.output_tokens = static_cast<int>(token_times.size());
  for (double t : token_times) r.events.push_back({t, 1});
  return r;
}

Report SampleReport() {
  Report r;
  r.date = "2025-01-01T00:00:00Z";
  r.backend = "grpc 127.0.0.1:1234";
  r.traffic = "Poisson, 2.00 req/s";
  r.workload = "synthetic: input 8 ± 0%, output 3 ± 0% tokens";
  r.config = {{"seed", 0}};
  r.records = {Ok(0, 0.0, {0.1, 0.2, 0.3}), Ok(1, 0.5, {0.7, 0.8, 1.6})};
  RequestRecord failed;
  failed.index = 2;
  failed.status = "RESOURCE_EXHAUSTED";
  failed.error_message = "queue full";
  failed.sent_s = 1.0;
  failed.done_s = 1.01;
  r.records.push_back(failed);
  r.summary = Summarize(r.records, {/*ttft_ms=*/250, /*tpot_ms=*/0});
  return r;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(FormatSummaryTest, LaidOutLikeVllmBenchServe) {
  const std::string text = FormatSummary(SampleReport());
  const std::vector<std::string> lines = Lines(text);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.front(), "============ Serving Benchmark Result ============");
  EXPECT_EQ(lines.back(), std::string(50, '='));
  EXPECT_THAT(lines, testing::Contains("Successful requests:                     2"));
  EXPECT_THAT(lines, testing::Contains("Failed requests:                         1"));
  EXPECT_THAT(lines, testing::Contains("Benchmark duration (s):                  1.60"));
  EXPECT_THAT(lines, testing::Contains("Total generated tokens:                  6"));
  EXPECT_THAT(lines, testing::Contains("---------------Time to First Token----------------"));
  EXPECT_THAT(lines, testing::Contains("Mean TTFT (ms):                          150.00"));
  EXPECT_THAT(lines, testing::Contains("Median TPOT (ms):                        275.00"));
  EXPECT_THAT(lines, testing::Contains("RESOURCE_EXHAUSTED:                      1"));
  EXPECT_THAT(lines, testing::Contains("OK:                                      2"));
  EXPECT_THAT(text, HasSubstr("Request goodput (req/s):                 1.25"));
  EXPECT_THAT(text, HasSubstr("2 (TTFT <= 250 ms)"));
  for (const char* section : {"Inter-token Latency", "End-to-end Latency", "P99 E2EL (ms):", "P90 ITL (ms):"}) {
    EXPECT_THAT(text, HasSubstr(section));
  }
  EXPECT_THAT(text, HasSubstr("not measured (give --router ADDR and/or --router-metrics URL)"));
}

TEST(FormatSummaryTest, MoeSectionSaysWhatTheRouterDoesNotReport) {
  Report r = SampleReport();
  r.moe.router_address = "127.0.0.1:9";
  const std::string get_load_only = FormatSummary(r);
  EXPECT_THAT(get_load_only, HasSubstr("Router (GetLoad):                        127.0.0.1:9"));
  EXPECT_THAT(get_load_only, HasSubstr("Dispatch latency:                        not measured (give --router-metrics URL)"));
  EXPECT_THAT(get_load_only, HasSubstr("Tokens per expert:                       not reported by the router"));
  r.moe.metrics_url = "http://127.0.0.1:10";
  const std::string no_dispatch = FormatSummary(r);
  EXPECT_THAT(no_dispatch, HasSubstr("Router metrics:                          http://127.0.0.1:10"));
  EXPECT_THAT(no_dispatch, HasSubstr("Dispatch latency:                        not reported by the router"));

  RouterLoad before, after;
  after.num_layers = 1;
  after.num_experts = 4;
  after.expert_tokens = {30, 10, 10, 10};
  after.dispatch_reported = true;
  after.dispatch = {{"w0", 4, 0.004, 1, {{0.001, 4}, {INFINITY, 4}}}};
  after.engine_reported = true;
  after.steps = 12;
  r.moe = CompareRouterLoads(before, after);
  r.moe.router_address = "127.0.0.1:9";
  r.moe.metrics_url = "http://127.0.0.1:10";
  const std::string with = FormatSummary(r);
  EXPECT_THAT(with, HasSubstr("Engine steps:                            12"));
  EXPECT_THAT(with, HasSubstr("Dispatch w0 (ms):                        mean 1.000, p50 0.500, p99 0.990"));
  EXPECT_THAT(with, HasSubstr("Dispatch w0 exchanges:                   4 (1 failed)"));
  EXPECT_THAT(with, HasSubstr("Tokens per expert (all layers):          30 10 10 10"));
  EXPECT_THAT(with, HasSubstr("Expert imbalance (max/mean):             2.00"));
  EXPECT_THAT(with, HasSubstr("Per-layer imbalance, worst (layer 0):    2.00"));

  r.moe.error = "router 127.0.0.1:9: GetLoad: connection refused";
  EXPECT_THAT(FormatSummary(r), HasSubstr("unavailable: router 127.0.0.1:9"));
}

TEST(ReportJsonTest, HasEveryFigure) {
  const nlohmann::json j = ReportJson(SampleReport(), /*include_requests=*/false);
  for (const char* key : {"date", "backend", "traffic", "workload", "config", "completed", "failed", "status_counts",
                          "warmup", "duration_s", "total_input_tokens", "total_output_tokens", "request_throughput",
                          "output_throughput", "peak_output_throughput", "total_token_throughput", "max_in_flight",
                          "goodput", "percentile_method", "ttft_ms", "tpot_ms", "itl_ms", "e2e_ms",
                          "throughput_over_time", "moe"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_FALSE(j.contains("requests"));
  EXPECT_EQ(j["completed"], 2);
  EXPECT_EQ(j["status_counts"]["RESOURCE_EXHAUSTED"], 1);
  for (const char* d : {"ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"}) {
    for (const char* stat : {"count", "mean", "median", "p90", "p99", "max"}) {
      EXPECT_TRUE(j[d].contains(stat)) << d << "." << stat;
    }
  }
  EXPECT_DOUBLE_EQ(j["ttft_ms"]["mean"].get<double>(), 150);
  EXPECT_EQ(j["goodput"]["good_requests"], 2);
  EXPECT_TRUE(j["goodput"]["slo_tpot_ms"].is_null());
  EXPECT_EQ(j["moe"]["status"], "not measured");
  EXPECT_THAT(j["throughput_over_time"]["output_tokens_per_s"].get<std::vector<double>>(),
              Pointwise(DoubleNear(1e-9), std::vector<double>{5, 1.0 / 0.6}));
}

TEST(ReportJsonTest, RequestsOnRequest) {
  const nlohmann::json j = ReportJson(SampleReport(), /*include_requests=*/true);
  ASSERT_EQ(j["requests"].size(), 3u);
  const nlohmann::json& first = j["requests"][0];
  EXPECT_EQ(first["status"], "OK");
  EXPECT_NEAR(first["ttft_ms"].get<double>(), 100, 1e-9);
  EXPECT_NEAR(first["tpot_ms"].get<double>(), 100, 1e-9);
  EXPECT_EQ(first["itl_ms"].size(), 2u);
  const nlohmann::json& failed = j["requests"][2];
  EXPECT_FALSE(failed["ok"].get<bool>());
  EXPECT_TRUE(failed["ttft_ms"].is_null());
  EXPECT_EQ(failed["error"], "queue full");
}

TEST(SvgTest, WellFormedWithEveryPanel) {
  Report r = SampleReport();
  r.backend = "http <a&b> \"quoted\"";
  const std::string svg = RenderSvg(r);
  EXPECT_TRUE(CheckWellFormedXml(svg).ok()) << CheckWellFormedXml(svg);
  for (const char* title : {"TTFT (CDF)", "TPOT (CDF)", "End-to-end latency (CDF)", "Throughput over time"}) {
    EXPECT_THAT(svg, HasSubstr(title));
  }
  EXPECT_THAT(svg, HasSubstr("&lt;a&amp;b&gt;"));
  EXPECT_THAT(svg, HasSubstr("<polyline"));
}

TEST(SvgTest, EmptyRunStillWellFormed) {
  Report r;
  const std::string svg = RenderSvg(r);
  EXPECT_TRUE(CheckWellFormedXml(svg).ok()) << CheckWellFormedXml(svg);
  EXPECT_THAT(svg, HasSubstr("no data"));
}

TEST(SvgTest, NiceTicks) {
  EXPECT_THAT(NiceTicks(10, 5), ElementsAre(0, 2, 4, 6, 8, 10));
  EXPECT_THAT(NiceTicks(0.7, 4), Pointwise(DoubleNear(1e-12), std::vector<double>{0, 0.2, 0.4, 0.6, 0.8}));
  EXPECT_THAT(NiceTicks(0, 5), ElementsAre(0, 1));
}

TEST(XmlCheckTest, CatchesMistakes) {
  EXPECT_TRUE(CheckWellFormedXml("<?xml version=\"1.0\"?>\n<a x=\"1\"><b/>t &amp; u<!-- c --></a>\n").ok());
  EXPECT_FALSE(CheckWellFormedXml("<a><b></a></b>").ok());
  EXPECT_FALSE(CheckWellFormedXml("<a>").ok());
  EXPECT_FALSE(CheckWellFormedXml("<a x=1></a>").ok());
  EXPECT_FALSE(CheckWellFormedXml("<a x=\"1\" x=\"2\"></a>").ok());
  EXPECT_FALSE(CheckWellFormedXml("<a>x & y</a>").ok());
  EXPECT_FALSE(CheckWellFormedXml("<a x=\"<\"></a>").ok());
  EXPECT_FALSE(CheckWellFormedXml("<a></a><b></b>").ok());
  EXPECT_FALSE(CheckWellFormedXml("").ok());
}

TEST(XmlEscapeTest, EscapesMarkup) {
  EXPECT_EQ(XmlEscape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
  EXPECT_EQ(XmlEscape(std::string("x\x01y")), "x y");
}

}  // namespace
}  // namespace moe::loadgen
