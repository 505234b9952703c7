#include "core/checkpoint.h"

#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace moe {
namespace {

std::string LayerPrefix(int layer) { return absl::StrCat("model.layers.", layer, "."); }

bool IsMixtral(const ModelConfig& c) { return c.family == ModelFamily::kMixtral; }

// "block_sparse_moe" for Mixtral, "mlp" for the Qwen/OLMoE families.
std::string MoePrefix(const ModelConfig& c, int layer) {
  return LayerPrefix(layer) + (IsMixtral(c) ? "block_sparse_moe." : "mlp.");
}

std::string ProjName(const ModelConfig& c, int which) {
  static constexpr const char* kMixtral[] = {"w1", "w2", "w3"};
  static constexpr const char* kHf[] = {"gate_proj", "down_proj", "up_proj"};
  if (which < 0 || which > 2) which = 0;  // programming error; keep a valid name
  return IsMixtral(c) ? kMixtral[which] : kHf[which];
}

// Shape of FFN projection `which` with inner size `ffn`.
std::vector<int64_t> FfnShape(int which, int64_t hidden, int64_t ffn) {
  if (which == 1) return {hidden, ffn};  // down projection
  return {ffn, hidden};
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) absl::StrAppend(&s, i ? "," : "", shape[i]);
  return s + "]";
}

}  // namespace

std::string TensorNames::Embedding() { return "model.embed_tokens.weight"; }
std::string TensorNames::FinalNorm() { return "model.norm.weight"; }
std::string TensorNames::LmHead() { return "lm_head.weight"; }
std::string TensorNames::InputNorm(const ModelConfig&, int layer) {
  return LayerPrefix(layer) + "input_layernorm.weight";
}
std::string TensorNames::PostAttentionNorm(const ModelConfig&, int layer) {
  return LayerPrefix(layer) + "post_attention_layernorm.weight";
}
std::string TensorNames::Q(const ModelConfig&, int layer) {
  return LayerPrefix(layer) + "self_attn.q_proj.weight";
}
std::string TensorNames::K(const ModelConfig&, int layer) {
  return LayerPrefix(layer) + "self_attn.k_proj.weight";
}
std::string TensorNames::V(const ModelConfig&, int layer) {
  return LayerPrefix(layer) + "self_attn.v_proj.weight";
}
std::string TensorNames::O(const ModelConfig&, int layer) {
  return LayerPrefix(layer) + "self_attn.o_proj.weight";
}
std::string TensorNames::QBias(const ModelConfig&, int layer) {
  return LayerPrefix(layer) + "self_attn.q_proj.bias";
}
std::string TensorNames::KBias(const ModelConfig&, int layer) {
  return LayerPrefix(layer) + "self_attn.k_proj.bias";
}
std::string TensorNames::VBias(const ModelConfig&, int layer) {
  return LayerPrefix(layer) + "self_attn.v_proj.bias";
}
std::string TensorNames::OBias(const ModelConfig&, int layer) {
  return LayerPrefix(layer) + "self_attn.o_proj.bias";
}
std::string TensorNames::DenseMlp(const ModelConfig&, int layer, int which) {
  static constexpr const char* kHf[] = {"gate_proj", "down_proj", "up_proj"};
  if (which < 0 || which > 2) which = 0;
  return absl::StrCat(LayerPrefix(layer), "mlp.", kHf[which], ".weight");
}
std::string TensorNames::QNorm(const ModelConfig&, int layer) {
  return LayerPrefix(layer) + "self_attn.q_norm.weight";
}
std::string TensorNames::KNorm(const ModelConfig&, int layer) {
  return LayerPrefix(layer) + "self_attn.k_norm.weight";
}
std::string TensorNames::Gate(const ModelConfig& c, int layer) {
  return MoePrefix(c, layer) + "gate.weight";
}
std::string TensorNames::Expert(const ModelConfig& c, int layer, int expert, int which) {
  return absl::StrCat(MoePrefix(c, layer), "experts.", expert, ".", ProjName(c, which), ".weight");
}
std::string TensorNames::SharedExpert(const ModelConfig&, int layer, int which) {
  static constexpr const char* kHf[] = {"gate_proj", "down_proj", "up_proj"};
  if (which < 0 || which > 2) which = 0;
  return absl::StrCat(LayerPrefix(layer), "mlp.shared_expert.", kHf[which], ".weight");
}
std::string TensorNames::SharedExpertGate(const ModelConfig&, int layer) {
  return LayerPrefix(layer) + "mlp.shared_expert_gate.weight";
}

std::vector<ExpectedTensor> ExpectedTensors(const ModelConfig& c) {
  std::vector<ExpectedTensor> out;
  const int64_t h = c.hidden_size;
  auto add = [&out](std::string name, std::vector<int64_t> shape, TensorRole role, int layer,
                    int expert) {
    out.push_back({std::move(name), std::move(shape), role, layer, expert});
  };
  const TensorRole kDense = TensorRole::kDense;

  add(TensorNames::Embedding(), {c.vocab_size, h}, kDense, -1, -1);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    add(TensorNames::InputNorm(c, l), {h}, kDense, l, -1);
    add(TensorNames::Q(c, l), {c.q_dim(), h}, kDense, l, -1);
    add(TensorNames::K(c, l), {c.kv_dim(), h}, kDense, l, -1);
    add(TensorNames::V(c, l), {c.kv_dim(), h}, kDense, l, -1);
    add(TensorNames::O(c, l), {h, c.q_dim()}, kDense, l, -1);
    if (c.qkv_bias) {
      add(TensorNames::QBias(c, l), {c.q_dim()}, kDense, l, -1);
      add(TensorNames::KBias(c, l), {c.kv_dim()}, kDense, l, -1);
      add(TensorNames::VBias(c, l), {c.kv_dim()}, kDense, l, -1);
    }
    if (c.o_bias) add(TensorNames::OBias(c, l), {h}, kDense, l, -1);
    if (c.qk_norm) {
      add(TensorNames::QNorm(c, l), {c.qk_norm_per_head ? c.head_dim : c.q_dim()}, kDense, l, -1);
      add(TensorNames::KNorm(c, l), {c.qk_norm_per_head ? c.head_dim : c.kv_dim()}, kDense, l, -1);
    }
    add(TensorNames::PostAttentionNorm(c, l), {h}, kDense, l, -1);
    if (!c.IsMoeLayer(l)) {
      for (int which = 0; which < 3; ++which) {
        add(TensorNames::DenseMlp(c, l, which), FfnShape(which, h, c.mlp_intermediate_size), kDense, l, -1);
      }
      continue;
    }
    add(TensorNames::Gate(c, l), {c.num_experts, h}, kDense, l, -1);
    for (int e = 0; e < c.num_experts; ++e) {
      for (int which = 0; which < 3; ++which) {
        add(TensorNames::Expert(c, l, e, which), FfnShape(which, h, c.intermediate_size),
            TensorRole::kExpert, l, e);
      }
    }
    if (c.shared_expert_intermediate_size > 0) {
      for (int which = 0; which < 3; ++which) {
        add(TensorNames::SharedExpert(c, l, which),
            FfnShape(which, h, c.shared_expert_intermediate_size), kDense, l, -1);
      }
      if (c.shared_expert_gate) add(TensorNames::SharedExpertGate(c, l), {1, h}, kDense, l, -1);
    }
  }
  add(TensorNames::FinalNorm(), {h}, kDense, -1, -1);
  if (!c.tie_word_embeddings) add(TensorNames::LmHead(), {c.vocab_size, h}, kDense, -1, -1);
  return out;
}

absl::Status ValidateTensors(const ModelConfig& config, const TensorStore& store) {
  const std::vector<ExpectedTensor> expected = ExpectedTensors(config);
  std::set<std::string> expected_names;

  // Missing tensors first: they are the likelier mistake (wrong family, wrong dir).
  const ExpectedTensor* first_missing = nullptr;
  size_t missing = 0;
  for (const ExpectedTensor& t : expected) {
    expected_names.insert(t.name);
    if (!store.Contains(t.name)) {
      if (first_missing == nullptr) first_missing = &t;
      ++missing;
    }
  }
  if (first_missing != nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "checkpoint ", store.dir(), ": missing tensor '", first_missing->name, "' (shape ",
        ShapeString(first_missing->shape), " for model_type ", config.model_type, ")",
        missing > 1 ? absl::StrCat(" and ", missing - 1, " more") : ""));
  }

  const std::vector<std::string> names = store.Names();
  size_t unexpected = 0;
  const std::string* first_unexpected = nullptr;
  for (const std::string& name : names) {
    if (expected_names.count(name) == 0) {
      if (first_unexpected == nullptr) first_unexpected = &name;
      ++unexpected;
    }
  }
  if (first_unexpected != nullptr) {
    const SafetensorsFile* f = store.FileOf(*first_unexpected);
    return absl::InvalidArgumentError(absl::StrCat(
        f != nullptr ? f->path() : store.dir(), ": unexpected tensor '", *first_unexpected,
        "' (not part of a ", config.model_type, " model with this config)",
        unexpected > 1 ? absl::StrCat(" and ", unexpected - 1, " more") : ""));
  }

  for (const ExpectedTensor& t : expected) {
    RETURN_IF_ERROR(store.Get(t.name, t.shape).status());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& model_dir) {
  std::unique_ptr<Checkpoint> ckpt(new Checkpoint());
  ckpt->dir_ = model_dir;
  ASSIGN_OR_RETURN(ckpt->config_, LoadModelConfig(model_dir));
  ASSIGN_OR_RETURN(ckpt->store_, TensorStore::Open(model_dir));
  RETURN_IF_ERROR(ValidateTensors(ckpt->config_, *ckpt->store_));
  return ckpt;
}

}  // namespace moe
