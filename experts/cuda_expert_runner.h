// Where experts run: "cpu" or "cuda:N", and the CUDA ExpertRunner.
//
// CudaExpertRunner (built when CMake finds CUDA, MOE_CUDA=AUTO|ON) uploads the
// held experts' weights once, in their stored type (bf16 or f16; f32
// checkpoints are converted to bf16, with a logged note), gate and up stacked
// per expert.
// Each Run copies the rows (grouped by expert, as CpuExpertRunner groups them)
// to the device through pinned buffers on the runner's one stream, converts
// them to the weights' type, and per expert runs gate·up as one cuBLAS GEMM (16-bit inputs,
// f32 accumulate and output), the fused SiLU·mul kernel over all rows, and
// down as a second GEMM; outputs come back in arrival order. No allocation per
// call: buffers grow only when a call brings more rows than any before.
// Device and cuBLAS failures are UNAVAILABLE naming the call; the runner stays
// usable for the next call.
#ifndef MOE_EXPERTS_CUDA_EXPERT_RUNNER_H_
#define MOE_EXPERTS_CUDA_EXPERT_RUNNER_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "experts/expert_runner.h"
#include "experts/expert_shard.h"

namespace moe {

struct ExpertDevice {
  bool cuda = false;
  int ordinal = 0;
  std::string ToString() const;  // "cpu" or "cuda:N"
};

// "cpu" or "cuda:N" (N in [0, 255]); INVALID_ARGUMENT naming the text otherwise.
absl::StatusOr<ExpertDevice> ParseExpertDevice(absl::string_view text);

// Whether this build has the CUDA runner.
bool CudaExpertsBuilt();
// OK when CUDA device `ordinal` can be used; FAILED_PRECONDITION saying why not.
absl::Status CudaDeviceUsable(int ordinal);

// The held experts of `shard` on CUDA device `ordinal`. FAILED_PRECONDITION in
// a build without CUDA or with no such device; RESOURCE_EXHAUSTED when the
// weights do not fit (naming the bytes needed and free).
absl::StatusOr<std::unique_ptr<ExpertRunner>> MakeCudaExpertRunner(std::unique_ptr<ExpertShard> shard,
                                                                   int ordinal);

// The NCCL transport: one layer's rows already in device memory of the
// runner's GPU, grouped by expert in `groups` order ((expert, rows) pairs);
// writes the outputs, same order, to `d_out` and returns when they are
// written. The same GEMMs as Run for the same groups, so the same bits.
// FAILED_PRECONDITION when `runner` is not a CUDA runner or lacks an expert;
// UNAVAILABLE naming a failed call.
absl::Status RunCudaExpertsOnDevice(ExpertRunner& runner, int layer,
                                    const std::vector<std::pair<uint32_t, int64_t>>& groups, const float* d_in,
                                    float* d_out);

}  // namespace moe

#endif  // MOE_EXPERTS_CUDA_EXPERT_RUNNER_H_
