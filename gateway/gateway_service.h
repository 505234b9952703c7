// gRPC adapter of the gateway: moe.v1.Inference. Validates and tokenizes
// requests, forwards them to the least loaded router, and streams the
// detokenized text back (a delta never splits a UTF-8 character). Reactions
// never block: the router stream is read with a callback reactor, and the
// next router message is read only when the client took the previous one.
#ifndef MOE_GATEWAY_GATEWAY_SERVICE_H_
#define MOE_GATEWAY_GATEWAY_SERVICE_H_

#include <atomic>
#include <string>

#include "gateway/api_keys.h"
#include "gateway/gateway_metrics.h"
#include "gateway/generate_call.h"
#include "gateway/router_pool.h"
#include "gateway/tokenizer/tokenizer.h"
#include "moe/v1/inference.grpc.pb.h"
#include "proto/parsed_request.h"

namespace moe {

struct GatewayServiceOptions {
  RequestLimits limits;
  // Deadline given to a router call when the client set none, ms.
  int64_t default_request_deadline_ms = 600000;
  // When set, every moe.v1.Inference call needs the metadata
  // `authorization: Bearer KEY` with one of these keys (UNAUTHENTICATED
  // otherwise). Health and reflection stay open. Not owned.
  const ApiKeys* api_keys = nullptr;
};

class GatewayService final : public rpc::ParsingService<moe::v1::Inference::CallbackService> {
 public:
  // `tokenizer` and `routers` must outlive the service.
  GatewayService(const tokenizer::Tokenizer* tokenizer, RouterPool* routers, moe::v1::ModelInfo info,
                 GatewayServiceOptions options)
      : tokenizer_(tokenizer), routers_(routers), info_(std::move(info)), options_(options) {
    // Method indices as in inference.proto; requests that fail to parse get
    // INVALID_ARGUMENT (proto/parsed_request.h).
    ParseServerStreaming(0, &GatewayService::Generate);
    ParseUnary(1, &GatewayService::Complete);
    ParseUnary(2, &GatewayService::Tokenize);
    ParseUnary(3, &GatewayService::Detokenize);
    ParseUnary(4, &GatewayService::GetModelInfo);
  }

  grpc::ServerWriteReactor<moe::v1::GenerateResponse>* Generate(grpc::CallbackServerContext* context,
                                                                const moe::v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Complete(grpc::CallbackServerContext* context, const moe::v1::GenerateRequest* request,
                                     moe::v1::CompleteResponse* response) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context, const moe::v1::TokenizeRequest* request,
                                     moe::v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* context,
                                       const moe::v1::DetokenizeRequest* request,
                                       moe::v1::DetokenizeResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const moe::v1::GetModelInfoRequest* request,
                                         moe::v1::ModelInfo* response) override;

  // Shared with the call objects.
  const tokenizer::Tokenizer* tokenizer() const { return tokenizer_; }
  RouterPool* routers() const { return routers_; }
  const moe::v1::ModelInfo& info() const { return info_; }
  const GatewayServiceOptions& options() const { return options_; }
  std::string NextRequestId() { return "gw-" + std::to_string(next_id_.fetch_add(1)); }
  // OK, or UNAUTHENTICATED when API keys are set and the call lacks a valid one.
  absl::Status Authorize(const grpc::CallbackServerContext& context) const;
  GatewayMetrics& metrics() { return metrics_; }

  // Drain: Generate and Complete refuse new calls with UNAVAILABLE; calls
  // already open run on. ActiveCalls counts those open.
  void StopAccepting() { accepting_.store(false); }
  int ActiveCalls() const { return active_calls_.load(); }
  // Held by each open Generate/Complete call.
  class ActiveCall {
   public:
    explicit ActiveCall(GatewayService* s) : s_(s) { s_->active_calls_.fetch_add(1); }
    ~ActiveCall() { s_->active_calls_.fetch_sub(1); }
    ActiveCall(const ActiveCall&) = delete;
    ActiveCall& operator=(const ActiveCall&) = delete;

   private:
    GatewayService* s_;
  };

 private:
  absl::Status Admit(const grpc::CallbackServerContext& context) const;
  std::atomic<bool> accepting_{true};
  std::atomic<int> active_calls_{0};
  const tokenizer::Tokenizer* tokenizer_;
  RouterPool* routers_;
  const moe::v1::ModelInfo info_;
  const GatewayServiceOptions options_;
  std::atomic<uint64_t> next_id_{1};
  GatewayMetrics metrics_;
};

}  // namespace moe

#endif  // MOE_GATEWAY_GATEWAY_SERVICE_H_
