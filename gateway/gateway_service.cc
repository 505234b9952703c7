#include "gateway/gateway_service.h"

#include <chrono>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "gateway/generate_call.h"
#include "glog/logging.h"
#include "proto/rpc_util.h"

namespace moe {
namespace {

using moe::internal::v1::RouterGenerateRequest;
using moe::internal::v1::RouterGenerateResponse;

// Reads one router stream. The owner decides when to read the next message
// (ReadNext), so a slow client slows the router stream instead of buffering.
// Deleted by its owner once both the owner and this reactor are done.
class RouterCall : public grpc::ClientReadReactor<RouterGenerateResponse> {
 public:
  class Owner {
   public:
    virtual ~Owner() = default;
    virtual void OnRouterMessage(const RouterGenerateResponse& msg) = 0;
    // The router stream ended (status OK after the final message).
    virtual void OnRouterDone(const grpc::Status& status) = 0;
  };

  RouterCall(Owner* owner, GatewayService* service, RouterGenerateRequest request, int64_t deadline_ms,
             std::chrono::system_clock::time_point client_deadline)
      : owner_(owner), service_(service), request_(std::move(request)) {
    auto deadline = rpc::DeadlineIn(deadline_ms);
    if (client_deadline < deadline) deadline = client_deadline;
    context_.set_deadline(deadline);
    router_ = service_->routers()->Pick();
  }

  void Start() {
    router_->stub->async()->Generate(&context_, &request_, this);
    // The owner calls ReadNext from its own reactions (OnWriteDone), outside
    // this reactor's: the hold keeps the stream (and OnDone) from ending
    // between a message and the owner's next read. Released by the read that
    // finds the stream over; every owner reads until then.
    AddHold();
    StartRead(&message_);
    StartCall();
  }
  void ReadNext() { StartRead(&message_); }
  RouterPool::Router* router() const { return router_; }
  void Cancel() { context_.TryCancel(); }
  const std::string& address() const { return router_->address; }

  void OnReadDone(bool ok) override {
    if (ok) {
      owner_->OnRouterMessage(message_);
      return;
    }
    // The stream is over: no more reads; OnDone follows with the status.
    RemoveHold();
  }
  void OnDone(const grpc::Status& status) override {
    service_->routers()->Release(router_);
    grpc::Status s = status;
    // An UNAVAILABLE that is not the expert workers' (the router marks theirs,
    // naming them) is the router's own: name it.
    const auto& trailers = context_.GetServerTrailingMetadata();
    const bool from_workers = trailers.find(rpc::kErrorOriginKey) != trailers.end();
    if (!s.ok() && s.error_code() == grpc::StatusCode::UNAVAILABLE && !from_workers &&
        s.error_message().find(router_->address) == std::string::npos) {
      s = grpc::Status(s.error_code(), absl::StrCat("router ", router_->address, ": ", s.error_message()));
    }
    owner_->OnRouterDone(s);
  }

 private:
  Owner* owner_;
  GatewayService* service_;
  RouterPool::Router* router_;
  grpc::ClientContext context_;
  RouterGenerateRequest request_;
  RouterGenerateResponse message_;
};

// A gateway call ends when both its server side (OnDone) and its router
// stream (OnRouterDone, if one was started) are done; whichever is last
// deletes the call.
class TwoSidedLifetime {
 public:
  // Returns true when the caller should delete the call now.
  bool Done(bool router_done, bool server_done, bool router_started) {
    absl::MutexLock lock(&mu_);
    router_done_ |= router_done;
    server_done_ |= server_done;
    return server_done_ && (router_done_ || !router_started);
  }

 private:
  absl::Mutex mu_;
  bool router_done_ ABSL_GUARDED_BY(mu_) = false;
  bool server_done_ ABSL_GUARDED_BY(mu_) = false;
};

// Stops one sample of a multi-sample request on the router (fire and forget).
// `handle` is the router's id of the request (RouterGenerateResponse.request_handle).
void AbortSample(RouterPool::Router* router, uint64_t handle, uint32_t index) {
  struct Call {
    grpc::ClientContext ctx;
    moe::internal::v1::AbortRequest req;
    moe::internal::v1::AbortResponse resp;
  };
  auto* call = new Call();
  call->ctx.set_deadline(rpc::DeadlineIn(5000));
  call->req.set_request_handle(handle);
  call->req.set_sample_index(index);
  router->stub->async()->Abort(&call->ctx, &call->req, &call->resp, [call](grpc::Status) { delete call; });
}

// Times one public call for the gateway's metrics.
class CallClock {
 public:
  explicit CallClock(GatewayMetrics* metrics) : metrics_(metrics), start_(std::chrono::steady_clock::now()) {}
  void Token() {
    if (first_token_seen_) return;
    first_token_seen_ = true;
    metrics_->ObserveFirstToken(Elapsed());
  }
  void Done(const grpc::Status& status, const moe::v1::Usage& usage) {
    metrics_->ObserveRequest(std::string(absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()))),
                             Elapsed(), usage.prompt_tokens(), usage.completion_tokens());
  }

 private:
  double Elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  GatewayMetrics* metrics_;
  const std::chrono::steady_clock::time_point start_;
  bool first_token_seen_ = false;
};

// The set-up Generate and Complete share: validates and tokenizes the
// request, then starts its router stream with `owner` receiving it. The error
// to finish the call with when the request is bad (nothing started then).
absl::Status StartRouterCall(GatewayService* service, grpc::CallbackServerContext* context,
                             const moe::v1::GenerateRequest& request, bool streaming, RouterCall::Owner* owner,
                             std::optional<ResponseTranslator>* translator, std::unique_ptr<RouterCall>* router) {
  const std::string id = request.request_id().empty() ? service->NextRequestId() : request.request_id();
  absl::StatusOr<PreparedRequest> prepared = PrepareRequest(request, *service->tokenizer(), service->info(), id,
                                                            service->options().limits, streaming);
  if (!prepared.ok()) return prepared.status();
  translator->emplace(service->tokenizer(), *prepared);
  *router = std::make_unique<RouterCall>(owner, service, std::move(prepared->router),
                                         service->options().default_request_deadline_ms, context->deadline());
  (*router)->Start();
  return absl::OkStatus();
}

// Streaming Generate: client <- gateway <- router, one message in flight.
class GenerateReactor : public grpc::ServerWriteReactor<moe::v1::GenerateResponse>, public RouterCall::Owner {
 public:
  GenerateReactor(GatewayService* service, grpc::CallbackServerContext* context,
                  const moe::v1::GenerateRequest& request)
      : active_(service), clock_(&service->metrics()) {
    const absl::Status s = StartRouterCall(service, context, request, /*streaming=*/true, this, &translator_, &router_);
    if (!s.ok()) {
      const grpc::Status g = rpc::ToGrpcStatus(s);
      clock_.Done(g, moe::v1::Usage());
      Finish(g);
    }
  }

  void OnRouterMessage(const RouterGenerateResponse& msg) override {
    absl::StatusOr<ResponseTranslator::Output> out = translator_->Translate(msg);
    if (!out.ok()) {
      error_ = rpc::ToGrpcStatus(out.status());
      router_->Cancel();
      router_->ReadNext();  // drains to OnDone
      return;
    }
    if (out->stopped_sample.has_value() && !out->all_done) {
      AbortSample(router_->router(), msg.request_handle(), *out->stopped_sample);
    }
    if (out->all_done) {
      // Every sample has ended (stop strings may end them before the router
      // does): the client's stream ends after this message.
      all_done_ = true;
      router_->Cancel();
    }
    if (!out->message.has_value()) {
      router_->ReadNext();
      return;
    }
    out_ = std::move(*out->message);
    if (out_.tokens_size() > 0) clock_.Token();
    if (out_.has_usage()) usage_ = out_.usage();
    StartWrite(&out_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) router_->Cancel();  // client gone
    router_->ReadNext();
  }
  void OnRouterDone(const grpc::Status& status) override {
    const grpc::Status final = !error_.ok() ? error_ : all_done_ ? grpc::Status::OK : status;
    clock_.Done(final, usage_);
    Finish(final);
    MaybeDelete(/*router_done=*/true, /*server_done=*/false);
  }
  void OnCancel() override {
    if (router_ != nullptr) router_->Cancel();
  }
  void OnDone() override { MaybeDelete(/*router_done=*/false, /*server_done=*/true); }

 private:
  void MaybeDelete(bool router_done, bool server_done) {
    if (lifetime_.Done(router_done, server_done, router_ != nullptr)) delete this;
  }

  GatewayService::ActiveCall active_;  // first: counted until the reactor is gone
  std::optional<ResponseTranslator> translator_;
  std::unique_ptr<RouterCall> router_;
  moe::v1::GenerateResponse out_;
  grpc::Status error_;
  bool all_done_ = false;
  CallClock clock_;
  moe::v1::Usage usage_;
  TwoSidedLifetime lifetime_;
};

// Unary Complete: the whole stream gathered into one response.
class CompleteReactor : public grpc::ServerUnaryReactor, public RouterCall::Owner {
 public:
  CompleteReactor(GatewayService* service, grpc::CallbackServerContext* context,
                  const moe::v1::GenerateRequest& request, moe::v1::CompleteResponse* response)
      : active_(service), response_(response), clock_(&service->metrics()) {
    const absl::Status s = StartRouterCall(service, context, request, /*streaming=*/false, this, &translator_, &router_);
    if (!s.ok()) {
      const grpc::Status g = rpc::ToGrpcStatus(s);
      clock_.Done(g, moe::v1::Usage());
      Finish(g);
    }
  }

  void OnRouterMessage(const RouterGenerateResponse& msg) override {
    absl::StatusOr<ResponseTranslator::Output> out = translator_->Translate(msg);
    if (!out.ok()) {
      error_ = rpc::ToGrpcStatus(out.status());
      router_->Cancel();
    } else {
      if (out->message.has_value() && out->message->tokens_size() > 0) clock_.Token();
      if (out->stopped_sample.has_value() && !out->all_done) {
        AbortSample(router_->router(), msg.request_handle(), *out->stopped_sample);
      }
      if (out->all_done) {
        all_done_ = true;
        router_->Cancel();
      }
    }
    router_->ReadNext();
  }
  void OnRouterDone(const grpc::Status& status) override {
    if (!error_.ok()) {
      clock_.Done(error_, moe::v1::Usage());
      Finish(error_);
    } else if (all_done_ || status.ok()) {
      *response_ = translator_->Result();
      clock_.Done(grpc::Status::OK, response_->usage());
      Finish(grpc::Status::OK);
    } else {
      clock_.Done(status, moe::v1::Usage());
      Finish(status);
    }
    MaybeDelete(true, false);
  }
  void OnCancel() override {
    if (router_ != nullptr) router_->Cancel();
  }
  void OnDone() override { MaybeDelete(false, true); }

 private:
  void MaybeDelete(bool router_done, bool server_done) {
    if (lifetime_.Done(router_done, server_done, router_ != nullptr)) delete this;
  }

  GatewayService::ActiveCall active_;  // first: counted until the reactor is gone
  moe::v1::CompleteResponse* response_;
  CallClock clock_;
  std::optional<ResponseTranslator> translator_;
  std::unique_ptr<RouterCall> router_;
  grpc::Status error_;
  bool all_done_ = false;
  TwoSidedLifetime lifetime_;
};

// A stream refused before it started (authentication).
class RefusedWriteReactor : public grpc::ServerWriteReactor<moe::v1::GenerateResponse> {
 public:
  explicit RefusedWriteReactor(const absl::Status& status) { Finish(rpc::ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

// A unary call finished at once with `status` (its default reactor).
grpc::ServerUnaryReactor* Refuse(grpc::CallbackServerContext* context, const absl::Status& status) {
  auto* reactor = context->DefaultReactor();
  reactor->Finish(rpc::ToGrpcStatus(status));
  return reactor;
}

}  // namespace

absl::Status GatewayService::Authorize(const grpc::CallbackServerContext& context) const {
  if (options_.api_keys == nullptr) return absl::OkStatus();
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find("authorization");
  if (it == metadata.end()) return options_.api_keys->Check("");
  return options_.api_keys->Check(absl::string_view(it->second.data(), it->second.size()));
}

absl::Status GatewayService::Admit(const grpc::CallbackServerContext& context) const {
  RETURN_IF_ERROR(Authorize(context));
  if (!accepting_.load()) {
    return absl::UnavailableError("the gateway is draining (shutting down); retry on another gateway");
  }
  return absl::OkStatus();
}

grpc::ServerWriteReactor<moe::v1::GenerateResponse>* GatewayService::Generate(
    grpc::CallbackServerContext* context, const moe::v1::GenerateRequest* request) {
  if (absl::Status s = Admit(*context); !s.ok()) return new RefusedWriteReactor(s);
  return new GenerateReactor(this, context, *request);
}

grpc::ServerUnaryReactor* GatewayService::Complete(grpc::CallbackServerContext* context,
                                                   const moe::v1::GenerateRequest* request,
                                                   moe::v1::CompleteResponse* response) {
  if (absl::Status s = Admit(*context); !s.ok()) return Refuse(context, s);
  return new CompleteReactor(this, context, *request, response);
}

grpc::ServerUnaryReactor* GatewayService::Tokenize(grpc::CallbackServerContext* context,
                                                   const moe::v1::TokenizeRequest* request,
                                                   moe::v1::TokenizeResponse* response) {
  if (absl::Status s = Authorize(*context); !s.ok()) return Refuse(context, s);
  auto* reactor = context->DefaultReactor();
  tokenizer::EncodeOptions eo;
  eo.add_special_tokens = request->add_special_tokens();
  eo.allow_special = request->allow_special_tokens();
  absl::StatusOr<std::vector<int32_t>> ids = tokenizer_->Encode(request->text(), eo);
  if (!ids.ok()) {
    reactor->Finish(rpc::ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat("text: ", ids.status().message()))));
    return reactor;
  }
  for (int32_t id : *ids) response->add_ids(static_cast<uint32_t>(id));
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* GatewayService::Detokenize(grpc::CallbackServerContext* context,
                                                     const moe::v1::DetokenizeRequest* request,
                                                     moe::v1::DetokenizeResponse* response) {
  if (absl::Status s = Authorize(*context); !s.ok()) return Refuse(context, s);
  auto* reactor = context->DefaultReactor();
  std::vector<int32_t> ids;
  for (uint32_t id : request->ids()) {
    if (id >= static_cast<uint32_t>(tokenizer_->vocab_size())) {
      reactor->Finish(rpc::ToGrpcStatus(absl::InvalidArgumentError(
          absl::StrCat("ids: id ", id, " is outside the vocabulary [0, ", tokenizer_->vocab_size(), ")"))));
      return reactor;
    }
    ids.push_back(static_cast<int32_t>(id));
  }
  absl::StatusOr<std::string> text =
      tokenizer_->Decode(ids, request->has_skip_special_tokens() ? request->skip_special_tokens() : true);
  if (!text.ok()) {
    reactor->Finish(rpc::ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat("ids: ", text.status().message()))));
    return reactor;
  }
  response->set_text(std::move(*text));
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* GatewayService::GetModelInfo(grpc::CallbackServerContext* context,
                                                       const moe::v1::GetModelInfoRequest* /*request*/,
                                                       moe::v1::ModelInfo* response) {
  if (absl::Status s = Authorize(*context); !s.ok()) return Refuse(context, s);
  *response = info_;
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace moe
