// ModelConfig: the hyper-parameters of a mixture-of-experts checkpoint, read
// from a Hugging Face config.json. Families differ by switches in this one
// struct (shared expert, q/k norm, top-k renormalisation), never by copies of
// the forward pass.
#ifndef MOE_CORE_MODEL_CONFIG_H_
#define MOE_CORE_MODEL_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace moe {

enum class ModelFamily { kMixtral, kQwen2Moe, kQwen3Moe, kOlmoe };

std::string_view ModelFamilyName(ModelFamily f);

struct ModelConfig {
  ModelFamily family = ModelFamily::kMixtral;
  std::string model_type;  // as written in config.json

  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;  // per routed expert (moe_intermediate_size where the family has one)
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // defaults to hidden_size / num_attention_heads
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  int64_t num_experts = 0;          // num_local_experts (mixtral) / num_experts
  int64_t num_experts_per_tok = 0;  // top-k
  int64_t vocab_size = 0;
  bool tie_word_embeddings = false;
  int64_t max_position_embeddings = 0;
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;

  // Family switches.
  bool norm_topk_prob = true;   // renormalise the top-k gate weights to sum to 1
  bool qk_norm = false;         // RMSNorm on q and k before RoPE
  // true (Qwen3-MoE): the norm weight is [head_dim], applied to each head;
  // false (OLMoE): one norm over the whole projection, weights [q_dim] / [kv_dim].
  bool qk_norm_per_head = true;
  bool qkv_bias = false;  // q/k/v projections carry a bias (qkv_bias / attention_bias)
  bool o_bias = false;    // o_proj carries a bias (attention_bias, not in Qwen2-MoE)
  // OLMoE: q, k and v are clamped to [-clip_qkv, clip_qkv] after the q/k norm.
  std::optional<double> clip_qkv;
  int64_t shared_expert_intermediate_size = 0;  // 0: no shared expert
  bool shared_expert_gate = false;              // sigmoid gate on the shared expert
  // Which layers are MoE (Qwen families): layer l is a dense MLP layer when it
  // is in mlp_only_layers or (l + 1) % decoder_sparse_step != 0.
  int64_t decoder_sparse_step = 1;
  std::vector<int64_t> mlp_only_layers;
  int64_t mlp_intermediate_size = 0;  // FFN size of the dense MLP layers (intermediate_size)

  bool IsMoeLayer(int64_t layer) const;
  // Number of layers with routed experts.
  int64_t NumMoeLayers() const;
  // The layers without routed experts, ascending.
  std::vector<int> DenseLayers() const;

  int64_t q_dim() const { return num_attention_heads * head_dim; }
  int64_t kv_dim() const { return num_key_value_heads * head_dim; }

  // Parameters touched per generated token (embedding row excluded), and all.
  int64_t ActiveParameters() const;
  int64_t TotalParameters() const;

  // Parameter counts assume Validate() passed (they return -1 on int64 overflow).

  // Checks the values are consistent (positive sizes, heads divide, top-k <= experts,
  // parameter counts fit in int64). Messages name the field and its value.
  absl::Status Validate() const;
};

// Parses config.json text. `source` names the file in error messages.
absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view json_text,
                                             std::string_view source);
// Reads and parses DIR/config.json.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir);

}  // namespace moe

#endif  // MOE_CORE_MODEL_CONFIG_H_
