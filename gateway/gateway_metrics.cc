#include "gateway/gateway_metrics.h"

#include "absl/synchronization/mutex.h"

namespace moe {

void GatewayMetrics::ObserveRequest(const std::string& code, double seconds, uint32_t prompt_tokens,
                                    uint32_t completion_tokens) {
  if (code == "OK") e2e_.Observe(seconds);
  prompt_tokens_.fetch_add(prompt_tokens);
  generation_tokens_.fetch_add(completion_tokens);
  absl::MutexLock lock(&mu_);
  ++requests_[code];
}

std::string GatewayMetrics::Render() const {
  PrometheusText p;
  p.Histogram("moe_time_to_first_token_seconds", "Time from the request's arrival at the gateway to its first token.",
              ttft_.Get());
  p.Histogram("moe_e2e_request_latency_seconds", "Time from arrival at the gateway to the end of a successful request.",
              e2e_.Get());
  p.Counter("moe_prompt_tokens_total", "Prompt tokens of requests served by this gateway.",
            static_cast<double>(prompt_tokens_.load()));
  p.Counter("moe_generation_tokens_total", "Generated tokens of requests served by this gateway.",
            static_cast<double>(generation_tokens_.load()));
  absl::MutexLock lock(&mu_);
  if (requests_.empty()) p.Counter("moe_gateway_requests_total", "Generate and Complete calls by gRPC status code.", 0, {{"code", "OK"}});
  for (const auto& [code, n] : requests_) {
    p.Counter("moe_gateway_requests_total", "Generate and Complete calls by gRPC status code.", static_cast<double>(n),
              {{"code", code}});
  }
  return p.str();
}

}  // namespace moe
