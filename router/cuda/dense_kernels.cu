#include "router/cuda/dense_kernels.h"

#include <cuda_fp16.h>

#include "experts/ffn_math.h"

namespace moe::cuda {
namespace {

constexpr int kThreads = 256;

int Blocks(int64_t work) {
  const int64_t b = (work + kThreads - 1) / kThreads;
  return static_cast<int>(b < 1 ? 1 : (b > 65535 ? 65535 : b));
}

template <Elem kType>
__device__ inline float Load(const void* p, int64_t i) {
  if constexpr (kType == Elem::kF32) {
    return static_cast<const float*>(p)[i];
  } else if constexpr (kType == Elem::kBf16) {
    return Bf16ToF32Exact(static_cast<const uint16_t*>(p)[i]);
  } else {
    return __half2float(__ushort_as_half(static_cast<const uint16_t*>(p)[i]));
  }
}

template <Elem kType>
__global__ void EmbedKernel(const void* table, const int32_t* __restrict__ tokens, int64_t T, int64_t D,
                            float* __restrict__ x) {
  const int64_t total = T * D;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t t = i / D, d = i - t * D;
    x[i] = Load<kType>(table, static_cast<int64_t>(tokens[t]) * D + d);
  }
}

// One block per row: the sum of squares in double, reduced over the block.
__global__ void RmsNormKernel(const float* x, const int32_t* __restrict__ rows, int64_t d,
                              const float* __restrict__ w, double eps, float* y) {
  __shared__ double partial[kThreads];
  const int64_t i = blockIdx.x;
  const float* xr = x + (rows != nullptr ? static_cast<int64_t>(rows[i]) : i) * d;
  float* yr = y + i * d;
  double ss = 0;
  for (int64_t k = threadIdx.x; k < d; k += blockDim.x) ss += static_cast<double>(xr[k]) * xr[k];
  partial[threadIdx.x] = ss;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  const float inv = static_cast<float>(1.0 / sqrt(partial[0] / static_cast<double>(d) + eps));
  for (int64_t k = threadIdx.x; k < d; k += blockDim.x) yr[k] = (xr[k] * inv) * w[k];
}

__global__ void AddBiasKernel(float* rows, int64_t m, int64_t n, const float* __restrict__ bias) {
  const int64_t total = m * n;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    rows[i] += bias[i % n];
  }
}

__global__ void ClampKernel(float* x, int64_t n, float limit) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    x[i] = fminf(fmaxf(x[i], -limit), limit);
  }
}

__global__ void AddKernel(float* x, const float* __restrict__ y, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) x[i] += y[i];
}

// Offset of a token's K row (this layer, all KV heads) in the pages.
__device__ inline int64_t KeyRow(const PagedKv& kv, const int32_t* table, int64_t pos) {
  return kv.layer_offset + static_cast<int64_t>(table[pos / kv.block_size]) * kv.block_stride +
         (pos % kv.block_size) * kv.kv_dim;
}

// One block per token.
__global__ void RopeAndStoreKernel(float* q, float* k, const float* __restrict__ v, const float* __restrict__ rope_cos,
                                   const float* __restrict__ rope_sin, int heads, int kv_heads, int head_dim,
                                   PagedKv kv) {
  const int64_t t = blockIdx.x;
  const int half = head_dim / 2;
  const int64_t pos = kv.token_pos[t];
  const float* cos_t = rope_cos + t * half;
  const float* sin_t = rope_sin + t * half;
  const int64_t q_dim = static_cast<int64_t>(heads) * head_dim;
  for (int idx = threadIdx.x; idx < (heads + kv_heads) * half; idx += blockDim.x) {
    const int head = idx / half, j = idx - head * half;
    float* x = head < heads ? q + t * q_dim + static_cast<int64_t>(head) * head_dim
                            : k + t * kv.kv_dim + static_cast<int64_t>(head - heads) * head_dim;
    const float x1 = x[j], x2 = x[j + half];
    x[j] = x1 * cos_t[j] - x2 * sin_t[j];
    x[j + half] = x2 * cos_t[j] + x1 * sin_t[j];
  }
  __syncthreads();  // this token's k rows are rotated
  const int64_t row = KeyRow(kv, kv.tables + kv.token_table[t], pos);
  float* key = kv.cache + row;
  float* value = key + kv.block_size * kv.kv_dim;
  for (int64_t d = threadIdx.x; d < kv.kv_dim; d += blockDim.x) {
    key[d] = k[t * kv.kv_dim + d];
    value[d] = v[t * kv.kv_dim + d];
  }
}

constexpr int kAttnWarps = 8;
constexpr int kDimsPerLane = kMaxHeadDim / 32;

// One block per (token, head); warp w takes positions w, w + 8, ...; each
// lane holds head dims lane, lane + 32, ...; online softmax per warp, then
// the warps' partial results are merged.
__global__ void __launch_bounds__(kAttnWarps * 32)
    PagedAttentionKernel(const float* __restrict__ q, int heads, int kv_heads, int head_dim, float scale,
                         PagedKv kv, float* __restrict__ out) {
  __shared__ float warp_m[kAttnWarps], warp_l[kAttnWarps];
  __shared__ float warp_acc[kAttnWarps][kMaxHeadDim];
  const int64_t t = blockIdx.x / heads;
  const int head = blockIdx.x - static_cast<int>(t) * heads;
  const int kv_head = head / (heads / kv_heads);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t n = static_cast<int64_t>(kv.token_pos[t]) + 1;
  const int32_t* table = kv.tables + kv.token_table[t];
  const int64_t q_dim = static_cast<int64_t>(heads) * head_dim;
  const float* qr = q + t * q_dim + static_cast<int64_t>(head) * head_dim;
  float qv[kDimsPerLane], acc[kDimsPerLane];
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    qv[i] = d < head_dim ? qr[d] : 0.0f;
    acc[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int64_t p = warp; p < n; p += kAttnWarps) {
    const float* key = kv.cache + KeyRow(kv, table, p) + static_cast<int64_t>(kv_head) * head_dim;
    const float* value = key + kv.block_size * kv.kv_dim;
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      if (d < head_dim) s += qv[i] * key[d];
    }
#pragma unroll
    for (int off = 16; off > 0; off /= 2) s += __shfl_xor_sync(0xffffffffu, s, off);
    s *= scale;
    const float m_new = fmaxf(m, s);
    const float correction = expf(m - m_new);
    const float e = expf(s - m_new);
    l = l * correction + e;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      if (d < head_dim) acc[i] = acc[i] * correction + e * value[d];
    }
    m = m_new;
  }
  if (lane == 0) {
    warp_m[warp] = m;
    warp_l[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    if (d < head_dim) warp_acc[warp][d] = acc[i];
  }
  __syncthreads();
  float mx = -INFINITY;
  for (int w = 0; w < kAttnWarps; ++w) {
    if (warp_l[w] > 0.0f) mx = fmaxf(mx, warp_m[w]);
  }
  float z = 0.0f;
  for (int w = 0; w < kAttnWarps; ++w) {
    if (warp_l[w] > 0.0f) z += warp_l[w] * expf(warp_m[w] - mx);
  }
  float* o = out + t * q_dim + static_cast<int64_t>(head) * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float sum = 0.0f;
    for (int w = 0; w < kAttnWarps; ++w) {
      if (warp_l[w] > 0.0f) sum += warp_acc[w][d] * expf(warp_m[w] - mx);
    }
    o[d] = sum * (1.0f / z);
  }
}

// One thread per token. Picks are made in (probability desc, id asc) order
// without marking: the j-th pick is the best expert ordered after pick j-1.
__global__ void GateTopKKernel(const float* __restrict__ logits, int64_t T, int E, int k, bool norm_topk,
                               int32_t* __restrict__ experts, float* __restrict__ weights) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= T) return;
  const float* g = logits + t * E;
  double mx = g[0];
  for (int e = 1; e < E; ++e) mx = fmax(mx, static_cast<double>(g[e]));
  double sum = 0;
  for (int e = 0; e < E; ++e) sum += exp(static_cast<double>(g[e]) - mx);
  double prev_p = 0;
  int prev_e = -1;
  double top_sum = 0;
  for (int j = 0; j < k; ++j) {
    int best = -1;
    double best_p = 0;
    for (int e = 0; e < E; ++e) {
      const double p = exp(static_cast<double>(g[e]) - mx) / sum;
      const bool after_prev = prev_e < 0 || p < prev_p || (p == prev_p && e > prev_e);
      if (after_prev && (best < 0 || p > best_p)) {
        best = e;
        best_p = p;
      }
    }
    experts[t * k + j] = best;
    weights[t * k + j] = static_cast<float>(best_p);  // the probability, until normalised below
    top_sum += best_p;
    prev_p = best_p;
    prev_e = best;
  }
  for (int j = 0; j < k; ++j) {
    const int e = experts[t * k + j];
    const double p = exp(static_cast<double>(g[e]) - mx) / sum;
    weights[t * k + j] = static_cast<float>(norm_topk ? p / top_sum : p);
  }
}

__global__ void SiluMulF32Kernel(const float* __restrict__ gu, int64_t rows, int64_t f, float* __restrict__ act) {
  const int64_t total = rows * f;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t r = i / f, j = i - r * f;
    const float* row = gu + r * 2 * f;
    act[i] = SiluMul(row[j], row[f + j]);
  }
}

__global__ void CombineKernel(float* x, int64_t T, int64_t D, int k, const float* __restrict__ weights,
                              const float* __restrict__ expert_out, const float* __restrict__ shared,
                              const float* __restrict__ shared_gate) {
  const int64_t total = T * D;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t t = i / D, d = i - t * D;
    float acc = 0.0f;
    for (int j = 0; j < k; ++j) acc += weights[t * k + j] * expert_out[(t * k + j) * D + d];
    if (shared != nullptr) {
      const float s = shared_gate != nullptr ? 1.0f / (1.0f + expf(-shared_gate[t])) : 1.0f;
      acc += s * shared[i];
    }
    x[i] += acc;
  }
}

__global__ void GatherRowsKernel(const float* __restrict__ src, const int32_t* __restrict__ index, int64_t n,
                                 int64_t D, float* __restrict__ dst) {
  const int64_t total = n * D;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t r = i / D, d = i - r * D;
    dst[i] = src[static_cast<int64_t>(index[r]) * D + d];
  }
}

__global__ void ScatterRowsKernel(const float* __restrict__ src, const int32_t* __restrict__ index, int64_t n,
                                  int64_t D, float* __restrict__ dst) {
  const int64_t total = n * D;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t r = i / D, d = i - r * D;
    dst[static_cast<int64_t>(index[r]) * D + d] = src[i];
  }
}

}  // namespace

cudaError_t LaunchGatherRows(const float* src, const int32_t* index, int64_t n, int64_t D, float* dst,
                             cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  GatherRowsKernel<<<Blocks(n * D), kThreads, 0, stream>>>(src, index, n, D, dst);
  return cudaGetLastError();
}

cudaError_t LaunchScatterRows(const float* src, const int32_t* index, int64_t n, int64_t D, float* dst,
                              cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  ScatterRowsKernel<<<Blocks(n * D), kThreads, 0, stream>>>(src, index, n, D, dst);
  return cudaGetLastError();
}

cudaError_t LaunchEmbed(const void* table, Elem type, const int32_t* tokens, int64_t T, int64_t D, float* x,
                        cudaStream_t stream) {
  if (T <= 0) return cudaSuccess;
  switch (type) {
    case Elem::kF32:
      EmbedKernel<Elem::kF32><<<Blocks(T * D), kThreads, 0, stream>>>(table, tokens, T, D, x);
      break;
    case Elem::kBf16:
      EmbedKernel<Elem::kBf16><<<Blocks(T * D), kThreads, 0, stream>>>(table, tokens, T, D, x);
      break;
    case Elem::kF16:
      EmbedKernel<Elem::kF16><<<Blocks(T * D), kThreads, 0, stream>>>(table, tokens, T, D, x);
      break;
  }
  return cudaGetLastError();
}

cudaError_t LaunchRmsNorm(const float* x, const int32_t* rows, int64_t m, int64_t d, const float* w, double eps,
                          float* y, cudaStream_t stream) {
  if (m <= 0) return cudaSuccess;
  RmsNormKernel<<<static_cast<unsigned>(m), kThreads, 0, stream>>>(x, rows, d, w, eps, y);
  return cudaGetLastError();
}

cudaError_t LaunchAddBias(float* rows, int64_t m, int64_t n, const float* bias, cudaStream_t stream) {
  if (m <= 0 || n <= 0) return cudaSuccess;
  AddBiasKernel<<<Blocks(m * n), kThreads, 0, stream>>>(rows, m, n, bias);
  return cudaGetLastError();
}

cudaError_t LaunchClamp(float* x, int64_t n, float limit, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  ClampKernel<<<Blocks(n), kThreads, 0, stream>>>(x, n, limit);
  return cudaGetLastError();
}

cudaError_t LaunchAdd(float* x, const float* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  AddKernel<<<Blocks(n), kThreads, 0, stream>>>(x, y, n);
  return cudaGetLastError();
}

cudaError_t LaunchRopeAndStore(float* q, float* k, const float* v, const float* rope_cos, const float* rope_sin,
                               int heads, int kv_heads, int head_dim, const PagedKv& kv, cudaStream_t stream) {
  if (kv.num_tokens <= 0) return cudaSuccess;
  if (head_dim > kMaxHeadDim || head_dim % 2 != 0) return cudaErrorInvalidValue;
  RopeAndStoreKernel<<<static_cast<unsigned>(kv.num_tokens), 128, 0, stream>>>(q, k, v, rope_cos, rope_sin, heads,
                                                                               kv_heads, head_dim, kv);
  return cudaGetLastError();
}

cudaError_t LaunchPagedAttention(const float* q, int heads, int kv_heads, int head_dim, float scale,
                                 const PagedKv& kv, float* out, cudaStream_t stream) {
  if (kv.num_tokens <= 0) return cudaSuccess;
  if (head_dim > kMaxHeadDim || kv_heads <= 0 || heads % kv_heads != 0) return cudaErrorInvalidValue;
  const int64_t blocks = kv.num_tokens * heads;
  if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
  PagedAttentionKernel<<<static_cast<unsigned>(blocks), kAttnWarps * 32, 0, stream>>>(q, heads, kv_heads, head_dim,
                                                                                     scale, kv, out);
  return cudaGetLastError();
}

cudaError_t LaunchGateTopK(const float* logits, int64_t T, int E, int k, bool norm_topk, int32_t* experts,
                           float* weights, cudaStream_t stream) {
  if (T <= 0) return cudaSuccess;
  const int threads = 64;
  GateTopKKernel<<<static_cast<unsigned>((T + threads - 1) / threads), threads, 0, stream>>>(
      logits, T, E, k, norm_topk, experts, weights);
  return cudaGetLastError();
}

cudaError_t LaunchSiluMulF32(const float* gu, int64_t rows, int64_t f, float* act, cudaStream_t stream) {
  if (rows <= 0 || f <= 0) return cudaSuccess;
  SiluMulF32Kernel<<<Blocks(rows * f), kThreads, 0, stream>>>(gu, rows, f, act);
  return cudaGetLastError();
}

cudaError_t LaunchCombine(float* x, int64_t T, int64_t D, int k, const float* weights, const float* expert_out,
                          const float* shared, const float* shared_gate, cudaStream_t stream) {
  if (T <= 0) return cudaSuccess;
  CombineKernel<<<Blocks(T * D), kThreads, 0, stream>>>(x, T, D, k, weights, expert_out, shared, shared_gate);
  return cudaGetLastError();
}

}  // namespace moe::cuda
