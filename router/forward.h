// ForwardPass: the batched forward pass of a MoE transformer on the CPU.
//
// One call runs the new tokens of several sequences as one batch: every
// matrix multiply sees all rows at once, every MoE layer makes one call to the
// ExpertBackend for the whole batch. Per-row results do not depend on the
// batch (see core/kernels.h), so a sequence's logits are bitwise identical
// alone or batched, prefilled at once or token by token.
//
// Keys and values live in a paged KvCache (router/kv_cache.h); attention reads
// a sequence's positions block by block in position order, with the same
// operations in the same order as over a contiguous cache, so the block size
// and which blocks a sequence holds (fresh, shared through the prefix cache,
// recomputed after preemption) never change a result.
//
// Ownership: the caller owns the SequenceKv objects and their caches; the
// forward pass owns its scratch buffers. Thread-safety: one caller at a time
// (the engine thread), except ExpertTokenCounts, which any thread may call.
#ifndef MOE_ROUTER_FORWARD_H_
#define MOE_ROUTER_FORWARD_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/expert_backend.h"
#include "core/thread_pool.h"
#include "router/dense_model.h"
#include "router/kv_cache.h"

namespace moe {

struct SequenceInput {
  SequenceKv* kv = nullptr;
  absl::Span<const int32_t> tokens;  // new tokens, appended at kv->length()
  bool all_logits = false;           // logits for every new token, not only the last
  bool no_logits = false;            // no logits at all (a prefill chunk that does not end the prompt)
};

class ForwardPass {
 public:
  // `model`, `experts` and `pool` must outlive the forward pass; `pool` may be null.
  ForwardPass(const DenseModel* model, ExpertBackend* experts, ThreadPool* pool);

  // Runs the batch and appends to each sequence's cache, reserving the blocks
  // it needs. `logits` receives, for each sequence in order, vocab_size floats
  // for its last new token (one row per new token with all_logits, none with
  // no_logits). INVALID_ARGUMENT for a token id outside the vocabulary or a
  // sequence past max_position_embeddings, RESOURCE_EXHAUSTED when a cache has
  // too few free blocks; nothing is appended then. A sequence must not appear
  // twice in one batch.
  absl::Status Forward(absl::Span<const SequenceInput> batch, std::vector<float>* logits);

  // Tokens routed to each expert so far (the gate's top-k choices, one count
  // per token and rank), [layer * num_experts + expert]. Thread-safe.
  std::vector<uint64_t> ExpertTokenCounts() const;

 private:
  void Attention(int layer, absl::Span<const SequenceInput> batch);
  // q, k, v of the T rows of h_: projections, biases, q/k norm, clipping.
  void QkvProjections(int layer, int64_t num_tokens);
  // x_ += the layer's FFN block (routed experts and shared expert, or the dense MLP) of h_.
  absl::Status Ffn(int layer, int64_t num_tokens);
  absl::Status MoE(int layer, int64_t num_tokens);

  const DenseModel* model_;
  const ModelConfig& config_;
  ExpertBackend* experts_;
  ThreadPool* pool_;
  std::vector<double> inv_freq_;
  // Attention biases of each layer in f32 (empty where the family has none).
  struct Biases {
    std::vector<float> q, k, v, o;
  };
  std::vector<Biases> biases_;
  std::unique_ptr<std::atomic<uint64_t>[]> expert_tokens_;  // [layers * experts]

  // Per-call scratch, [tokens, ...].
  std::vector<int32_t> token_seq_;   // which sequence each row belongs to
  std::vector<int64_t> token_pos_;   // its position
  std::vector<float> x_, h_, q_, k_, v_, attn_, o_, gate_logits_, gate_w_, expert_out_;
  std::vector<int32_t> gate_e_;
  std::vector<float> shared_out_, shared_gate_;  // shared expert / dense MLP output, its gate logit
  FfnScratch ffn_scratch_;
  std::vector<float> rope_cos_, rope_sin_;  // [tokens, head_dim / 2]
};

// Log-softmax of one row of logits, in double precision.
std::vector<double> LogSoftmax(absl::Span<const float> logits);

}  // namespace moe

#endif  // MOE_ROUTER_FORWARD_H_
