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

  absl::Status Missing(absl::string_view field) const {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": missing required field '", field, "'"));
  }

  absl::Status WrongType(absl::string_view field, absl::string_view want, const json& v) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": field '", field, "' must be ",
                                                   want, ", got ", JsonTypeName(v)));
  }

  absl::StatusOr<int64_t> Int(absl::string_view field) const {
    const json* v = Find(field);
    if (v == nullptr) return Missing(field);
    return AsInt(field, *v);
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

// Family defaults, as in the Hugging Face configuration classes.
struct FamilyDefaults {
  double rms_norm_eps;
  double rope_theta;
  int64_t max_position_embeddings;
};

FamilyDefaults DefaultsOf(ModelFamily f) {
  switch (f) {
    case ModelFamily::kMixtral: return {1e-5, 1e6, 4096 * 32};
    case ModelFamily::kQwen2Moe: return {1e-6, 10000.0, 32768};
    case ModelFamily::kQwen3Moe: return {1e-6, 10000.0, 32768};
    case ModelFamily::kOlmoe: return {1e-5, 10000.0, 4096};
  }
  return {1e-5, 10000.0, 4096};
}

// Reads the switches and sizes that differ between families.
absl::Status ParseFamilyFields(const FieldReader& r, ModelConfig& c) {
  switch (c.family) {
    case ModelFamily::kMixtral: {
      ASSIGN_OR_RETURN(c.num_experts, r.Int("num_local_experts"));
      ASSIGN_OR_RETURN(c.intermediate_size, r.Int("intermediate_size"));
      c.norm_topk_prob = true;  // Mixtral always renormalises the top-k weights.
      return absl::OkStatus();
    }
    case ModelFamily::kQwen2Moe:
    case ModelFamily::kQwen3Moe: {
      const bool qwen2 = c.family == ModelFamily::kQwen2Moe;
      ASSIGN_OR_RETURN(c.num_experts, r.Int("num_experts"));
      ASSIGN_OR_RETURN(c.intermediate_size, r.Int("moe_intermediate_size"));
      ASSIGN_OR_RETURN(c.norm_topk_prob, r.Bool("norm_topk_prob", false));
      // Qwen2 attention always has q/k/v biases; Qwen3 has a switch.
      ASSIGN_OR_RETURN(c.attention_bias, r.Bool("attention_bias", qwen2));
      c.qk_norm = !qwen2;
      c.qk_norm_per_head = true;
      if (qwen2) {
        ASSIGN_OR_RETURN(c.shared_expert_intermediate_size,
                         r.Int("shared_expert_intermediate_size"));
        c.shared_expert_gate = c.shared_expert_intermediate_size > 0;
      }
      // Dense (non-MoE) layers are not supported yet: say so instead of
      // silently computing something else.
      ASSIGN_OR_RETURN(int64_t step, r.Int("decoder_sparse_step", 1));
      if (step != 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            r.source(), ": field 'decoder_sparse_step' = ", step, " is not supported (only 1)"));
      }
      if (const json* v = r.Find("mlp_only_layers")) {
        if (!v->is_array()) return r.WrongType("mlp_only_layers", "a list", *v);
        if (!v->empty()) {
          return absl::InvalidArgumentError(absl::StrCat(
              r.source(), ": field 'mlp_only_layers' must be empty (dense layers are not supported)"));
        }
      }
      return absl::OkStatus();
    }
    case ModelFamily::kOlmoe: {
      ASSIGN_OR_RETURN(c.num_experts, r.Int("num_experts"));
      ASSIGN_OR_RETURN(c.intermediate_size, r.Int("intermediate_size"));
      ASSIGN_OR_RETURN(c.norm_topk_prob, r.Bool("norm_topk_prob", false));
      ASSIGN_OR_RETURN(c.attention_bias, r.Bool("attention_bias", false));
      c.qk_norm = true;
      c.qk_norm_per_head = false;  // OLMoE normalises the whole q / k projection.
      if (const json* v = r.Find("clip_qkv")) {
        return absl::InvalidArgumentError(absl::StrCat(
            r.source(), ": field 'clip_qkv' must be null (clipping is not supported), got ",
            JsonTypeName(*v)));
      }
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unknown model family");
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
  if (c.attention_bias) attn = n.Add(attn, n.Add(q_dim, n.Mul(2, kv_dim)));
  if (c.qk_norm) {
    attn = n.Add(attn, c.qk_norm_per_head ? n.Mul(2, c.head_dim) : n.Add(q_dim, kv_dim));
  }
  const int64_t norms = n.Mul(2, h);
  const int64_t gate = n.Mul(c.num_experts, h);
  const int64_t one_expert = n.Mul(3, n.Mul(h, c.intermediate_size));
  const int64_t experts = n.Mul(active ? c.num_experts_per_tok : c.num_experts, one_expert);
  int64_t shared = n.Mul(3, n.Mul(h, c.shared_expert_intermediate_size));
  if (c.shared_expert_gate) shared = n.Add(shared, h);

  const int64_t layer = n.Add(n.Add(attn, norms), n.Add(n.Add(gate, experts), shared));
  int64_t total = n.Mul(c.num_hidden_layers, layer);
  total = n.Add(total, h);  // final norm
  const int64_t table = n.Mul(c.vocab_size, h);
  total = n.Add(total, table);  // lm_head (the tied embedding is still read whole)
  if (!active && !c.tie_word_embeddings) total = n.Add(total, table);  // embedding
  return n.overflow ? -1 : total;
}

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

  ASSIGN_OR_RETURN(c.hidden_size, r.Int("hidden_size"));
  ASSIGN_OR_RETURN(c.num_hidden_layers, r.Int("num_hidden_layers"));
  ASSIGN_OR_RETURN(c.num_attention_heads, r.Int("num_attention_heads"));
  ASSIGN_OR_RETURN(c.num_key_value_heads, r.Int("num_key_value_heads", c.num_attention_heads));
  const int64_t default_head_dim =
      c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0;
  ASSIGN_OR_RETURN(c.head_dim, r.Int("head_dim", default_head_dim));
  ASSIGN_OR_RETURN(c.rms_norm_eps, r.Double("rms_norm_eps", d.rms_norm_eps));
  ASSIGN_OR_RETURN(c.rope_theta, r.Double("rope_theta", d.rope_theta));
  ASSIGN_OR_RETURN(c.num_experts_per_tok, r.Int("num_experts_per_tok"));
  ASSIGN_OR_RETURN(c.vocab_size, r.Int("vocab_size"));
  ASSIGN_OR_RETURN(c.tie_word_embeddings, r.Bool("tie_word_embeddings", false));
  ASSIGN_OR_RETURN(c.max_position_embeddings,
                   r.Int("max_position_embeddings", d.max_position_embeddings));
  ASSIGN_OR_RETURN(c.bos_token_id, r.OptionalInt("bos_token_id"));
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
  }
  if (const json* act = r.Find("hidden_act")) {
    if (!act->is_string()) return r.WrongType("hidden_act", "a string", *act);
    if (act->get<std::string>() != "silu") {
      return absl::InvalidArgumentError(absl::StrCat(source, ": field 'hidden_act' = '",
                                                     act->get<std::string>(),
                                                     "' is not supported (only silu)"));
    }
  }
  RETURN_IF_ERROR(ParseFamilyFields(r, c));

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
