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
void AwaitZero(absl::Mutex* mu, const int* pending) {
  absl::MutexLock lock(mu);
  mu->Await(absl::Condition(+[](const int* p) { return *p == 0; }, pending));
}

}  // namespace

struct RemoteExpertBackend::Worker {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::ExpertWorker::Stub> stub;
  Clock::time_point failed_until{};  // engine thread only
  mutable absl::Mutex mu;
  WorkerStats stats ABSL_GUARDED_BY(mu);
};

// One RunExperts in flight; lives until its callback has run.
struct RemoteExpertBackend::Call {
  int worker = 0;
  grpc::ClientContext context;
  pb::ExpertRequest request;
  pb::ExpertResponse response;
  grpc::Status status;
  Clock::time_point start;
  double latency_s = 0;
};

RemoteExpertBackend::RemoteExpertBackend(const ModelConfig& config, const RemoteExpertsOptions& options)
    : config_(config), options_(options) {}

RemoteExpertBackend::~RemoteExpertBackend() = default;

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
    w->channel = rpc::MakeChannel(address);
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
    call->context.set_deadline(rpc::DeadlineIn(options_.dispatch_deadline_ms));
    // Wait for a (re)connecting worker within the deadline, but fail at once
    // while its channel is known to be failing.
    call->context.set_wait_for_ready(workers_[w]->channel->GetState(/*try_to_connect=*/false) !=
                                     GRPC_CHANNEL_TRANSIENT_FAILURE);
    calls.push_back(std::move(call));
  }

  int pending = static_cast<int>(calls.size());
  for (auto& call : calls) {
    Call* c = call.get();
    c->start = Clock::now();
    workers_[c->worker]->stub->async()->RunExperts(&c->context, &c->request, &c->response,
                                                   [this, c, &pending](grpc::Status s) {
                                                     c->latency_s = std::chrono::duration<double>(Clock::now() - c->start).count();
                                                     absl::MutexLock lock(&mu_);
                                                     c->status = std::move(s);
                                                     --pending;
                                                   });
  }
  AwaitZero(&mu_, &pending);

  absl::Status result;
  for (const auto& call : calls) {
    Worker& w = *workers_[call->worker];
    {
      absl::MutexLock lock(&w.mu);
      ++w.stats.calls;
      w.stats.bytes_sent += call->request.ByteSizeLong();
      w.stats.bytes_received += call->response.ByteSizeLong();
      w.stats.total_latency_s += call->latency_s;
    }
    absl::Status s;
    const pb::ExpertResponse& resp = call->response;
    const uint32_t n = call->request.num_rows();
    if (!call->status.ok()) {
      w.failed_until = Clock::now() + kFailoverHoldOff;
      const std::string why = call->status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
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

std::vector<RemoteExpertBackend::WorkerStats> RemoteExpertBackend::Stats() const {
  std::vector<WorkerStats> out;
  for (const auto& w : workers_) {
    absl::MutexLock lock(&w->mu);
    out.push_back(w->stats);
  }
  return out;
}

}  // namespace moe
