// The build without CUDA (no CUDA compiler found, or MOE_CUDA=OFF).
#include "absl/strings/str_cat.h"
#include "router/cuda/cuda_dense_device.h"

namespace moe {

absl::StatusOr<std::unique_ptr<DenseDevice>> MakeCudaDenseDevice(const DenseModel*, ExpertBackend*, int ordinal) {
  return absl::FailedPreconditionError(absl::StrCat(
      "cuda:", ordinal, ": this build has no CUDA support (CMake found no CUDA compiler, or MOE_CUDA=OFF)"));
}

absl::StatusOr<double> MeasureDeviceCopyBandwidth(int ordinal, int64_t) {
  return absl::FailedPreconditionError(absl::StrCat("cuda:", ordinal, ": this build has no CUDA support"));
}

}  // namespace moe
