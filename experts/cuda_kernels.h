// The CUDA kernels of the expert FFN (experts/cuda_kernels.cu), launched on a
// caller's stream. Element math is experts/ffn_math.h's.
#ifndef MOE_EXPERTS_CUDA_KERNELS_H_
#define MOE_EXPERTS_CUDA_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace moe::cuda {

// The 16-bit type of the GEMM inputs: the experts' stored type.
enum class Half16 { kBf16, kF16 };

// out[i] = half16(in[i]) for n elements (round to nearest even).
cudaError_t LaunchF32ToHalf(const float* in, int64_t n, Half16 type, uint16_t* out, cudaStream_t stream);

// act[r, j] = half16(SiluMul(gu[r, j], gu[r, f + j])) for rows r < rows, j < f;
// gu is [rows, 2f] f32 (gate then up), act [rows, f].
cudaError_t LaunchSiluMul(const float* gu, int64_t rows, int64_t f, Half16 type, uint16_t* act,
                          cudaStream_t stream);

}  // namespace moe::cuda

#endif  // MOE_EXPERTS_CUDA_KERNELS_H_
