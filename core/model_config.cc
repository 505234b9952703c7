#include "core/model_config.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "nlohmann/json.hpp"

namespace moe {
namespace {

using json = nlohmann::json;

constexpr const char* kSupportedTypes = "mixtral, qwen2_moe, qwen3_moe, olmoe";

// absl::string_view is not std::string_view in this absl build.
absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

const char* JsonTypeName(const json& v) {
  if (v.is_number_integer()) return "integer";
  return v.type_name();  // "null", "object", "array", "string", "boolean", "number"
}

// Reads typed fields of one config.json object; every error names the field
// and the file.
class FieldReader {
 public:
  FieldReader(const json& obj, absl::string_view source) : obj_(obj), source_(source) {}

  // nullptr when the field is absent or JSON null.
  const json* Find(absl::string_view field) const {
    auto it = obj_.find(std::string(field));
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  // The key is there, even if its value is null.
  bool Present(absl::string_view field) const { return obj_.contains(std::string(field)); }

  absl::Status Missing(absl::string_view field) const {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": missing required field '", field, "'"));
  }

  absl::Status WrongType(absl::string_view field, absl::string_view want, const json& v) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": field '", field, "' must be ",
                                                   want, ", got ", JsonTypeName(v)));
  }

  absl::StatusOr<int64_t> Int(absl::string_view field, int64_t dflt) const {
    const json* v = Find(field);
    if (v == nullptr) return dflt;
    return AsInt(field, *v);
  }
  absl::StatusOr<std::optional<int64_t>> OptionalInt(absl::string_view field) const {
    const json* v = Find(field);
    if (v == nullptr) return std::optional<int64_t>();
    ASSIGN_OR_RETURN(int64_t x, AsInt(field, *v));
    return std::optional<int64_t>(x);
  }
  absl::StatusOr<double> Double(absl::string_view field, double dflt) const {
    const json* v = Find(field);
    if (v == nullptr) return dflt;
    if (!v->is_number()) return WrongType(field, "a number", *v);
    return v->get<double>();
  }
  absl::StatusOr<bool> Bool(absl::string_view field, bool dflt) const {
    const json* v = Find(field);
    if (v == nullptr) return dflt;
    if (!v->is_boolean()) return WrongType(field, "a boolean", *v);
    return v->get<bool>();
  }
  absl::StatusOr<std::string> String(absl::string_view field) const {
    const json* v = Find(field);
    if (v == nullptr) return Missing(field);
    if (!v->is_string()) return WrongType(field, "a string", *v);
    return v->get<std::string>();
  }

  absl::StatusOr<int64_t> AsInt(absl::string_view field, const json& v) const {
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return absl::InvalidArgumentError(
            absl::StrCat(source_, ": field '", field, "' = ", u, " is too large"));
      }
      return static_cast<int64_t>(u);
    }
    if (v.is_number_integer()) return v.get<int64_t>();
    return WrongType(field, "an integer", v);
  }

  absl::string_view source() const { return source_; }

 private:
  const json& obj_;
  absl::string_view source_;
};

absl::StatusOr<ModelFamily> FamilyOf(absl::string_view model_type, absl::string_view source) {
  if (model_type == "mixtral") return ModelFamily::kMixtral;
  if (model_type == "qwen2_moe") return ModelFamily::kQwen2Moe;
  if (model_type == "qwen3_moe") return ModelFamily::kQwen3Moe;
  if (model_type == "olmoe") return ModelFamily::kOlmoe;
  return absl::InvalidArgumentError(absl::StrCat(source, ": unsupported model_type '", model_type,
                                                 "' (supported: ", kSupportedTypes, ")"));
}

// Defaults of every field, as in the Hugging Face configuration classes
// (MixtralConfig, Qwen2MoeConfig, Qwen3MoeConfig, OlmoeConfig): a config.json
// that leaves a field out means what it means to transformers.
struct FamilyDefaults {
  int64_t vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads;
  int64_t num_key_value_heads;  // 0: num_attention_heads
  int64_t max_position_embeddings;
  double rms_norm_eps, rope_theta;
  int64_t num_experts, num_experts_per_tok;
  int64_t moe_intermediate_size;            // Qwen families
  int64_t shared_expert_intermediate_size;  // Qwen2-MoE
  std::optional<int64_t> bos_token_id, eos_token_id;
};

FamilyDefaults DefaultsOf(ModelFamily f) {
  switch (f) {
    case ModelFamily::kMixtral:
      return {32000, 4096, 14336, 32, 32, 8, 4096 * 32, 1e-5, 1e6, 8, 2, 0, 0, 1, 2};
    case ModelFamily::kQwen2Moe:
      return {151936, 2048, 5632, 24, 16, 16, 32768, 1e-6, 10000.0, 60, 4, 1408, 5632, {}, {}};
    case ModelFamily::kQwen3Moe:
      return {151936, 2048, 6144, 24, 32, 4, 32768, 1e-6, 10000.0, 128, 8, 768, 0, {}, {}};
    case ModelFamily::kOlmoe:
      return {50304, 2048, 2048, 16, 16, 0, 4096, 1e-5, 10000.0, 64, 8, 0, 0, {}, 50279};
  }
  return {};
}

// Which layers are MoE: decoder_sparse_step and mlp_only_layers (Qwen families).
absl::Status ParseSparsity(const FieldReader& r, ModelConfig& c) {
  ASSIGN_OR_RETURN(c.decoder_sparse_step, r.Int("decoder_sparse_step", 1));
  if (c.decoder_sparse_step < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        r.source(), ": field 'decoder_sparse_step' = ", c.decoder_sparse_step, " must be at least 1"));
  }
  if (const json* v = r.Find("mlp_only_layers")) {
    if (!v->is_array()) return r.WrongType("mlp_only_layers", "a list of layer numbers", *v);
    for (const json& e : *v) {
      ASSIGN_OR_RETURN(int64_t layer, r.AsInt("mlp_only_layers", e));
      if (layer < 0 || layer >= c.num_hidden_layers) {
        return absl::InvalidArgumentError(absl::StrCat(r.source(), ": field 'mlp_only_layers' holds ", layer,
                                                       ", which is not a layer (0-", c.num_hidden_layers - 1, ")"));
      }
      c.mlp_only_layers.push_back(layer);
    }
  }
  return absl::OkStatus();
}

// Sliding-window attention is not implemented: refuse a config that uses it
// rather than attend over the whole context.
absl::Status RefuseSlidingWindow(const FieldReader& r, const ModelConfig& c, bool switched) {
  if (switched) {
    ASSIGN_OR_RETURN(bool on, r.Bool("use_sliding_window", false));
    if (on) {
      return absl::InvalidArgumentError(
          absl::StrCat(r.source(), ": field 'use_sliding_window' = true is not supported (sliding-window attention)"));
    }
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(std::optional<int64_t> window, r.OptionalInt("sliding_window"));
  if (window && *window < c.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(
        r.source(), ": field 'sliding_window' = ", *window,
        " is not supported (sliding-window attention; null or at least max_position_embeddings = ",
        c.max_position_embeddings, " is)"));
  }
  return absl::OkStatus();
}

// Reads the switches and sizes that differ between families.
absl::Status ParseFamilyFields(const FieldReader& r, const FamilyDefaults& d, ModelConfig& c) {
  switch (c.family) {
    case ModelFamily::kMixtral: {
      ASSIGN_OR_RETURN(c.num_experts, r.Int("num_local_experts", d.num_experts));
      ASSIGN_OR_RETURN(c.intermediate_size, r.Int("intermediate_size", d.intermediate_size));
      c.norm_topk_prob = true;  // Mixtral always renormalises the top-k weights.
      return RefuseSlidingWindow(r, c, /*switched=*/false);
    }
    case ModelFamily::kQwen2Moe:
    case ModelFamily::kQwen3Moe: {
      const bool qwen2 = c.family == ModelFamily::kQwen2Moe;
      // Qwen3MoeConfig maps num_experts to num_local_experts; accept either.
      ASSIGN_OR_RETURN(int64_t local, r.Int("num_local_experts", d.num_experts));
      ASSIGN_OR_RETURN(c.num_experts, r.Int("num_experts", qwen2 ? d.num_experts : local));
      ASSIGN_OR_RETURN(c.intermediate_size, r.Int("moe_intermediate_size", d.moe_intermediate_size));
      ASSIGN_OR_RETURN(c.mlp_intermediate_size, r.Int("intermediate_size", d.intermediate_size));
      ASSIGN_OR_RETURN(c.norm_topk_prob, r.Bool("norm_topk_prob", false));
      if (qwen2) {
        // Qwen2-MoE: q/k/v biases under 'qkv_bias' (default true), never on o_proj;
        // a shared expert with a sigmoid gate in every MoE layer.
        ASSIGN_OR_RETURN(c.qkv_bias, r.Bool("qkv_bias", true));
        c.o_bias = false;
        ASSIGN_OR_RETURN(c.shared_expert_intermediate_size,
                         r.Int("shared_expert_intermediate_size", d.shared_expert_intermediate_size));
        c.shared_expert_gate = true;
        if (c.shared_expert_intermediate_size <= 0) {
          return absl::InvalidArgumentError(absl::StrCat(r.source(), ": field 'shared_expert_intermediate_size' = ",
                                                         c.shared_expert_intermediate_size, " must be positive"));
        }
      } else {
        ASSIGN_OR_RETURN(c.qkv_bias, r.Bool("attention_bias", false));
        c.o_bias = c.qkv_bias;
        c.qk_norm = true;
        c.qk_norm_per_head = true;
      }
      RETURN_IF_ERROR(ParseSparsity(r, c));
      return RefuseSlidingWindow(r, c, /*switched=*/true);
    }
    case ModelFamily::kOlmoe: {
      ASSIGN_OR_RETURN(c.num_experts, r.Int("num_experts", d.num_experts));
      ASSIGN_OR_RETURN(c.intermediate_size, r.Int("intermediate_size", d.intermediate_size));
      ASSIGN_OR_RETURN(c.norm_topk_prob, r.Bool("norm_topk_prob", false));
      ASSIGN_OR_RETURN(c.qkv_bias, r.Bool("attention_bias", false));
      c.o_bias = c.qkv_bias;
      c.qk_norm = true;
      c.qk_norm_per_head = false;  // OLMoE normalises the whole q / k projection.
      if (const json* v = r.Find("clip_qkv")) {
        if (!v->is_number()) return r.WrongType("clip_qkv", "a number or null", *v);
        const double clip = v->get<double>();
        if (!(std::isfinite(clip) && clip > 0)) {
          return absl::InvalidArgumentError(
              absl::StrCat(r.source(), ": field 'clip_qkv' = ", clip, " must be a positive number"));
        }
        c.clip_qkv = clip;
      }
      // The q/k norms are sized from hidden_size (OlmoeAttention), so the
      // projection must be hidden_size wide.
      if (c.q_dim() != c.hidden_size) {
        return absl::InvalidArgumentError(absl::StrCat(
            r.source(), ": field 'head_dim' = ", c.head_dim, " must be hidden_size / num_attention_heads = ",
            c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0,
            " for olmoe (its q/k norms span hidden_size)"));
      }
      return RefuseSlidingWindow(r, c, /*switched=*/false);
    }
  }
  return absl::InternalError("unknown model family");
}

// RoPE: only the default (unscaled) kind. rope_theta may sit in
// rope_parameters (newer transformers) instead of at the top level.
absl::Status ParseRope(const FieldReader& r, double default_theta, ModelConfig& c) {
  ASSIGN_OR_RETURN(c.rope_theta, r.Double("rope_theta", default_theta));
  for (const char* field : {"rope_scaling", "rope_parameters"}) {
    const json* v = r.Find(field);
    if (v == nullptr) continue;
    if (!v->is_object()) return r.WrongType(field, "an object or null", *v);
    for (const char* key : {"rope_type", "type"}) {
      auto it = v->find(key);
      if (it == v->end() || it->is_null()) continue;
      if (!it->is_string() || it->get<std::string>() != "default") {
        return absl::InvalidArgumentError(absl::StrCat(r.source(), ": field '", field, ".", key, "' = ",
                                                       it->dump(), " is not supported (only \"default\" RoPE)"));
      }
    }
    auto theta = v->find("rope_theta");
    if (theta != v->end() && !theta->is_null()) {
      if (!theta->is_number()) return r.WrongType(absl::StrCat(field, ".rope_theta"), "a number", *theta);
      c.rope_theta = theta->get<double>();
    }
  }
  return absl::OkStatus();
}

// Checked int64 arithmetic for parameter counts.
struct Counter {
  bool overflow = false;
  int64_t Mul(int64_t a, int64_t b) {
    int64_t r = 0;
    if (__builtin_mul_overflow(a, b, &r)) overflow = true;
    return r;
  }
  int64_t Add(int64_t a, int64_t b) {
    int64_t r = 0;
    if (__builtin_add_overflow(a, b, &r)) overflow = true;
    return r;
  }
};

// Parameters per token (`active`) or in all.
int64_t CountParameters(const ModelConfig& c, bool active) {
  Counter n;
  const int64_t h = c.hidden_size;
  const int64_t q_dim = n.Mul(c.num_attention_heads, c.head_dim);
  const int64_t kv_dim = n.Mul(c.num_key_value_heads, c.head_dim);

  int64_t attn = n.Add(n.Mul(2, n.Mul(h, q_dim)), n.Mul(2, n.Mul(h, kv_dim)));  // q, o, k, v
  if (c.qkv_bias) attn = n.Add(attn, n.Add(q_dim, n.Mul(2, kv_dim)));
  if (c.o_bias) attn = n.Add(attn, h);
  if (c.qk_norm) {
    attn = n.Add(attn, c.qk_norm_per_head ? n.Mul(2, c.head_dim) : n.Add(q_dim, kv_dim));
  }
  const int64_t norms = n.Mul(2, h);
  const int64_t gate = n.Mul(c.num_experts, h);
  const int64_t one_expert = n.Mul(3, n.Mul(h, c.intermediate_size));
  const int64_t experts = n.Mul(active ? c.num_experts_per_tok : c.num_experts, one_expert);
  int64_t shared = n.Mul(3, n.Mul(h, c.shared_expert_intermediate_size));
  if (c.shared_expert_gate) shared = n.Add(shared, h);
  const int64_t moe_layer = n.Add(n.Add(attn, norms), n.Add(n.Add(gate, experts), shared));
  const int64_t dense_layer = n.Add(n.Add(attn, norms), n.Mul(3, n.Mul(h, c.mlp_intermediate_size)));
  const int64_t moe_layers = c.NumMoeLayers();
  const int64_t layer_params =
      n.Add(n.Mul(moe_layers, moe_layer), n.Mul(c.num_hidden_layers - moe_layers, dense_layer));
  int64_t total = layer_params;
  total = n.Add(total, h);  // final norm
  const int64_t table = n.Mul(c.vocab_size, h);
  total = n.Add(total, table);  // lm_head (the tied embedding is still read whole)
  if (!active && !c.tie_word_embeddings) total = n.Add(total, table);  // embedding
  return n.overflow ? -1 : total;
}

// Layers are counted in loops over layers (IsMoeLayer, KV cache, placement).
constexpr int64_t kMaxLayers = 4096;

absl::Status Positive(absl::string_view field, int64_t v) {
  if (v > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("field '", field, "' = ", v, " must be positive"));
}

}  // namespace

std::string_view ModelFamilyName(ModelFamily f) {
  switch (f) {
    case ModelFamily::kMixtral: return "mixtral";
    case ModelFamily::kQwen2Moe: return "qwen2_moe";
    case ModelFamily::kQwen3Moe: return "qwen3_moe";
    case ModelFamily::kOlmoe: return "olmoe";
  }
  return "?";
}

bool ModelConfig::IsMoeLayer(int64_t layer) const {
  for (int64_t l : mlp_only_layers) {
    if (l == layer) return false;
  }
  return decoder_sparse_step > 0 && (layer + 1) % decoder_sparse_step == 0;
}

int64_t ModelConfig::NumMoeLayers() const {
  int64_t n = 0;
  for (int64_t l = 0; l < num_hidden_layers; ++l) n += IsMoeLayer(l) ? 1 : 0;
  return n;
}

std::vector<int> ModelConfig::DenseLayers() const {
  std::vector<int> out;
  for (int64_t l = 0; l < num_hidden_layers; ++l) {
    if (!IsMoeLayer(l)) out.push_back(static_cast<int>(l));
  }
  return out;
}

int64_t ModelConfig::ActiveParameters() const { return CountParameters(*this, /*active=*/true); }
int64_t ModelConfig::TotalParameters() const { return CountParameters(*this, /*active=*/false); }

absl::Status ModelConfig::Validate() const {
  RETURN_IF_ERROR(Positive("hidden_size", hidden_size));
  RETURN_IF_ERROR(Positive("intermediate_size", intermediate_size));
  RETURN_IF_ERROR(Positive("num_hidden_layers", num_hidden_layers));
  RETURN_IF_ERROR(Positive("num_attention_heads", num_attention_heads));
  RETURN_IF_ERROR(Positive("num_key_value_heads", num_key_value_heads));
  RETURN_IF_ERROR(Positive("head_dim", head_dim));
  RETURN_IF_ERROR(Positive("num_experts", num_experts));
  RETURN_IF_ERROR(Positive("vocab_size", vocab_size));
  RETURN_IF_ERROR(Positive("max_position_embeddings", max_position_embeddings));
  if (num_attention_heads % num_key_value_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("field 'num_key_value_heads' = ", num_key_value_heads,
                     " must divide num_attention_heads = ", num_attention_heads));
  }
  if (num_experts_per_tok < 1 || num_experts_per_tok > num_experts) {
    return absl::InvalidArgumentError(absl::StrCat("field 'num_experts_per_tok' = ",
                                                   num_experts_per_tok, " must be in [1, ",
                                                   num_experts, "] (num_experts)"));
  }
  if (num_hidden_layers > kMaxLayers) {
    return absl::InvalidArgumentError(absl::StrCat("field 'num_hidden_layers' = ", num_hidden_layers,
                                                   " is more than ", kMaxLayers));
  }
  if (NumMoeLayers() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no layer has experts (decoder_sparse_step = ", decoder_sparse_step, ", ", mlp_only_layers.size(),
        " mlp_only_layers): this is not a mixture-of-experts model"));
  }
  if (static_cast<int64_t>(DenseLayers().size()) > 0 && mlp_intermediate_size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("field 'intermediate_size' = ", mlp_intermediate_size,
                                                   " must be positive (the model has dense MLP layers)"));
  }
  if (shared_expert_intermediate_size < 0) {
    return absl::InvalidArgumentError(absl::StrCat("field 'shared_expert_intermediate_size' = ",
                                                   shared_expert_intermediate_size,
                                                   " must not be negative"));
  }
  if (shared_expert_gate && shared_expert_intermediate_size == 0) {
    return absl::InvalidArgumentError(
        "shared_expert_gate is set but shared_expert_intermediate_size is 0");
  }
  if (!(std::isfinite(rms_norm_eps) && rms_norm_eps > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("field 'rms_norm_eps' = ", rms_norm_eps, " must be a positive number"));
  }
  if (!(std::isfinite(rope_theta) && rope_theta > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("field 'rope_theta' = ", rope_theta, " must be a positive number"));
  }
  if (bos_token_id && (*bos_token_id < 0 || *bos_token_id >= vocab_size)) {
    return absl::InvalidArgumentError(absl::StrCat("field 'bos_token_id' = ", *bos_token_id,
                                                   " must be in [0, ", vocab_size, ")"));
  }
  for (int64_t eos : eos_token_ids) {
    if (eos < 0 || eos >= vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("field 'eos_token_id' holds ", eos,
                                                     ", which is not in [0, ", vocab_size, ")"));
    }
  }
  if (TotalParameters() < 0) {
    return absl::InvalidArgumentError(
        "the sizes are too large: the parameter count overflows int64");
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view json_text,
                                             std::string_view source_name) {
  const absl::string_view source = AbslView(source_name);
  json root;
  try {
    root = json::parse(json_text.begin(), json_text.end());
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": invalid JSON: ", e.what()));
  }
  if (!root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": config must be a JSON object, got ", JsonTypeName(root)));
  }

  // No json::exception can escape below: every access is type-checked first.
  const FieldReader r(root, source);
  ModelConfig c;
  ASSIGN_OR_RETURN(c.model_type, r.String("model_type"));
  ASSIGN_OR_RETURN(c.family, FamilyOf(c.model_type, source));
  const FamilyDefaults d = DefaultsOf(c.family);

  ASSIGN_OR_RETURN(c.hidden_size, r.Int("hidden_size", d.hidden_size));
  ASSIGN_OR_RETURN(c.num_hidden_layers, r.Int("num_hidden_layers", d.num_hidden_layers));
  ASSIGN_OR_RETURN(c.num_attention_heads, r.Int("num_attention_heads", d.num_attention_heads));
  ASSIGN_OR_RETURN(c.num_key_value_heads,
                   r.Int("num_key_value_heads", d.num_key_value_heads > 0 ? d.num_key_value_heads
                                                                          : c.num_attention_heads));
  const int64_t default_head_dim =
      c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0;
  ASSIGN_OR_RETURN(c.head_dim, r.Int("head_dim", default_head_dim));
  ASSIGN_OR_RETURN(c.rms_norm_eps, r.Double("rms_norm_eps", d.rms_norm_eps));
  RETURN_IF_ERROR(ParseRope(r, d.rope_theta, c));
  ASSIGN_OR_RETURN(c.num_experts_per_tok, r.Int("num_experts_per_tok", d.num_experts_per_tok));
  ASSIGN_OR_RETURN(c.vocab_size, r.Int("vocab_size", d.vocab_size));
  ASSIGN_OR_RETURN(c.tie_word_embeddings, r.Bool("tie_word_embeddings", false));
  ASSIGN_OR_RETURN(c.max_position_embeddings,
                   r.Int("max_position_embeddings", d.max_position_embeddings));
  // Absent: the family's default; null: none.
  if (r.Present("bos_token_id")) {
    ASSIGN_OR_RETURN(c.bos_token_id, r.OptionalInt("bos_token_id"));
  } else {
    c.bos_token_id = d.bos_token_id;
  }
  if (const json* eos = r.Find("eos_token_id")) {
    if (eos->is_array()) {
      for (const json& e : *eos) {
        ASSIGN_OR_RETURN(int64_t id, r.AsInt("eos_token_id", e));
        c.eos_token_ids.push_back(id);
      }
    } else {
      ASSIGN_OR_RETURN(int64_t id, r.AsInt("eos_token_id", *eos));
      c.eos_token_ids.push_back(id);
    }
  } else if (!r.Present("eos_token_id") && d.eos_token_id) {
    c.eos_token_ids.push_back(*d.eos_token_id);
  }
  if (const json* act = r.Find("hidden_act")) {
    if (!act->is_string()) return r.WrongType("hidden_act", "a string", *act);
    if (act->get<std::string>() != "silu") {
      return absl::InvalidArgumentError(absl::StrCat(source, ": field 'hidden_act' = '",
                                                     act->get<std::string>(),
                                                     "' is not supported (only silu)"));
    }
  }
  RETURN_IF_ERROR(ParseFamilyFields(r, d, c));

  if (absl::Status s = c.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", s.message()));
  }
  return c;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open (missing?)"));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return ParseModelConfig(ss.str(), path);
}

}  // namespace moe
