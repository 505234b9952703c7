// What every CUDA component shares (experts' runner, the router's dense
// device): errors as absl::Status naming the call, device and pinned buffers
// that grow only, and cuBLAS loaded at run time.
//
// cuBLAS is loaded (dlopen) by the first GPU component made, not linked: its
// ~0.7 GB of libraries would otherwise be mapped and relocated (about 170 MB
// resident) by every process, CPU-only expert workers included.
// Built only with CUDA (MOE_HAVE_CUDA).
#ifndef MOE_EXPERTS_CUDA_RUNTIME_H_
#define MOE_EXPERTS_CUDA_RUNTIME_H_

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace moe::cuda {

// UNAVAILABLE: "<call>: <error name> (<error string>)".
absl::Status CudaError(const char* call, cudaError_t e);

// The cuBLAS entry points the project uses.
struct Cublas {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  // (cublas_api.h also has a C++ overload of cublasGemmEx: name the C one's type.)
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                            const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                            cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
  decltype(&cublasGetStatusName) status_name = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;
  std::string error;  // why it could not be loaded; empty when it was
};

// Loaded once, on first use; check `error` before calling.
const Cublas& LoadCublas();

// UNAVAILABLE: "<call>: <status name> (<status string>)".
absl::Status CublasError(const char* call, cublasStatus_t s);

#define MOE_CUDA_CHECK(call)                                                          \
  do {                                                                                \
    const cudaError_t moe_cuda_err = (call);                                          \
    if (moe_cuda_err != cudaSuccess) return ::moe::cuda::CudaError(#call, moe_cuda_err); \
  } while (0)

#define MOE_CUBLAS_CHECK(call)                                                                 \
  do {                                                                                         \
    const cublasStatus_t moe_cublas_st = (call);                                               \
    if (moe_cublas_st != CUBLAS_STATUS_SUCCESS) return ::moe::cuda::CublasError(#call, moe_cublas_st); \
  } while (0)

// A GPU as the logs and GetInfo name it, and its free memory now.
struct DeviceInfo {
  std::string description;  // "cuda:N NAME, MEMORY GiB, sm_XY"
  size_t free_bytes = 0;
};
// Makes `ordinal` the calling thread's device and describes it.
absl::StatusOr<DeviceInfo> UseDevice(int ordinal);

// Device memory that only grows; freed with the owner.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer();
  // At least `bytes` (contents are lost when it grows).
  absl::Status Reserve(size_t bytes);
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Pinned host memory (for asynchronous copies) that only grows.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  ~PinnedBuffer();
  absl::Status Reserve(size_t bytes);
  void* get() const { return ptr_; }
  char* data() const { return static_cast<char*>(ptr_); }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace moe::cuda

#endif  // MOE_EXPERTS_CUDA_RUNTIME_H_
