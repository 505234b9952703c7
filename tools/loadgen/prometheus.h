// The router's Prometheus /metrics as a source of MoE figures: a parser of
// the text exposition format (the subset our services and most exporters
// write) and what moe-loadgen takes from it into a RouterLoad: per-worker
// dispatch latency histograms and failures, and tokens per expert.
#ifndef MOE_TOOLS_LOADGEN_PROMETHEUS_H_
#define MOE_TOOLS_LOADGEN_PROMETHEUS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/loadgen/router_load.h"

namespace moe::loadgen {

struct MetricSample {
  std::string name;  // with the _bucket / _sum / _count suffix of histograms
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Samples of `text`; comments and blank lines are skipped. INVALID_ARGUMENT
// naming the line for a malformed one.
absl::StatusOr<std::vector<MetricSample>> ParsePrometheusText(const std::string& text);

// GET `url` ("http://HOST:PORT" gets "/metrics" appended).
absl::StatusOr<std::string> FetchMetricsText(const std::string& url, int64_t timeout_ms);

// Fills `load` from the router's samples: `dispatch` (and dispatch_reported)
// from moe_dispatch_latency_seconds and moe_dispatch_failures_total, and the
// expert token counters from moe_expert_tokens_total when `load` has none.
void AddRouterMetrics(const std::vector<MetricSample>& samples, RouterLoad* load);

}  // namespace moe::loadgen

#endif  // MOE_TOOLS_LOADGEN_PROMETHEUS_H_
