// gRPC adapter of router_load.h: GetLoad on the router.
#include "absl/strings/str_cat.h"
#include "moe/internal/v1/router.grpc.pb.h"
#include "proto/rpc_util.h"
#include "tools/loadgen/router_load.h"

namespace moe::loadgen {

absl::StatusOr<RouterLoad> QueryRouterLoad(const std::string& address, int64_t timeout_ms,
                                           const rpc::TlsConfig& tls) {
  auto stub = moe::internal::v1::Router::NewStub(rpc::MakeChannel(address, &tls));
  grpc::ClientContext ctx;
  ctx.set_deadline(rpc::DeadlineIn(timeout_ms));
  moe::internal::v1::GetLoadRequest request;
  request.set_include_expert_tokens(true);
  moe::internal::v1::LoadReport report;
  const grpc::Status status = stub->GetLoad(&ctx, request, &report);
  if (!status.ok()) {
    const absl::Status s = rpc::FromGrpcStatus(status);
    return absl::Status(s.code(), absl::StrCat("router ", address, ": GetLoad: ", s.message()));
  }
  RouterLoad load;
  load.engine_reported = true;
  load.steps = report.steps();
  load.preemptions = report.preemptions();
  load.prefix_cache_queried_tokens = report.prefix_cache_queried_tokens();
  load.prefix_cache_hit_tokens = report.prefix_cache_hit_tokens();
  load.prefill_tokens_computed = report.prefill_tokens_computed();
  load.generated_tokens = report.generated_tokens();
  load.admitted_requests = report.admitted_requests();
  load.finished_requests = report.finished_requests();
  load.rejected_requests = report.rejected_requests();
  load.queue_seconds_total = report.queue_seconds_total();
  load.num_layers = report.num_layers();
  load.num_experts = report.num_experts();
  load.expert_tokens.assign(report.expert_tokens().begin(), report.expert_tokens().end());
  // LoadReport carries no expert-dispatch latency (router.proto): that comes
  // from the router's Prometheus metrics (prometheus.h) when asked for.
  return load;
}

}  // namespace moe::loadgen
