// Checkpoint: a model directory opened and checked. Knows each family's tensor
// names and the shapes the config implies, so that a missing, unexpected or
// mis-shaped tensor is reported before anything computes.
#ifndef MOE_CORE_CHECKPOINT_H_
#define MOE_CORE_CHECKPOINT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model_config.h"
#include "core/safetensors.h"

namespace moe {

// Which tensors a process needs. A router maps only the dense part, a worker
// only its experts.
enum class TensorRole { kDense, kExpert };

struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> shape;
  TensorRole role = TensorRole::kDense;
  int layer = -1;   // for per-layer tensors
  int expert = -1;  // for routed-expert tensors
};

// Tensor names of the family, e.g. "model.layers.3.block_sparse_moe.experts.5.w1.weight".
struct TensorNames {
  static std::string Embedding();
  static std::string FinalNorm();
  static std::string LmHead();
  static std::string InputNorm(const ModelConfig& c, int layer);
  static std::string PostAttentionNorm(const ModelConfig& c, int layer);
  static std::string Q(const ModelConfig& c, int layer);
  static std::string K(const ModelConfig& c, int layer);
  static std::string V(const ModelConfig& c, int layer);
  static std::string O(const ModelConfig& c, int layer);
  static std::string QNorm(const ModelConfig& c, int layer);
  static std::string KNorm(const ModelConfig& c, int layer);
  static std::string Gate(const ModelConfig& c, int layer);
  // which: 0 = gate projection (w1), 1 = down projection (w2), 2 = up projection (w3).
  static std::string Expert(const ModelConfig& c, int layer, int expert, int which);
  // Projection biases (qkv_bias): "...self_attn.q_proj.bias"; o_proj's (o_bias).
  static std::string QBias(const ModelConfig& c, int layer);
  static std::string KBias(const ModelConfig& c, int layer);
  static std::string VBias(const ModelConfig& c, int layer);
  static std::string OBias(const ModelConfig& c, int layer);
  // FFN of a dense (non-MoE) layer: "model.layers.L.mlp.gate_proj.weight"; `which` as for Expert.
  static std::string DenseMlp(const ModelConfig& c, int layer, int which);
  // Shared expert (shared_expert_intermediate_size > 0); `which` as for Expert.
  static std::string SharedExpert(const ModelConfig& c, int layer, int which);
  // Sigmoid gate of the shared expert, weight [1, hidden] (shared_expert_gate).
  static std::string SharedExpertGate(const ModelConfig& c, int layer);
};

// Every tensor the config implies, in a stable order.
std::vector<ExpectedTensor> ExpectedTensors(const ModelConfig& config);

// Checks `store` against `config`: every expected tensor present with the
// expected shape, nothing unexpected. Errors name the tensor and its file.
absl::Status ValidateTensors(const ModelConfig& config, const TensorStore& store);

class Checkpoint {
 public:
  // Loads config.json, opens the safetensors files and validates them.
  static absl::StatusOr<std::unique_ptr<Checkpoint>> Open(const std::string& model_dir);

  const std::string& dir() const { return dir_; }
  const ModelConfig& config() const { return config_; }
  const TensorStore& store() const { return *store_; }

 private:
  std::string dir_;
  ModelConfig config_;
  std::unique_ptr<TensorStore> store_;
};

}  // namespace moe

#endif  // MOE_CORE_CHECKPOINT_H_
