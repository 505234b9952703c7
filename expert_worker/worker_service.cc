#include "expert_worker/worker_service.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "proto/rpc_util.h"

namespace moe {
namespace {

namespace pb = ::moe::internal::v1;
using Clock = std::chrono::steady_clock;

uint32_t MicrosSince(Clock::time_point t) {
  return static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t).count());
}

ExpertRowsView ViewOf(const pb::ExpertRequest& r) {
  ExpertRowsView v;
  v.layer = r.layer();
  v.dtype_is_f32 = r.dtype() == pb::ACTIVATION_DTYPE_F32;
  v.num_rows = r.num_rows();
  v.hidden_size = r.hidden_size();
  v.rows = absl::string_view(r.rows());
  v.expert_ids = absl::MakeConstSpan(r.expert_ids().data(), r.expert_ids().size());
  return v;
}

// Names the request in error messages.
absl::Status InRequest(const pb::ExpertRequest& r, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat("ExpertRequest (layer ", r.layer(), ", step ", r.step(), "): ",
                                             s.message()));
}

// Validates `request`; empty `response` header filled in either way.
absl::Status Prepare(const ExpertRunner& runner, const pb::ExpertRequest& request, pb::ExpertResponse* response) {
  absl::Status s = ValidateExpertRows(ViewOf(request), runner);
  if (!s.ok()) return InRequest(request, s);
  response->set_dtype(pb::ACTIVATION_DTYPE_F32);
  response->set_num_rows(request.num_rows());
  response->set_hidden_size(request.hidden_size());
  response->clear_outputs();
  return absl::OkStatus();
}

// On the compute thread: fills response->outputs and the timings; `arrived`
// is when the request was handed to the worker.
absl::Status Compute(ExpertExecutor& executor, const pb::ExpertRequest& request, pb::ExpertResponse* response,
                     Clock::time_point arrived) {
  VLOG(1) << "step " << request.step() << " layer " << request.layer() << ": " << request.num_rows() << " rows";
  response->set_queue_us(MicrosSince(arrived));
  const Clock::time_point start = Clock::now();
  std::string* out = response->mutable_outputs();
  out->resize(request.rows().size());
  absl::Status s = executor.Run(ViewOf(request), out->data());
  response->set_compute_us(MicrosSince(start));
  // A device failure (UNAVAILABLE from the runner) stays UNAVAILABLE: the
  // router treats the exchange as failed and tries a replica.
  if (!s.ok()) {
    return absl::Status(s.code() == absl::StatusCode::kUnavailable ? s.code() : absl::StatusCode::kInternal,
                        InRequest(request, s).message());
  }
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* ExpertWorkerService::GetInfo(grpc::CallbackServerContext* context,
                                                       const pb::GetWorkerInfoRequest* /*request*/,
                                                       pb::WorkerInfo* response) {
  const ExpertRunner& runner = executor_->runner();
  const ModelConfig& c = runner.config();
  for (const ExpertKey& k : runner.keys()) {
    pb::ExpertId* id = response->add_experts();
    id->set_layer(k.layer);
    id->set_expert(k.expert);
  }
  response->set_weight_dtype(std::string(runner.weight_dtype()));
  response->set_hidden_size(c.hidden_size);
  response->set_intermediate_size(c.intermediate_size);
  response->set_num_layers(c.num_hidden_layers);
  response->set_num_experts(c.num_experts);
  response->set_model_type(c.model_type);
  response->set_device(runner.device());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* ExpertWorkerService::RunExperts(grpc::CallbackServerContext* context,
                                                          const pb::ExpertRequest* request,
                                                          pb::ExpertResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!accepting_.load()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the expert worker is draining (shutting down)"));
    return reactor;
  }
  absl::Status s = Prepare(executor_->runner(), *request, response);
  if (!s.ok() || request->num_rows() == 0) {
    reactor->Finish(rpc::ToGrpcStatus(s));
    return reactor;
  }
  in_flight_.fetch_add(1);
  executor_->Post([this, reactor, request, response, arrived = Clock::now()](ExpertExecutor& executor) {
    reactor->Finish(rpc::ToGrpcStatus(Compute(executor, *request, response, arrived)));
    in_flight_.fetch_sub(1);
  });
  return reactor;
}

ExpertWorkerService::~ExpertWorkerService() {
  std::thread t;
  {
    absl::MutexLock lock(&join_mu_);
    t = std::move(join_thread_);
  }
  if (t.joinable()) t.join();
}

grpc::ServerUnaryReactor* ExpertWorkerService::JoinCommunicator(grpc::CallbackServerContext* context,
                                                                const pb::JoinCommunicatorRequest* request,
                                                                pb::JoinCommunicatorResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (joiner_ == nullptr) {
    reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                 absl::StrCat("this worker's experts run on ", executor_->runner().device(),
                                              ": the NCCL transport needs workers on GPUs (--device cuda:N)")));
    return reactor;
  }
  nccl::JoinRequest join;
  join.unique_id = request->unique_id();
  join.rank = static_cast<int>(std::min<uint32_t>(request->rank(), 1u << 20));
  join.nranks = static_cast<int>(std::min<uint32_t>(request->nranks(), 1u << 20));
  join.generation = request->generation();
  join.timeout_ms = request->timeout_ms();
  if (absl::Status s = nccl::ValidateJoinRequest(join); !s.ok()) {
    reactor->Finish(rpc::ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat("JoinCommunicatorRequest: ",
                                                                               s.message()))));
    return reactor;
  }
  absl::MutexLock lock(&join_mu_);
  if (joining_) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "a JoinCommunicator is already in progress"));
    return reactor;
  }
  joining_ = true;
  if (join_thread_.joinable()) join_thread_.join();  // the previous join has answered already
  join_thread_ = std::thread([this, reactor, response, join = std::move(join)] {
    absl::StatusOr<std::string> device = joiner_->Join(join);
    if (device.ok()) response->set_device(*device);
    LOG(INFO) << "NCCL communicator generation " << join.generation << ", rank " << join.rank << " of "
              << join.nranks << ": " << (device.ok() ? std::string("joined") : device.status().ToString());
    {
      absl::MutexLock done(&join_mu_);
      joining_ = false;
    }
    reactor->Finish(rpc::ToGrpcStatus(device.status()));
  });
  return reactor;
}

}  // namespace moe
