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

// out[i * head_dim ...] = attention of query i (q + i * head_dim, i <
// num_q) over positions 0..n-1 (n >= 1) of `kv`, scores scaled by `scale`:
// the query heads of a grouped-query group, which share one KV head, in one
// pass over its keys and values. `scores` is scratch of at least num_q * n
// floats. Each query's result is bit for bit what it gives alone.
void PagedAttentionHeads(const float* q, int64_t num_q, int64_t head_dim, int64_t n, const PagedKvHead& kv,
                         float scale, float* scores, float* out);

// One query head: PagedAttentionHeads with num_q = 1.
inline void PagedAttentionHead(const float* q, int64_t head_dim, int64_t n, const PagedKvHead& kv, float scale,
                               float* scores, float* out) {
  PagedAttentionHeads(q, 1, head_dim, n, kv, scale, scores, out);
}

}  // namespace moe

#endif  // MOE_CORE_ATTENTION_H_
