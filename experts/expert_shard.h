// ExpertShard: the routed experts one process holds, and their batched FFN.
//
// Only the tensors of the held (layer, expert) pairs are looked up in the
// checkpoint, and Load prefaults exactly those pages (madvise + one read per
// page), so a loaded worker is warm and its resident memory is its share of
// the weights and no more.
// CpuExpertRunner (experts/cpu_expert_runner.h) runs a layer's rows against
// a shard.
//
// Thread-safety: immutable after Load; Run is const and may run
// concurrently, each caller with its own Scratch.
#ifndef MOE_EXPERTS_EXPERT_SHARD_H_
#define MOE_EXPERTS_EXPERT_SHARD_H_

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/checkpoint.h"
#include "core/kernels.h"
#include "core/thread_pool.h"

namespace moe {

struct ExpertKey {
  int layer = 0;
  int expert = 0;
  friend bool operator<(const ExpertKey& a, const ExpertKey& b) {
    return std::pair(a.layer, a.expert) < std::pair(b.layer, b.expert);
  }
  friend bool operator==(const ExpertKey& a, const ExpertKey& b) = default;
};

class ExpertShard {
 public:
  // Looks up the weights of `keys` (all experts of all layers when empty).
  // The checkpoint must outlive the shard.
  static absl::StatusOr<std::unique_ptr<ExpertShard>> Load(const Checkpoint& checkpoint,
                                                           std::vector<ExpertKey> keys);
  // A shard over weights held elsewhere (benchmarks with synthetic weights);
  // the views must outlive the shard and match `config`'s sizes.
  static std::unique_ptr<ExpertShard> FromWeights(const ModelConfig& config,
                                                  std::map<ExpertKey, FfnWeights> weights) {
    auto shard = std::unique_ptr<ExpertShard>(new ExpertShard(config));
    shard->experts_ = std::move(weights);
    return shard;
  }

  bool Holds(int layer, int expert) const { return experts_.count({layer, expert}) > 0; }
  // The weights of a held pair (Holds must be true).
  const FfnWeights& ExpertWeights(int layer, int expert) const { return experts_.at({layer, expert}); }
  // The weights of a pair; FAILED_PRECONDITION if it is not held.
  absl::StatusOr<const FfnWeights*> Find(int layer, int expert) const;
  std::vector<ExpertKey> keys() const;
  const ModelConfig& config() const { return config_; }
  // Bytes of weights held (what Load pages in).
  int64_t weight_bytes() const;
  // Element type of the held weights (that of the first expert's w1; kF32 when empty).
  DType weight_dtype() const;

  // Intermediate buffers of one Run, [m, ffn] each.
  using Scratch = FfnScratch;

  // out[m, hidden] = w2(silu(w1 x) * (w3 x)) for m rows of x[m, hidden].
  // FAILED_PRECONDITION if the pair is not held.
  absl::Status Run(int layer, int expert, const float* x, int64_t m, float* out, ThreadPool* pool,
                   Scratch* scratch) const;

 private:
  using Weights = FfnWeights;  // gate = w1, down = w2, up = w3
  explicit ExpertShard(const ModelConfig& config) : config_(config) {}

  ModelConfig config_;
  std::map<ExpertKey, Weights> experts_;
};

}  // namespace moe

#endif  // MOE_EXPERTS_EXPERT_SHARD_H_
