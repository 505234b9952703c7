// CudaDenseDevice (see cuda_dense_device.h). Host code: CUDA runtime, cuBLAS
// (experts/cuda_runtime.h) and the kernels of dense_kernels.cu.
#include "router/cuda/cuda_dense_device.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/dtype.h"
#include "core/kernels.h"
#include "core/status_macros.h"
#include "experts/cuda_expert_runner.h"
#include "experts/cuda_kernels.h"
#include "experts/cuda_runtime.h"
#include "glog/logging.h"
#include "router/cuda/dense_kernels.h"

namespace moe {
namespace {

using cuda::DeviceBuffer;
using cuda::Elem;
using cuda::LoadCublas;
using cuda::PinnedBuffer;

// A weight matrix in device memory (inside the device's weight arena).
struct Mat {
  const void* ptr = nullptr;
  Elem type = Elem::kF32;
  int64_t rows = 0, cols = 0;
};

struct FfnMats {
  Mat gate, up, down;
};

struct LayerMats {
  Mat input_norm, post_attention_norm;  // f32
  Mat q, k, v, o;
  Mat q_bias, k_bias, v_bias, o_bias;  // f32; empty when the family has none
  Mat q_norm, k_norm;                  // f32, with qk_norm
  bool moe = true;
  Mat gate;                // f32 [experts, hidden]
  FfnMats shared_expert;   // with a shared expert
  Mat shared_expert_gate;  // f32 [1, hidden]
  FfnMats mlp;             // dense MLP layers
};

Elem ElemOf(DType t) {
  switch (t) {
    case DType::kF32:
      return Elem::kF32;
    case DType::kBF16:
      return Elem::kBf16;
    case DType::kF16:
      return Elem::kF16;
  }
  return Elem::kF32;
}

cudaDataType_t CudaTypeOf(Elem e) {
  switch (e) {
    case Elem::kF32:
      return CUDA_R_32F;
    case Elem::kBf16:
      return CUDA_R_16BF;
    case Elem::kF16:
      return CUDA_R_16F;
  }
  return CUDA_R_32F;
}

int64_t ElemSize(Elem e) { return e == Elem::kF32 ? 4 : 2; }

// KV pages in device memory. A failed copy-on-write is remembered in
// `*error` (the next Forward returns it): KvPages::Copy has no status.
class CudaKvPages : public KvPages {
 public:
  CudaKvPages(int ordinal, float* data, cudaStream_t stream, absl::Status* error)
      : ordinal_(ordinal), data_(data), stream_(stream), error_(error) {}
  ~CudaKvPages() override {
    cudaSetDevice(ordinal_);
    cudaFree(data_);
  }
  float* data() override { return data_; }
  void Copy(int64_t to, int64_t from, int64_t n) override {
    cudaError_t e = cudaSetDevice(ordinal_);
    if (e == cudaSuccess) {
      e = cudaMemcpyAsync(data_ + to, data_ + from, static_cast<size_t>(n) * sizeof(float),
                          cudaMemcpyDeviceToDevice, stream_);
    }
    if (e != cudaSuccess && error_->ok()) *error_ = cuda::CudaError("cudaMemcpyAsync (KV block copy)", e);
  }

 private:
  const int ordinal_;
  float* data_;
  cudaStream_t stream_;
  absl::Status* error_;
};

class CudaDenseDevice : public DenseDevice {
 public:
  static absl::StatusOr<std::unique_ptr<DenseDevice>> Create(const DenseModel* model, ExpertBackend* experts,
                                                             int ordinal) {
    RETURN_IF_ERROR(CudaDeviceUsable(ordinal));
    const ModelConfig& c = model->config();
    if (c.head_dim > cuda::kMaxHeadDim || c.head_dim % 2 != 0) {
      return absl::FailedPreconditionError(absl::StrCat("cuda:", ordinal, ": head_dim ", c.head_dim,
                                                        " is not supported by the GPU attention kernel (even, <= ",
                                                        cuda::kMaxHeadDim, ")"));
    }
    auto d = std::unique_ptr<CudaDenseDevice>(new CudaDenseDevice(model, experts, ordinal));
    RETURN_IF_ERROR(d->Init());
    return std::unique_ptr<DenseDevice>(std::move(d));
  }

  ~CudaDenseDevice() override {
    if (cublas_ != nullptr) LoadCublas().destroy(cublas_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
    if (host_done_ != nullptr) cudaEventDestroy(host_done_);
  }

  const ModelConfig& config() const override { return config_; }
  std::string name() const override { return description_; }

  absl::StatusOr<std::unique_ptr<KvCache>> CreateKvCache(const KvCacheOptions& options) override {
    return KvCache::Create(config_, options, [this](int64_t floats) -> absl::StatusOr<std::unique_ptr<KvPages>> {
      MOE_CUDA_CHECK(cudaSetDevice(ordinal_));
      const size_t bytes = static_cast<size_t>(floats) * sizeof(float);
      size_t free_bytes = 0, total_bytes = 0;
      MOE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
      if (bytes > free_bytes) {
        return absl::ResourceExhaustedError(absl::StrCat(description_, ": the KV cache needs ", bytes,
                                                         " bytes of device memory (--kv-cache-bytes), ", free_bytes,
                                                         " are free"));
      }
      void* p = nullptr;
      MOE_CUDA_CHECK(cudaMalloc(&p, bytes));
      return std::unique_ptr<KvPages>(new CudaKvPages(ordinal_, static_cast<float*>(p), stream_, &pages_error_));
    });
  }

  absl::Status Forward(absl::Span<const SequenceInput> batch, std::vector<float>* logits) override {
    RETURN_IF_ERROR(pages_error_);
    int64_t T = 0;
    RETURN_IF_ERROR(CheckBatchInvariants(config_, batch, &T));
    logits->clear();
    if (T == 0) return absl::OkStatus();
    for (size_t s = 1; s < batch.size(); ++s) {
      if (&batch[s].kv->cache() != &batch[0].kv->cache()) {
        return absl::InternalError("invariant broken: the sequences of one batch use different KV caches");
      }
    }
    RETURN_IF_ERROR(ReserveBatchKv(batch));
    if (absl::Status st = Run(batch, T, logits); !st.ok()) {
      for (const SequenceInput& in : batch) in.kv->Truncate(in.kv->length());  // frees the reserved blocks
      logits->clear();
      // Leave the stream idle for the next call, whatever was queued.
      cudaStreamSynchronize(stream_);
      return st;
    }
    for (const SequenceInput& in : batch) in.kv->Advance(in.kv->length() + static_cast<int64_t>(in.tokens.size()));
    return absl::OkStatus();
  }

  std::vector<uint64_t> ExpertTokenCounts() const override {
    std::vector<uint64_t> out(static_cast<size_t>(config_.num_hidden_layers) * config_.num_experts);
    for (size_t i = 0; i < out.size(); ++i) out[i] = expert_tokens_[i].load(std::memory_order_relaxed);
    return out;
  }

 private:
  CudaDenseDevice(const DenseModel* model, ExpertBackend* experts, int ordinal)
      : model_(model), config_(model->config()), experts_(experts), ordinal_(ordinal) {}

  absl::Status Init();
  absl::Status Run(absl::Span<const SequenceInput> batch, int64_t T, std::vector<float>* logits);
  absl::Status Reserve(int64_t T, int64_t R, int64_t metadata_bytes);
  absl::Status Attention(int layer, const LayerMats& L, const cuda::PagedKv& kv_base, int64_t T);
  absl::Status Moe(int layer, const LayerMats& L, int64_t T);
  // out[T, hidden] = down(silu(gate x) * up x) of x[T, hidden].
  absl::Status SwiGlu(const FfnMats& f, const float* x, int64_t T, float* out);

  // y = x · w^T for each GEMM, all of one input x [rows, w.cols] (converted
  // once per weight type).
  struct GemmOut {
    const Mat* w;
    float* y;
    int64_t ldy;
  };
  absl::Status Project(const float* x, int64_t rows, std::initializer_list<GemmOut> outs);

  const DenseModel* model_;
  const ModelConfig& config_;
  ExpertBackend* experts_;
  const int ordinal_;
  std::string description_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t host_done_ = nullptr;  // the MoE layer's rows are on the host
  cublasHandle_t cublas_ = nullptr;
  absl::Status pages_error_;
  std::vector<double> inv_freq_;
  std::unique_ptr<std::atomic<uint64_t>[]> expert_tokens_;  // [layers * experts]

  DeviceBuffer weights_;  // every Mat's memory
  Mat embedding_, final_norm_, lm_head_;
  std::vector<LayerMats> layers_;
  int64_t max_ffn_ = 0;  // largest dense-MLP / shared-expert FFN size

  // Scratch, grown to the largest call so far.
  DeviceBuffer meta_, x_, h_, q_, k_, v_, attn_, o_, gu_, act_, conv_, gate_logits_, gate_e_, gate_w_, expert_out_,
      shared_gate_, logits_;
  PinnedBuffer meta_host_, h_host_, choice_host_, expert_out_host_, logits_host_;
  // Per call: device views into meta_.
  const int32_t* rows_dev_ = nullptr;
  const float* rope_cos_dev_ = nullptr;
  const float* rope_sin_dev_ = nullptr;
};

absl::Status CudaDenseDevice::Init() {
  const ModelConfig& c = config_;
  ASSIGN_OR_RETURN(const cuda::DeviceInfo device, cuda::UseDevice(ordinal_));
  description_ = device.description;
  const size_t free_bytes = device.free_bytes;
  if (const std::string& why = LoadCublas().error; !why.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(description_, ": ", why));
  }
  inv_freq_ = RopeInverseFrequencies(c);
  const int64_t counters = static_cast<int64_t>(c.num_hidden_layers) * c.num_experts;
  expert_tokens_ = std::make_unique<std::atomic<uint64_t>[]>(counters);
  for (int64_t i = 0; i < counters; ++i) expert_tokens_[i].store(0, std::memory_order_relaxed);

  // Plan the weight arena: every tensor at a 256-byte aligned offset.
  struct Upload {
    WeightView w;
    bool f32;
    Mat* target;
    int64_t offset;
  };
  std::vector<Upload> uploads;
  int64_t arena = 0;
  auto add = [&](const WeightView& w, bool f32, Mat* m) {
    if (w.data == nullptr) return;
    m->type = f32 ? Elem::kF32 : ElemOf(w.dtype);
    m->rows = w.rows;
    m->cols = w.cols;
    uploads.push_back({w, f32, m, arena});
    arena += (w.rows * w.cols * ElemSize(m->type) + 255) / 256 * 256;
  };
  auto add_ffn = [&](const FfnWeights& w, FfnMats* m) {
    add(w.gate, false, &m->gate);
    add(w.up, false, &m->up);
    add(w.down, false, &m->down);
    max_ffn_ = std::max(max_ffn_, w.gate.rows);
  };
  layers_.resize(c.num_hidden_layers);
  add(model_->embedding(), false, &embedding_);
  add(model_->final_norm(), true, &final_norm_);
  const bool tied = model_->lm_head().data == model_->embedding().data;
  if (!tied) add(model_->lm_head(), false, &lm_head_);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const LayerWeights& W = model_->layer(l);
    LayerMats& L = layers_[l];
    add(W.input_norm, true, &L.input_norm);
    add(W.post_attention_norm, true, &L.post_attention_norm);
    add(W.q, false, &L.q);
    add(W.k, false, &L.k);
    add(W.v, false, &L.v);
    add(W.o, false, &L.o);
    add(W.q_bias, true, &L.q_bias);
    add(W.k_bias, true, &L.k_bias);
    add(W.v_bias, true, &L.v_bias);
    add(W.o_bias, true, &L.o_bias);
    add(W.q_norm, true, &L.q_norm);
    add(W.k_norm, true, &L.k_norm);
    L.moe = W.moe;
    if (W.moe) {
      add(W.gate, true, &L.gate);
      if (c.shared_expert_intermediate_size > 0) add_ffn(W.shared_expert, &L.shared_expert);
      add(W.shared_expert_gate, true, &L.shared_expert_gate);
    } else {
      add_ffn(W.mlp, &L.mlp);
    }
  }
  if (static_cast<size_t>(arena) > free_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(description_, ": the dense weights need ", arena,
                                                     " bytes of device memory, ", free_bytes, " are free"));
  }
  MOE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  MOE_CUDA_CHECK(cudaEventCreateWithFlags(&host_done_, cudaEventDisableTiming));
  MOE_CUBLAS_CHECK(LoadCublas().create(&cublas_));
  MOE_CUBLAS_CHECK(LoadCublas().set_stream(cublas_, stream_));
  RETURN_IF_ERROR(weights_.Reserve(static_cast<size_t>(std::max<int64_t>(arena, 256))));
  std::vector<float> staging;
  for (const Upload& u : uploads) {
    char* dst = weights_.as<char>() + u.offset;
    u.target->ptr = dst;
    if (!u.f32 || u.w.dtype == DType::kF32) {
      MOE_CUDA_CHECK(cudaMemcpy(dst, u.w.data, static_cast<size_t>(u.w.nbytes()), cudaMemcpyHostToDevice));
      continue;
    }
    staging.resize(static_cast<size_t>(u.w.rows * u.w.cols));
    for (int64_t r = 0; r < u.w.rows; ++r) ConvertRow(u.w, r, &staging[r * u.w.cols]);
    MOE_CUDA_CHECK(cudaMemcpy(dst, staging.data(), staging.size() * sizeof(float), cudaMemcpyHostToDevice));
  }
  if (tied) lm_head_ = embedding_;
  LOG(INFO) << description_ << ": dense weights uploaded (" << arena << " bytes)";
  return absl::OkStatus();
}

absl::Status CudaDenseDevice::Reserve(int64_t T, int64_t R, int64_t metadata_bytes) {
  const ModelConfig& c = config_;
  const int64_t D = c.hidden_size, K = c.num_experts_per_tok;
  const size_t f = sizeof(float);
  const int64_t widest = std::max({D, c.q_dim(), max_ffn_});
  RETURN_IF_ERROR(meta_.Reserve(static_cast<size_t>(metadata_bytes)));
  RETURN_IF_ERROR(meta_host_.Reserve(static_cast<size_t>(metadata_bytes)));
  RETURN_IF_ERROR(x_.Reserve(T * D * f));
  RETURN_IF_ERROR(h_.Reserve(T * D * f));
  RETURN_IF_ERROR(q_.Reserve(T * c.q_dim() * f));
  RETURN_IF_ERROR(k_.Reserve(T * c.kv_dim() * f));
  RETURN_IF_ERROR(v_.Reserve(T * c.kv_dim() * f));
  RETURN_IF_ERROR(attn_.Reserve(T * c.q_dim() * f));
  RETURN_IF_ERROR(o_.Reserve(T * D * f));
  RETURN_IF_ERROR(gu_.Reserve(T * 2 * std::max<int64_t>(max_ffn_, 1) * f));
  RETURN_IF_ERROR(act_.Reserve(T * std::max<int64_t>(max_ffn_, 1) * f));
  RETURN_IF_ERROR(conv_.Reserve(T * widest * 2));
  RETURN_IF_ERROR(gate_logits_.Reserve(T * c.num_experts * f));
  RETURN_IF_ERROR(gate_e_.Reserve(T * K * sizeof(int32_t)));
  RETURN_IF_ERROR(gate_w_.Reserve(T * K * f));
  RETURN_IF_ERROR(expert_out_.Reserve(T * K * D * f));
  RETURN_IF_ERROR(shared_gate_.Reserve(T * f));
  RETURN_IF_ERROR(logits_.Reserve(std::max<int64_t>(R, 1) * c.vocab_size * f));
  RETURN_IF_ERROR(h_host_.Reserve(T * D * f));
  RETURN_IF_ERROR(choice_host_.Reserve(T * K * (sizeof(int32_t) + f)));
  RETURN_IF_ERROR(expert_out_host_.Reserve(T * K * D * f));
  RETURN_IF_ERROR(logits_host_.Reserve(std::max<int64_t>(R, 1) * c.vocab_size * f));
  return absl::OkStatus();
}

absl::Status CudaDenseDevice::Project(const float* x, int64_t rows, std::initializer_list<GemmOut> outs) {
  const cuda::Cublas& blas = LoadCublas();
  bool converted = false;
  Elem converted_type = Elem::kF32;
  const float one = 1.0f, zero = 0.0f;
  for (const GemmOut& g : outs) {
    const Mat& w = *g.w;
    if (w.rows > INT_MAX || w.cols > INT_MAX || rows > INT_MAX || g.ldy > INT_MAX) {
      return absl::InternalError(absl::StrCat("GEMM of ", rows, " x ", w.cols, " x ", w.rows, " is too large"));
    }
    const void* in = x;
    if (w.type != Elem::kF32) {
      if (!converted || converted_type != w.type) {
        MOE_CUDA_CHECK(cuda::LaunchF32ToHalf(x, rows * w.cols,
                                             w.type == Elem::kF16 ? cuda::Half16::kF16 : cuda::Half16::kBf16,
                                             conv_.as<uint16_t>(), stream_));
        converted = true;
        converted_type = w.type;
      }
      in = conv_.get();
    }
    // Row-major y[rows, n] = x[rows, k] w[n, k]^T is column-major y^T = w^T x^T.
    MOE_CUBLAS_CHECK(blas.gemm_ex(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(w.rows), static_cast<int>(rows),
                                  static_cast<int>(w.cols), &one, w.ptr, CudaTypeOf(w.type), static_cast<int>(w.cols),
                                  in, CudaTypeOf(w.type), static_cast<int>(w.cols), &zero, g.y, CUDA_R_32F,
                                  static_cast<int>(g.ldy), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }
  return absl::OkStatus();
}

absl::Status CudaDenseDevice::SwiGlu(const FfnMats& f, const float* x, int64_t T, float* out) {
  const int64_t F = f.gate.rows;
  float* gu = gu_.as<float>();
  // gate into columns [0, F) and up into [F, 2F) of gu [T, 2F].
  RETURN_IF_ERROR(Project(x, T, {{&f.gate, gu, 2 * F}, {&f.up, gu + F, 2 * F}}));
  MOE_CUDA_CHECK(cuda::LaunchSiluMulF32(gu, T, F, act_.as<float>(), stream_));
  return Project(act_.as<float>(), T, {{&f.down, out, config_.hidden_size}});
}

absl::Status CudaDenseDevice::Attention(int layer, const LayerMats& L, const cuda::PagedKv& kv_base, int64_t T) {
  const ModelConfig& c = config_;
  const int64_t D = c.hidden_size;
  float* q = q_.as<float>();
  float* k = k_.as<float>();
  float* v = v_.as<float>();
  MOE_CUDA_CHECK(cuda::LaunchRmsNorm(x_.as<float>(), nullptr, T, D, static_cast<const float*>(L.input_norm.ptr),
                                     c.rms_norm_eps, h_.as<float>(), stream_));
  RETURN_IF_ERROR(
      Project(h_.as<float>(), T, {{&L.q, q, c.q_dim()}, {&L.k, k, c.kv_dim()}, {&L.v, v, c.kv_dim()}}));
  if (L.q_bias.ptr != nullptr) {
    MOE_CUDA_CHECK(cuda::LaunchAddBias(q, T, c.q_dim(), static_cast<const float*>(L.q_bias.ptr), stream_));
    MOE_CUDA_CHECK(cuda::LaunchAddBias(k, T, c.kv_dim(), static_cast<const float*>(L.k_bias.ptr), stream_));
    MOE_CUDA_CHECK(cuda::LaunchAddBias(v, T, c.kv_dim(), static_cast<const float*>(L.v_bias.ptr), stream_));
  }
  if (c.qk_norm) {
    const float* qn = static_cast<const float*>(L.q_norm.ptr);
    const float* kn = static_cast<const float*>(L.k_norm.ptr);
    if (c.qk_norm_per_head) {  // Qwen3-MoE: each head on its own
      MOE_CUDA_CHECK(cuda::LaunchRmsNorm(q, nullptr, T * c.num_attention_heads, c.head_dim, qn, c.rms_norm_eps, q,
                                         stream_));
      MOE_CUDA_CHECK(cuda::LaunchRmsNorm(k, nullptr, T * c.num_key_value_heads, c.head_dim, kn, c.rms_norm_eps, k,
                                         stream_));
    } else {  // OLMoE: the whole projection
      MOE_CUDA_CHECK(cuda::LaunchRmsNorm(q, nullptr, T, c.q_dim(), qn, c.rms_norm_eps, q, stream_));
      MOE_CUDA_CHECK(cuda::LaunchRmsNorm(k, nullptr, T, c.kv_dim(), kn, c.rms_norm_eps, k, stream_));
    }
  }
  if (c.clip_qkv) {
    const float limit = static_cast<float>(*c.clip_qkv);
    MOE_CUDA_CHECK(cuda::LaunchClamp(q, T * c.q_dim(), limit, stream_));
    MOE_CUDA_CHECK(cuda::LaunchClamp(k, T * c.kv_dim(), limit, stream_));
    MOE_CUDA_CHECK(cuda::LaunchClamp(v, T * c.kv_dim(), limit, stream_));
  }
  cuda::PagedKv kv = kv_base;
  kv.layer_offset = static_cast<int64_t>(layer) * 2 * kv.block_size * kv.kv_dim;
  const int heads = static_cast<int>(c.num_attention_heads), kv_heads = static_cast<int>(c.num_key_value_heads);
  const int hd = static_cast<int>(c.head_dim);
  MOE_CUDA_CHECK(cuda::LaunchRopeAndStore(q, k, v, rope_cos_dev_, rope_sin_dev_, heads, kv_heads, hd, kv, stream_));
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));
  MOE_CUDA_CHECK(cuda::LaunchPagedAttention(q, heads, kv_heads, hd, scale, kv, attn_.as<float>(), stream_));
  RETURN_IF_ERROR(Project(attn_.as<float>(), T, {{&L.o, o_.as<float>(), D}}));
  if (L.o_bias.ptr != nullptr) {
    MOE_CUDA_CHECK(cuda::LaunchAddBias(o_.as<float>(), T, D, static_cast<const float*>(L.o_bias.ptr), stream_));
  }
  MOE_CUDA_CHECK(cuda::LaunchAdd(x_.as<float>(), o_.as<float>(), T * D, stream_));
  return absl::OkStatus();
}

absl::Status CudaDenseDevice::Moe(int layer, const LayerMats& L, int64_t T) {
  const ModelConfig& c = config_;
  const int64_t D = c.hidden_size, E = c.num_experts, K = c.num_experts_per_tok;
  RETURN_IF_ERROR(Project(h_.as<float>(), T, {{&L.gate, gate_logits_.as<float>(), E}}));
  MOE_CUDA_CHECK(cuda::LaunchGateTopK(gate_logits_.as<float>(), T, static_cast<int>(E), static_cast<int>(K),
                                      c.norm_topk_prob, gate_e_.as<int32_t>(), gate_w_.as<float>(), stream_));
  // The choices to the host (the backend plans the dispatch with them), and
  // the rows too unless the backend takes them in device memory.
  const bool device_rows = experts_->AcceptsDeviceRows();
  int32_t* experts_host = choice_host_.as<int32_t>();
  float* weights_host = reinterpret_cast<float*>(experts_host + T * K);
  if (!device_rows) {
    MOE_CUDA_CHECK(
        cudaMemcpyAsync(h_host_.get(), h_.get(), T * D * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  }
  MOE_CUDA_CHECK(cudaMemcpyAsync(experts_host, gate_e_.get(), T * K * sizeof(int32_t), cudaMemcpyDeviceToHost,
                                 stream_));
  MOE_CUDA_CHECK(cudaMemcpyAsync(weights_host, gate_w_.get(), T * K * sizeof(float), cudaMemcpyDeviceToHost,
                                 stream_));
  MOE_CUDA_CHECK(cudaEventRecord(host_done_, stream_));
  // The shared expert (Qwen2-MoE) runs on the GPU while the routed experts run.
  const bool shared = c.shared_expert_intermediate_size > 0;
  if (shared) {
    RETURN_IF_ERROR(SwiGlu(L.shared_expert, h_.as<float>(), T, o_.as<float>()));
    if (c.shared_expert_gate) {
      RETURN_IF_ERROR(Project(h_.as<float>(), T, {{&L.shared_expert_gate, shared_gate_.as<float>(), 1}}));
    }
  }
  MOE_CUDA_CHECK(cudaEventSynchronize(host_done_));
  {
    std::vector<uint64_t> counts(E, 0);
    for (int64_t i = 0; i < T * K; ++i) ++counts[experts_host[i]];
    std::atomic<uint64_t>* row = &expert_tokens_[static_cast<int64_t>(layer) * E];
    for (int64_t e = 0; e < E; ++e) {
      if (counts[e] != 0) row[e].fetch_add(counts[e], std::memory_order_relaxed);
    }
  }
  ExpertBatch eb;
  eb.layer = layer;
  eb.num_tokens = T;
  eb.top_k = static_cast<int>(K);
  eb.hidden = D;
  eb.experts = experts_host;
  eb.weights = weights_host;
  if (device_rows) {
    // The shared expert above reads h_ too: the backend orders its work after
    // the stream's (device_stream), and its outputs are written on return.
    eb.device_hidden_states = h_.as<float>();
    eb.device_outputs = expert_out_.as<float>();
    eb.device_stream = stream_;
    RETURN_IF_ERROR(experts_->Compute(eb, nullptr));
  } else {
    eb.hidden_states = h_host_.as<float>();
    RETURN_IF_ERROR(experts_->Compute(eb, expert_out_host_.as<float>()));
    MOE_CUDA_CHECK(cudaMemcpyAsync(expert_out_.get(), expert_out_host_.get(), T * K * D * sizeof(float),
                                   cudaMemcpyHostToDevice, stream_));
  }
  MOE_CUDA_CHECK(cuda::LaunchCombine(x_.as<float>(), T, D, static_cast<int>(K), gate_w_.as<float>(),
                                     expert_out_.as<float>(), shared ? o_.as<float>() : nullptr,
                                     shared && c.shared_expert_gate ? shared_gate_.as<float>() : nullptr, stream_));
  return absl::OkStatus();
}

absl::Status CudaDenseDevice::Run(absl::Span<const SequenceInput> batch, int64_t T, std::vector<float>* logits) {
  const ModelConfig& c = config_;
  const int64_t D = c.hidden_size, half = c.head_dim / 2;
  MOE_CUDA_CHECK(cudaSetDevice(ordinal_));
  const std::vector<int64_t> rows = LogitRows(batch);
  const int64_t R = static_cast<int64_t>(rows.size());
  // Metadata, one upload: ints [tokens T | positions T | table start T |
  // tables | logit rows R], then floats [rope cos T*half | rope sin T*half].
  int64_t table_ints = 0;
  for (const SequenceInput& in : batch) table_ints += static_cast<int64_t>(in.kv->blocks().size());
  const int64_t ints = 3 * T + table_ints + R;
  const int64_t floats_at = (ints * 4 + 15) / 16 * 16;
  const int64_t meta_bytes = floats_at + 2 * T * half * static_cast<int64_t>(sizeof(float));
  RETURN_IF_ERROR(Reserve(T, R, meta_bytes));
  int32_t* tokens = meta_host_.as<int32_t>();
  int32_t* pos = tokens + T;
  int32_t* table_at = pos + T;
  int32_t* tables = table_at + T;
  int32_t* rows_host = tables + table_ints;
  float* rope_cos = reinterpret_cast<float*>(meta_host_.data() + floats_at);
  float* rope_sin = rope_cos + T * half;
  int64_t t = 0, table_next = 0;
  for (const SequenceInput& in : batch) {
    const std::vector<int32_t>& blocks = in.kv->blocks();
    std::copy(blocks.begin(), blocks.end(), tables + table_next);
    for (size_t i = 0; i < in.tokens.size(); ++i, ++t) {
      tokens[t] = in.tokens[i];
      pos[t] = static_cast<int32_t>(in.kv->length() + static_cast<int64_t>(i));
      table_at[t] = static_cast<int32_t>(table_next);
      RopeRow(inv_freq_, pos[t], rope_cos + t * half, rope_sin + t * half);
    }
    table_next += static_cast<int64_t>(blocks.size());
  }
  for (int64_t r = 0; r < R; ++r) rows_host[r] = static_cast<int32_t>(rows[r]);
  MOE_CUDA_CHECK(cudaMemcpyAsync(meta_.get(), meta_host_.get(), static_cast<size_t>(meta_bytes),
                                 cudaMemcpyHostToDevice, stream_));
  const int32_t* meta = meta_.as<int32_t>();
  rows_dev_ = meta + 3 * T + table_ints;
  rope_cos_dev_ = reinterpret_cast<const float*>(meta_.as<char>() + floats_at);
  rope_sin_dev_ = rope_cos_dev_ + T * half;

  KvCache& cache = batch[0].kv->cache();
  cuda::PagedKv kv;
  kv.cache = cache.keys(0, 0);
  kv.tables = meta + 3 * T;
  kv.token_table = meta + 2 * T;
  kv.token_pos = meta + T;
  kv.num_tokens = T;
  kv.block_size = cache.block_size();
  kv.kv_dim = c.kv_dim();
  kv.block_stride = static_cast<int64_t>(c.num_hidden_layers) * 2 * kv.block_size * kv.kv_dim;

  MOE_CUDA_CHECK(cuda::LaunchEmbed(embedding_.ptr, embedding_.type, meta, T, D, x_.as<float>(), stream_));
  for (int layer = 0; layer < c.num_hidden_layers; ++layer) {
    const LayerMats& L = layers_[layer];
    RETURN_IF_ERROR(Attention(layer, L, kv, T));
    MOE_CUDA_CHECK(cuda::LaunchRmsNorm(x_.as<float>(), nullptr, T, D,
                                       static_cast<const float*>(L.post_attention_norm.ptr), c.rms_norm_eps,
                                       h_.as<float>(), stream_));
    if (L.moe) {
      RETURN_IF_ERROR(Moe(layer, L, T));
    } else {  // a dense MLP layer
      RETURN_IF_ERROR(SwiGlu(L.mlp, h_.as<float>(), T, o_.as<float>()));
      MOE_CUDA_CHECK(cuda::LaunchAdd(x_.as<float>(), o_.as<float>(), T * D, stream_));
    }
  }
  if (R > 0) {
    MOE_CUDA_CHECK(cuda::LaunchRmsNorm(x_.as<float>(), rows_dev_, R, D, static_cast<const float*>(final_norm_.ptr),
                                       c.rms_norm_eps, h_.as<float>(), stream_));
    RETURN_IF_ERROR(Project(h_.as<float>(), R, {{&lm_head_, logits_.as<float>(), c.vocab_size}}));
    MOE_CUDA_CHECK(cudaMemcpyAsync(logits_host_.get(), logits_.get(), R * c.vocab_size * sizeof(float),
                                   cudaMemcpyDeviceToHost, stream_));
  }
  MOE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  logits->resize(static_cast<size_t>(R * c.vocab_size));
  if (R > 0) std::memcpy(logits->data(), logits_host_.get(), logits->size() * sizeof(float));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<DenseDevice>> MakeCudaDenseDevice(const DenseModel* model, ExpertBackend* experts,
                                                                 int ordinal) {
  return CudaDenseDevice::Create(model, experts, ordinal);
}

absl::StatusOr<double> MeasureDeviceCopyBandwidth(int ordinal, int64_t bytes) {
  RETURN_IF_ERROR(CudaDeviceUsable(ordinal));
  if (bytes < (int64_t{1} << 20) || bytes > (int64_t{16} << 30)) {
    return absl::InvalidArgumentError(absl::StrCat("copy bandwidth: ", bytes, " bytes is outside [1 MiB, 16 GiB]"));
  }
  MOE_CUDA_CHECK(cudaSetDevice(ordinal));
  DeviceBuffer from, to;
  RETURN_IF_ERROR(from.Reserve(static_cast<size_t>(bytes)));
  RETURN_IF_ERROR(to.Reserve(static_cast<size_t>(bytes)));
  MOE_CUDA_CHECK(cudaMemset(from.get(), 1, static_cast<size_t>(bytes)));
  cudaEvent_t start = nullptr, stop = nullptr;
  MOE_CUDA_CHECK(cudaEventCreate(&start));
  MOE_CUDA_CHECK(cudaEventCreate(&stop));
  double best = 0;
  absl::Status st;
  for (int rep = 0; rep < 6 && st.ok(); ++rep) {
    st = [&]() -> absl::Status {
      MOE_CUDA_CHECK(cudaEventRecord(start));
      MOE_CUDA_CHECK(cudaMemcpy(to.get(), from.get(), static_cast<size_t>(bytes), cudaMemcpyDeviceToDevice));
      MOE_CUDA_CHECK(cudaEventRecord(stop));
      MOE_CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0;
      MOE_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      if (rep > 0 && ms > 0) best = std::max(best, 2.0 * static_cast<double>(bytes) / (ms * 1e-3));
      return absl::OkStatus();
    }();
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  RETURN_IF_ERROR(st);
  return best;
}

}  // namespace moe
