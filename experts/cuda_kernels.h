// The CUDA kernels of the expert FFN (experts/cuda_kernels.cu), launched on a
// caller's stream. Element math is experts/ffn_math.h's.
#ifndef MOE_EXPERTS_CUDA_KERNELS_H_
#define MOE_EXPERTS_CUDA_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace moe::cuda {

// out[i] = bf16(in[i]) for n elements (round to nearest even).
cudaError_t LaunchF32ToBf16(const float* in, int64_t n, uint16_t* out, cudaStream_t stream);

// act[r, j] = bf16(SiluMul(gu[r, j], gu[r, f + j])) for rows r < rows, j < f;
// gu is [rows, 2f] f32 (gate then up), act [rows, f] bf16.
cudaError_t LaunchSiluMul(const float* gu, int64_t rows, int64_t f, uint16_t* act, cudaStream_t stream);

}  // namespace moe::cuda

#endif  // MOE_EXPERTS_CUDA_KERNELS_H_
