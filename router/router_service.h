// gRPC adapter of the router: moe.internal.v1.Router over an Engine.
// Reactions never block: tokens arrive from the engine thread through a
// per-call sink that queues messages and keeps at most one write in flight.
#ifndef MOE_ROUTER_ROUTER_SERVICE_H_
#define MOE_ROUTER_ROUTER_SERVICE_H_

#include <atomic>
#include <functional>
#include <string>

#include "moe/internal/v1/router.grpc.pb.h"
#include "proto/parsed_request.h"
#include "router/engine.h"
#include "router/router_metrics.h"
#include "core/sampling_options.h"

namespace moe {

class RouterService final : public rpc::ParsingService<moe::internal::v1::Router::CallbackService> {
 public:
  // `engine` must outlive the service. `info` answers GetInfo.
  // `metrics` (may be null) receives per-request latencies.
  // `health` fills LoadReport.serving and .workers (empty: serving, no workers).
  RouterService(Engine* engine, moe::v1::ModelInfo info, RouterMetrics* metrics = nullptr,
                std::function<void(moe::internal::v1::LoadReport*)> health = {})
      : engine_(engine), info_(std::move(info)), metrics_(metrics), health_(std::move(health)) {
    // Method indices as in router.proto; requests that fail to parse get
    // INVALID_ARGUMENT (proto/parsed_request.h).
    ParseServerStreaming(0, &RouterService::Generate);
    ParseUnary(1, &RouterService::Abort);
    ParseUnary(2, &RouterService::GetLoad);
    ParseUnary(3, &RouterService::GetInfo);
  }

  grpc::ServerWriteReactor<moe::internal::v1::RouterGenerateResponse>* Generate(
      grpc::CallbackServerContext* context, const moe::internal::v1::RouterGenerateRequest* request) override;
  grpc::ServerUnaryReactor* Abort(grpc::CallbackServerContext* context,
                                  const moe::internal::v1::AbortRequest* request,
                                  moe::internal::v1::AbortResponse* response) override;
  grpc::ServerUnaryReactor* GetLoad(grpc::CallbackServerContext* context,
                                    const moe::internal::v1::GetLoadRequest* request,
                                    moe::internal::v1::LoadReport* response) override;
  grpc::ServerUnaryReactor* GetInfo(grpc::CallbackServerContext* context,
                                    const moe::internal::v1::GetRouterInfoRequest* request,
                                    moe::internal::v1::RouterInfo* response) override;

 private:
  Engine* engine_;
  const moe::v1::ModelInfo info_;
  RouterMetrics* metrics_;
  const std::function<void(moe::internal::v1::LoadReport*)> health_;
};

// Converts the wire request to an engine request (sampling defaults follow
// OpenAI: temperature 1, top_p 1). INVALID_ARGUMENT naming a bad field.
absl::StatusOr<GenerationRequest> ToGenerationRequest(const moe::internal::v1::RouterGenerateRequest& request);

}  // namespace moe

#endif  // MOE_ROUTER_ROUTER_SERVICE_H_
