// CudaExpertRunner (see cuda_expert_runner.h). Host code only: it calls the
// CUDA runtime and cuBLAS (experts/cuda_runtime.h); the two kernels are in
// cuda_kernels.cu.
#include "experts/cuda_expert_runner.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/dtype.h"
#include "core/kernels.h"
#include "core/status_macros.h"
#include "experts/cuda_kernels.h"
#include "experts/cuda_runtime.h"
#include "experts/expert_gemm.h"
#include "experts/ffn_math.h"
#include "glog/logging.h"

namespace moe {
namespace {

using cuda::DeviceBuffer;
using cuda::LoadCublas;
using cuda::PinnedBuffer;

// A weight tensor in `type` on the host: copied as is when stored so,
// converted otherwise.
void AppendAs(const WeightView& w, DType type, std::vector<uint16_t>* out) {
  const int64_t n = w.rows * w.cols;
  const size_t at = out->size();
  out->resize(at + static_cast<size_t>(n));
  if (w.dtype == type) {
    std::memcpy(out->data() + at, w.data, static_cast<size_t>(n) * 2);
    return;
  }
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    ConvertRow(w, r, row.data());
    for (int64_t c = 0; c < w.cols; ++c) {
      (*out)[at + r * w.cols + c] = type == DType::kF16 ? F32ToF16Rne(row[c]) : F32ToBf16Rne(row[c]);
    }
  }
}

class CudaExpertRunner : public ExpertRunner {
 public:
  ~CudaExpertRunner() override {
    if (cublas_ != nullptr) LoadCublas().destroy(cublas_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  static absl::StatusOr<std::unique_ptr<ExpertRunner>> Create(std::unique_ptr<ExpertShard> shard, int ordinal) {
    RETURN_IF_ERROR(CudaDeviceUsable(ordinal));
    auto r = std::unique_ptr<CudaExpertRunner>(new CudaExpertRunner(std::move(shard), ordinal));
    RETURN_IF_ERROR(r->Init());
    return std::unique_ptr<ExpertRunner>(std::move(r));
  }

  const ModelConfig& config() const override { return shard_->config(); }
  bool Holds(int layer, int expert) const override { return shard_->Holds(layer, expert); }
  std::vector<ExpertKey> keys() const override { return shard_->keys(); }
  int64_t weight_bytes() const override { return device_weight_bytes_; }
  std::string_view weight_dtype() const override { return DTypeName(type_); }
  std::string device() const override { return description_; }

  absl::Status Run(const ExpertRows& v, void* out_bytes) override {
    const int64_t h = v.hidden, n = v.num_rows;
    if (n == 0) return absl::OkStatus();
    MOE_CUDA_CHECK(cudaSetDevice(ordinal_));
    const size_t row_bytes = static_cast<size_t>(h) * sizeof(float);
    const char* in = static_cast<const char*>(v.x);
    char* out = static_cast<char*>(out_bytes);
    const int64_t repeat = std::max<int64_t>(v.repeat, 1);
    // Group by expert, rows in request order within an expert.
    order_.clear();
    for (int64_t r = 0; r < n; ++r) order_.emplace_back(v.expert_ids[r], r);
    std::sort(order_.begin(), order_.end());
    groups_.clear();
    for (size_t begin = 0; begin < order_.size();) {
      size_t end = begin;
      while (end < order_.size() && order_[end].first == order_[begin].first) ++end;
      auto slot = slots_.find({v.layer, static_cast<int>(order_[begin].first)});
      if (slot == slots_.end()) {
        return absl::FailedPreconditionError(absl::StrCat("this shard does not hold expert ", order_[begin].first,
                                                          " of layer ", v.layer));
      }
      groups_.push_back({slot->second, static_cast<int64_t>(begin), static_cast<int64_t>(end - begin)});
      begin = end;
    }
    RETURN_IF_ERROR(host_io_.Reserve(static_cast<size_t>(n) * row_bytes));
    RETURN_IF_ERROR(x_f32_.Reserve(static_cast<size_t>(n) * row_bytes));
    RETURN_IF_ERROR(y_.Reserve(static_cast<size_t>(n) * row_bytes));
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(host_io_.data() + i * row_bytes, in + (order_[i].second / repeat) * row_bytes, row_bytes);
    }
    MOE_CUDA_CHECK(cudaMemcpyAsync(x_f32_.get(), host_io_.get(), n * row_bytes, cudaMemcpyHostToDevice, stream_));
    RETURN_IF_ERROR(ComputeGroups(x_f32_.as<float>(), n, y_.as<float>()));
    MOE_CUDA_CHECK(cudaMemcpyAsync(host_io_.get(), y_.get(), n * row_bytes, cudaMemcpyDeviceToHost, stream_));
    MOE_CUDA_CHECK(cudaStreamSynchronize(stream_));
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(out + order_[i].second * row_bytes, host_io_.data() + i * row_bytes, row_bytes);
    }
    return absl::OkStatus();
  }

  // Rows already on the device, grouped by expert in `groups` order.
  absl::Status RunOnDevice(int layer, const std::vector<std::pair<uint32_t, int64_t>>& groups, const float* d_in,
                           float* d_out) {
    MOE_CUDA_CHECK(cudaSetDevice(ordinal_));
    groups_.clear();
    int64_t n = 0;
    for (const auto& [expert, rows] : groups) {
      auto slot = slots_.find({layer, static_cast<int>(expert)});
      if (slot == slots_.end()) {
        return absl::FailedPreconditionError(
            absl::StrCat("this shard does not hold expert ", expert, " of layer ", layer));
      }
      if (rows > 0) groups_.push_back({slot->second, n, rows});
      n += rows;
    }
    if (n == 0) return absl::OkStatus();
    RETURN_IF_ERROR(ComputeGroups(d_in, n, d_out));
    MOE_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return absl::OkStatus();
  }

 private:
  // y[n, h] = the experts of groups_ over x[n, h] (f32, device), on stream_.
  absl::Status ComputeGroups(const float* x, int64_t n, float* y) {
    const int64_t h = shard_->config().hidden_size, f = shard_->config().intermediate_size;
    RETURN_IF_ERROR(x_bf16_.Reserve(static_cast<size_t>(n * h) * 2));
    RETURN_IF_ERROR(gu_.Reserve(static_cast<size_t>(n * 2 * f) * sizeof(float)));
    RETURN_IF_ERROR(act_.Reserve(static_cast<size_t>(n * f) * 2));
    MOE_CUDA_CHECK(cuda::LaunchF32ToHalf(x, n * h, half_, x_bf16_.as<uint16_t>(), stream_));
    const ExpertGemms gemms = BuildExpertGemms(groups_, h, f);
    const float one = 1.0f, zero = 0.0f;
    for (const ColumnMajorGemm& g : gemms.gate_up) {
      MOE_CUBLAS_CHECK(LoadCublas().gemm_ex(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, g.n, g.m, g.k, &one,
                                            w13_.as<uint16_t>() + g.a_offset, cuda_type_, g.lda,
                                            x_bf16_.as<uint16_t>() + g.b_offset, cuda_type_, g.ldb, &zero,
                                            gu_.as<float>() + g.c_offset, CUDA_R_32F, g.ldc, CUBLAS_COMPUTE_32F,
                                            CUBLAS_GEMM_DEFAULT));
    }
    MOE_CUDA_CHECK(cuda::LaunchSiluMul(gu_.as<float>(), n, f, half_, act_.as<uint16_t>(), stream_));
    for (const ColumnMajorGemm& g : gemms.down) {
      MOE_CUBLAS_CHECK(LoadCublas().gemm_ex(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, g.n, g.m, g.k, &one,
                                            w2_.as<uint16_t>() + g.a_offset, cuda_type_, g.lda,
                                            act_.as<uint16_t>() + g.b_offset, cuda_type_, g.ldb, &zero,
                                            y + g.c_offset, CUDA_R_32F, g.ldc, CUBLAS_COMPUTE_32F,
                                            CUBLAS_GEMM_DEFAULT));
    }
    return absl::OkStatus();
  }

  CudaExpertRunner(std::unique_ptr<ExpertShard> shard, int ordinal) : shard_(std::move(shard)), ordinal_(ordinal) {}

  absl::Status Init() {
    const ModelConfig& c = shard_->config();
    const int64_t h = c.hidden_size, f = c.intermediate_size;
    ASSIGN_OR_RETURN(const cuda::DeviceInfo device, cuda::UseDevice(ordinal_));
    description_ = device.description;
    const size_t free_bytes = device.free_bytes;
    const std::vector<ExpertKey> keys = shard_->keys();
    const int64_t slots = static_cast<int64_t>(keys.size());
    device_weight_bytes_ = slots * 3 * h * f * 2;
    // Weights plus the buffers of a 4096-row call.
    const int64_t rows = 4096;
    const int64_t buffers = rows * (h * 4 + h * 2 + 2 * f * 4 + f * 2 + h * 4);
    const int64_t need = device_weight_bytes_ + buffers;
    if (need > static_cast<int64_t>(free_bytes)) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "%s: the %d experts need %d bytes on the device (%d of weights, %d of buffers), %d are free",
          description_, slots, need, device_weight_bytes_, buffers, static_cast<int64_t>(free_bytes)));
    }
    // The stored type when it is 16-bit (bf16 or f16); f32 checkpoints become bf16.
    type_ = shard_->weight_dtype() == DType::kF16 ? DType::kF16 : DType::kBF16;
    half_ = type_ == DType::kF16 ? cuda::Half16::kF16 : cuda::Half16::kBf16;
    cuda_type_ = type_ == DType::kF16 ? CUDA_R_16F : CUDA_R_16BF;
    bool converted = false;
    std::vector<uint16_t> w13, w2;
    w13.reserve(static_cast<size_t>(slots * 2 * f * h));
    w2.reserve(static_cast<size_t>(slots * h * f));
    for (int64_t s = 0; s < slots; ++s) {
      const FfnWeights& w = shard_->ExpertWeights(keys[s].layer, keys[s].expert);
      converted = converted || w.gate.dtype != type_ || w.up.dtype != type_ || w.down.dtype != type_;
      AppendAs(w.gate, type_, &w13);
      AppendAs(w.up, type_, &w13);
      AppendAs(w.down, type_, &w2);
      slots_[{keys[s].layer, keys[s].expert}] = static_cast<int>(s);
    }
    if (converted) {
      LOG(INFO) << description_ << ": expert weights are " << DTypeName(shard_->weight_dtype())
                << " in the checkpoint; converted to " << DTypeName(type_) << " on upload";
    }
    MOE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    if (const std::string& why = LoadCublas().error; !why.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(description_, ": ", why));
    }
    MOE_CUBLAS_CHECK(LoadCublas().create(&cublas_));
    MOE_CUBLAS_CHECK(LoadCublas().set_stream(cublas_, stream_));
    RETURN_IF_ERROR(w13_.Reserve(w13.size() * 2));
    RETURN_IF_ERROR(w2_.Reserve(w2.size() * 2));
    MOE_CUDA_CHECK(cudaMemcpy(w13_.get(), w13.data(), w13.size() * 2, cudaMemcpyHostToDevice));
    MOE_CUDA_CHECK(cudaMemcpy(w2_.get(), w2.data(), w2.size() * 2, cudaMemcpyHostToDevice));
    // The buffers of a 4096-row call, now: a call allocates only beyond it.
    RETURN_IF_ERROR(host_io_.Reserve(static_cast<size_t>(rows * h) * sizeof(float)));
    RETURN_IF_ERROR(x_f32_.Reserve(static_cast<size_t>(rows * h) * sizeof(float)));
    RETURN_IF_ERROR(x_bf16_.Reserve(static_cast<size_t>(rows * h) * 2));
    RETURN_IF_ERROR(gu_.Reserve(static_cast<size_t>(rows * 2 * f) * sizeof(float)));
    RETURN_IF_ERROR(act_.Reserve(static_cast<size_t>(rows * f) * 2));
    RETURN_IF_ERROR(y_.Reserve(static_cast<size_t>(rows * h) * sizeof(float)));
    LOG(INFO) << description_ << ": " << slots << " experts uploaded (" << device_weight_bytes_ << " bytes)";
    return absl::OkStatus();
  }

  std::unique_ptr<ExpertShard> shard_;
  const int ordinal_;
  std::string description_;
  int64_t device_weight_bytes_ = 0;
  std::map<ExpertKey, int> slots_;  // (layer, expert) -> index into the stacked weights
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  DType type_ = DType::kBF16;  // of the weights on the device and the GEMM inputs
  cuda::Half16 half_ = cuda::Half16::kBf16;
  cudaDataType_t cuda_type_ = CUDA_R_16BF;
  DeviceBuffer w13_, w2_;  // [slots, 2f, h] (gate then up), [slots, h, f]
  DeviceBuffer x_f32_, x_bf16_, gu_, act_, y_;
  PinnedBuffer host_io_;  // rows in, outputs out (grouped order)
  std::vector<std::pair<uint32_t, int64_t>> order_;
  std::vector<ExpertGroup> groups_;
};

}  // namespace

bool CudaExpertsBuilt() { return true; }

absl::Status CudaDeviceUsable(int ordinal) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    return absl::FailedPreconditionError(absl::StrCat("cuda:", ordinal, ": no CUDA device (cudaGetDeviceCount: ",
                                                      e == cudaSuccess ? "0 devices" : cudaGetErrorString(e), ")"));
  }
  if (ordinal < 0 || ordinal >= count) {
    return absl::FailedPreconditionError(
        absl::StrCat("cuda:", ordinal, ": no such device (", count, " CUDA device", count == 1 ? "" : "s", ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ExpertRunner>> MakeCudaExpertRunner(std::unique_ptr<ExpertShard> shard,
                                                                   int ordinal) {
  return CudaExpertRunner::Create(std::move(shard), ordinal);
}

absl::Status RunCudaExpertsOnDevice(ExpertRunner& runner, int layer,
                                    const std::vector<std::pair<uint32_t, int64_t>>& groups, const float* d_in,
                                    float* d_out) {
  auto* cuda = dynamic_cast<CudaExpertRunner*>(&runner);
  if (cuda == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("experts on ", runner.device(), " take no device rows"));
  }
  return cuda->RunOnDevice(layer, groups, d_in, d_out);
}

}  // namespace moe
