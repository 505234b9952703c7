// ExpertBackend: how the dense forward pass reaches the routed experts of a
// MoE layer. The in-process implementation lives in expert_worker/; the
// remote one (gRPC to expert-worker processes) implements the same interface.
//
// Contract: the backend returns one output row per (token, rank) choice,
// unweighted; the caller combines them in top-k rank order so that the result
// does not depend on which worker computed what.
#ifndef MOE_CORE_EXPERT_BACKEND_H_
#define MOE_CORE_EXPERT_BACKEND_H_

#include <cstdint>

#include "absl/status/status.h"

namespace moe {

// The rows of one MoE layer for a batch of tokens.
struct ExpertBatch {
  int layer = 0;
  int64_t num_tokens = 0;
  int top_k = 0;
  int64_t hidden = 0;
  const float* hidden_states = nullptr;  // [num_tokens, hidden], post-attention-normed
  const int32_t* experts = nullptr;      // [num_tokens, top_k], in rank order
  const float* weights = nullptr;        // [num_tokens, top_k], gate weights (for remote combine)
  // Set by a GPU dense device for a backend that AcceptsDeviceRows: the same
  // rows in its device memory (hidden_states is then null), where to write
  // the outputs on the device ([num_tokens * top_k, hidden]; Compute's host
  // `outputs` is then null), and the device's stream (a cudaStream_t) the
  // rows are ready on. The outputs must be written when Compute returns.
  const float* device_hidden_states = nullptr;
  float* device_outputs = nullptr;
  void* device_stream = nullptr;
};

class ExpertBackend {
 public:
  virtual ~ExpertBackend() = default;

  // For every token t and rank j writes expert_{experts[t, j]}(hidden_states[t])
  // to outputs[(t * top_k + j) * hidden, +hidden). Called by one thread at a time.
  virtual absl::Status Compute(const ExpertBatch& batch, float* outputs) = 0;

  // True when Compute mostly waits for other processes: the caller then lets
  // its own compute threads sleep during the call.
  virtual bool ComputesElsewhere() const { return false; }

  // True when Compute takes the rows in device memory (ExpertBatch's device
  // fields) from a GPU dense device, so that they never go through the host.
  virtual bool AcceptsDeviceRows() const { return false; }
};

}  // namespace moe

#endif  // MOE_CORE_EXPERT_BACKEND_H_
