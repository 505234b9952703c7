// ExpertWorkerService: the gRPC adapter of an expert worker (the only file on
// the worker side that includes generated gRPC code).
//
// Reactions never compute: they validate the request (INVALID_ARGUMENT naming
// the field; bad input never crashes the worker), post the work to the
// ExpertExecutor's compute thread and return. The compute thread fills the
// response and finishes the reaction.
//
// Ownership: the executor is not owned and must outlive the server that
// serves this service (and the service must outlive the server).
#ifndef MOE_EXPERT_WORKER_WORKER_SERVICE_H_
#define MOE_EXPERT_WORKER_WORKER_SERVICE_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "expert_worker/expert_executor.h"
#include "experts/nccl_bootstrap.h"
#include "moe/internal/v1/expert_worker.grpc.pb.h"
#include "proto/parsed_request.h"

#include <atomic>
#include <thread>

namespace moe {

class ExpertWorkerService final : public rpc::ParsingService<moe::internal::v1::ExpertWorker::CallbackService> {
 public:
  // `joiner` (not owned; may be null: the worker cannot join an NCCL
  // communicator) answers JoinCommunicator.
  explicit ExpertWorkerService(ExpertExecutor* executor, nccl::Joiner* joiner = nullptr)
      : executor_(executor), joiner_(joiner) {
    // Method indices as in expert_worker.proto; requests that fail to parse
    // get INVALID_ARGUMENT (proto/parsed_request.h).
    ParseUnary(0, &ExpertWorkerService::GetInfo);
    ParseUnary(1, &ExpertWorkerService::RunExperts);
    ParseUnary(2, &ExpertWorkerService::JoinCommunicator);
  }
  ~ExpertWorkerService() override;

  grpc::ServerUnaryReactor* GetInfo(grpc::CallbackServerContext* context,
                                    const moe::internal::v1::GetWorkerInfoRequest* request,
                                    moe::internal::v1::WorkerInfo* response) override;
  grpc::ServerUnaryReactor* RunExperts(grpc::CallbackServerContext* context,
                                       const moe::internal::v1::ExpertRequest* request,
                                       moe::internal::v1::ExpertResponse* response) override;
  // Validates the request (INVALID_ARGUMENT naming the field), then joins on
  // a thread of its own (the join blocks up to the request's timeout) and
  // answers when joined. FAILED_PRECONDITION without a joiner (experts on the
  // CPU); UNAVAILABLE while another join is in progress.
  grpc::ServerUnaryReactor* JoinCommunicator(grpc::CallbackServerContext* context,
                                             const moe::internal::v1::JoinCommunicatorRequest* request,
                                             moe::internal::v1::JoinCommunicatorResponse* response) override;

  // Drain: new exchanges are refused (UNAVAILABLE, so that routers retry on
  // a replica at once); exchanges already taken finish.
  void StopAccepting() { accepting_.store(false); }
  // Exchanges taken and not yet answered.
  int InFlight() const { return in_flight_.load(); }

 private:
  ExpertExecutor* executor_;
  nccl::Joiner* joiner_;
  absl::Mutex join_mu_;
  bool joining_ ABSL_GUARDED_BY(join_mu_) = false;
  std::thread join_thread_ ABSL_GUARDED_BY(join_mu_);
  std::atomic<bool> accepting_{true};
  std::atomic<int> in_flight_{0};
};

}  // namespace moe

#endif  // MOE_EXPERT_WORKER_WORKER_SERVICE_H_
