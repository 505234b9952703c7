// DenseModel: views of the dense weights (embeddings, attention, norms, MoE
// gates, lm_head) of a checkpoint: what a router needs and nothing else.
// Views point into the checkpoint's mapped files, which must outlive this.
#ifndef MOE_ROUTER_DENSE_MODEL_H_
#define MOE_ROUTER_DENSE_MODEL_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/checkpoint.h"
#include "core/kernels.h"

namespace moe {

struct LayerWeights {
  WeightView input_norm, post_attention_norm;
  WeightView q, k, v, o;
  WeightView q_bias, k_bias, v_bias;  // only with config.qkv_bias
  WeightView o_bias;                  // only with config.o_bias
  WeightView q_norm, k_norm;          // only with config.qk_norm: [head_dim] or [q_dim] / [kv_dim]
  bool moe = true;                    // routed experts; false: a dense MLP layer
  WeightView gate;                    // [experts, hidden], MoE layers
  FfnWeights shared_expert;           // MoE layers with a shared expert
  WeightView shared_expert_gate;      // [1, hidden], with config.shared_expert_gate
  FfnWeights mlp;                     // dense MLP layers
};

class DenseModel {
 public:
  static absl::StatusOr<std::unique_ptr<DenseModel>> Load(const Checkpoint& checkpoint);

  const ModelConfig& config() const { return config_; }
  const WeightView& embedding() const { return embedding_; }
  const WeightView& final_norm() const { return final_norm_; }
  const WeightView& lm_head() const { return lm_head_; }
  const LayerWeights& layer(int i) const { return layers_[i]; }
  // Bytes of dense weights read per generated token (embedding row excluded).
  int64_t ActiveDenseBytes() const;

 private:
  ModelConfig config_;
  WeightView embedding_, final_norm_, lm_head_;
  std::vector<LayerWeights> layers_;
};

}  // namespace moe

#endif  // MOE_ROUTER_DENSE_MODEL_H_
