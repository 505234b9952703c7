// Paged attention for one query head: the attention kernel of the CPU dense
// model, under the reduction-order contract of core/kernels.h.
//
// Keys and values of positions 0..n-1 live in fixed-size blocks listed by a
// block table (router/kv_cache.h); the kernel visits them block by block in
// position order with the same operations in the same order as over one
// contiguous [n, row_stride] array, so the block size and which blocks hold a
// sequence never change a bit of the result:
//   s_p = Dot(q, k_p) * scale             (Dot: the canonical dot product)
//   m = max_p s_p;  e_p = exp(s_p - m);  z = ((0 + e_0) + e_1) + ...
//   out[d] = (((0 + e_0 v_0[d]) + e_1 v_1[d]) + ...) * (1 / z)
// each term one multiply and one add in position order (no contraction).
#ifndef MOE_CORE_ATTENTION_H_
#define MOE_CORE_ATTENTION_H_

#include <cstdint>

namespace moe {

// One layer's keys and values of one KV head, paged. Position p's key is the
// head_dim floats at
//   base + table[p / block_size] * block_stride + (p % block_size) * row_stride
// and its value the head_dim floats value_offset after that.
struct PagedKvHead {
  const float* base = nullptr;  // block 0's first key row, this head's columns
  const int32_t* table = nullptr;
  int64_t block_size = 0;
  int64_t block_stride = 0;  // floats from one block to the next
  int64_t row_stride = 0;    // floats from one position to the next in a block
  int64_t value_offset = 0;  // floats from a key row to the value row of its position
};

// Attention for `num_tokens` consecutive positions of one sequence and the
// `num_heads` query heads that share one KV head (a grouped-query group), in
// one pass over that head's keys and values. Query (b, g), b < num_tokens, g
// < num_heads, is the head_dim floats at q + (b * num_heads + g) * head_dim;
// it attends to positions 0..n+b-1 of `kv` (n >= 1: the first token's count,
// its own position included), with scores scaled by `scale`; its output goes
// to the same offset of `out`. `scores` is scratch of at least num_tokens *
// num_heads * (n + num_tokens - 1) floats. Each query's result is bit for bit
// what it gives alone.
void PagedAttention(const float* q, int64_t num_tokens, int64_t num_heads, int64_t head_dim, int64_t n,
                    const PagedKvHead& kv, float scale, float* scores, float* out);

// One query head at one position: PagedAttention of one query.
inline void PagedAttentionHead(const float* q, int64_t head_dim, int64_t n, const PagedKvHead& kv, float scale,
                               float* scores, float* out) {
  PagedAttention(q, 1, 1, head_dim, n, kv, scale, scores, out);
}

}  // namespace moe

#endif  // MOE_CORE_ATTENTION_H_
