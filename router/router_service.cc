#include "router/router_service.h"

#include <deque>
#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "proto/rpc_util.h"

namespace moe {
namespace {

using moe::internal::v1::RouterGenerateRequest;
using moe::internal::v1::RouterGenerateResponse;

moe::v1::FinishReason ToProto(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return moe::v1::FINISH_REASON_STOP;
    case FinishReason::kLength: return moe::v1::FINISH_REASON_LENGTH;
    case FinishReason::kCancelled: return moe::v1::FINISH_REASON_CANCELLED;
  }
  return moe::v1::FINISH_REASON_UNSPECIFIED;
}

class GenerateReactor;

// Shared by the engine (as its sink) and the reactor; outlives whichever ends first.
class StreamSink : public GenerationSink {
 public:
  void OnToken(const GeneratedToken& t) override {
    RouterGenerateResponse msg;
    auto* tok = msg.add_tokens();
    tok->set_id(static_cast<uint32_t>(t.id));
    tok->set_logprob(t.logprob);
    for (const auto& [id, lp] : t.top_logprobs) {
      auto* alt = tok->add_top_logprobs();
      alt->set_id(static_cast<uint32_t>(id));
      alt->set_logprob(lp);
    }
    Enqueue(std::move(msg), /*final=*/false, absl::OkStatus());
  }
  void OnFinish(const absl::Status& status, FinishReason reason, int prompt_tokens,
                int completion_tokens) override {
    RouterGenerateResponse msg;
    msg.set_finish_reason(ToProto(reason));
    msg.set_prompt_tokens(static_cast<uint32_t>(prompt_tokens));
    msg.set_completion_tokens(static_cast<uint32_t>(completion_tokens));
    Enqueue(std::move(msg), /*final=*/true, status);
  }
  bool Cancelled() const override { return cancelled_.load(); }

  void Attach(GenerateReactor* r) {
    std::lock_guard<std::mutex> lock(mu_);
    reactor_ = r;
  }
  void Detach() {
    std::lock_guard<std::mutex> lock(mu_);
    reactor_ = nullptr;
    cancelled_ = true;
  }
  void Cancel() { cancelled_ = true; }
  // Called by the reactor when a write completed; starts the next one.
  void WriteDone(bool ok);

 private:
  void Enqueue(RouterGenerateResponse msg, bool final, const absl::Status& status);
  void PumpLocked(std::unique_lock<std::mutex>& lock);

  std::mutex mu_;
  GenerateReactor* reactor_ = nullptr;  // guarded by mu_
  std::deque<RouterGenerateResponse> queue_;  // guarded by mu_; front is in flight when writing_
  bool writing_ = false;
  bool finished_ = false;     // OnFinish seen
  bool finish_sent_ = false;  // reactor Finish called
  absl::Status final_status_;
  std::atomic<bool> cancelled_{false};
};

class GenerateReactor : public grpc::ServerWriteReactor<RouterGenerateResponse> {
 public:
  explicit GenerateReactor(std::shared_ptr<StreamSink> sink) : sink_(std::move(sink)) {}
  void OnWriteDone(bool ok) override { sink_->WriteDone(ok); }
  void OnCancel() override { sink_->Cancel(); }
  void OnDone() override {
    sink_->Detach();
    delete this;
  }

 private:
  std::shared_ptr<StreamSink> sink_;
};

void StreamSink::Enqueue(RouterGenerateResponse msg, bool final, const absl::Status& status) {
  std::unique_lock<std::mutex> lock(mu_);
  if (final) {
    finished_ = true;
    final_status_ = status;
    // A failed request ends with its status, not with a finish message.
    if (status.ok()) queue_.push_back(std::move(msg));
  } else {
    queue_.push_back(std::move(msg));
  }
  PumpLocked(lock);
}

// Decides the next operation under the lock and starts it after unlocking, so
// that a reaction run inline by gRPC cannot deadlock on mu_. `writing_` and
// `finish_sent_` make sure only one thread starts an operation.
void StreamSink::PumpLocked(std::unique_lock<std::mutex>& lock) {
  if (reactor_ == nullptr || writing_ || finish_sent_) return;
  GenerateReactor* reactor = reactor_;
  if (!queue_.empty()) {
    writing_ = true;
    const RouterGenerateResponse* msg = &queue_.front();  // deque: stable until pop_front
    lock.unlock();
    reactor->StartWrite(msg);
  } else if (finished_) {
    finish_sent_ = true;
    const grpc::Status status = rpc::ToGrpcStatus(final_status_);
    lock.unlock();
    reactor->Finish(status);
  }
}

void StreamSink::WriteDone(bool ok) {
  std::unique_lock<std::mutex> lock(mu_);
  writing_ = false;
  if (!queue_.empty()) queue_.pop_front();
  if (!ok) {
    // The client is gone: stop generating; the call ends through OnDone.
    cancelled_ = true;
    queue_.clear();
    if (!finish_sent_ && reactor_ != nullptr) {
      finish_sent_ = true;
      GenerateReactor* reactor = reactor_;
      lock.unlock();
      reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed: client gone"));
    }
    return;
  }
  PumpLocked(lock);
}

class ErrorReactor : public grpc::ServerWriteReactor<RouterGenerateResponse> {
 public:
  explicit ErrorReactor(const absl::Status& s) { Finish(rpc::ToGrpcStatus(s)); }
  void OnDone() override { delete this; }
};

}  // namespace

absl::StatusOr<GenerationRequest> ToGenerationRequest(const RouterGenerateRequest& request) {
  GenerationRequest r;
  r.request_id = request.request_id();
  r.prompt.assign(request.prompt_ids().begin(), request.prompt_ids().end());
  if (request.has_max_tokens()) {
    if (request.max_tokens() < 1) {
      return absl::InvalidArgumentError(absl::StrCat("max_tokens: must be >= 1, got ", request.max_tokens()));
    }
    r.max_tokens = request.max_tokens();
  }
  r.stop_token_ids.assign(request.stop_token_ids().begin(), request.stop_token_ids().end());
  const moe::v1::SamplingParams& p = request.sampling();
  if (p.has_temperature()) r.sampling.temperature = p.temperature();
  if (p.has_top_k()) r.sampling.top_k = p.top_k();
  if (p.has_top_p()) r.sampling.top_p = p.top_p();
  if (p.has_seed()) r.sampling.seed = p.seed();
  if (p.has_logprobs()) r.sampling.top_logprobs = p.logprobs();
  if (p.has_ignore_eos()) r.sampling.ignore_eos = p.ignore_eos();
  // Parameters this router does not apply yet are refused rather than ignored.
  auto unsupported = [](const char* field) {
    return absl::UnimplementedError(absl::StrCat(field, ": not supported by this router"));
  };
  if (p.has_min_p()) return unsupported("min_p");
  if (p.has_typical_p()) return unsupported("typical_p");
  if (p.has_repetition_penalty()) return unsupported("repetition_penalty");
  if (p.has_presence_penalty()) return unsupported("presence_penalty");
  if (p.has_frequency_penalty()) return unsupported("frequency_penalty");
  if (!p.logit_bias().empty()) return unsupported("logit_bias");
  if (p.has_min_tokens()) return unsupported("min_tokens");
  return r;
}

grpc::ServerWriteReactor<RouterGenerateResponse>* RouterService::Generate(
    grpc::CallbackServerContext* /*context*/, const RouterGenerateRequest* request) {
  absl::StatusOr<GenerationRequest> r = ToGenerationRequest(*request);
  if (!r.ok()) return new ErrorReactor(r.status());
  if (r->request_id.empty()) r->request_id = absl::StrCat("router-", next_id_.fetch_add(1));
  auto sink = std::make_shared<StreamSink>();
  auto* reactor = new GenerateReactor(sink);
  sink->Attach(reactor);
  VLOG(1) << "request " << r->request_id << ": " << r->prompt.size() << " prompt tokens";
  const absl::Status s = engine_->Submit(std::move(*r), sink);
  if (!s.ok()) {
    sink->OnFinish(s, FinishReason::kStop, 0, 0);
  }
  return reactor;
}

grpc::ServerUnaryReactor* RouterService::Abort(grpc::CallbackServerContext* context,
                                               const moe::internal::v1::AbortRequest* request,
                                               moe::internal::v1::AbortResponse* response) {
  response->set_found(engine_->Abort(request->request_id()));
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* RouterService::GetLoad(grpc::CallbackServerContext* context,
                                                 const moe::internal::v1::GetLoadRequest* /*request*/,
                                                 moe::internal::v1::LoadReport* response) {
  const EngineLoad load = engine_->Load();
  response->set_running_requests(static_cast<uint32_t>(load.running));
  response->set_waiting_requests(static_cast<uint32_t>(load.waiting));
  response->set_queued_tokens(static_cast<uint64_t>(load.waiting_tokens));
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* RouterService::GetInfo(grpc::CallbackServerContext* context,
                                                 const moe::internal::v1::GetRouterInfoRequest* /*request*/,
                                                 moe::internal::v1::RouterInfo* response) {
  *response->mutable_model() = info_;
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace moe
