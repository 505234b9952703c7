// ExpertRunner: the device interface of the routed experts. Whatever holds
// expert weights (the CPU today, a GPU next) implements it; the worker's
// service (expert_worker/) and the in-process backend (LocalExpertBackend) call
// it, so both run the same code for the same rows.
//
// Contract: row r of the output is expert_{expert_ids[r]}(x[r / repeat]),
// unweighted, and does not depend on which other rows are in the call (how
// rows are grouped, ordered or split over threads): this is what keeps a
// sequence's logits bitwise identical alone, batched, or on any worker.
//
// Thread-safety: Run from one thread at a time; the rest is immutable.
#ifndef MOE_EXPERTS_EXPERT_RUNNER_H_
#define MOE_EXPERTS_EXPERT_RUNNER_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "core/model_config.h"
#include "experts/expert_shard.h"

namespace moe {

// One layer's rows. Input and output are row-major little-endian f32 and may
// be unaligned (they can point into protocol buffers): runners copy rows in
// and out, never dereference them as floats.
struct ExpertRows {
  int layer = 0;
  int64_t hidden = 0;
  int64_t num_rows = 0;      // output rows
  const void* x = nullptr;   // [num_rows / repeat, hidden]
  int64_t repeat = 1;        // row r reads input row r / repeat (top_k for a MoE batch)
  const uint32_t* expert_ids = nullptr;  // [num_rows], each held by the runner
};

class ExpertRunner {
 public:
  virtual ~ExpertRunner() = default;

  virtual const ModelConfig& config() const = 0;
  virtual bool Holds(int layer, int expert) const = 0;
  // The held (layer, expert) pairs, sorted.
  virtual std::vector<ExpertKey> keys() const = 0;
  // Bytes of expert weights held, and their element type ("BF16", ...).
  virtual int64_t weight_bytes() const = 0;
  virtual std::string_view weight_dtype() const = 0;
  // Where the experts run, for logs and GetInfo ("cpu", "cuda:0").
  virtual std::string device() const = 0;

  // Writes num_rows * hidden f32 to `out` (see the contract above).
  // FAILED_PRECONDITION for an expert the runner does not hold.
  virtual absl::Status Run(const ExpertRows& rows, void* out) = 0;

  // Nothing to run for a while: compute threads may sleep.
  virtual void Idle() {}
};

}  // namespace moe

#endif  // MOE_EXPERTS_EXPERT_RUNNER_H_
