// RouterMetrics: request latencies observed by the router's streams, and the
// Prometheus rendering of everything the router knows: engine statistics
// (batch, KV cache, prefix cache, tokens per expert) and per-worker dispatch
// figures. Names follow vLLM's (time_to_first_token_seconds, ...) with the
// prefix "moe_". Thread-safe.
#ifndef MOE_ROUTER_ROUTER_METRICS_H_
#define MOE_ROUTER_ROUTER_METRICS_H_

#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "core/metrics.h"
#include "router/engine.h"
#include "router/remote_experts.h"

namespace moe {

class RouterMetrics {
 public:
  RouterMetrics();

  void ObserveQueueTime(double seconds) { queue_.Observe(seconds); }
  void ObserveFirstToken(double seconds) { ttft_.Observe(seconds); }
  void ObserveInterToken(double seconds) { itl_.Observe(seconds); }
  // A sample ended: `reason` is "stop", "length", "cancelled" or "error".
  void ObserveFinish(const std::string& reason, double e2e_seconds, int prompt_tokens, int completion_tokens);

  // The whole exposition. `workers` is null with in-process experts.
  // Failover totals of the remote experts (RemoteExpertBackend).
  struct Failovers {
    uint64_t failovers = 0;  // experts whose rows went to another replica after a failure
    uint64_t retries = 0;    // exchanges that carried them
  };
  std::string Render(const EngineStats& engine, const std::vector<RemoteExpertBackend::WorkerStats>* workers,
                     const Failovers* failovers = nullptr) const;

 private:
  Histogram queue_, ttft_, itl_, e2e_;
  std::atomic<uint64_t> prompt_tokens_{0}, generation_tokens_{0};
  mutable absl::Mutex mu_;
  std::map<std::string, uint64_t> finished_ ABSL_GUARDED_BY(mu_);
};

}  // namespace moe

#endif  // MOE_ROUTER_ROUTER_METRICS_H_
