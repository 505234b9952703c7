#include "core/model_config.h"

#include <string>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace moe {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

const std::string kFixtureDir = std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral";

json MixtralJson() {
  return json{{"model_type", "mixtral"},   {"hidden_size", 128},
              {"intermediate_size", 256},  {"num_hidden_layers", 2},
              {"num_attention_heads", 4},  {"num_key_value_heads", 2},
              {"num_local_experts", 4},    {"num_experts_per_tok", 2},
              {"vocab_size", 4096},        {"rms_norm_eps", 1e-5},
              {"rope_theta", 1e6},         {"max_position_embeddings", 4096},
              {"eos_token_id", 2},         {"bos_token_id", 1}};
}

json Qwen3MoeJson() {
  return json{{"model_type", "qwen3_moe"},  {"hidden_size", 64},
              {"intermediate_size", 512},   {"moe_intermediate_size", 32},
              {"num_hidden_layers", 3},     {"num_attention_heads", 4},
              {"num_key_value_heads", 2},   {"head_dim", 32},
              {"num_experts", 8},           {"num_experts_per_tok", 2},
              {"vocab_size", 1000},         {"norm_topk_prob", true},
              {"rms_norm_eps", 1e-6},       {"rope_theta", 1e6},
              {"decoder_sparse_step", 1},   {"mlp_only_layers", json::array()},
              {"eos_token_id", 999},        {"bos_token_id", nullptr}};
}

absl::StatusOr<ModelConfig> Parse(const json& j) { return ParseModelConfig(j.dump(), "cfg.json"); }

TEST(ModelConfigTest, LoadsFixture) {
  absl::StatusOr<ModelConfig> c = LoadModelConfig(kFixtureDir);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->family, ModelFamily::kMixtral);
  EXPECT_EQ(c->model_type, "mixtral");
  EXPECT_EQ(c->hidden_size, 128);
  EXPECT_EQ(c->intermediate_size, 256);
  EXPECT_EQ(c->num_hidden_layers, 2);
  EXPECT_EQ(c->num_attention_heads, 4);
  EXPECT_EQ(c->num_key_value_heads, 2);
  EXPECT_EQ(c->head_dim, 32);
  EXPECT_EQ(c->q_dim(), 128);
  EXPECT_EQ(c->kv_dim(), 64);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c->rope_theta, 1e6);
  EXPECT_EQ(c->num_experts, 4);
  EXPECT_EQ(c->num_experts_per_tok, 2);
  EXPECT_EQ(c->vocab_size, 4096);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->max_position_embeddings, 4096);
  EXPECT_FALSE(c->bos_token_id.has_value());
  EXPECT_EQ(c->eos_token_ids, std::vector<int64_t>({4095}));
  EXPECT_TRUE(c->norm_topk_prob);
  EXPECT_FALSE(c->qk_norm);
  EXPECT_FALSE(c->qkv_bias);
  EXPECT_FALSE(c->o_bias);
  EXPECT_EQ(c->shared_expert_intermediate_size, 0);
  EXPECT_EQ(c->NumMoeLayers(), 2);
}

TEST(ModelConfigTest, ParameterCountsOfFixture) {
  absl::StatusOr<ModelConfig> c = LoadModelConfig(kFixtureDir);
  ASSERT_TRUE(c.ok()) << c.status();
  // Per layer: attention 2*128*128 + 2*128*64, norms 2*128, gate 4*128,
  // experts 3*128*256 each. Then final norm 128 and the 4096x128 tables.
  const int64_t attn = 2 * 128 * 128 + 2 * 128 * 64;
  const int64_t expert = 3 * 128 * 256;
  const int64_t table = 4096 * 128;
  EXPECT_EQ(c->ActiveParameters(), 2 * (attn + 256 + 512 + 2 * expert) + 128 + table);
  // Total equals the element count of the fixture's model.safetensors.
  EXPECT_EQ(c->TotalParameters(), 2 * (attn + 256 + 512 + 4 * expert) + 128 + 2 * table);
  EXPECT_EQ(c->TotalParameters(), 1934976);
}

TEST(ModelConfigTest, TiedEmbeddingsCountedOnce) {
  json j = MixtralJson();
  absl::StatusOr<ModelConfig> untied = Parse(j);
  j["tie_word_embeddings"] = true;
  absl::StatusOr<ModelConfig> tied = Parse(j);
  ASSERT_TRUE(untied.ok() && tied.ok());
  EXPECT_TRUE(tied->tie_word_embeddings);
  EXPECT_EQ(untied->TotalParameters() - tied->TotalParameters(), 4096 * 128);
  EXPECT_EQ(untied->ActiveParameters(), tied->ActiveParameters());
}

TEST(ModelConfigTest, UnknownModelTypeNamesItAndTheFile) {
  json j = MixtralJson();
  j["model_type"] = "llama";
  absl::StatusOr<ModelConfig> c = Parse(j);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("cfg.json"));
  EXPECT_THAT(c.status().message(), HasSubstr("'llama'"));
  EXPECT_THAT(c.status().message(), HasSubstr("mixtral"));
  EXPECT_THAT(c.status().message(), HasSubstr("qwen3_moe"));
}

TEST(ModelConfigTest, ModelTypeIsRequired) {
  json absent = MixtralJson();
  absent.erase("model_type");
  json null = MixtralJson();
  null["model_type"] = nullptr;
  for (const json& j : {absent, null}) {
    absl::StatusOr<ModelConfig> c = Parse(j);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(c.status().message(), HasSubstr("cfg.json: missing required field 'model_type'"));
  }
}

// A config.json that leaves fields out means what it means to transformers:
// each family's configuration class defaults, which describe a real model.
// Parameter counts are checked against the published sizes.
TEST(ModelConfigTest, MissingFieldsTakeTheHuggingFaceDefaultsOfTheFamily) {
  absl::StatusOr<ModelConfig> mixtral = Parse(json{{"model_type", "mixtral"}});
  ASSERT_TRUE(mixtral.ok()) << mixtral.status();
  EXPECT_EQ(mixtral->hidden_size, 4096);
  EXPECT_EQ(mixtral->num_key_value_heads, 8);
  EXPECT_EQ(mixtral->head_dim, 128);
  EXPECT_EQ(mixtral->num_experts, 8);
  EXPECT_EQ(mixtral->max_position_embeddings, 131072);
  EXPECT_DOUBLE_EQ(mixtral->rope_theta, 1e6);
  EXPECT_EQ(mixtral->bos_token_id, 1);
  EXPECT_EQ(mixtral->eos_token_ids, std::vector<int64_t>({2}));
  EXPECT_EQ(mixtral->TotalParameters(), 46702792704);  // Mixtral-8x7B: 46.7B

  absl::StatusOr<ModelConfig> qwen2 = Parse(json{{"model_type", "qwen2_moe"}});
  ASSERT_TRUE(qwen2.ok()) << qwen2.status();
  EXPECT_EQ(qwen2->num_experts, 60);
  EXPECT_EQ(qwen2->num_experts_per_tok, 4);
  EXPECT_EQ(qwen2->intermediate_size, 1408);  // moe_intermediate_size
  EXPECT_EQ(qwen2->shared_expert_intermediate_size, 5632);
  EXPECT_TRUE(qwen2->qkv_bias);  // qkv_bias defaults to true
  EXPECT_FALSE(qwen2->o_bias);
  EXPECT_FALSE(qwen2->norm_topk_prob);
  EXPECT_DOUBLE_EQ(qwen2->rope_theta, 10000.0);
  EXPECT_FALSE(qwen2->bos_token_id.has_value());
  EXPECT_TRUE(qwen2->eos_token_ids.empty());
  EXPECT_EQ(qwen2->TotalParameters(), 14315784192);  // Qwen1.5-MoE-A2.7B: 14.3B

  absl::StatusOr<ModelConfig> qwen3 = Parse(json{{"model_type", "qwen3_moe"}});
  ASSERT_TRUE(qwen3.ok()) << qwen3.status();
  EXPECT_EQ(qwen3->num_experts, 128);
  EXPECT_EQ(qwen3->num_experts_per_tok, 8);
  EXPECT_EQ(qwen3->intermediate_size, 768);
  EXPECT_EQ(qwen3->head_dim, 64);  // hidden 2048 / 32 heads: no head_dim default in the class
  EXPECT_FALSE(qwen3->qkv_bias);
  EXPECT_FALSE(qwen3->norm_topk_prob);

  absl::StatusOr<ModelConfig> olmoe = Parse(json{{"model_type", "olmoe"}});
  ASSERT_TRUE(olmoe.ok()) << olmoe.status();
  EXPECT_EQ(olmoe->num_key_value_heads, 16);  // None: num_attention_heads
  EXPECT_EQ(olmoe->num_experts, 64);
  EXPECT_EQ(olmoe->eos_token_ids, std::vector<int64_t>({50279}));
  EXPECT_EQ(olmoe->intermediate_size, 2048);
  // OlmoeConfig's default expert size is 2048; OLMoE-1B-7B's config sets 1024.
  olmoe = Parse(json{{"model_type", "olmoe"}, {"intermediate_size", 1024}});
  ASSERT_TRUE(olmoe.ok()) << olmoe.status();
  EXPECT_EQ(olmoe->TotalParameters(), 6919161856);   // OLMoE-1B-7B: 6.92B
  EXPECT_EQ(olmoe->ActiveParameters(), 1178994688);  // + the embedding row: "1.3B active"
}

TEST(ModelConfigTest, AbsentTokenIdsTakeTheDefaultNullMeansNone) {
  json j = MixtralJson();
  j.erase("bos_token_id");
  j.erase("eos_token_id");
  absl::StatusOr<ModelConfig> c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->bos_token_id, 1);
  EXPECT_EQ(c->eos_token_ids, std::vector<int64_t>({2}));
  j["bos_token_id"] = nullptr;
  j["eos_token_id"] = nullptr;
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->bos_token_id.has_value());
  EXPECT_TRUE(c->eos_token_ids.empty());
}

TEST(ModelConfigTest, WrongJsonTypesNameTheField) {
  const std::vector<std::pair<std::string, json>> cases = {
      {"hidden_size", "128"},       {"hidden_size", 128.5},
      {"num_hidden_layers", true},  {"rms_norm_eps", "1e-5"},
      {"rope_theta", json::array()}, {"tie_word_embeddings", 1},
      {"eos_token_id", "</s>"},     {"eos_token_id", json::array({1, "x"})},
      {"bos_token_id", 1.5},        {"head_dim", json::object()},
      {"model_type", 7},            {"num_key_value_heads", "2"},
  };
  for (const auto& [field, value] : cases) {
    SCOPED_TRACE(field + " = " + value.dump());
    json j = MixtralJson();
    j[field] = value;
    absl::StatusOr<ModelConfig> c = Parse(j);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(c.status().message(), HasSubstr("cfg.json"));
    EXPECT_THAT(c.status().message(), HasSubstr("'" + field + "'"));
  }
}

TEST(ModelConfigTest, InvalidJsonNamesTheFile) {
  for (const char* text : {"{\"model_type\": ", "", "not json", "{\"a\":1}}"}) {
    SCOPED_TRACE(text);
    absl::StatusOr<ModelConfig> c = ParseModelConfig(text, "dir/config.json");
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(c.status().message(), HasSubstr("dir/config.json"));
    EXPECT_THAT(c.status().message(), HasSubstr("invalid JSON"));
  }
  absl::StatusOr<ModelConfig> c = ParseModelConfig("[1, 2]", "dir/config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("dir/config.json"));
  EXPECT_THAT(c.status().message(), HasSubstr("object"));
}

TEST(ModelConfigTest, MissingFileIsNotFound) {
  absl::StatusOr<ModelConfig> c = LoadModelConfig("/nonexistent/model");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr("/nonexistent/model/config.json"));
}

TEST(ModelConfigTest, DefaultsAndNulls) {
  json j = MixtralJson();
  j["head_dim"] = nullptr;
  j["num_attention_heads"] = 16;
  j.erase("num_key_value_heads");
  j.erase("tie_word_embeddings");
  j["bos_token_id"] = nullptr;
  j["eos_token_id"] = nullptr;
  absl::StatusOr<ModelConfig> c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->head_dim, 8);               // 128 / 16
  EXPECT_EQ(c->num_key_value_heads, 8);    // MixtralConfig's default
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_FALSE(c->bos_token_id.has_value());
  EXPECT_TRUE(c->eos_token_ids.empty());
}

TEST(ModelConfigTest, EosList) {
  json j = MixtralJson();
  j["eos_token_id"] = json::array({2, 7, 4095});
  absl::StatusOr<ModelConfig> c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->eos_token_ids, std::vector<int64_t>({2, 7, 4095}));
  EXPECT_EQ(c->bos_token_id, 1);
}

TEST(ModelConfigTest, Qwen3MoeSwitches) {
  absl::StatusOr<ModelConfig> c = Parse(Qwen3MoeJson());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->family, ModelFamily::kQwen3Moe);
  EXPECT_EQ(ModelFamilyName(c->family), "qwen3_moe");
  EXPECT_EQ(c->num_experts, 8);
  EXPECT_EQ(c->intermediate_size, 32);  // moe_intermediate_size, not the dense one
  EXPECT_EQ(c->mlp_intermediate_size, 512);
  EXPECT_EQ(c->head_dim, 32);
  EXPECT_EQ(c->q_dim(), 128);  // differs from hidden_size
  EXPECT_TRUE(c->norm_topk_prob);
  EXPECT_TRUE(c->qk_norm);
  EXPECT_TRUE(c->qk_norm_per_head);
  EXPECT_FALSE(c->qkv_bias);
  EXPECT_FALSE(c->o_bias);
  EXPECT_EQ(c->shared_expert_intermediate_size, 0);
  EXPECT_FALSE(c->bos_token_id.has_value());
  EXPECT_EQ(c->NumMoeLayers(), 3);

  json j = Qwen3MoeJson();
  j["attention_bias"] = true;  // Qwen3-MoE: on q, k, v and o
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->qkv_bias);
  EXPECT_TRUE(c->o_bias);

  j = Qwen3MoeJson();
  j.erase("norm_topk_prob");  // Qwen3MoeConfig's default is false
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->norm_topk_prob);
}

TEST(ModelConfigTest, SparsityChoosesTheMoeLayers) {
  json j = Qwen3MoeJson();
  j["mlp_only_layers"] = json::array({1});
  absl::StatusOr<ModelConfig> c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->IsMoeLayer(0));
  EXPECT_FALSE(c->IsMoeLayer(1));
  EXPECT_TRUE(c->IsMoeLayer(2));
  EXPECT_EQ(c->DenseLayers(), std::vector<int>({1}));
  absl::StatusOr<ModelConfig> all_moe = Parse(Qwen3MoeJson());
  ASSERT_TRUE(all_moe.ok());
  // One layer trades 8 experts and a gate for a 512-wide dense MLP.
  EXPECT_EQ(all_moe->TotalParameters() - c->TotalParameters(), 8 * 3 * 64 * 32 + 8 * 64 - 3 * 64 * 512);
  EXPECT_EQ(all_moe->ActiveParameters() - c->ActiveParameters(), 2 * 3 * 64 * 32 + 8 * 64 - 3 * 64 * 512);

  j = Qwen3MoeJson();
  j["decoder_sparse_step"] = 2;  // layers 1, 3, ... ((l + 1) % 2 == 0)
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->DenseLayers(), std::vector<int>({0, 2}));

  for (const auto& [field, value, want] : std::vector<std::tuple<std::string, json, std::string>>{
           {"mlp_only_layers", json::array({3}), "'mlp_only_layers' holds 3, which is not a layer (0-2)"},
           {"mlp_only_layers", json::array({0, 1, 2}), "no layer has experts"},
           {"decoder_sparse_step", 4, "no layer has experts"},
           {"decoder_sparse_step", 0, "'decoder_sparse_step' = 0 must be at least 1"},
           {"mlp_only_layers", "1", "'mlp_only_layers' must be a list"},
       }) {
    SCOPED_TRACE(field + " = " + value.dump());
    j = Qwen3MoeJson();
    j[field] = value;
    absl::StatusOr<ModelConfig> bad = Parse(j);
    ASSERT_FALSE(bad.ok());
    EXPECT_THAT(bad.status().message(), HasSubstr(want));
  }
}

TEST(ModelConfigTest, Qwen2MoeSharedExpert) {
  json j = Qwen3MoeJson();
  j["model_type"] = "qwen2_moe";
  j.erase("head_dim");
  j.erase("norm_topk_prob");
  j["shared_expert_intermediate_size"] = 96;
  absl::StatusOr<ModelConfig> c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->family, ModelFamily::kQwen2Moe);
  EXPECT_EQ(c->head_dim, 16);  // 64 / 4
  EXPECT_FALSE(c->norm_topk_prob);
  EXPECT_FALSE(c->qk_norm);
  EXPECT_TRUE(c->qkv_bias);  // no 'qkv_bias' key: true
  EXPECT_FALSE(c->o_bias);
  EXPECT_EQ(c->shared_expert_intermediate_size, 96);
  EXPECT_TRUE(c->shared_expert_gate);

  absl::StatusOr<ModelConfig> plain = Parse(Qwen3MoeJson());
  ASSERT_TRUE(plain.ok());
  // Shared expert: 3 matrices + the [1, hidden] sigmoid gate; q/k/v biases
  // (q_dim 128, kv_dim 64); no q/k norm.
  const int64_t per_layer_delta = 3 * 64 * 96 + 64 + (128 + 2 * 64) - 2 * 32 /*q/k norm*/;
  // The head_dim differs too (16 vs 32), so compare against a qwen2 config with head_dim 32.
  j["head_dim"] = 32;
  absl::StatusOr<ModelConfig> c32 = Parse(j);
  ASSERT_TRUE(c32.ok());
  EXPECT_EQ(c32->ActiveParameters() - plain->ActiveParameters(), 3 * per_layer_delta);
  EXPECT_EQ(c32->TotalParameters() - plain->TotalParameters(), 3 * per_layer_delta);

  // The Qwen2-MoE key is 'qkv_bias'; 'attention_bias' is not read.
  j["qkv_bias"] = false;
  j["attention_bias"] = true;
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->qkv_bias);
  EXPECT_FALSE(c->o_bias);

  j["shared_expert_intermediate_size"] = 0;
  EXPECT_THAT(Parse(j).status().message(), HasSubstr("'shared_expert_intermediate_size' = 0 must be positive"));
}

TEST(ModelConfigTest, OlmoeSwitches) {
  json j = MixtralJson();
  j["model_type"] = "olmoe";
  j.erase("num_local_experts");
  j["num_experts"] = 8;
  j["clip_qkv"] = nullptr;
  absl::StatusOr<ModelConfig> c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->family, ModelFamily::kOlmoe);
  EXPECT_TRUE(c->qk_norm);
  EXPECT_FALSE(c->qk_norm_per_head);
  EXPECT_FALSE(c->norm_topk_prob);
  EXPECT_FALSE(c->qkv_bias);
  EXPECT_FALSE(c->clip_qkv.has_value());
  EXPECT_EQ(c->intermediate_size, 256);

  j["clip_qkv"] = 8.0;
  j["attention_bias"] = true;
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->clip_qkv, 8.0);
  EXPECT_TRUE(c->qkv_bias);
  EXPECT_TRUE(c->o_bias);

  j["clip_qkv"] = -1;
  EXPECT_THAT(Parse(j).status().message(), HasSubstr("'clip_qkv' = -1 must be a positive number"));
  j["clip_qkv"] = "8";
  EXPECT_THAT(Parse(j).status().message(), HasSubstr("'clip_qkv' must be a number or null"));
  j["clip_qkv"] = nullptr;
  j["head_dim"] = 64;  // q/k norms span hidden_size: the projection must too
  EXPECT_THAT(Parse(j).status().message(), HasSubstr("'head_dim' = 64 must be hidden_size / num_attention_heads = 32"));
}

TEST(ModelConfigTest, UnsupportedAttentionVariantsAreRefusedByName) {
  struct Case {
    json base;
    std::string field;
    json value;
    std::string want;
  };
  const std::vector<Case> cases = {
      {MixtralJson(), "sliding_window", 1024, "'sliding_window' = 1024 is not supported"},
      {Qwen3MoeJson(), "use_sliding_window", true, "'use_sliding_window' = true is not supported"},
      {MixtralJson(), "rope_scaling", json{{"rope_type", "yarn"}, {"factor", 4.0}}, "'rope_scaling.rope_type' = \"yarn\""},
      {MixtralJson(), "rope_scaling", json{{"type", "linear"}}, "'rope_scaling.type' = \"linear\""},
      {MixtralJson(), "rope_parameters", json{{"rope_type", "llama3"}}, "'rope_parameters.rope_type'"},
      {MixtralJson(), "rope_scaling", 2, "'rope_scaling' must be an object or null"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.field + " = " + k.value.dump());
    json j = k.base;
    j[k.field] = k.value;
    absl::StatusOr<ModelConfig> c = Parse(j);
    ASSERT_FALSE(c.ok());
    EXPECT_THAT(c.status().message(), HasSubstr(k.want));
  }
  // What changes nothing is accepted: a window as long as the context, default RoPE.
  json j = MixtralJson();
  j["sliding_window"] = 4096;
  j["rope_parameters"] = json{{"rope_type", "default"}, {"rope_theta", 5e5}};
  absl::StatusOr<ModelConfig> c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_DOUBLE_EQ(c->rope_theta, 5e5);  // newer configs keep rope_theta here
}

TEST(ModelConfigTest, ValidateNamesFieldAndValue) {
  struct Case {
    std::string field;
    json value;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"num_key_value_heads", 3, "'num_key_value_heads' = 3"},
      {"num_experts_per_tok", 5, "'num_experts_per_tok' = 5"},
      {"num_experts_per_tok", 0, "'num_experts_per_tok' = 0"},
      {"hidden_size", 0, "'hidden_size' = 0"},
      {"num_hidden_layers", -1, "'num_hidden_layers' = -1"},
      {"vocab_size", 0, "'vocab_size' = 0"},
      {"head_dim", 0, "'head_dim' = 0"},
      {"rms_norm_eps", -1.0, "'rms_norm_eps' = -1"},
      {"eos_token_id", 4096, "'eos_token_id' holds 4096"},
      {"bos_token_id", -1, "'bos_token_id' = -1"},
      {"hidden_size", int64_t{1} << 40, "overflows"},
      {"vocab_size", uint64_t{1} << 63, "too large"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.field + " = " + k.value.dump());
    json j = MixtralJson();
    j[k.field] = k.value;
    absl::StatusOr<ModelConfig> c = Parse(j);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(c.status().message(), HasSubstr("cfg.json"));
    EXPECT_THAT(c.status().message(), HasSubstr(k.want));
  }
}

TEST(ModelConfigTest, ValidateDirectly) {
  ModelConfig c;
  EXPECT_FALSE(c.Validate().ok());
  absl::StatusOr<ModelConfig> good = Parse(MixtralJson());
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(good->Validate().ok());
}

}  // namespace
}  // namespace moe
