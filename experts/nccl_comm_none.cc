// The build without CUDA: no NCCL transport.
#include "experts/nccl_bootstrap.h"

namespace moe::nccl {

absl::StatusOr<std::string> MakeUniqueId() {
  return absl::FailedPreconditionError(
      "the NCCL transport needs a build with CUDA (CMake found no CUDA compiler, or MOE_CUDA=OFF)");
}

}  // namespace moe::nccl
