// The build without CUDA (no CUDA compiler found, or MOE_CUDA=OFF).
#include "absl/strings/str_cat.h"
#include "experts/cuda_expert_runner.h"

namespace moe {

bool CudaExpertsBuilt() { return false; }

absl::Status CudaDeviceUsable(int ordinal) {
  return absl::FailedPreconditionError(absl::StrCat("cuda:", ordinal, ": this build has no CUDA support"));
}

absl::StatusOr<std::unique_ptr<ExpertRunner>> MakeCudaExpertRunner(std::unique_ptr<ExpertShard>, int ordinal) {
  return absl::FailedPreconditionError(absl::StrCat(
      "cuda:", ordinal, ": this build has no CUDA support (CMake found no CUDA compiler, or MOE_CUDA=OFF)"));
}

absl::Status RunCudaExpertsOnDevice(ExpertRunner&, int, const std::vector<std::pair<uint32_t, int64_t>>&,
                                    const float*, float*) {
  return absl::FailedPreconditionError("this build has no CUDA support");
}

}  // namespace moe
