// The worker side of the NCCL expert transport (experts/nccl_plan.h): after
// JoinCommunicator, a loop of its own receives each MoE layer's header from
// the router (rank 0), checks it (a desync aborts the communicator: never
// compute on the wrong data), receives the rows into device memory, runs
// them through the worker's CUDA runner on the compute thread (an executor
// job, so it never overlaps a RunExperts call) and sends the outputs back.
// A failure aborts the communicator and ends the loop; the router's watchdog
// sees it and builds a new communicator (a new JoinCommunicator) later.
#ifndef MOE_EXPERT_WORKER_NCCL_WORKER_H_
#define MOE_EXPERT_WORKER_NCCL_WORKER_H_

#include <memory>

#include "expert_worker/expert_executor.h"
#include "experts/nccl_bootstrap.h"

namespace moe {

// The joiner of a worker whose experts are on CUDA device `ordinal`; null in
// a build without CUDA. `executor` must outlive it.
std::unique_ptr<nccl::Joiner> MakeNcclWorkerJoiner(ExpertExecutor* executor, int ordinal);

}  // namespace moe

#endif  // MOE_EXPERT_WORKER_NCCL_WORKER_H_
