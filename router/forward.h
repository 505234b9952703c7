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
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/expert_backend.h"
#include "core/thread_pool.h"
#include "router/dense_model.h"
#include "router/dense_device.h"
#include "router/kv_cache.h"

namespace moe {

// The CPU DenseDevice.
class ForwardPass : public DenseDevice {
 public:
  // `model`, `experts` and `pool` must outlive the forward pass; `pool` may be null.
  ForwardPass(const DenseModel* model, ExpertBackend* experts, ThreadPool* pool);

  const ModelConfig& config() const override { return config_; }
  std::string name() const override { return "cpu"; }
  // Host-memory pages.
  absl::StatusOr<std::unique_ptr<KvCache>> CreateKvCache(const KvCacheOptions& options) override {
    return KvCache::Create(config_, options);
  }
  // See DenseDevice::Forward.
  absl::Status Forward(absl::Span<const SequenceInput> batch, std::vector<float>* logits) override;
  // The gate's top-k choices, one count per token and rank. Thread-safe.
  std::vector<uint64_t> ExpertTokenCounts() const override;

 private:
  // The pass, stage by stage (after CheckBatchInvariants and ReserveBatchKv,
  // router/dense_device.h). T is the batch's new tokens; x_ is the residual
  // stream [T, hidden], h_ its normed copy.
  // x_[T, hidden] = the tokens' embeddings; positions and RoPE tables [T, head_dim / 2].
  void Embed(absl::Span<const SequenceInput> batch, int64_t T);
  // x_ += o_proj(attention(norm(x_))) over each sequence's paged K/V, after
  // appending the new keys and values.
  void AttentionBlock(int layer, absl::Span<const SequenceInput> batch, int64_t T);
  // attn_[T, q_dim] = paged attention of q_ (core/attention.h); a work item
  // is a few consecutive tokens of one sequence and one KV head's query heads.
  void Attention(int layer, absl::Span<const SequenceInput> batch);
  // q_[T, q_dim], k_ and v_[T, kv_dim] of h_: projections, biases, q/k norm, clipping.
  void QkvProjections(int layer, int64_t T);
  // x_ += ffn(norm(x_)): Ffn below after the post-attention norm.
  absl::Status FfnBlock(int layer, int64_t T);
  // x_ += the layer's FFN block of h_: gate, routed experts through the
  // backend, combine (+ shared expert) in MoE layers; the dense MLP otherwise.
  absl::Status Ffn(int layer, int64_t T);
  absl::Status MoE(int layer, int64_t T);
  // logits[R, vocab] = lm_head(final_norm(x_)) of the rows that need logits.
  void LmHead(absl::Span<const SequenceInput> batch, std::vector<float>* logits);

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
  std::vector<std::pair<int64_t, int64_t>> attn_blocks_;  // attention's token blocks [begin, end)
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
