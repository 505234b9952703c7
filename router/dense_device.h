// DenseDevice: where the dense part of the model computes (embeddings,
// attention over the paged KV cache, norms, MoE gates and combine, lm_head).
// The engine keeps scheduling, block tables and sampling; a device keeps the
// weights, the KV pages and the kernels. ForwardPass (router/forward.h) is the
// CPU device; a GPU one implements the same interface, and the engine does not
// change.
//
// Contract (what the engine relies on): Forward runs a batch of sequences'
// new tokens; a sequence's logits do not depend on the batch (bitwise), nor on
// how its prompt was chunked or which KV blocks hold it; a failure appends
// nothing to any sequence. Thread-safety: Forward and CreateKvCache from one
// thread (the engine's); ExpertTokenCounts from any.
#ifndef MOE_ROUTER_DENSE_DEVICE_H_
#define MOE_ROUTER_DENSE_DEVICE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/model_config.h"
#include "router/kv_cache.h"

namespace moe {

struct SequenceInput {
  SequenceKv* kv = nullptr;
  absl::Span<const int32_t> tokens;  // new tokens, appended at kv->length()
  bool all_logits = false;           // logits for every new token, not only the last
  bool no_logits = false;            // no logits at all (a prefill chunk that does not end the prompt)
};

class DenseDevice {
 public:
  virtual ~DenseDevice() = default;

  virtual const ModelConfig& config() const = 0;
  // "cpu", "cuda:0", ... for logs.
  virtual std::string name() const = 0;

  // A KV cache whose pages (KvPages) live where this device computes: host
  // memory for the CPU, device memory for a GPU. The engine allocates blocks
  // in it and hands them back in SequenceInput::kv.
  virtual absl::StatusOr<std::unique_ptr<KvCache>> CreateKvCache(const KvCacheOptions& options) = 0;

  // Runs the batch and appends to each sequence's cache, reserving the blocks
  // it needs. `logits` receives, for each sequence in order, vocab_size floats
  // for its last new token (one row per new token with all_logits, none with
  // no_logits). RESOURCE_EXHAUSTED when a cache has too few free blocks;
  // INTERNAL for a broken invariant (a token id outside the vocabulary, a
  // position past the context: the engine validates requests). Nothing is
  // appended on failure. A sequence must not appear twice in one batch.
  virtual absl::Status Forward(absl::Span<const SequenceInput> batch, std::vector<float>* logits) = 0;

  // Tokens routed to each expert so far, [layer * num_experts + expert].
  virtual std::vector<uint64_t> ExpertTokenCounts() const = 0;
};

// What every device does the same way (router/dense_device.cc).

// The batch's new tokens in `num_tokens`; INTERNAL when an invariant the
// engine guarantees is broken (ids in the vocabulary, positions in the
// context, no write into a shared block).
absl::Status CheckBatchInvariants(const ModelConfig& config, absl::Span<const SequenceInput> batch,
                                  int64_t* num_tokens);
// KV blocks for every new position, all or nothing (RESOURCE_EXHAUSTED).
absl::Status ReserveBatchKv(absl::Span<const SequenceInput> batch);
// The batch rows (indices into its new tokens) whose logits Forward returns:
// each sequence's last new token, every one with all_logits, none with no_logits.
std::vector<int64_t> LogitRows(absl::Span<const SequenceInput> batch);
// RoPE's inverse frequencies, theta^(-2i / head_dim) for i < head_dim / 2, in double.
std::vector<double> RopeInverseFrequencies(const ModelConfig& config);
// cos and sin of pos * inv_freq[i] (in double, rounded to f32), for every i.
void RopeRow(const std::vector<double>& inv_freq, int64_t pos, float* cos, float* sin);

}  // namespace moe

#endif  // MOE_ROUTER_DENSE_DEVICE_H_
