// moe-loadgen: a load-test harness for the gateway (gRPC moe.v1.Inference or
// the OpenAI-style HTTP API). Parses flags into the options of
// tools/loadgen/, runs, prints the summary, writes --json and --svg.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/command_line.h"
#include "tools/loadgen/grpc_backend.h"
#include "tools/loadgen/http_backend.h"
#include "tools/loadgen/prometheus.h"
#include "tools/loadgen/report.h"
#include "tools/loadgen/router_load.h"
#include "tools/loadgen/runner.h"
#include "tools/loadgen/stats.h"
#include "tools/loadgen/svg.h"
#include "tools/loadgen/workload.h"
#include "proto/rpc_util.h"
#include "proto/tls_flags.h"

ABSL_FLAG(std::string, backend, "grpc", "grpc (moe.v1.Inference/Generate) or http (POST /v1/completions, SSE).");
ABSL_FLAG(std::string, gateway, "127.0.0.1:50051", "gRPC gateway address (--backend grpc).");
ABSL_FLAG(std::string, base_url, "", "HTTP server, http://HOST:PORT or https://HOST:PORT (--backend http).");
ABSL_FLAG(std::string, api_key, "",
          "Key for a gateway started with --api-keys-file (sent as 'authorization: Bearer KEY'); default: the "
          "MOE_API_KEY environment variable.");
ABSL_FLAG(bool, tls, false,
          "gRPC: connect with TLS (implied by --tls-ca or --tls-cert), verified against --tls-ca or the system's "
          "roots. HTTP: TLS follows the scheme of --base-url; --tls-ca, --tls-cert and --tls-key apply to https.");
ABSL_FLAG(std::string, endpoint, "/v1/completions", "HTTP path of the completions API.");
ABSL_FLAG(std::string, model, "", "\"model\" of the HTTP requests (default: the first of GET /v1/models).");
ABSL_FLAG(int, http_connections, 0, "HTTP sending threads, each with a keep-alive connection (0: max(64, --concurrency)).");
ABSL_FLAG(double, request_rate, 0, "Open loop: mean requests/s (inf: all at once); 0: closed loop (--concurrency).");
ABSL_FLAG(double, burstiness, 1.0, "Gamma shape of the inter-arrival times (1: Poisson; < 1 burstier).");
ABSL_FLAG(int, concurrency, 0, "Closed loop: clients back to back. With --request-rate: the most requests in flight.");
ABSL_FLAG(int64_t, num_requests, 0, "Measured requests (0: until --duration; neither: 100).");
ABSL_FLAG(double, duration, 0, "Seconds to keep issuing measured requests (then waits for those in flight).");
ABSL_FLAG(int, warmup_requests, 0, "Requests sent and finished first, excluded from the statistics.");
ABSL_FLAG(std::string, jsonl, "", "Prompts file: {\"prompt\": \"...\", \"max_tokens\": N} per line (else synthetic).");
ABSL_FLAG(int, input_len, 128, "Synthetic prompt length, tokens.");
ABSL_FLAG(double, input_len_range, 0, "Prompt lengths uniform in input_len * [1 - r, 1 + r].");
ABSL_FLAG(int, output_len, 128, "max_tokens of each request.");
ABSL_FLAG(double, output_len_range, 0, "max_tokens uniform in output_len * [1 - r, 1 + r].");
ABSL_FLAG(int, vocab_size, 0, "Synthetic token ids below this (0: the gateway's GetModelInfo; needed for http).");
ABSL_FLAG(bool, ignore_eos, true, "Generate max_tokens tokens whatever the model samples.");
ABSL_FLAG(double, temperature, 0, "Sampling temperature (0: greedy).");
ABSL_FLAG(double, request_timeout_s, 300, "Deadline of each request, seconds.");
ABSL_FLAG(uint64_t, seed, 0, "Seed of the arrivals and the synthetic prompts.");
ABSL_FLAG(double, slo_ttft, 0, "Goodput objective: TTFT at most this many ms (0: none).");
ABSL_FLAG(double, slo_tpot, 0, "Goodput objective: TPOT at most this many ms (0: none).");
ABSL_FLAG(std::string, router, "", "Router address: engine and expert figures from its GetLoad around the run.");
ABSL_FLAG(std::string, router_metrics, "",
          "The router's --metrics-listen address (http://HOST:PORT[/metrics]): dispatch latency per worker.");
ABSL_FLAG(std::string, json, "", "Write the JSON report here.");
ABSL_FLAG(bool, save_requests, false, "Include one record per measured request in the JSON report.");
ABSL_FLAG(std::string, svg, "", "Write the chart (latency CDFs, throughput over time) here.");
ABSL_FLAG(bool, progress, true, "Draw a progress bar (only when stdout is a terminal).");

namespace {

using namespace moe::loadgen;  // NOLINT: a main over one library

constexpr int64_t kInfoTimeoutMs = 10000;

int Fail(int code, const std::string& message) {
  std::cerr << "moe-loadgen: " << message << "\n";
  return code;
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  moe::rpc::IgnoreBrokenPipes();  // https: a server closing mid-write must not kill the run
  absl::SetProgramUsageMessage(
      "moe-loadgen [--backend grpc --gateway ADDR | --backend http --base-url URL] "
      "(--request-rate R [--burstiness B] | --concurrency C) (--num-requests N | --duration S) "
      "[--input-len L --output-len L | --jsonl FILE] [--router ADDR] [--router-metrics URL] [--json F] [--svg F]");
  moe::NormalizedArgs args(argc, argv);
  absl::ParseCommandLine(args.argc(), args.argv());

  const std::string backend_name = absl::GetFlag(FLAGS_backend);
  const double rate = absl::GetFlag(FLAGS_request_rate);
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  int64_t num_requests = absl::GetFlag(FLAGS_num_requests);
  const double duration_s = absl::GetFlag(FLAGS_duration);
  if (backend_name != "grpc" && backend_name != "http") return Fail(2, "--backend must be grpc or http");
  if (rate < 0 || std::isnan(rate)) return Fail(2, "--request-rate must be positive (or inf)");
  if (rate == 0 && concurrency <= 0) return Fail(2, "give --request-rate (open loop) or --concurrency (closed loop)");
  if (concurrency < 0) return Fail(2, "--concurrency must not be negative");
  if (!(absl::GetFlag(FLAGS_burstiness) > 0)) return Fail(2, "--burstiness must be positive");
  if (num_requests < 0 || duration_s < 0) return Fail(2, "--num-requests and --duration must not be negative");
  if (num_requests == 0 && duration_s == 0) num_requests = 100;
  if (absl::GetFlag(FLAGS_warmup_requests) < 0) return Fail(2, "--warmup-requests must not be negative");

  // The transport.
  std::unique_ptr<Backend> backend;
  std::string model_name;  // HTTP only
  WorkloadOptions wo;
  wo.jsonl_path = absl::GetFlag(FLAGS_jsonl);
  wo.input_len_tokens = absl::GetFlag(FLAGS_input_len);
  wo.input_len_range = absl::GetFlag(FLAGS_input_len_range);
  wo.output_len_tokens = absl::GetFlag(FLAGS_output_len);
  wo.output_len_range = absl::GetFlag(FLAGS_output_len_range);
  wo.vocab_size = static_cast<uint32_t>(std::max(0, absl::GetFlag(FLAGS_vocab_size)));
  wo.ignore_eos = absl::GetFlag(FLAGS_ignore_eos);
  wo.temperature = absl::GetFlag(FLAGS_temperature);
  wo.timeout_ms = static_cast<int64_t>(absl::GetFlag(FLAGS_request_timeout_s) * 1000);
  wo.seed = absl::GetFlag(FLAGS_seed);
  // The same checks as the servers make: a bad file is named before any request.
  auto tls = moe::rpc::TlsFromFlags(moe::rpc::TlsRole::kClient, absl::GetFlag(FLAGS_tls));
  if (!tls.ok()) return Fail(2, std::string(tls.status().message()));
  std::string api_key = absl::GetFlag(FLAGS_api_key);
  if (const char* env = std::getenv("MOE_API_KEY"); api_key.empty() && env != nullptr) api_key = env;
  if (backend_name == "grpc") {
    const std::string gateway = absl::GetFlag(FLAGS_gateway);
    if (wo.jsonl_path.empty()) {
      auto facts = QueryModelFacts(gateway, kInfoTimeoutMs, *tls, api_key);
      if (!facts.ok()) return Fail(1, facts.status().ToString());
      if (wo.vocab_size == 0) wo.vocab_size = facts->vocab_size;
      wo.excluded_ids = facts->eos_token_ids;
    }
    backend = GrpcBackend::Create(gateway, *tls, api_key);
  } else {
    if (wo.jsonl_path.empty() && wo.vocab_size == 0) {
      return Fail(2, "synthetic prompts over HTTP need --vocab-size (or give --jsonl)");
    }
    HttpBackendOptions ho;
    ho.base_url = absl::GetFlag(FLAGS_base_url);
    while (!ho.base_url.empty() && ho.base_url.back() == '/') ho.base_url.pop_back();
    ho.endpoint = absl::GetFlag(FLAGS_endpoint);
    const moe::rpc::TlsFiles tls_files = moe::rpc::TlsFilesFromFlags();
    ho.tls_ca_file = tls_files.ca_file;
    ho.tls_cert_file = tls_files.cert_file;
    ho.tls_key_file = tls_files.key_file;
    ho.api_key = api_key;
    ho.model = absl::GetFlag(FLAGS_model);
    if (ho.model.empty()) {
      // OpenAI-style servers want "model": take the first one served.
      auto model = QueryHttpModel(ho, kInfoTimeoutMs);
      if (model.ok()) {
        ho.model = *model;
      } else {
        std::cerr << "moe-loadgen: sending no \"model\" (" << model.status().message() << ")\n";
      }
    }
    ho.connections = absl::GetFlag(FLAGS_http_connections) > 0 ? absl::GetFlag(FLAGS_http_connections)
                                                                 : std::max(64, concurrency);
    model_name = ho.model;
    auto http = HttpBackend::Create(ho);
    if (!http.ok()) return Fail(2, std::string(http.status().message()));
    backend = std::move(*http);
  }
  auto workload = Workload::Create(wo);
  if (!workload.ok()) return Fail(2, std::string(workload.status().message()));

  // MoE figures from the router, read around the measured phase.
  Report report;
  report.date = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
  const std::string router = absl::GetFlag(FLAGS_router);
  const std::string router_metrics = absl::GetFlag(FLAGS_router_metrics);
  report.moe.router_address = router;
  report.moe.metrics_url = router_metrics;
  RouterLoad before;
  std::string router_error;
  // GetLoad and/or a scrape of /metrics; the first error is kept.
  auto read_router = [&](RouterLoad* load) {
    if (!router.empty()) {
      auto l = QueryRouterLoad(router, kInfoTimeoutMs, *tls);
      if (!l.ok()) {
        router_error = std::string(l.status().message());
        return false;
      }
      *load = std::move(*l);
    }
    if (!router_metrics.empty()) {
      auto text = FetchMetricsText(router_metrics, kInfoTimeoutMs);
      auto samples = text.ok() ? ParsePrometheusText(*text) : text.status();
      if (!samples.ok()) {
        router_error = std::string(samples.status().message());
        return false;
      }
      AddRouterMetrics(*samples, load);
    }
    return true;
  };

  RunOptions ro;
  ro.request_rate_per_s = rate;
  ro.burstiness = absl::GetFlag(FLAGS_burstiness);
  ro.concurrency = concurrency;
  ro.num_requests = num_requests;
  ro.duration_s = duration_s;
  ro.warmup_requests = absl::GetFlag(FLAGS_warmup_requests);
  ro.seed = absl::GetFlag(FLAGS_seed);
  ro.progress = absl::GetFlag(FLAGS_progress) && isatty(STDOUT_FILENO) ? stdout : nullptr;
  if (!router.empty() || !router_metrics.empty()) {
    ro.before_measured = [&] { read_router(&before); };
    ro.after_measured = [&] {
      RouterLoad after;
      if (!router_error.empty() || !read_router(&after)) return;
      report.moe = CompareRouterLoads(before, after);
      report.moe.router_address = router;
      report.moe.metrics_url = router_metrics;
    };
  }

  Runner runner(backend.get(), &*workload, ro);
  RunResult result = runner.Run();
  if (!router_error.empty()) report.moe.error = router_error;

  report.backend = backend->Describe();
  report.traffic = result.traffic;
  report.workload = workload->Describe();
  report.warmup_requests = ro.warmup_requests;
  report.warmup_failed = result.warmup_failed;
  const SloOptions slo{absl::GetFlag(FLAGS_slo_ttft), absl::GetFlag(FLAGS_slo_tpot)};
  report.summary = Summarize(result.records, slo);
  for (RequestRecord& r : result.records) {
    if (!r.warmup) report.records.push_back(std::move(r));
  }
  std::sort(report.records.begin(), report.records.end(),
            [](const RequestRecord& a, const RequestRecord& b) { return a.index < b.index; });
  report.config = {
      {"backend", backend_name},
      {"gateway", backend_name == "grpc" ? nlohmann::json(absl::GetFlag(FLAGS_gateway)) : nlohmann::json(nullptr)},
      {"base_url", backend_name == "http" ? nlohmann::json(absl::GetFlag(FLAGS_base_url)) : nlohmann::json(nullptr)},
      {"endpoint", backend_name == "http" ? nlohmann::json(absl::GetFlag(FLAGS_endpoint)) : nlohmann::json(nullptr)},
      {"model", backend_name == "http" ? nlohmann::json(model_name) : nlohmann::json(nullptr)},
      {"request_rate", std::isfinite(rate) ? nlohmann::json(rate) : nlohmann::json("inf")},
      {"burstiness", ro.burstiness},
      {"concurrency", concurrency},
      {"num_requests", num_requests},
      {"duration_s", duration_s},
      {"warmup_requests", ro.warmup_requests},
      {"jsonl", wo.jsonl_path.empty() ? nlohmann::json(nullptr) : nlohmann::json(wo.jsonl_path)},
      {"input_len", wo.input_len_tokens},
      {"input_len_range", wo.input_len_range},
      {"output_len", wo.output_len_tokens},
      {"output_len_range", wo.output_len_range},
      {"vocab_size", wo.vocab_size},
      {"ignore_eos", wo.ignore_eos},
      {"temperature", wo.temperature},
      {"request_timeout_s", absl::GetFlag(FLAGS_request_timeout_s)},
      {"seed", ro.seed},
      {"slo_ttft_ms", slo.ttft_ms},
      {"slo_tpot_ms", slo.tpot_ms},
      {"router", router.empty() ? nlohmann::json(nullptr) : nlohmann::json(router)},
      {"router_metrics", router_metrics.empty() ? nlohmann::json(nullptr) : nlohmann::json(router_metrics)},
  };

  std::cout << FormatSummary(report) << std::flush;
  int exit_code = report.summary.failed > 0 ? 3 : 0;
  if (const std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    if (!WriteFile(path, ReportJson(report, absl::GetFlag(FLAGS_save_requests)).dump(2) + "\n")) {
      exit_code = Fail(1, absl::StrCat(path, ": cannot write the JSON report"));
    }
  }
  if (const std::string path = absl::GetFlag(FLAGS_svg); !path.empty()) {
    if (!WriteFile(path, RenderSvg(report))) exit_code = Fail(1, absl::StrCat(path, ": cannot write the SVG chart"));
  }
  return exit_code;
}
