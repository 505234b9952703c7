// ForwardPass: the batched forward pass of a MoE transformer on the CPU.
//
// One call runs the new tokens of several sequences as one batch: every
// matrix multiply sees all rows at once, every MoE layer makes one call to the
// ExpertBackend for the whole batch. Per-row results do not depend on the
// batch (see core/kernels.h), so a sequence's logits are bitwise identical
// alone or batched, prefilled at once or token by token.
//
// Ownership: the caller owns the SequenceKv objects; the forward pass owns its
// scratch buffers. Thread-safety: one caller at a time (the engine thread).
#ifndef MOE_ROUTER_FORWARD_H_
#define MOE_ROUTER_FORWARD_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/expert_backend.h"
#include "core/thread_pool.h"
#include "router/dense_model.h"

namespace moe {

// The key/value cache of one sequence: for each layer, [length, kv_dim] keys
// and values, contiguous.
class SequenceKv {
 public:
  explicit SequenceKv(const ModelConfig& config);
  int64_t length() const { return length_; }
  // Drops every position from `length` on (length <= this->length()).
  void Truncate(int64_t length);

 private:
  friend class ForwardPass;
  int64_t kv_dim_;
  int64_t length_ = 0;
  std::vector<std::vector<float>> k_, v_;  // per layer
};

struct SequenceInput {
  SequenceKv* kv = nullptr;
  absl::Span<const int32_t> tokens;  // new tokens, appended at kv->length()
  bool all_logits = false;           // logits for every new token, not only the last
};

class ForwardPass {
 public:
  // `model`, `experts` and `pool` must outlive the forward pass; `pool` may be null.
  ForwardPass(const DenseModel* model, ExpertBackend* experts, ThreadPool* pool);

  // Runs the batch and appends to each sequence's cache. `logits` receives, for
  // each sequence in order, vocab_size floats for its last new token (or one
  // row per new token with all_logits). INVALID_ARGUMENT for a token id outside
  // the vocabulary or a sequence past max_position_embeddings; nothing is
  // appended then.
  absl::Status Forward(absl::Span<const SequenceInput> batch, std::vector<float>* logits);

 private:
  void Attention(int layer, absl::Span<const SequenceInput> batch);
  absl::Status MoE(int layer, int64_t num_tokens);

  const DenseModel* model_;
  const ModelConfig& config_;
  ExpertBackend* experts_;
  ThreadPool* pool_;
  std::vector<double> inv_freq_;

  // Per-call scratch, [tokens, ...].
  std::vector<int32_t> token_seq_;   // which sequence each row belongs to
  std::vector<int64_t> token_pos_;   // its position
  std::vector<float> x_, h_, q_, k_, v_, attn_, o_, gate_logits_, gate_w_, expert_out_;
  std::vector<int32_t> gate_e_;
  std::vector<float> rope_cos_, rope_sin_;  // [tokens, head_dim / 2]
};

// Log-softmax of one row of logits, in double precision.
std::vector<double> LogSoftmax(absl::Span<const float> logits);

}  // namespace moe

#endif  // MOE_ROUTER_FORWARD_H_
