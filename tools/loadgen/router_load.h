// MoE figures for the report: the router's LoadReport (GetLoad) read before
// and after the measured phase, and the difference. RouterLoad is a plain
// copy of the fields used, so that the arithmetic is tested without gRPC;
// router_probe.cc fills it from the RPC.
#ifndef MOE_TOOLS_LOADGEN_ROUTER_LOAD_H_
#define MOE_TOOLS_LOADGEN_ROUTER_LOAD_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/tls.h"

namespace moe::loadgen {

// Per-worker expert dispatch counters, when the router reports them (its
// Prometheus moe_dispatch_latency_seconds histogram).
struct WorkerDispatch {
  std::string address;
  uint64_t calls = 0;          // per-layer exchanges
  double total_latency_s = 0;  // summed send-to-reply time
  uint64_t failures = 0;       // exchanges that failed or missed the deadline
  // Cumulative histogram buckets (upper bound in seconds, +inf last; count).
  std::vector<std::pair<double, double>> buckets;
};

struct RouterLoad {
  // True when the engine counters below come from GetLoad.
  bool engine_reported = false;
  uint64_t steps = 0;
  uint64_t preemptions = 0;
  uint64_t prefix_cache_queried_tokens = 0;
  uint64_t prefix_cache_hit_tokens = 0;
  uint64_t prefill_tokens_computed = 0;
  uint64_t generated_tokens = 0;
  uint64_t admitted_requests = 0;
  uint64_t finished_requests = 0;
  uint64_t rejected_requests = 0;
  double queue_seconds_total = 0;
  // expert_tokens[layer * num_experts + expert]: tokens routed there since start.
  uint32_t num_layers = 0;
  uint32_t num_experts = 0;
  std::vector<uint64_t> expert_tokens;
  // True when the router's Prometheus metrics had dispatch histograms
  // (GetLoad has no dispatch statistics).
  bool dispatch_reported = false;
  std::vector<WorkerDispatch> dispatch;
};

// GetLoad(include_expert_tokens) on the router at `address`; the gRPC status
// (with the address) on failure.
absl::StatusOr<RouterLoad> QueryRouterLoad(const std::string& address, int64_t timeout_ms,
                                           const rpc::TlsConfig& tls = {});

struct MoeFigures {
  std::string router_address;  // GetLoad from here; empty: not asked for
  std::string metrics_url;     // Prometheus /metrics from here; empty: not asked for
  std::string error;           // why the figures are missing (router unreachable)
  // Engine counters over the measured phase (GetLoad only).
  bool engine_reported = false;
  uint64_t steps = 0;
  uint64_t generated_tokens = 0;
  uint64_t prefill_tokens = 0;
  uint64_t preemptions = 0;
  uint64_t rejected_requests = 0;
  double prefix_cache_hit_rate = 0;  // hit / queried prompt tokens (0 when none queried)
  double mean_queue_ms = 0;          // router queue time per admitted request
  // Tokens per expert over the measured phase.
  bool expert_tokens_reported = false;
  uint32_t num_layers = 0, num_experts = 0;
  std::vector<uint64_t> tokens_per_expert;  // summed over layers
  double imbalance = 0;                     // max / mean of tokens_per_expert
  std::vector<double> layer_imbalance;      // max / mean within each layer
  double mean_layer_imbalance = 0;
  int worst_layer = -1;
  // Dispatch latency per worker over the measured phase.
  bool dispatch_reported = false;
  struct Worker {
    std::string address;
    uint64_t calls = 0;
    uint64_t failures = 0;
    double mean_latency_ms = 0;
    // From the histogram buckets (linear within a bucket, as Prometheus'
    // histogram_quantile); 0 without buckets.
    double p50_ms = 0, p90_ms = 0, p99_ms = 0;
  };
  std::vector<Worker> workers;
};

// The q-quantile (0..1) of a cumulative histogram, interpolated linearly
// within the bucket that holds it (the lower edge of the first is 0); the
// largest finite bound when it falls in the +inf bucket; 0 when empty.
double HistogramQuantile(const std::vector<std::pair<double, double>>& cumulative, double q);

// max / mean of `counts`; 0 when they are all zero (or there are none).
double Imbalance(const std::vector<uint64_t>& counts);

// The difference `after - before` as report figures.
MoeFigures CompareRouterLoads(const RouterLoad& before, const RouterLoad& after);

}  // namespace moe::loadgen

#endif  // MOE_TOOLS_LOADGEN_ROUTER_LOAD_H_
