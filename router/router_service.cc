#include "router/router_service.h"

#include <chrono>
#include <deque>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "proto/rpc_util.h"
#include "proto/sampling_convert.h"

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

// The state of one Generate stream, shared by the engine (through one
// SampleSink per sample) and the reactor; outlives whichever ends first.
class StreamSink {
 public:
  StreamSink(int samples, uint64_t handle) : handle_(handle), remaining_(samples) {}

  void Token(uint32_t index, const GeneratedToken& t) {
    RouterGenerateResponse msg;
    msg.set_index(index);
    auto* tok = msg.add_tokens();
    tok->set_id(static_cast<uint32_t>(t.id));
    tok->set_logprob(t.logprob);
    for (const auto& [id, lp] : t.top_logprobs) {
      auto* alt = tok->add_top_logprobs();
      alt->set_id(static_cast<uint32_t>(id));
      alt->set_logprob(lp);
    }
    Enqueue(std::move(msg), /*sample_done=*/false, absl::OkStatus());
  }
  void PromptLogprobs(uint32_t index, const std::vector<GeneratedToken>& prompt) {
    RouterGenerateResponse msg;
    msg.set_index(index);
    for (const GeneratedToken& t : prompt) {
      auto* p = msg.add_prompt_logprobs();
      p->set_id(static_cast<uint32_t>(t.id));
      p->set_logprob(t.logprob);
      for (const auto& [id, lp] : t.top_logprobs) {
        auto* alt = p->add_top_logprobs();
        alt->set_id(static_cast<uint32_t>(id));
        alt->set_logprob(lp);
      }
    }
    Enqueue(std::move(msg), /*sample_done=*/false, absl::OkStatus());
  }
  void Finish(uint32_t index, const absl::Status& status, FinishReason reason, int prompt_tokens,
              int completion_tokens) {
    RouterGenerateResponse msg;
    msg.set_index(index);
    msg.set_finish_reason(ToProto(reason));
    msg.set_prompt_tokens(static_cast<uint32_t>(prompt_tokens));
    msg.set_completion_tokens(static_cast<uint32_t>(completion_tokens));
    Enqueue(std::move(msg), /*sample_done=*/true, status);
  }
  bool Cancelled() const { return cancelled_.load(); }

  void Attach(GenerateReactor* r) {
    absl::MutexLock lock(&mu_);
    reactor_ = r;
  }
  void Detach() {
    absl::MutexLock lock(&mu_);
    reactor_ = nullptr;
    cancelled_ = true;
  }
  void Cancel() { cancelled_ = true; }
  // Called by the reactor when a write completed; starts the next one.
  void WriteDone(bool ok);

 private:
  void Enqueue(RouterGenerateResponse msg, bool sample_done, const absl::Status& status);
  // With mu_ held: starts the next write (or the Finish) after releasing it.
  void Pump() ABSL_UNLOCK_FUNCTION(mu_);

  const uint64_t handle_;  // the engine's id of the request
  absl::Mutex mu_;
  GenerateReactor* reactor_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::deque<RouterGenerateResponse> queue_ ABSL_GUARDED_BY(mu_);  // front is in flight when writing_
  int remaining_ ABSL_GUARDED_BY(mu_);             // samples not finished yet
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;     // every sample finished, or one failed
  bool finish_sent_ ABSL_GUARDED_BY(mu_) = false;  // reactor Finish called
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> cancelled_{false};
};

// What the engine sees of one sample; also times it for the metrics.
class SampleSink : public GenerationSink {
 public:
  SampleSink(std::shared_ptr<StreamSink> stream, uint32_t index, RouterMetrics* metrics)
      : stream_(std::move(stream)), index_(index), metrics_(metrics), start_(Clock::now()) {}
  void OnAdmitted(double queue_seconds) override {
    if (metrics_ != nullptr) metrics_->ObserveQueueTime(queue_seconds);
  }
  void OnPromptLogprobs(const std::vector<GeneratedToken>& prompt) override { stream_->PromptLogprobs(index_, prompt); }
  void OnToken(const GeneratedToken& t) override {
    const auto now = Clock::now();
    if (metrics_ != nullptr) {
      if (tokens_ == 0) {
        metrics_->ObserveFirstToken(Seconds(start_, now));
      } else {
        metrics_->ObserveInterToken(Seconds(last_, now));
      }
    }
    ++tokens_;
    last_ = now;
    stream_->Token(index_, t);
  }
  void OnFinish(const absl::Status& status, FinishReason reason, int prompt_tokens, int completion_tokens) override {
    if (metrics_ != nullptr) {
      const char* why = !status.ok()                         ? "error"
                        : reason == FinishReason::kStop      ? "stop"
                        : reason == FinishReason::kLength    ? "length"
                                                             : "cancelled";
      metrics_->ObserveFinish(why, Seconds(start_, Clock::now()), prompt_tokens, completion_tokens);
    }
    stream_->Finish(index_, status, reason, prompt_tokens, completion_tokens);
  }
  bool Cancelled() const override { return stream_->Cancelled(); }

 private:
  using Clock = std::chrono::steady_clock;
  static double Seconds(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  }
  std::shared_ptr<StreamSink> stream_;
  const uint32_t index_;
  RouterMetrics* metrics_;
  const Clock::time_point start_;
  Clock::time_point last_;
  int tokens_ = 0;
};

class GenerateReactor : public grpc::ServerWriteReactor<RouterGenerateResponse> {
 public:
  GenerateReactor(std::shared_ptr<StreamSink> sink, grpc::CallbackServerContext* context)
      : sink_(std::move(sink)), context_(context) {}
  // Ends the call with `status`; an error's origin (rpc::ErrorOrigin) goes to
  // the client as trailing metadata.
  void FinishWith(const absl::Status& status) {
    const std::string origin = rpc::ErrorOrigin(status);
    if (!origin.empty()) context_->AddTrailingMetadata(rpc::kErrorOriginKey, origin);
    Finish(rpc::ToGrpcStatus(status));
  }
  void OnWriteDone(bool ok) override { sink_->WriteDone(ok); }
  void OnCancel() override { sink_->Cancel(); }
  void OnDone() override {
    sink_->Detach();
    delete this;
  }

 private:
  std::shared_ptr<StreamSink> sink_;
  grpc::CallbackServerContext* context_;
};

void StreamSink::Enqueue(RouterGenerateResponse msg, bool sample_done, const absl::Status& status) {
  msg.set_request_handle(handle_);
  mu_.Lock();
  if (finished_) {  // a failed sample already ended the stream
    mu_.Unlock();
    return;
  }
  if (sample_done && !status.ok()) {
    // A failed sample ends the whole stream with its status; the others are
    // cancelled at the engine's next step.
    finished_ = true;
    final_status_ = status;
    cancelled_ = true;
  } else {
    queue_.push_back(std::move(msg));
    if (sample_done && --remaining_ == 0) finished_ = true;
  }
  Pump();
}

// Decides the next operation under the lock and starts it after unlocking, so
// that a reaction run inline by gRPC cannot deadlock on mu_. `writing_` and
// `finish_sent_` make sure only one thread starts an operation.
void StreamSink::Pump() {
  GenerateReactor* reactor = reactor_;
  if (reactor == nullptr || writing_ || finish_sent_) {
    mu_.Unlock();
  } else if (!queue_.empty()) {
    writing_ = true;
    const RouterGenerateResponse* msg = &queue_.front();  // deque: stable until pop_front
    mu_.Unlock();
    reactor->StartWrite(msg);
  } else if (finished_) {
    finish_sent_ = true;
    const absl::Status status = final_status_;
    mu_.Unlock();
    reactor->FinishWith(status);
  } else {
    mu_.Unlock();
  }
}

void StreamSink::WriteDone(bool ok) {
  mu_.Lock();
  writing_ = false;
  if (!queue_.empty()) queue_.pop_front();
  if (!ok) {
    // The client is gone: stop generating; the call ends through OnDone.
    cancelled_ = true;
    queue_.clear();
    if (!finish_sent_ && reactor_ != nullptr) {
      finish_sent_ = true;
      GenerateReactor* reactor = reactor_;
      mu_.Unlock();
      reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed: client gone"));
      return;
    }
    mu_.Unlock();
    return;
  }
  Pump();
}

class ErrorReactor : public grpc::ServerWriteReactor<RouterGenerateResponse> {
 public:
  explicit ErrorReactor(const absl::Status& s) { Finish(rpc::ToGrpcStatus(s)); }
  void OnDone() override { delete this; }
};

}  // namespace

absl::StatusOr<GenerationRequest> ToGenerationRequest(const RouterGenerateRequest& request) {
  GenerationRequest r;
  r.client_id = request.request_id();
  r.prompt.assign(request.prompt_ids().begin(), request.prompt_ids().end());
  if (request.has_max_tokens()) {
    if (request.max_tokens() < 1) {
      return absl::InvalidArgumentError(absl::StrCat("max_tokens: must be >= 1, got ", request.max_tokens()));
    }
    r.max_tokens = request.max_tokens();
  }
  r.stop_token_ids.assign(request.stop_token_ids().begin(), request.stop_token_ids().end());
  r.sampling = FromProto(request.sampling());
  if (request.has_constraint()) {
    const moe::v1::Constraint& c = request.constraint();
    switch (c.kind_case()) {
      case moe::v1::Constraint::kRegex:
        r.constraint.kind = grammar::ConstraintSpec::Kind::kRegex;
        r.constraint.regex = c.regex();
        break;
      case moe::v1::Constraint::kChoice:
        r.constraint.kind = grammar::ConstraintSpec::Kind::kChoice;
        r.constraint.choices.assign(c.choice().options().begin(), c.choice().options().end());
        break;
      case moe::v1::Constraint::kJsonSchema:
        r.constraint.kind = grammar::ConstraintSpec::Kind::kJsonSchema;
        r.constraint.json_schema = c.json_schema();
        break;
      case moe::v1::Constraint::kJsonObject:
        if (!c.json_object()) return absl::InvalidArgumentError("constraint.json_object: must be true when given");
        r.constraint.kind = grammar::ConstraintSpec::Kind::kJsonObject;
        break;
      case moe::v1::Constraint::kGrammar:
        r.constraint.kind = grammar::ConstraintSpec::Kind::kGrammar;
        r.constraint.grammar = c.grammar();
        break;
      case moe::v1::Constraint::KIND_NOT_SET:
        break;
    }
    r.constraint.max_whitespace = c.max_whitespace();
  }
  if (request.has_prompt_logprobs()) {
    if (request.prompt_logprobs() < 0 || request.prompt_logprobs() > 20) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt_logprobs: must be in [0, 20], got ", request.prompt_logprobs()));
    }
    r.prompt_logprobs = request.prompt_logprobs();
  }
  return r;
}

grpc::ServerWriteReactor<RouterGenerateResponse>* RouterService::Generate(
    grpc::CallbackServerContext* context, const RouterGenerateRequest* request) {
  absl::StatusOr<GenerationRequest> r = ToGenerationRequest(*request);
  if (!r.ok()) return new ErrorReactor(r.status());
  // The call's deadline also bounds the engine's work (gRPC cancels the call
  // then too; this frees a waiting request without polling the sink).
  const absl::Time deadline = absl::FromChrono(context->deadline());
  if (deadline < absl::Now() + absl::Hours(24 * 365)) r->deadline = deadline;
  const uint32_t n = std::max<uint32_t>(1, request->n());
  if (n > kMaxSamplesPerRequest) {
    return new ErrorReactor(absl::InvalidArgumentError(
        absl::StrCat("n: must be in [1, ", kMaxSamplesPerRequest, "], got ", n)));
  }
  // One engine id for the request; its samples differ by sample_index.
  r->id = engine_->NewRequestId();
  auto stream = std::make_shared<StreamSink>(static_cast<int>(n), r->id);
  auto* reactor = new GenerateReactor(stream, context);
  stream->Attach(reactor);
  VLOG(1) << "request " << r->client_id << "#" << r->id << ": " << r->prompt.size() << " prompt tokens, n=" << n;
  for (uint32_t i = 0; i < n; ++i) {
    GenerationRequest sample = *r;
    sample.sampling.sample_index = i;
    if (i > 0) sample.prompt_logprobs = -1;  // the prompt is scored once, with sample 0
    const absl::Status s = engine_->Submit(std::move(sample), std::make_shared<SampleSink>(stream, i, metrics_)).status();
    if (!s.ok()) {
      stream->Finish(i, s, FinishReason::kStop, 0, 0);
      break;
    }
  }
  return reactor;
}

grpc::ServerUnaryReactor* RouterService::Abort(grpc::CallbackServerContext* context,
                                               const moe::internal::v1::AbortRequest* request,
                                               moe::internal::v1::AbortResponse* response) {
  const bool found = engine_->Abort(request->request_handle(), request->has_sample_index()
                                                                  ? std::optional<uint64_t>(request->sample_index())
                                                                  : std::nullopt);
  response->set_found(found);
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* RouterService::GetLoad(grpc::CallbackServerContext* context,
                                                 const moe::internal::v1::GetLoadRequest* request,
                                                 moe::internal::v1::LoadReport* response) {
  const EngineStats s = engine_->Stats();
  response->set_running_requests(static_cast<uint32_t>(s.running + s.preempted));
  response->set_waiting_requests(static_cast<uint32_t>(s.waiting));
  response->set_queued_tokens(static_cast<uint64_t>(s.waiting_tokens));
  response->set_kv_block_size_tokens(static_cast<uint32_t>(s.kv_block_size_tokens));
  response->set_kv_blocks_total(static_cast<uint32_t>(s.kv_blocks_total));
  response->set_kv_blocks_used(static_cast<uint32_t>(s.kv_blocks_used));
  response->set_kv_blocks_free(static_cast<uint32_t>(s.kv_blocks_free));
  response->set_kv_blocks_cached(static_cast<uint32_t>(s.kv_blocks_cached));
  response->set_preempted_requests(static_cast<uint32_t>(s.preempted));
  response->set_steps(s.steps);
  response->set_preemptions(s.preemptions);
  response->set_prefix_cache_queried_tokens(s.prefix_cache_queried_tokens);
  response->set_prefix_cache_hit_tokens(s.prefix_cache_hit_tokens);
  response->set_prefill_tokens_computed(s.prefill_tokens_computed);
  response->set_decode_tokens_computed(s.decode_tokens_computed);
  response->set_generated_tokens(s.generated_tokens);
  response->set_admitted_requests(s.admitted_requests);
  response->set_finished_requests(s.finished_requests);
  response->set_rejected_requests(s.rejected_requests);
  response->set_queue_seconds_total(s.queue_seconds_total);
  response->set_queue_seconds_max(s.queue_seconds_max);
  response->set_num_layers(static_cast<uint32_t>(s.num_layers));
  response->set_num_experts(static_cast<uint32_t>(s.num_experts));
  if (health_) {
    health_(response);
  } else {
    response->set_serving(true);
  }
  if (request->include_expert_tokens()) {
    response->mutable_expert_tokens()->Assign(s.expert_tokens.begin(), s.expert_tokens.end());
  }
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
