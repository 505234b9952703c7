// The build without CUDA: no NCCL transport.
#include "router/cuda/nccl_experts.h"

namespace moe {

absl::StatusOr<std::unique_ptr<ExpertBackend>> MakeNcclExpertBackend(const ModelConfig&, const NcclExpertsOptions&) {
  return absl::FailedPreconditionError(
      "--expert-transport nccl needs a build with CUDA (CMake found no CUDA compiler, or MOE_CUDA=OFF)");
}

}  // namespace moe
