#include "tools/loadgen/report.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace moe::loadgen {

namespace {

constexpr int kWidth = 50;
constexpr char kNotReported[] = "not reported by the router";

// "title" centred in a line of `fill` characters, like Python's
// '{:{c}^{n}}'.format(s, c=fill, n=kWidth).
std::string Banner(const std::string& title, char fill) {
  const int pad = std::max(0, kWidth - static_cast<int>(title.size()));
  return absl::StrCat(std::string(pad / 2, fill), title, std::string(pad - pad / 2, fill), "\n");
}

std::string Row(const std::string& label, const std::string& value) {
  return absl::StrFormat("%-40s %s\n", label, value);
}
std::string Row(const std::string& label, double value) { return Row(label, absl::StrFormat("%.2f", value)); }
std::string Row(const std::string& label, int64_t value) { return Row(label, absl::StrCat(value)); }

std::string LatencySection(const std::string& title, const std::string& name, const Distribution& d) {
  std::string out = Banner(title, '-');
  if (d.count == 0) return out + Row(absl::StrCat(name, ":"), "no samples");
  out += Row(absl::StrCat("Mean ", name, " (ms):"), d.mean_ms);
  out += Row(absl::StrCat("Median ", name, " (ms):"), d.median_ms);
  out += Row(absl::StrCat("P90 ", name, " (ms):"), d.p90_ms);
  out += Row(absl::StrCat("P99 ", name, " (ms):"), d.p99_ms);
  return out;
}

double Peak(const std::vector<double>& v) { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }

nlohmann::json DistributionJson(const Distribution& d) {
  return {{"count", d.count}, {"mean", d.mean_ms}, {"median", d.median_ms},
          {"p90", d.p90_ms},  {"p99", d.p99_ms},   {"max", d.max_ms}};
}

constexpr char kNotMeasured[] = "not measured (give --router ADDR and/or --router-metrics URL)";

std::string MoeSection(const MoeFigures& m) {
  std::string out = Banner("MoE (router)", '-');
  if (m.router_address.empty() && m.metrics_url.empty()) return out + Row("Router:", kNotMeasured);
  if (!m.router_address.empty()) out += Row("Router (GetLoad):", m.router_address);
  if (!m.metrics_url.empty()) out += Row("Router metrics:", m.metrics_url);
  if (!m.error.empty()) return out + Row("Router figures:", absl::StrCat("unavailable: ", m.error));
  if (m.engine_reported) {
    out += Row("Engine steps:", static_cast<int64_t>(m.steps));
    out += Row("Prefill tokens computed:", static_cast<int64_t>(m.prefill_tokens));
    out += Row("Tokens generated:", static_cast<int64_t>(m.generated_tokens));
    out += Row("Preemptions:", static_cast<int64_t>(m.preemptions));
    out += Row("Rejected requests:", static_cast<int64_t>(m.rejected_requests));
    out += Row("Prefix-cache hit rate (%):", m.prefix_cache_hit_rate * 100);
    out += Row("Mean router queue time (ms):", m.mean_queue_ms);
  }
  if (m.metrics_url.empty()) {
    out += Row("Dispatch latency:", "not measured (give --router-metrics URL)");
  } else if (!m.dispatch_reported || m.workers.empty()) {
    out += Row("Dispatch latency:", kNotReported);
  } else {
    for (const MoeFigures::Worker& w : m.workers) {
      out += Row(absl::StrCat("Dispatch ", w.address, " (ms):"),
                 absl::StrFormat("mean %.3f, p50 %.3f, p99 %.3f", w.mean_latency_ms, w.p50_ms, w.p99_ms));
      out += Row(absl::StrCat("Dispatch ", w.address, " exchanges:"),
                 absl::StrCat(w.calls, " (", w.failures, " failed)"));
    }
  }
  if (!m.expert_tokens_reported) return out + Row("Tokens per expert:", kNotReported);
  const auto [lo, hi] = std::minmax_element(m.tokens_per_expert.begin(), m.tokens_per_expert.end());
  out += Row("Tokens per expert, min / max:", absl::StrCat(*lo, " / ", *hi));
  if (m.tokens_per_expert.size() <= 16) {
    out += Row("Tokens per expert (all layers):", absl::StrJoin(m.tokens_per_expert, " "));
  }
  out += Row("Expert imbalance (max/mean):", m.imbalance);
  out += Row("Per-layer imbalance, mean:", m.mean_layer_imbalance);
  if (m.worst_layer >= 0) {
    out += Row(absl::StrCat("Per-layer imbalance, worst (layer ", m.worst_layer, "):"),
               m.layer_imbalance[m.worst_layer]);
  }
  return out;
}

nlohmann::json MoeJson(const MoeFigures& m) {
  auto or_null = [](const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); };
  nlohmann::json j;
  j["router"] = or_null(m.router_address);
  j["router_metrics"] = or_null(m.metrics_url);
  if (m.router_address.empty() && m.metrics_url.empty()) {
    j["status"] = "not measured";
    return j;
  }
  if (!m.error.empty()) {
    j["status"] = absl::StrCat("unavailable: ", m.error);
    return j;
  }
  j["status"] = "ok";
  if (m.engine_reported) {
    j["engine"] = {{"steps", m.steps},
                   {"prefill_tokens", m.prefill_tokens},
                   {"generated_tokens", m.generated_tokens},
                   {"preemptions", m.preemptions},
                   {"rejected_requests", m.rejected_requests},
                   {"prefix_cache_hit_rate", m.prefix_cache_hit_rate},
                   {"mean_queue_ms", m.mean_queue_ms}};
  } else {
    j["engine"] = "not measured";
  }
  if (m.metrics_url.empty()) {
    j["dispatch_latency"] = "not measured";
  } else if (!m.dispatch_reported || m.workers.empty()) {
    j["dispatch_latency"] = kNotReported;
  } else {
    nlohmann::json workers = nlohmann::json::array();
    for (const MoeFigures::Worker& w : m.workers) {
      workers.push_back({{"worker", w.address},
                         {"calls", w.calls},
                         {"failures", w.failures},
                         {"mean_ms", w.mean_latency_ms},
                         {"p50_ms", w.p50_ms},
                         {"p90_ms", w.p90_ms},
                         {"p99_ms", w.p99_ms}});
    }
    j["dispatch_latency"] = workers;
  }
  if (m.expert_tokens_reported) {
    j["expert_tokens"] = {{"num_layers", m.num_layers},
                          {"num_experts", m.num_experts},
                          {"tokens_per_expert", m.tokens_per_expert},
                          {"imbalance", m.imbalance},
                          {"layer_imbalance", m.layer_imbalance},
                          {"mean_layer_imbalance", m.mean_layer_imbalance},
                          {"worst_layer", m.worst_layer}};
  } else {
    j["expert_tokens"] = kNotReported;
  }
  return j;
}

}  // namespace

std::string FormatSummary(const Report& r) {
  const Summary& s = r.summary;
  std::string out = Banner(" Serving Benchmark Result ", '=');
  out += Row("Backend:", r.backend);
  out += Row("Traffic:", r.traffic);
  out += Row("Workload:", r.workload);
  out += Row("Successful requests:", s.completed);
  out += Row("Failed requests:", s.failed);
  if (r.warmup_requests > 0) {
    out += Row("Warm-up requests (excluded):", absl::StrCat(r.warmup_requests, " (", r.warmup_failed, " failed)"));
  }
  out += Row("Benchmark duration (s):", s.duration_s);
  out += Row("Total input tokens:", s.total_input_tokens);
  out += Row("Total generated tokens:", s.total_output_tokens);
  out += Row("Request throughput (req/s):", s.request_throughput);
  out += Row("Output token throughput (tok/s):", s.output_throughput);
  out += Row("Peak output token throughput (tok/s):", Peak(s.output_tokens_per_s));
  out += Row("Total token throughput (tok/s):", s.total_token_throughput);
  out += Row("Max requests in flight:", static_cast<int64_t>(s.max_in_flight));
  if (s.has_slo) {
    std::vector<std::string> slos;
    if (s.slo.ttft_ms > 0) slos.push_back(absl::StrFormat("TTFT <= %g ms", s.slo.ttft_ms));
    if (s.slo.tpot_ms > 0) slos.push_back(absl::StrFormat("TPOT <= %g ms", s.slo.tpot_ms));
    out += Row("Request goodput (req/s):", s.goodput);
    out += Row("Requests meeting the SLOs:", absl::StrCat(s.good_requests, " (", absl::StrJoin(slos, ", "), ")"));
  }
  out += Banner("Requests by status", '-');
  for (const auto& [status, count] : s.status_counts) out += Row(absl::StrCat(status, ":"), count);
  out += LatencySection("Time to First Token", "TTFT", s.ttft);
  out += LatencySection("Time per Output Token (excl. 1st token)", "TPOT", s.tpot);
  out += LatencySection("Inter-token Latency", "ITL", s.itl);
  out += LatencySection("End-to-end Latency", "E2EL", s.e2e);
  out += MoeSection(r.moe);
  out += std::string(kWidth, '=') + "\n";
  return out;
}

nlohmann::json RequestJson(const RequestRecord& r) {
  nlohmann::json j = {{"index", r.index},
                      {"ok", r.ok},
                      {"status", r.status},
                      {"scheduled_s", r.scheduled_s},
                      {"sent_s", r.sent_s},
                      {"done_s", r.done_s},
                      {"prompt_tokens", r.prompt_tokens},
                      {"output_tokens", r.output_tokens},
                      {"e2e_ms", r.e2e_s() * 1000}};
  j["ttft_ms"] = r.first_token_s >= 0 ? nlohmann::json(r.ttft_s() * 1000) : nlohmann::json(nullptr);
  j["tpot_ms"] = r.output_tokens > 1 && r.first_token_s >= 0 ? nlohmann::json(r.tpot_s() * 1000)
                                                             : nlohmann::json(nullptr);
  nlohmann::json itl = nlohmann::json::array();
  for (size_t i = 1; i < r.events.size(); ++i) itl.push_back((r.events[i].time_s - r.events[i - 1].time_s) * 1000);
  j["itl_ms"] = itl;
  if (!r.error_message.empty()) j["error"] = r.error_message;
  return j;
}

nlohmann::json ReportJson(const Report& r, bool include_requests) {
  const Summary& s = r.summary;
  nlohmann::json j;
  j["date"] = r.date;
  j["backend"] = r.backend;
  j["traffic"] = r.traffic;
  j["workload"] = r.workload;
  j["config"] = r.config;
  j["completed"] = s.completed;
  j["failed"] = s.failed;
  j["status_counts"] = s.status_counts;
  j["warmup"] = {{"requests", r.warmup_requests}, {"failed", r.warmup_failed}};
  j["duration_s"] = s.duration_s;
  j["total_input_tokens"] = s.total_input_tokens;
  j["total_output_tokens"] = s.total_output_tokens;
  j["request_throughput"] = s.request_throughput;
  j["output_throughput"] = s.output_throughput;
  j["peak_output_throughput"] = Peak(s.output_tokens_per_s);
  j["total_token_throughput"] = s.total_token_throughput;
  j["max_in_flight"] = s.max_in_flight;
  if (s.has_slo) {
    j["goodput"] = {{"slo_ttft_ms", s.slo.ttft_ms > 0 ? nlohmann::json(s.slo.ttft_ms) : nlohmann::json(nullptr)},
                    {"slo_tpot_ms", s.slo.tpot_ms > 0 ? nlohmann::json(s.slo.tpot_ms) : nlohmann::json(nullptr)},
                    {"good_requests", s.good_requests},
                    {"request_goodput", s.goodput}};
  } else {
    j["goodput"] = nullptr;
  }
  j["percentile_method"] = kPercentileMethod;
  j["ttft_ms"] = DistributionJson(s.ttft);
  j["tpot_ms"] = DistributionJson(s.tpot);
  j["itl_ms"] = DistributionJson(s.itl);
  j["e2e_ms"] = DistributionJson(s.e2e);
  j["throughput_over_time"] = {{"bucket_s", 1},
                               {"output_tokens_per_s", s.output_tokens_per_s},
                               {"completions_per_s", s.completions_per_s}};
  j["moe"] = MoeJson(r.moe);
  if (include_requests) {
    nlohmann::json requests = nlohmann::json::array();
    for (const RequestRecord& rec : r.records) requests.push_back(RequestJson(rec));
    j["requests"] = requests;
  }
  return j;
}

}  // namespace moe::loadgen
