#include "router/router_metrics.h"

#include "absl/synchronization/mutex.h"
#include "absl/strings/str_cat.h"

namespace moe {

RouterMetrics::RouterMetrics()
    : queue_(LatencyBuckets()), ttft_(LatencyBuckets()), itl_(LatencyBuckets()), e2e_(LatencyBuckets()) {
  for (const char* r : {"stop", "length", "cancelled", "error"}) finished_[r] = 0;
}

void RouterMetrics::ObserveFinish(const std::string& reason, double e2e_seconds, int prompt_tokens,
                                  int completion_tokens) {
  e2e_.Observe(e2e_seconds);
  prompt_tokens_.fetch_add(static_cast<uint64_t>(prompt_tokens));
  generation_tokens_.fetch_add(static_cast<uint64_t>(completion_tokens));
  absl::MutexLock lock(&mu_);
  ++finished_[reason];
}

std::string RouterMetrics::Render(const EngineStats& e,
                                  const std::vector<RemoteExpertBackend::WorkerStats>* workers,
                                  const Failovers* failovers) const {
  PrometheusText p;
  p.Histogram("moe_time_to_first_token_seconds", "Time from the request's arrival to its first token.", ttft_.Get());
  p.Histogram("moe_inter_token_latency_seconds", "Time between consecutive tokens of a sequence.", itl_.Get());
  p.Histogram("moe_e2e_request_latency_seconds", "Time from arrival to the last token.", e2e_.Get());
  p.Histogram("moe_request_queue_time_seconds", "Time waiting before the first admission to the batch.", queue_.Get());
  p.Gauge("moe_num_requests_running", "Sequences in the running batch.", e.running);
  p.Gauge("moe_num_requests_waiting", "Requests waiting for admission (including preempted ones).", e.waiting);
  p.Gauge("moe_num_requests_preempted", "Preempted sequences waiting to be recomputed.", e.preempted);
  const double usage = e.kv_blocks_total > 0 ? static_cast<double>(e.kv_blocks_used) / e.kv_blocks_total : 0.0;
  p.Gauge("moe_kv_cache_usage_perc", "Fraction of KV-cache blocks referenced by sequences (0..1).", usage);
  p.Gauge("moe_kv_cache_blocks", "KV-cache blocks by state.", e.kv_blocks_used, {{"state", "used"}});
  p.Gauge("moe_kv_cache_blocks", "KV-cache blocks by state.", e.kv_blocks_free - e.kv_blocks_cached, {{"state", "free"}});
  p.Gauge("moe_kv_cache_blocks", "KV-cache blocks by state.", e.kv_blocks_cached, {{"state", "cached"}});
  p.Counter("moe_prompt_tokens_total", "Prompt tokens of finished requests.", static_cast<double>(prompt_tokens_.load()));
  p.Counter("moe_generation_tokens_total", "Generated tokens of finished requests.",
            static_cast<double>(generation_tokens_.load()));
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [reason, n] : finished_) {
      p.Counter("moe_request_success_total", "Finished requests by finish reason.", static_cast<double>(n),
                {{"finished_reason", reason}});
    }
  }
  p.Counter("moe_num_preemptions_total", "Sequences preempted to free KV-cache blocks.", static_cast<double>(e.preemptions));
  p.Counter("moe_prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.",
            static_cast<double>(e.prefix_cache_queried_tokens));
  p.Counter("moe_prefix_cache_hits_total", "Prompt tokens found in the prefix cache.",
            static_cast<double>(e.prefix_cache_hit_tokens));
  p.Counter("moe_engine_steps_total", "Forward steps run by the engine.", static_cast<double>(e.steps));
  for (int64_t l = 0; l < e.num_layers; ++l) {
    for (int64_t x = 0; x < e.num_experts; ++x) {
      const size_t i = static_cast<size_t>(l * e.num_experts + x);
      if (i >= e.expert_tokens.size()) break;
      p.Counter("moe_expert_tokens_total", "Tokens the gates routed to each expert.",
                static_cast<double>(e.expert_tokens[i]), {{"layer", absl::StrCat(l)}, {"expert", absl::StrCat(x)}});
    }
  }
  if (workers != nullptr) {
    for (const auto& w : *workers) {
      const MetricLabels labels = {{"worker", w.address}};
      p.Histogram("moe_dispatch_latency_seconds", "Round trip of one MoE-layer exchange with a worker.", w.latency,
                  labels);
      p.Counter("moe_dispatch_bytes_total", "Bytes of dispatch requests and replies.",
                static_cast<double>(w.bytes_sent + w.bytes_received), labels);
      p.Counter("moe_dispatch_failures_total", "Layer exchanges that failed or missed the deadline.",
                static_cast<double>(w.failures), labels);
      p.Gauge("moe_worker_up", "1 when the worker is healthy: its last exchange or health probe succeeded.",
              w.up ? 1 : 0, labels);
    }
  }
  if (failovers != nullptr) {
    p.Counter("moe_expert_failovers_total",
              "Experts whose rows were sent to another replica after an exchange failed or missed its deadline.",
              static_cast<double>(failovers->failovers));
    p.Counter("moe_expert_retries_total", "Exchanges that retried failed rows on another replica in the same step.",
              static_cast<double>(failovers->retries));
  }
  return p.str();
}

}  // namespace moe
