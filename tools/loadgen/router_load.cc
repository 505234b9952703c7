#include "tools/loadgen/router_load.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace moe::loadgen {

double Imbalance(const std::vector<uint64_t>& counts) {
  if (counts.empty()) return 0;
  const double total = static_cast<double>(std::accumulate(counts.begin(), counts.end(), uint64_t{0}));
  if (total == 0) return 0;
  const double mean = total / static_cast<double>(counts.size());
  return static_cast<double>(*std::max_element(counts.begin(), counts.end())) / mean;
}

double HistogramQuantile(const std::vector<std::pair<double, double>>& cumulative, double q) {
  if (cumulative.empty() || cumulative.back().second <= 0) return 0;
  const double rank = q * cumulative.back().second;
  double lower = 0, below = 0;
  for (const auto& [upper, count] : cumulative) {
    if (count >= rank && count > below) {
      if (std::isinf(upper)) return lower;
      return lower + (upper - lower) * (rank - below) / (count - below);
    }
    if (!std::isinf(upper)) lower = upper;
    below = count;
  }
  return lower;
}

namespace {

// Counters only grow, but a restarted router starts again from zero.
uint64_t Delta(uint64_t before, uint64_t after) { return after >= before ? after - before : after; }

}  // namespace

MoeFigures CompareRouterLoads(const RouterLoad& before, const RouterLoad& after) {
  MoeFigures f;
  f.engine_reported = after.engine_reported;
  f.steps = Delta(before.steps, after.steps);
  f.generated_tokens = Delta(before.generated_tokens, after.generated_tokens);
  f.prefill_tokens = Delta(before.prefill_tokens_computed, after.prefill_tokens_computed);
  f.preemptions = Delta(before.preemptions, after.preemptions);
  f.rejected_requests = Delta(before.rejected_requests, after.rejected_requests);
  const uint64_t queried = Delta(before.prefix_cache_queried_tokens, after.prefix_cache_queried_tokens);
  const uint64_t hit = Delta(before.prefix_cache_hit_tokens, after.prefix_cache_hit_tokens);
  f.prefix_cache_hit_rate = queried > 0 ? static_cast<double>(hit) / static_cast<double>(queried) : 0;
  const uint64_t admitted = Delta(before.admitted_requests, after.admitted_requests);
  const double queue_s = after.queue_seconds_total >= before.queue_seconds_total
                             ? after.queue_seconds_total - before.queue_seconds_total
                             : after.queue_seconds_total;
  f.mean_queue_ms = admitted > 0 ? queue_s * 1000 / static_cast<double>(admitted) : 0;

  const size_t cells = static_cast<size_t>(after.num_layers) * after.num_experts;
  if (cells > 0 && after.expert_tokens.size() == cells) {
    const bool same_shape = before.num_layers == after.num_layers && before.num_experts == after.num_experts &&
                            before.expert_tokens.size() == cells;
    f.expert_tokens_reported = true;
    f.num_layers = after.num_layers;
    f.num_experts = after.num_experts;
    f.tokens_per_expert.assign(after.num_experts, 0);
    double imbalance_sum = 0;
    for (uint32_t layer = 0; layer < after.num_layers; ++layer) {
      std::vector<uint64_t> row(after.num_experts);
      for (uint32_t e = 0; e < after.num_experts; ++e) {
        const size_t i = static_cast<size_t>(layer) * after.num_experts + e;
        row[e] = same_shape ? Delta(before.expert_tokens[i], after.expert_tokens[i]) : after.expert_tokens[i];
        f.tokens_per_expert[e] += row[e];
      }
      const double imbalance = Imbalance(row);
      f.layer_imbalance.push_back(imbalance);
      imbalance_sum += imbalance;
      if (f.worst_layer < 0 || imbalance > f.layer_imbalance[f.worst_layer]) f.worst_layer = static_cast<int>(layer);
    }
    f.imbalance = Imbalance(f.tokens_per_expert);
    f.mean_layer_imbalance = imbalance_sum / after.num_layers;
  }

  f.dispatch_reported = after.dispatch_reported;
  for (const WorkerDispatch& w : after.dispatch) {
    MoeFigures::Worker out;
    out.address = w.address;
    out.calls = w.calls;
    out.failures = w.failures;
    double latency_s = w.total_latency_s;
    std::vector<std::pair<double, double>> buckets = w.buckets;
    for (const WorkerDispatch& b : before.dispatch) {
      if (b.address != w.address || b.calls > w.calls) continue;  // (a restarted router: all of `after`)
      out.calls = w.calls - b.calls;
      out.failures = Delta(b.failures, w.failures);
      latency_s = std::max(0.0, w.total_latency_s - b.total_latency_s);
      for (auto& [upper, count] : buckets) {
        for (const auto& [b_upper, b_count] : b.buckets) {
          if (b_upper == upper) count = std::max(0.0, count - b_count);
        }
      }
    }
    out.mean_latency_ms = out.calls > 0 ? latency_s * 1000 / static_cast<double>(out.calls) : 0;
    out.p50_ms = HistogramQuantile(buckets, 0.50) * 1000;
    out.p90_ms = HistogramQuantile(buckets, 0.90) * 1000;
    out.p99_ms = HistogramQuantile(buckets, 0.99) * 1000;
    f.workers.push_back(out);
  }
  return f;
}

}  // namespace moe::loadgen
