#include "experts/cuda_runtime.h"

#include <dlfcn.h>

#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace moe::cuda {

absl::Status CudaError(const char* call, cudaError_t e) {
  return absl::UnavailableError(absl::StrCat(call, ": ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ")"));
}

const Cublas& LoadCublas() {
  static const Cublas* api = [] {
    auto* c = new Cublas();
    void* lib = dlopen("libcublas.so.13", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      c->error = absl::StrCat("cannot load cuBLAS (libcublas.so.13): ", dlerror());
      return c;
    }
    auto sym = [&](const char* name, auto* fn) {
      *fn = reinterpret_cast<std::remove_reference_t<decltype(*fn)>>(dlsym(lib, name));
      if (*fn == nullptr && c->error.empty()) c->error = absl::StrCat("libcublas.so.13 has no ", name);
    };
    sym("cublasCreate_v2", &c->create);
    sym("cublasDestroy_v2", &c->destroy);
    sym("cublasSetStream_v2", &c->set_stream);
    sym("cublasGemmEx", &c->gemm_ex);
    sym("cublasGetStatusName", &c->status_name);
    sym("cublasGetStatusString", &c->status_string);
    return c;
  }();
  return *api;
}

absl::Status CublasError(const char* call, cublasStatus_t s) {
  const Cublas& b = LoadCublas();
  return absl::UnavailableError(absl::StrCat(call, ": ", b.status_name(s), " (", b.status_string(s), ")"));
}

absl::StatusOr<DeviceInfo> UseDevice(int ordinal) {
  MOE_CUDA_CHECK(cudaSetDevice(ordinal));
  cudaDeviceProp prop;
  MOE_CUDA_CHECK(cudaGetDeviceProperties(&prop, ordinal));
  size_t free_bytes = 0, total_bytes = 0;
  MOE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  DeviceInfo info;
  info.description = absl::StrFormat("cuda:%d %s, %.1f GiB, sm_%d%d", ordinal, prop.name,
                                     static_cast<double>(total_bytes) / (1 << 30), prop.major, prop.minor);
  info.free_bytes = free_bytes;
  return info;
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_ != nullptr) cudaFree(ptr_);
}

absl::Status DeviceBuffer::Reserve(size_t want) {
  if (want <= bytes_) return absl::OkStatus();
  if (ptr_ != nullptr) cudaFree(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
  MOE_CUDA_CHECK(cudaMalloc(&ptr_, want));
  bytes_ = want;
  return absl::OkStatus();
}

PinnedBuffer::~PinnedBuffer() {
  if (ptr_ != nullptr) cudaFreeHost(ptr_);
}

absl::Status PinnedBuffer::Reserve(size_t want) {
  if (want <= bytes_) return absl::OkStatus();
  if (ptr_ != nullptr) cudaFreeHost(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
  MOE_CUDA_CHECK(cudaHostAlloc(&ptr_, want, cudaHostAllocDefault));
  bytes_ = want;
  return absl::OkStatus();
}

}  // namespace moe::cuda
