#include "router/remote_experts.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "glog/logging.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "moe/internal/v1/expert_worker.grpc.pb.h"
#include "proto/rpc_util.h"

namespace moe {
namespace {

namespace pb = ::moe::internal::v1;
using Clock = std::chrono::steady_clock;

// Workers tried per step are a bit mask.
constexpr int kMaxWorkers = 64;

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
  std::vector<int> experts;      // the experts whose rows this exchange carries
  std::vector<int64_t> choices;  // their choice indices, in request row order
  // Wait for a (re)connecting worker within the deadline: only when some
  // expert of the call has no other replica to go to.
  bool wait_for_ready = false;
  pb::ExpertRequest request;
  pb::ExpertResponse response;
  grpc::Status status;  // OK once a reply arrived
  bool timed_out = false;
  double latency_s = 0;
  // The call's context, its reader, and when it was sent.
  std::unique_ptr<grpc::ClientContext> context;
  std::unique_ptr<grpc::ClientAsyncResponseReader<pb::ExpertResponse>> reader;
  Clock::time_point start;
};

struct RemoteExpertBackend::Worker {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::ExpertWorker::Stub> stub;
  // Engine thread only.
  // The monitor's channel: reconnects within one probe interval.
  std::unique_ptr<grpc::health::v1::Health::Stub> probe;
  // Any thread. stats.up is the worker's health.
  mutable absl::Mutex mu;
  WorkerStats stats ABSL_GUARDED_BY(mu);
  // Set by the monitor when the worker recovered: the engine thread swaps it
  // in before its next exchange.
  std::shared_ptr<grpc::Channel> fresh_channel ABSL_GUARDED_BY(mu);
  bool healthy() const {
    absl::MutexLock lock(&mu);
    return stats.up;
  }
  Histogram latency{LatencyBuckets()};  // thread-safe itself

  // Wait for a (re)connecting worker within the deadline, but fail at once
  // while its channel is known to be failing.
  bool WaitForReady() const { return channel->GetState(/*try_to_connect=*/false) != GRPC_CHANNEL_TRANSIENT_FAILURE; }
};

RemoteExpertBackend::RemoteExpertBackend(const ModelConfig& config, const RemoteExpertsOptions& options)
    : config_(config), options_(options) {}

RemoteExpertBackend::~RemoteExpertBackend() {
  {
    absl::MutexLock lock(&monitor_mu_);
    stop_monitor_ = true;
  }
  if (monitor_.joinable()) monitor_.join();
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
  if (options.worker_addresses.size() > kMaxWorkers) {
    return absl::InvalidArgumentError(absl::StrCat(options.worker_addresses.size(), " expert workers given; at most ",
                                                   kMaxWorkers, " are supported"));
  }
  if (options.health_probe_interval_ms <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("health_probe_interval_ms (", options.health_probe_interval_ms, ") must be positive"));
  }
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
    w->channel = rpc::MakeChannel(address, &options.tls, /*max_reconnect_backoff_ms=*/0, /*own_connection=*/true);
    w->stub = pb::ExpertWorker::NewStub(w->channel);
    w->probe = grpc::health::v1::Health::NewStub(
        rpc::MakeChannel(address, &options.tls, static_cast<int>(options.health_probe_interval_ms),
                         /*own_connection=*/true));
    {
      absl::MutexLock lock(&w->mu);
      w->stats.address = address;
    }
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
      if (!config.IsMoeLayer(id.layer())) {
        return absl::FailedPreconditionError(absl::StrCat("expert worker ", address, " claims expert ", id.expert(),
                                                          " of layer ", id.layer(), ", a dense MLP layer of the model"));
      }
      std::vector<int>& owners = backend->owners_[id.layer() * config.num_experts + id.expert()];
      if (owners.empty() || owners.back() != i) owners.push_back(i);
    }
  }
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    if (!config.IsMoeLayer(l)) continue;
    for (int64_t e = 0; e < config.num_experts; ++e) {
      if (backend->owners_[l * config.num_experts + e].empty()) {
        return absl::FailedPreconditionError(absl::StrCat("no expert worker holds expert ", e, " of layer ", l,
                                                          " (workers: ", absl::StrJoin(options.worker_addresses, ", "),
                                                          ")"));
      }
    }
  }
  backend->choices_of_expert_.resize(config.num_experts);
  backend->assigned_.assign(config.num_experts, -1);
  backend->tried_.assign(config.num_experts, 0);
  backend->rows_of_worker_.assign(n, 0);
  int replicated = 0;
  for (const auto& owners : backend->owners_) replicated += owners.size() > 1 ? 1 : 0;
  LOG(INFO) << "remote experts: " << n << " workers cover " << config.num_hidden_layers << " layers x "
            << config.num_experts << " experts (" << replicated << " held by more than one)";
  backend->monitor_ = std::thread([b = backend.get()] { b->MonitorLoop(); });
  return backend;
}

void RemoteExpertBackend::SetHealthy(int w, bool healthy, const std::string& why) {
  Worker& worker = *workers_[w];
  absl::MutexLock lock(&worker.mu);
  if (worker.stats.up != healthy) {
    if (healthy) {
      LOG(INFO) << "expert worker " << worker.address << " is serving again";
    } else {
      LOG(WARNING) << "expert worker " << worker.address << " is unhealthy: " << why;
    }
  }
  worker.stats.up = healthy;
  worker.stats.last_error = healthy ? "" : why;
}

bool RemoteExpertBackend::Covered(int layer) const {
  std::vector<char> healthy(workers_.size());
  for (size_t w = 0; w < workers_.size(); ++w) healthy[w] = workers_[w]->healthy();
  const int64_t first = layer < 0 ? 0 : layer, last = layer < 0 ? config_.num_hidden_layers : layer + 1;
  for (int64_t l = first; l < last; ++l) {
    if (!config_.IsMoeLayer(l)) continue;
    for (int64_t e = 0; e < config_.num_experts; ++e) {
      bool any = false;
      for (int w : owners_[l * config_.num_experts + e]) any = any || healthy[w];
      if (!any) return false;
    }
  }
  return true;
}

bool RemoteExpertBackend::Serviceable() const { return Covered(-1); }

void RemoteExpertBackend::MonitorLoop() {
  struct Probe {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status;
  };
  bool serviceable = true;
  int64_t round = 0;
  while (true) {
    {
      absl::MutexLock lock(&monitor_mu_);
      if (monitor_mu_.AwaitWithTimeout(absl::Condition(&stop_monitor_),
                                       absl::Milliseconds(options_.health_probe_interval_ms))) {
        return;
      }
    }
    ++round;
    // Unhealthy workers every round, healthy ones every 5th; all at once.
    std::vector<int> targets;
    for (int w = 0; w < static_cast<int>(workers_.size()); ++w) {
      if (!workers_[w]->healthy() || round % 5 == 0) targets.push_back(w);
    }
    if (!targets.empty()) {
      auto probes = std::make_shared<std::vector<Probe>>(targets.size());
      auto mu = std::make_shared<absl::Mutex>();
      auto pending = std::make_shared<int>(static_cast<int>(targets.size()));
      for (size_t i = 0; i < targets.size(); ++i) {
        Probe& p = (*probes)[i];
        // An unhealthy worker's probe waits (within its deadline) for the
        // channel to connect rather than failing at once in back-off. A
        // healthy worker gets a generous deadline: a busy host must not
        // make it look dead (exchanges notice a dead one sooner anyway).
        const bool healthy = workers_[targets[i]]->healthy();
        p.context.set_deadline(rpc::DeadlineIn(healthy ? std::max<int64_t>(10 * options_.health_probe_interval_ms, 1000)
                                                       : options_.health_probe_interval_ms));
        p.context.set_wait_for_ready(!healthy);
        p.request.set_service(pb::ExpertWorker::service_full_name());
        workers_[targets[i]]->probe->async()->Check(&p.context, &p.request, &p.response,
                                                    [probes, mu, pending, i](grpc::Status s) {
                                                      absl::MutexLock lock(mu.get());
                                                      (*probes)[i].status = std::move(s);
                                                      --*pending;
                                                    });
      }
      AwaitZero(mu.get(), pending.get());
      for (size_t i = 0; i < targets.size(); ++i) {
        const Probe& p = (*probes)[i];
        const int w = targets[i];
        const bool serving =
            p.status.ok() && p.response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
        const bool was_healthy = workers_[w]->healthy();
        if (serving && !was_healthy) {
          // A fresh channel: the old one may sit in reconnect back-off.
          auto channel = rpc::MakeChannel(workers_[w]->address, &options_.tls, /*max_reconnect_backoff_ms=*/0,
                                          /*own_connection=*/true);
          channel->GetState(/*try_to_connect=*/true);
          {
            absl::MutexLock lock(&workers_[w]->mu);
            workers_[w]->fresh_channel = std::move(channel);
          }
          SetHealthy(w, true, "");
        } else if (!serving && was_healthy) {
          SetHealthy(w, false,
                     p.status.ok() ? absl::StrCat("health: ", grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
                                                                  p.response.status()))
                                   : absl::StrCat("health check: ", CodeName(p.status.error_code()), ": ",
                                                  p.status.error_message()));
        }
      }
    }
    const bool now = Serviceable();
    if (now != serviceable) {
      serviceable = now;
      LOG(INFO) << "every expert has a healthy worker: " << (now ? "yes" : "no");
      if (options_.on_serviceable_change) options_.on_serviceable_change(now);
    }
  }
}

void RemoteExpertBackend::Assign(int layer, const std::vector<int>& experts) {
  std::vector<char> healthy(workers_.size());
  for (size_t w = 0; w < workers_.size(); ++w) healthy[w] = workers_[w]->healthy();
  for (int e : experts) {
    int best = -1;
    for (int w : owners_[layer * config_.num_experts + e]) {
      if (!healthy[w] || (tried_[e] >> w & 1) != 0) continue;
      if (best < 0 || rows_of_worker_[w] < rows_of_worker_[best]) best = w;
    }
    assigned_[e] = best;
    if (best >= 0) {
      rows_of_worker_[best] += static_cast<int64_t>(choices_of_expert_[e].size());
      tried_[e] |= uint64_t{1} << best;
    }
  }
}

bool RemoteExpertBackend::ProbeNow(int w) {
  Worker& worker = *workers_[w];
  // A new channel connects at once (the old ones may sit in reconnect
  // back-off); when the worker serves, it becomes the data channel.
  std::shared_ptr<grpc::Channel> channel = rpc::MakeChannel(worker.address, &options_.tls, /*max_reconnect_backoff_ms=*/0, /*own_connection=*/true);
  grpc::ClientContext context;
  // Not wait_for_ready: a refused connection fails at once (the worker is
  // still down); a slow answer from a busy host still counts.
  context.set_deadline(rpc::DeadlineIn(std::max<int64_t>(5 * options_.health_probe_interval_ms, 500)));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(pb::ExpertWorker::service_full_name());
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status s = grpc::health::v1::Health::NewStub(channel)->Check(&context, request, &response);
  if (!s.ok() || response.status() != grpc::health::v1::HealthCheckResponse::SERVING) return false;
  worker.channel = std::move(channel);
  worker.stub = pb::ExpertWorker::NewStub(worker.channel);
  SetHealthy(w, true, "");
  return true;
}

void RemoteExpertBackend::TakeFreshChannels() {
  for (auto& w : workers_) {
    std::shared_ptr<grpc::Channel> fresh;
    {
      absl::MutexLock lock(&w->mu);
      fresh = std::move(w->fresh_channel);
    }
    if (fresh == nullptr) continue;
    w->channel = std::move(fresh);
    w->stub = pb::ExpertWorker::NewStub(w->channel);
  }
}

absl::Status RemoteExpertBackend::Compute(const ExpertBatch& b, float* outputs) {
  if (b.layer < 0 || b.layer >= config_.num_hidden_layers || !config_.IsMoeLayer(b.layer) ||
      b.hidden != config_.hidden_size || b.top_k < 1 || b.num_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat("expert batch: layer ", b.layer, ", hidden ", b.hidden, ", top_k ",
                                                   b.top_k, ", ", b.num_tokens, " tokens do not fit the model"));
  }
  const int64_t choices = b.num_tokens * b.top_k, h = b.hidden;
  const size_t row_bytes = static_cast<size_t>(h) * sizeof(float);
  for (auto& list : choices_of_expert_) list.clear();
  for (int64_t c = 0; c < choices; ++c) {
    const int32_t e = b.experts[c];
    if (e < 0 || e >= config_.num_experts) {
      return absl::InvalidArgumentError(absl::StrCat("expert batch: expert ", e, " at choice ", c, " of layer ",
                                                     b.layer, " is outside the model"));
    }
    choices_of_expert_[e].push_back(c);
  }
  TakeFreshChannels();
  // Experts with rows, the most rows first (so that spreading by load
  // places the big ones first).
  std::vector<int> todo;
  for (int e = 0; e < config_.num_experts; ++e) {
    tried_[e] = 0;
    if (!choices_of_expert_[e].empty()) todo.push_back(e);
  }
  auto by_rows = [this](int x, int y) { return choices_of_expert_[x].size() > choices_of_expert_[y].size(); };
  std::stable_sort(todo.begin(), todo.end(), by_rows);
  std::fill(rows_of_worker_.begin(), rows_of_worker_.end(), 0);
  ++step_;

  absl::Status last_failure;  // the latest exchange that failed, for the error when no replica is left
  for (int round = 0; !todo.empty(); ++round) {
    Assign(b.layer, todo);
    std::vector<int> unassigned;
    for (int e : todo) {
      if (assigned_[e] < 0) unassigned.push_back(e);
    }
    if (!unassigned.empty()) {
      // No healthy replica untried: a worker that has recovered since the
      // monitor's last probe is taken back at once (each probed once).
      std::vector<char> probed(workers_.size(), 0);
      bool recovered = false;
      for (int e : unassigned) {
        for (int w : owners_[b.layer * config_.num_experts + e]) {
          if ((tried_[e] >> w & 1) != 0 || probed[w] || workers_[w]->healthy()) continue;
          probed[w] = 1;
          recovered = ProbeNow(w) || recovered;
        }
      }
      if (recovered) Assign(b.layer, unassigned);
    }
    std::vector<int> lost;
    for (int e : unassigned) {
      if (assigned_[e] < 0) lost.push_back(e);
    }
    if (!lost.empty()) {
      std::vector<std::string> owners;
      for (int w : owners_[b.layer * config_.num_experts + lost.front()]) {
        absl::MutexLock lock(&workers_[w]->mu);
        owners.push_back(absl::StrCat(workers_[w]->address, " (",
                                      workers_[w]->stats.up ? "failed this step" : workers_[w]->stats.last_error, ")"));
      }
      const std::string message =
          absl::StrCat("no healthy expert worker left for experts ", absl::StrJoin(lost, ", "), " of layer ", b.layer,
                       " (step ", step_, "; held by ", absl::StrJoin(owners, ", "), ")");
      absl::Status s = last_failure.ok() ? absl::UnavailableError(message)
                                         : absl::Status(last_failure.code(),
                                                        absl::StrCat(last_failure.message(), "; ", message));
      LOG(WARNING) << s;
      return rpc::WithErrorOrigin(s, rpc::kOriginExpertWorker);
    }
    if (round > 0) {
      failovers_.fetch_add(todo.size());
    }

    std::vector<std::unique_ptr<Call>> calls;
    std::vector<int> call_of_worker(workers_.size(), -1);
    for (int e : todo) {
      const int w = assigned_[e];
      if (call_of_worker[w] < 0) {
        call_of_worker[w] = static_cast<int>(calls.size());
        calls.push_back(std::make_unique<Call>());
        calls.back()->worker = w;
      }
      Call& call = *calls[call_of_worker[w]];
      call.experts.push_back(e);
      call.choices.insert(call.choices.end(), choices_of_expert_[e].begin(), choices_of_expert_[e].end());
    }
    if (round > 0) retries_.fetch_add(calls.size());
    std::vector<char> healthy(workers_.size());
    for (size_t w = 0; w < workers_.size(); ++w) healthy[w] = workers_[w]->healthy();
    for (auto& call : calls) {
      bool sole = false;
      for (int e : call->experts) {
        bool other = false;
        for (int w : owners_[b.layer * config_.num_experts + e]) {
          other = other || (w != call->worker && healthy[w] && (tried_[e] >> w & 1) == 0);
        }
        sole = sole || !other;
      }
      call->wait_for_ready = sole && workers_[call->worker]->WaitForReady();
    }
    for (auto& call : calls) {
      pb::ExpertRequest& r = call->request;
      const std::vector<int64_t>& list = call->choices;
      r.set_layer(b.layer);
      r.set_step(step_);
      r.set_dtype(pb::ACTIVATION_DTYPE_F32);
      r.set_num_rows(list.size());
      r.set_hidden_size(h);
      std::string* rows = r.mutable_rows();
      rows->resize(list.size() * row_bytes);
      r.mutable_expert_ids()->Reserve(list.size());
      for (size_t i = 0; i < list.size(); ++i) {
        const int64_t c = list[i];
        std::memcpy(rows->data() + i * row_bytes, b.hidden_states + (c / b.top_k) * h, row_bytes);
        r.add_expert_ids(static_cast<uint32_t>(b.experts[c]));
      }
    }
    std::vector<Call*> view;
    for (auto& c : calls) view.push_back(c.get());
    RunUnary(view);

    std::vector<int> again;
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
      }
      w.latency.Observe(call->latency_s);
      absl::Status s;
      const pb::ExpertResponse& resp = call->response;
      const uint32_t n = call->request.num_rows();
      if (!call->status.ok()) {
        const std::string why = call->timed_out || call->status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
                                    ? absl::StrCat("no reply within ", options_.dispatch_deadline_ms, " ms")
                                    : absl::StrCat(CodeName(call->status.error_code()), ": ",
                                                   call->status.error_message());
        s = absl::UnavailableError(
            absl::StrCat("expert worker ", w.address, " failed at layer ", b.layer, " (step ", step_, "): ", why));
      } else if (resp.dtype() != pb::ACTIVATION_DTYPE_F32 || resp.num_rows() != n || resp.hidden_size() != h ||
                 resp.outputs().size() != n * row_bytes) {
        s = absl::InternalError(absl::StrCat("expert worker ", w.address, " sent a malformed reply for layer ",
                                             b.layer, ": dtype ", resp.dtype(), ", ", resp.num_rows(),
                                             " rows of hidden size ", resp.hidden_size(), " in ",
                                             resp.outputs().size(), " bytes; want ", n, " rows of ", h, " f32"));
      } else {
        const std::vector<int64_t>& list = call->choices;
        for (size_t i = 0; i < list.size(); ++i) {
          std::memcpy(outputs + list[i] * h, resp.outputs().data() + i * row_bytes, row_bytes);
        }
        continue;
      }
      LOG(WARNING) << s << "; trying its experts' other replicas";
      SetHealthy(call->worker, false, std::string(s.message()));
      last_failure = s;
      again.insert(again.end(), call->experts.begin(), call->experts.end());
    }
    std::stable_sort(again.begin(), again.end(), by_rows);
    todo = std::move(again);
  }
  return absl::OkStatus();
}

void RemoteExpertBackend::RunUnary(const std::vector<Call*>& calls) {
  if (cq_ == nullptr) cq_ = std::make_unique<grpc::CompletionQueue>();
  for (Call* c : calls) {
    Worker& w = *workers_[c->worker];
    c->context = std::make_unique<grpc::ClientContext>();
    c->context->set_deadline(rpc::DeadlineIn(options_.dispatch_deadline_ms));
    c->context->set_wait_for_ready(c->wait_for_ready);
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
