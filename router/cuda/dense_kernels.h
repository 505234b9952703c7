// The CUDA kernels of the router's dense model (router/cuda/dense_kernels.cu),
// each launched on a caller's stream; CudaDenseDevice (cuda_dense_device.cc)
// strings them together with cuBLAS GEMMs. Element math follows the CPU
// forward pass (router/forward.cc) operation by operation where it can
// (RMSNorm's sum in double, RoPE tables from the host, the gate's softmax and
// top-k in double with ties to the lower expert id, the combine in top-k rank
// order); reductions are ordered differently, so results agree with the CPU
// to rounding, not bitwise.
#ifndef MOE_ROUTER_CUDA_DENSE_KERNELS_H_
#define MOE_ROUTER_CUDA_DENSE_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace moe::cuda {

// How a weight matrix is stored on the device (its checkpoint dtype).
enum class Elem { kF32, kBf16, kF16 };

// The largest head_dim the attention kernel takes.
inline constexpr int kMaxHeadDim = 256;

// x[t, :] = f32(table[tokens[t], :]) for t < T; table is [vocab, D] of `type`.
cudaError_t LaunchEmbed(const void* table, Elem type, const int32_t* tokens, int64_t T, int64_t D, float* x,
                        cudaStream_t stream);

// y[i, :] = x[r, :] * rsqrt(mean(x[r, :]^2) + eps) * w, r = rows ? rows[i] : i,
// for i < m rows of d floats; the sum of squares in double. x and y may alias
// when rows is null.
cudaError_t LaunchRmsNorm(const float* x, const int32_t* rows, int64_t m, int64_t d, const float* w, double eps,
                          float* y, cudaStream_t stream);

// rows[i, :] += bias for m rows of n floats.
cudaError_t LaunchAddBias(float* rows, int64_t m, int64_t n, const float* bias, cudaStream_t stream);

// x = clamp(x, -limit, limit) over n floats.
cudaError_t LaunchClamp(float* x, int64_t n, float limit, cudaStream_t stream);

// x += y over n floats.
cudaError_t LaunchAdd(float* x, const float* y, int64_t n, cudaStream_t stream);

// Where the new tokens' keys and values go, and where attention reads them.
// KV pages as router/kv_cache.h lays them out: block b, layer l at floats
// (b * layers + l) * 2 * block_size * kv_dim, keys then values.
struct PagedKv {
  float* cache = nullptr;          // the pages (KvPages::data())
  const int32_t* tables = nullptr;  // every sequence's block table, one after the other
  const int32_t* token_table = nullptr;  // [T]: where the token's sequence's table starts in `tables`
  const int32_t* token_pos = nullptr;    // [T]: the token's position
  int64_t num_tokens = 0;
  int64_t layer_offset = 0;  // floats: layer l of block 0
  int64_t block_size = 0;
  int64_t block_stride = 0;  // floats: layers * 2 * block_size * kv_dim
  int64_t kv_dim = 0;
};

// RoPE (rotate-half, with the token's cos/sin tables [T, head_dim / 2],
// computed on the host as the CPU computes them) on q [T, heads * head_dim]
// and k [T, kv_heads * head_dim] in place, then each token's k and v rows
// into its KV slot.
cudaError_t LaunchRopeAndStore(float* q, float* k, const float* v, const float* rope_cos, const float* rope_sin,
                               int heads, int kv_heads, int head_dim, const PagedKv& kv, cudaStream_t stream);

// out[t, h] = causal attention of q[t, h] over positions 0..token_pos[t] of
// the token's sequence (KV head h / (heads / kv_heads)), scores scaled by
// `scale`; online softmax over the positions. head_dim <= kMaxHeadDim.
cudaError_t LaunchPagedAttention(const float* q, int heads, int kv_heads, int head_dim, float scale,
                                 const PagedKv& kv, float* out, cudaStream_t stream);

// The MoE gate: softmax of logits [T, E] in double, the top k (ties to the
// lower expert id) in rank order, weights renormalised over the top k when
// `norm_topk`; experts and weights [T, k].
cudaError_t LaunchGateTopK(const float* logits, int64_t T, int E, int k, bool norm_topk, int32_t* experts,
                           float* weights, cudaStream_t stream);

// act[r, j] = SiluMul(gu[r, j], gu[r, f + j]) (experts/ffn_math.h), gu [rows, 2f].
cudaError_t LaunchSiluMulF32(const float* gu, int64_t rows, int64_t f, float* act, cudaStream_t stream);

// x[t, d] += (sum_j weights[t, j] * expert_out[t * k + j, d]) + s_t * shared[t, d]
// with the sum in rank order; s_t = sigmoid(shared_gate[t]) when shared_gate
// is given, else 1; no shared term when shared is null.
cudaError_t LaunchCombine(float* x, int64_t T, int64_t D, int k, const float* weights, const float* expert_out,
                          const float* shared, const float* shared_gate, cudaStream_t stream);

// dst[r, :] = src[index[r], :] for r < n rows of D floats.
cudaError_t LaunchGatherRows(const float* src, const int32_t* index, int64_t n, int64_t D, float* dst,
                             cudaStream_t stream);
// dst[index[r], :] = src[r, :] for r < n rows of D floats (indices distinct).
cudaError_t LaunchScatterRows(const float* src, const int32_t* index, int64_t n, int64_t D, float* dst,
                              cudaStream_t stream);

}  // namespace moe::cuda

#endif  // MOE_ROUTER_CUDA_DENSE_KERNELS_H_
