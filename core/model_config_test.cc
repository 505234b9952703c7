#include "core/model_config.h"

#include <string>

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
  EXPECT_FALSE(c->attention_bias);
  EXPECT_EQ(c->shared_expert_intermediate_size, 0);
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

TEST(ModelConfigTest, EachMissingRequiredFieldIsNamed) {
  for (const char* field :
       {"model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "num_local_experts", "num_experts_per_tok", "vocab_size"}) {
    SCOPED_TRACE(field);
    json j = MixtralJson();
    j.erase(field);
    absl::StatusOr<ModelConfig> c = Parse(j);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(c.status().message(), HasSubstr("cfg.json"));
    EXPECT_THAT(c.status().message(), HasSubstr(std::string("'") + field + "'"));
    EXPECT_THAT(c.status().message(), HasSubstr("missing"));
  }
}

TEST(ModelConfigTest, RequiredFieldSetToNullIsMissing) {
  json j = MixtralJson();
  j["hidden_size"] = nullptr;
  absl::StatusOr<ModelConfig> c = Parse(j);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("'hidden_size'"));
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
  j.erase("num_key_value_heads");
  j.erase("tie_word_embeddings");
  j["bos_token_id"] = nullptr;
  j["eos_token_id"] = nullptr;
  absl::StatusOr<ModelConfig> c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->head_dim, 32);  // 128 / 4
  EXPECT_EQ(c->num_key_value_heads, 4);
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
  EXPECT_EQ(c->head_dim, 32);
  EXPECT_EQ(c->q_dim(), 128);  // differs from hidden_size
  EXPECT_TRUE(c->norm_topk_prob);
  EXPECT_TRUE(c->qk_norm);
  EXPECT_TRUE(c->qk_norm_per_head);
  EXPECT_FALSE(c->attention_bias);
  EXPECT_EQ(c->shared_expert_intermediate_size, 0);
  EXPECT_FALSE(c->bos_token_id.has_value());

  json j = Qwen3MoeJson();
  j.erase("moe_intermediate_size");
  absl::StatusOr<ModelConfig> missing = Parse(j);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("'moe_intermediate_size'"));

  j = Qwen3MoeJson();
  j["mlp_only_layers"] = json::array({1});
  absl::StatusOr<ModelConfig> dense = Parse(j);
  ASSERT_FALSE(dense.ok());
  EXPECT_THAT(dense.status().message(), HasSubstr("mlp_only_layers"));
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
  EXPECT_TRUE(c->attention_bias);
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
  EXPECT_EQ(c->intermediate_size, 256);

  j["clip_qkv"] = 8.0;
  EXPECT_THAT(Parse(j).status().message(), HasSubstr("clip_qkv"));
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
