// GatewayMetrics: what the gateway observes of each public request (latency
// as the client sees it, outcome by status code), in the Prometheus text
// format on the HTTP listener's /metrics. Thread-safe.
#ifndef MOE_GATEWAY_GATEWAY_METRICS_H_
#define MOE_GATEWAY_GATEWAY_METRICS_H_

#include <atomic>
#include <map>
#include <string>

#include "absl/synchronization/mutex.h"
#include "core/metrics.h"

namespace moe {

class GatewayMetrics {
 public:
  GatewayMetrics() : ttft_(LatencyBuckets()), e2e_(LatencyBuckets()) {}

  void ObserveFirstToken(double seconds) { ttft_.Observe(seconds); }
  // A Generate/Complete call ended with gRPC status `code` (e.g. "OK").
  void ObserveRequest(const std::string& code, double seconds, uint32_t prompt_tokens, uint32_t completion_tokens);
  std::string Render() const;

 private:
  Histogram ttft_, e2e_;
  std::atomic<uint64_t> prompt_tokens_{0}, generation_tokens_{0};
  mutable absl::Mutex mu_;
  std::map<std::string, uint64_t> requests_ ABSL_GUARDED_BY(mu_);  // by status code
};

}  // namespace moe

#endif  // MOE_GATEWAY_GATEWAY_METRICS_H_
