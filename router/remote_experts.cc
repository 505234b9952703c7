#include "router/remote_experts.h"

#include <chrono>
#include <cstring>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "glog/logging.h"
#include "moe/internal/v1/expert_worker.grpc.pb.h"
#include "proto/rpc_util.h"

namespace moe {
namespace {

namespace pb = ::moe::internal::v1;
using Clock = std::chrono::steady_clock;

// After a failure, replicas of a worker's experts are preferred for this long.
constexpr auto kFailoverHoldOff = std::chrono::seconds(1);

std::string CodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

// Waits until `*pending` drops to 0; callbacks decrement it under `mu`.
void AwaitZero(absl::Mutex* mu, int* pending) {
  absl::MutexLock lock(mu);
  mu->Await(absl::Condition(+[](int* p) { return *p == 0; }, pending));
}

}  // namespace

// One layer's exchange with one worker.
struct RemoteExpertBackend::Call {
  int worker = 0;
  pb::ExpertRequest request;
  pb::ExpertResponse response;
  grpc::Status status;  // OK once a reply arrived
  bool timed_out = false;
  double latency_s = 0;
  // Unary transport: the call's context, its reader, and when it was sent.
  std::unique_ptr<grpc::ClientContext> context;
  std::unique_ptr<grpc::ClientAsyncResponseReader<pb::ExpertResponse>> reader;
  Clock::time_point start;
};

// A persistent ExpertStream to one worker. One exchange (a write and a read)
// at a time; its completion flags are guarded by the backend's mutex, and the
// exchange counts as finished once both the write and the read are done (the
// reply can arrive before OnWriteDone). The hold taken at construction keeps
// gRPC from finishing the reactor while the engine thread may still start
// operations; Close releases it and waits for OnDone.
class RemoteExpertBackend::Stream final : public grpc::ClientBidiReactor<pb::ExpertRequest, pb::ExpertResponse> {
 public:
  Stream(pb::ExpertWorker::Stub* stub, bool wait_for_ready, absl::Mutex* mu, int* pending)
      : mu_(mu), pending_(pending) {
    context_.set_wait_for_ready(wait_for_ready);
    stub->async()->ExpertStream(&context_, this);
    AddHold();
    StartCall();
  }

  // Engine thread; the previous exchange must be finished. The caller counts
  // this exchange in *pending beforehand.
  void Begin(const pb::ExpertRequest* request, pb::ExpertResponse* response) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(mu_);
      read_done_ = write_done_ = false;
      read_ok_ = write_ok_ = false;
      ++exchanges_;
    }
    StartRead(response);
    StartWrite(request);
  }
  bool finished() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return read_done_ && write_done_; }
  bool succeeded() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return finished() && read_ok_ && write_ok_; }
  Clock::time_point finished_at() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return finished_at_; }
  int exchanges() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return exchanges_; }
  // Any thread: the outstanding read and write complete (not ok) soon after.
  void Cancel() { context_.TryCancel(); }

  // Engine thread, no exchange outstanding: ends the stream and returns its
  // final status. The object may be destroyed afterwards.
  grpc::Status Close() ABSL_LOCKS_EXCLUDED(mu_) {
    RemoveHold();
    bool done;
    {
      absl::MutexLock lock(mu_);
      done = mu_->AwaitWithTimeout(absl::Condition(&done_), absl::Seconds(1));
    }
    // A healthy stream being closed, or a peer that does not answer. Outside
    // the lock: cancelling may run callbacks inline.
    if (!done) Cancel();
    absl::MutexLock lock(mu_);
    mu_->Await(absl::Condition(&done_));
    return final_status_;
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(mu_);
    write_ok_ = ok;
    write_done_ = true;
    MaybeFinish();
  }
  void OnReadDone(bool ok) override {
    absl::MutexLock lock(mu_);
    read_ok_ = ok;
    read_done_ = true;
    MaybeFinish();
  }
  void OnDone(const grpc::Status& status) override {
    absl::MutexLock lock(mu_);
    final_status_ = status;
    done_ = true;
  }

 private:
  void MaybeFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!finished()) return;
    finished_at_ = Clock::now();
    --*pending_;
  }

  grpc::ClientContext context_;
  absl::Mutex* const mu_;
  int* const pending_ ABSL_PT_GUARDED_BY(mu_);
  bool read_done_ ABSL_GUARDED_BY(mu_) = false;
  bool write_done_ ABSL_GUARDED_BY(mu_) = false;
  bool read_ok_ ABSL_GUARDED_BY(mu_) = false;
  bool write_ok_ ABSL_GUARDED_BY(mu_) = false;
  int exchanges_ ABSL_GUARDED_BY(mu_) = 0;
  Clock::time_point finished_at_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
};

struct RemoteExpertBackend::Worker {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::ExpertWorker::Stub> stub;
  // Engine thread only.
  Clock::time_point failed_until{};
  std::unique_ptr<Stream> stream;  // open stream (stream transport), reopened after a failure
  // Stats() may read these from any thread.
  mutable absl::Mutex mu;
  WorkerStats stats ABSL_GUARDED_BY(mu);
  Histogram latency{LatencyBuckets()};  // thread-safe itself

  // Wait for a (re)connecting worker within the deadline, but fail at once
  // while its channel is known to be failing.
  bool WaitForReady() const { return channel->GetState(/*try_to_connect=*/false) != GRPC_CHANNEL_TRANSIENT_FAILURE; }
};

RemoteExpertBackend::RemoteExpertBackend(const ModelConfig& config, const RemoteExpertsOptions& options)
    : config_(config), options_(options) {}

RemoteExpertBackend::~RemoteExpertBackend() {
  for (auto& w : workers_) {
    if (w->stream == nullptr) continue;
    w->stream->Cancel();
    w->stream->Close();
  }
  if (cq_ != nullptr) {
    cq_->Shutdown();  // no call is in flight between Compute calls
    void* tag;
    bool ok;
    while (cq_->Next(&tag, &ok)) {
    }
  }
}

absl::StatusOr<std::unique_ptr<RemoteExpertBackend>> RemoteExpertBackend::Connect(
    const ModelConfig& config, const RemoteExpertsOptions& options) {
  if (options.worker_addresses.empty()) return absl::InvalidArgumentError("no expert worker addresses given");
  if (options.dispatch_deadline_ms <= 0 || options.connect_deadline_ms <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("dispatch_deadline_ms (", options.dispatch_deadline_ms,
                                                   ") and connect_deadline_ms (", options.connect_deadline_ms,
                                                   ") must be positive"));
  }
  auto backend = std::unique_ptr<RemoteExpertBackend>(new RemoteExpertBackend(config, options));
  const int n = static_cast<int>(options.worker_addresses.size());
  for (const std::string& address : options.worker_addresses) {
    auto w = std::make_unique<Worker>();
    w->address = address;
    w->channel = rpc::MakeChannel(address, &options.tls);
    w->stub = pb::ExpertWorker::NewStub(w->channel);
    w->stats.address = address;
    backend->workers_.push_back(std::move(w));
  }

  // GetInfo from every worker at once; wait_for_ready lets workers that are
  // still starting (or loading weights) come up within the deadline.
  struct InfoCall {
    grpc::ClientContext context;
    pb::GetWorkerInfoRequest request;
    pb::WorkerInfo info;
    grpc::Status status;
  };
  // Shared with the callbacks, so that nothing they touch can go away under them.
  struct InfoCalls {
    explicit InfoCalls(int n) : calls(n), pending(n) {}
    std::vector<InfoCall> calls;
    absl::Mutex mu;
    int pending;
  };
  auto state = std::make_shared<InfoCalls>(n);
  for (int i = 0; i < n; ++i) {
    InfoCall& call = state->calls[i];
    call.context.set_deadline(rpc::DeadlineIn(options.connect_deadline_ms));
    call.context.set_wait_for_ready(true);
    backend->workers_[i]->stub->async()->GetInfo(&call.context, &call.request, &call.info,
                                                 [state, i](grpc::Status s) {
                                                   absl::MutexLock lock(&state->mu);
                                                   state->calls[i].status = std::move(s);
                                                   --state->pending;
                                                 });
  }
  AwaitZero(&state->mu, &state->pending);
  const std::vector<InfoCall>& infos = state->calls;

  backend->owners_.assign(config.num_hidden_layers * config.num_experts, {});
  for (int i = 0; i < n; ++i) {
    const std::string& address = options.worker_addresses[i];
    const InfoCall& call = infos[i];
    if (!call.status.ok()) {
      return absl::UnavailableError(absl::StrCat("expert worker ", address, " is unreachable (GetInfo within ",
                                                 options.connect_deadline_ms, " ms: ", CodeName(call.status.error_code()),
                                                 ": ", call.status.error_message(), ")"));
    }
    const pb::WorkerInfo& info = call.info;
    auto disagree = [&](absl::string_view what, int64_t theirs, int64_t ours) {
      return absl::FailedPreconditionError(absl::StrCat("expert worker ", address, " serves a different model: ", what,
                                                        " ", theirs, ", the router's model has ", ours));
    };
    if (info.hidden_size() != config.hidden_size) return disagree("hidden_size", info.hidden_size(), config.hidden_size);
    if (info.intermediate_size() != config.intermediate_size) {
      return disagree("intermediate_size", info.intermediate_size(), config.intermediate_size);
    }
    if (info.num_layers() != config.num_hidden_layers) {
      return disagree("num_layers", info.num_layers(), config.num_hidden_layers);
    }
    if (info.num_experts() != config.num_experts) return disagree("num_experts", info.num_experts(), config.num_experts);
    if (!info.model_type().empty() && info.model_type() != config.model_type) {
      return absl::FailedPreconditionError(absl::StrCat("expert worker ", address, " serves a different model: model_type '",
                                                        info.model_type(), "', the router's model is '",
                                                        config.model_type, "'"));
    }
    for (const pb::ExpertId& id : info.experts()) {
      if (id.layer() >= config.num_hidden_layers || id.expert() >= config.num_experts) {
        return absl::FailedPreconditionError(absl::StrCat("expert worker ", address, " claims expert ", id.expert(),
                                                          " of layer ", id.layer(), ", outside the model"));
      }
      std::vector<int>& owners = backend->owners_[id.layer() * config.num_experts + id.expert()];
      if (owners.empty() || owners.back() != i) owners.push_back(i);
    }
  }
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    for (int64_t e = 0; e < config.num_experts; ++e) {
      if (backend->owners_[l * config.num_experts + e].empty()) {
        return absl::FailedPreconditionError(absl::StrCat("no expert worker holds expert ", e, " of layer ", l,
                                                          " (workers: ", absl::StrJoin(options.worker_addresses, ", "),
                                                          ")"));
      }
    }
  }
  backend->choices_of_worker_.resize(n);
  LOG(INFO) << "remote experts: " << n << " workers cover " << config.num_hidden_layers << " layers x "
            << config.num_experts << " experts";
  return backend;
}

int RemoteExpertBackend::Pick(int layer, int expert) const {
  const std::vector<int>& owners = owners_[layer * config_.num_experts + expert];
  if (owners.size() > 1) {
    const Clock::time_point now = Clock::now();
    for (int w : owners)
      if (workers_[w]->failed_until <= now) return w;
  }
  return owners.front();
}

absl::Status RemoteExpertBackend::Compute(const ExpertBatch& b, float* outputs) {
  if (b.layer < 0 || b.layer >= config_.num_hidden_layers || b.hidden != config_.hidden_size || b.top_k < 1 ||
      b.num_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat("expert batch: layer ", b.layer, ", hidden ", b.hidden, ", top_k ",
                                                   b.top_k, ", ", b.num_tokens, " tokens do not fit the model"));
  }
  const int64_t choices = b.num_tokens * b.top_k, h = b.hidden;
  const size_t row_bytes = static_cast<size_t>(h) * sizeof(float);
  for (auto& list : choices_of_worker_) list.clear();
  for (int64_t c = 0; c < choices; ++c) {
    const int32_t e = b.experts[c];
    if (e < 0 || e >= config_.num_experts) {
      return absl::InvalidArgumentError(absl::StrCat("expert batch: expert ", e, " at choice ", c, " of layer ",
                                                     b.layer, " is outside the model"));
    }
    choices_of_worker_[Pick(b.layer, e)].push_back(c);
  }

  ++step_;
  std::vector<std::unique_ptr<Call>> calls;
  for (int w = 0; w < static_cast<int>(workers_.size()); ++w) {
    const std::vector<int64_t>& list = choices_of_worker_[w];
    if (list.empty()) continue;
    auto call = std::make_unique<Call>();
    call->worker = w;
    pb::ExpertRequest& r = call->request;
    r.set_layer(b.layer);
    r.set_step(step_);
    r.set_dtype(pb::ACTIVATION_DTYPE_F32);
    r.set_num_rows(list.size());
    r.set_hidden_size(h);
    std::string* rows = r.mutable_rows();
    rows->resize(list.size() * row_bytes);
    r.mutable_expert_ids()->Reserve(list.size());
    if (b.weights != nullptr) r.mutable_gate_weights()->Reserve(list.size());
    for (size_t i = 0; i < list.size(); ++i) {
      const int64_t c = list[i];
      std::memcpy(rows->data() + i * row_bytes, b.hidden_states + (c / b.top_k) * h, row_bytes);
      r.add_expert_ids(static_cast<uint32_t>(b.experts[c]));
      if (b.weights != nullptr) r.add_gate_weights(b.weights[c]);
    }
    calls.push_back(std::move(call));
  }
  std::vector<Call*> view;
  for (auto& c : calls) view.push_back(c.get());
  if (options_.transport == ExpertTransport::kUnary) {
    RunUnary(view);
  } else {
    RunStreams(view);
  }

  absl::Status result;
  for (const auto& call : calls) {
    Worker& w = *workers_[call->worker];
    {
      absl::MutexLock lock(&w.mu);
      ++w.stats.calls;
      w.stats.bytes_sent += call->request.ByteSizeLong();
      w.stats.bytes_received += call->response.ByteSizeLong();
      w.stats.total_latency_s += call->latency_s;
      w.stats.total_worker_queue_s += call->response.queue_us() * 1e-6;
      w.stats.total_worker_compute_s += call->response.compute_us() * 1e-6;
      w.stats.failures += call->status.ok() ? 0 : 1;
      w.stats.up = call->status.ok();
    }
    w.latency.Observe(call->latency_s);
    absl::Status s;
    const pb::ExpertResponse& resp = call->response;
    const uint32_t n = call->request.num_rows();
    if (!call->status.ok()) {
      w.failed_until = Clock::now() + kFailoverHoldOff;
      const std::string why = call->timed_out || call->status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
                                  ? absl::StrCat("no reply within ", options_.dispatch_deadline_ms, " ms")
                                  : absl::StrCat(CodeName(call->status.error_code()), ": ",
                                                 call->status.error_message());
      s = absl::UnavailableError(
          absl::StrCat("expert worker ", w.address, " failed at layer ", b.layer, " (step ", step_, "): ", why));
    } else if (resp.dtype() != pb::ACTIVATION_DTYPE_F32 || resp.num_rows() != n || resp.hidden_size() != h ||
               resp.outputs().size() != n * row_bytes) {
      s = absl::InternalError(absl::StrCat("expert worker ", w.address, " sent a malformed reply for layer ", b.layer,
                                           ": dtype ", resp.dtype(), ", ", resp.num_rows(), " rows of hidden size ",
                                           resp.hidden_size(), " in ", resp.outputs().size(), " bytes; want ", n,
                                           " rows of ", h, " f32"));
    } else {
      w.failed_until = Clock::time_point{};
      const std::vector<int64_t>& list = choices_of_worker_[call->worker];
      for (size_t i = 0; i < list.size(); ++i) {
        std::memcpy(outputs + list[i] * h, resp.outputs().data() + i * row_bytes, row_bytes);
      }
    }
    if (!s.ok()) {
      LOG(WARNING) << s;
      if (result.ok()) result = s;
    }
  }
  return result;
}

void RemoteExpertBackend::RunUnary(const std::vector<Call*>& calls) {
  if (cq_ == nullptr) cq_ = std::make_unique<grpc::CompletionQueue>();
  for (Call* c : calls) {
    Worker& w = *workers_[c->worker];
    c->context = std::make_unique<grpc::ClientContext>();
    c->context->set_deadline(rpc::DeadlineIn(options_.dispatch_deadline_ms));
    c->context->set_wait_for_ready(w.WaitForReady());
    c->start = Clock::now();
    c->reader = w.stub->PrepareAsyncRunExperts(c->context.get(), c->request, cq_.get());
    c->reader->StartCall();
    c->reader->Finish(&c->response, &c->status, c);
  }
  // Every Finish delivers exactly one event, by its deadline at the latest.
  for (size_t remaining = calls.size(); remaining > 0; --remaining) {
    void* tag = nullptr;
    bool ok = false;
    CHECK(cq_->Next(&tag, &ok)) << "completion queue shut down with exchanges in flight";
    Call* c = static_cast<Call*>(tag);
    c->latency_s = std::chrono::duration<double>(Clock::now() - c->start).count();
  }
}

void RemoteExpertBackend::ExchangeOnStreams(const std::vector<Call*>& calls, absl::Time deadline) {
  {
    absl::MutexLock lock(&mu_);
    pending_ = static_cast<int>(calls.size());
  }
  std::vector<Clock::time_point> start(calls.size());
  for (size_t i = 0; i < calls.size(); ++i) {
    Worker& w = *workers_[calls[i]->worker];
    if (w.stream == nullptr) w.stream = std::make_unique<Stream>(w.stub.get(), w.WaitForReady(), &mu_, &pending_);
    start[i] = Clock::now();
    w.stream->Begin(&calls[i]->request, &calls[i]->response);
  }
  const absl::Condition all_done(+[](int* p) { return *p == 0; }, &pending_);
  std::vector<Stream*> late;
  {
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithDeadline(all_done, deadline)) {
      for (Call* c : calls) {
        Stream* stream = workers_[c->worker]->stream.get();
        if (stream->finished()) continue;
        c->timed_out = true;
        late.push_back(stream);
      }
    }
  }
  for (Stream* stream : late) stream->Cancel();  // outside the lock: may call back inline
  absl::MutexLock lock(&mu_);
  mu_.Await(all_done);  // cancelled exchanges finish promptly
  for (size_t i = 0; i < calls.size(); ++i) {
    Stream& stream = *workers_[calls[i]->worker]->stream;
    calls[i]->latency_s = std::chrono::duration<double>(stream.finished_at() - start[i]).count();
  }
}

void RemoteExpertBackend::RunStreams(const std::vector<Call*>& calls) {
  const absl::Time deadline = absl::Now() + absl::Milliseconds(options_.dispatch_deadline_ms);
  std::vector<Call*> todo = calls;
  // A stream that sat idle may have died with its worker (a restart) without
  // anyone noticing; an exchange that fails on such a stream is tried once
  // more on a fresh one, within the same deadline.
  for (int attempt = 0; attempt < 2 && !todo.empty(); ++attempt) {
    ExchangeOnStreams(todo, deadline);
    std::vector<Call*> retry;
    for (Call* c : todo) {
      Worker& w = *workers_[c->worker];
      bool ok, reused;
      {
        absl::MutexLock lock(&mu_);
        ok = w.stream->succeeded();
        reused = w.stream->exchanges() > 1;
      }
      if (ok) {
        c->status = grpc::Status::OK;
        continue;
      }
      grpc::Status final_status = w.stream->Close();
      w.stream.reset();
      if (attempt == 0 && reused && !c->timed_out) {
        LOG(INFO) << "expert stream to " << w.address << " ended (" << CodeName(final_status.error_code()) << ": "
                  << final_status.error_message() << "); retrying layer " << c->request.layer() << " on a new stream";
        c->response.Clear();
        retry.push_back(c);
        continue;
      }
      c->status = final_status.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "the stream ended") : final_status;
    }
    todo = std::move(retry);
  }
}

std::vector<RemoteExpertBackend::WorkerStats> RemoteExpertBackend::Stats() const {
  std::vector<WorkerStats> out;
  for (const auto& w : workers_) {
    absl::MutexLock lock(&w->mu);
    out.push_back(w->stats);
    out.back().latency = w->latency.Get();
  }
  return out;
}

}  // namespace moe
