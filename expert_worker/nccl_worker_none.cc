// The build without CUDA: workers have no NCCL joiner.
#include "expert_worker/nccl_worker.h"

namespace moe {

std::unique_ptr<nccl::Joiner> MakeNcclWorkerJoiner(ExpertExecutor*, int) { return nullptr; }

}  // namespace moe
