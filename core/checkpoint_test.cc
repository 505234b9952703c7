#include "core/checkpoint.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace moe {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

const std::string kFixtureDir = std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral";

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "/moe_checkpoint_test_XXXXXX";
    char* p = ::mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr);
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  void Write(const std::string& name, const std::string& bytes) const {
    std::ofstream out(path_ + "/" + name, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }

 private:
  std::string path_;
};

struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
};

// A safetensors file of zero-filled BF16 tensors, built by hand.
std::string SafetensorsBytes(const std::vector<Tensor>& tensors) {
  json header = json::object();
  uint64_t offset = 0;
  for (const Tensor& t : tensors) {
    uint64_t n = 2;
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
    header[t.name] = {{"dtype", "BF16"}, {"shape", t.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  const std::string text = header.dump();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  return out + text + std::string(offset, '\0');
}

// A tiny Mixtral: hidden 128 so that the gate is [4, 128].
json TinyConfig() {
  return json{{"model_type", "mixtral"},  {"hidden_size", 128},   {"intermediate_size", 4},
              {"num_hidden_layers", 2},   {"num_attention_heads", 2}, {"num_key_value_heads", 1},
              {"head_dim", 4},            {"num_local_experts", 4}, {"num_experts_per_tok", 2},
              {"vocab_size", 8},          {"eos_token_id", 7}};
}

// The tensors of the tiny Mixtral, spelled out (independent of ExpectedTensors).
std::vector<Tensor> TinyTensors() {
  std::vector<Tensor> t = {{"model.embed_tokens.weight", {8, 128}},
                           {"model.norm.weight", {128}},
                           {"lm_head.weight", {8, 128}}};
  for (int l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    t.push_back({p + "input_layernorm.weight", {128}});
    t.push_back({p + "post_attention_layernorm.weight", {128}});
    t.push_back({p + "self_attn.q_proj.weight", {8, 128}});
    t.push_back({p + "self_attn.k_proj.weight", {4, 128}});
    t.push_back({p + "self_attn.v_proj.weight", {4, 128}});
    t.push_back({p + "self_attn.o_proj.weight", {128, 8}});
    t.push_back({p + "block_sparse_moe.gate.weight", {4, 128}});
    for (int e = 0; e < 4; ++e) {
      const std::string q = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
      t.push_back({q + "w1.weight", {4, 128}});
      t.push_back({q + "w2.weight", {128, 4}});
      t.push_back({q + "w3.weight", {4, 128}});
    }
  }
  return t;
}

void WriteCheckpoint(const TempDir& dir, const std::vector<Tensor>& tensors) {
  dir.Write("config.json", TinyConfig().dump(1));
  dir.Write("model.safetensors", SafetensorsBytes(tensors));
}

void ExpectMentions(const absl::Status& s, const std::vector<std::string>& words) {
  EXPECT_FALSE(s.ok());
  for (const std::string& w : words) EXPECT_THAT(s.message(), HasSubstr(w)) << s;
}

TEST(CheckpointTest, FixtureValidates) {
  absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(kFixtureDir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ((*ckpt)->dir(), kFixtureDir);
  EXPECT_EQ((*ckpt)->config().num_experts, 4);
  EXPECT_EQ((*ckpt)->store().Names().size(), ExpectedTensors((*ckpt)->config()).size());
}

// The family fixtures with one config switch flipped: the tensors no longer
// agree, and the error names the first tensor that shows it.
TEST(CheckpointTest, FamilyFixtureWithAFlippedSwitchNamesTheTensor) {
  struct Case {
    std::string family, key;
    nlohmann::json value;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"qwen2_moe", "qkv_bias", false, "unexpected tensor 'model.layers.0.self_attn.k_proj.bias' (not part of a qwen2_moe model with this config) and 5 more"},
      {"qwen2_moe", "shared_expert_intermediate_size", 128, "'model.layers.0.mlp.shared_expert.gate_proj.weight' has shape [256,128], config wants [128,128]"},
      {"qwen2_moe", "mlp_only_layers", nlohmann::json::array({1}), "missing tensor 'model.layers.1.mlp.gate_proj.weight'"},
      {"qwen3_moe", "attention_bias", true, "missing tensor 'model.layers.0.self_attn.q_proj.bias'"},
      {"olmoe", "attention_bias", true, "missing tensor 'model.layers.0.self_attn.q_proj.bias' (shape [128] for model_type olmoe) and 7 more"},
      {"qwen3_moe", "head_dim", 32, "model.layers.0.self_attn.q_proj.weight"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.family + ": " + k.key + " = " + k.value.dump());
    const std::string fixture = std::string(MOE_TESTDATA_DIR) + "/tiny-" + k.family;
    TempDir dir;
    std::ifstream in(fixture + "/config.json");
    nlohmann::json config = nlohmann::json::parse(in);
    config[k.key] = k.value;
    dir.Write("config.json", config.dump());
    std::filesystem::create_symlink(fixture + "/model.safetensors", dir.path() + "/model.safetensors");
    absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(dir.path());
    ASSERT_FALSE(ckpt.ok());
    EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(ckpt.status().message()), HasSubstr(k.want));
  }
}

TEST(CheckpointTest, TinyHandWrittenCheckpointValidates) {
  TempDir dir;
  WriteCheckpoint(dir, TinyTensors());
  absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
}

TEST(CheckpointTest, MissingExpertTensorIsNamed) {
  TempDir dir;
  std::vector<Tensor> tensors = TinyTensors();
  const std::string missing = "model.layers.1.block_sparse_moe.experts.3.w2.weight";
  std::erase_if(tensors, [&](const Tensor& t) { return t.name == missing; });
  WriteCheckpoint(dir, tensors);
  absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(dir.path());
  ASSERT_FALSE(ckpt.ok());
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kInvalidArgument);
  ExpectMentions(ckpt.status(), {"'" + missing + "'", dir.path(), "missing"});
}

TEST(CheckpointTest, UnexpectedTensorIsNamed) {
  TempDir dir;
  std::vector<Tensor> tensors = TinyTensors();
  tensors.push_back({"model.layers.0.block_sparse_moe.experts.4.w1.weight", {4, 128}});
  WriteCheckpoint(dir, tensors);
  absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(dir.path());
  ASSERT_FALSE(ckpt.ok());
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kInvalidArgument);
  ExpectMentions(ckpt.status(), {"'model.layers.0.block_sparse_moe.experts.4.w1.weight'",
                                 "model.safetensors", "unexpected"});
}

TEST(CheckpointTest, WrongGateShapeNamesTensorAndBothShapes) {
  TempDir dir;
  std::vector<Tensor> tensors = TinyTensors();
  for (Tensor& t : tensors) {
    if (t.name == "model.layers.1.block_sparse_moe.gate.weight") t.shape = {4, 127};
  }
  WriteCheckpoint(dir, tensors);
  absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(dir.path());
  ASSERT_FALSE(ckpt.ok());
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ckpt.status().message(),
              HasSubstr("model.safetensors: tensor 'model.layers.1.block_sparse_moe.gate.weight' "
                        "has shape [4,127], config wants [4,128]"));
}

TEST(CheckpointTest, TiedEmbeddingsHaveNoLmHead) {
  TempDir dir;
  std::vector<Tensor> tensors = TinyTensors();
  std::erase_if(tensors, [](const Tensor& t) { return t.name == "lm_head.weight"; });
  json cfg = TinyConfig();
  cfg["tie_word_embeddings"] = true;
  dir.Write("config.json", cfg.dump());
  dir.Write("model.safetensors", SafetensorsBytes(tensors));
  absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
}

TEST(CheckpointTest, BadConfigOrMissingWeightsAreReported) {
  TempDir dir;
  dir.Write("config.json", "{");
  absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(dir.path());
  ExpectMentions(ckpt.status(), {"config.json"});

  dir.Write("config.json", TinyConfig().dump());
  ckpt = Checkpoint::Open(dir.path());
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kNotFound);
  ExpectMentions(ckpt.status(), {dir.path(), "model.safetensors"});
}

TEST(TensorNamesTest, MixtralNames) {
  ModelConfig c;
  c.family = ModelFamily::kMixtral;
  EXPECT_EQ(TensorNames::Expert(c, 3, 5, 0), "model.layers.3.block_sparse_moe.experts.5.w1.weight");
  EXPECT_EQ(TensorNames::Expert(c, 3, 5, 1), "model.layers.3.block_sparse_moe.experts.5.w2.weight");
  EXPECT_EQ(TensorNames::Expert(c, 3, 5, 2), "model.layers.3.block_sparse_moe.experts.5.w3.weight");
  EXPECT_EQ(TensorNames::Gate(c, 0), "model.layers.0.block_sparse_moe.gate.weight");
  EXPECT_EQ(TensorNames::Q(c, 1), "model.layers.1.self_attn.q_proj.weight");
  EXPECT_EQ(TensorNames::O(c, 1), "model.layers.1.self_attn.o_proj.weight");
  EXPECT_EQ(TensorNames::InputNorm(c, 2), "model.layers.2.input_layernorm.weight");
  EXPECT_EQ(TensorNames::PostAttentionNorm(c, 2), "model.layers.2.post_attention_layernorm.weight");
  EXPECT_EQ(TensorNames::Embedding(), "model.embed_tokens.weight");
  EXPECT_EQ(TensorNames::FinalNorm(), "model.norm.weight");
  EXPECT_EQ(TensorNames::LmHead(), "lm_head.weight");
}

ModelConfig QwenLike(ModelFamily family) {
  ModelConfig c;
  c.family = family;
  c.model_type = std::string(ModelFamilyName(family));
  c.hidden_size = 16;
  c.intermediate_size = 6;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.num_experts = 2;
  c.num_experts_per_tok = 1;
  c.vocab_size = 10;
  c.max_position_embeddings = 32;
  return c;
}

int64_t SumElements(const ModelConfig& c) {
  int64_t total = 0;
  for (const ExpectedTensor& t : ExpectedTensors(c)) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    total += n;
  }
  return total;
}

std::map<std::string, std::vector<int64_t>> ShapesByName(const ModelConfig& c) {
  std::map<std::string, std::vector<int64_t>> m;
  for (const ExpectedTensor& t : ExpectedTensors(c)) {
    EXPECT_TRUE(m.emplace(t.name, t.shape).second) << "duplicate " << t.name;
  }
  return m;
}

TEST(TensorNamesTest, Qwen2MoeSharedExpertAndBiases) {
  ModelConfig c = QwenLike(ModelFamily::kQwen2Moe);
  c.qkv_bias = true;
  c.shared_expert_intermediate_size = 12;
  c.shared_expert_gate = true;
  ASSERT_TRUE(c.Validate().ok()) << c.Validate();
  auto m = ShapesByName(c);
  using V = std::vector<int64_t>;
  EXPECT_EQ(m.at("model.layers.0.mlp.gate.weight"), V({2, 16}));
  EXPECT_EQ(m.at("model.layers.0.mlp.experts.1.gate_proj.weight"), V({6, 16}));
  EXPECT_EQ(m.at("model.layers.0.mlp.experts.1.down_proj.weight"), V({16, 6}));
  EXPECT_EQ(m.at("model.layers.0.mlp.experts.1.up_proj.weight"), V({6, 16}));
  EXPECT_EQ(m.at("model.layers.0.mlp.shared_expert.gate_proj.weight"), V({12, 16}));
  EXPECT_EQ(m.at("model.layers.0.mlp.shared_expert.down_proj.weight"), V({16, 12}));
  EXPECT_EQ(m.at("model.layers.0.mlp.shared_expert.up_proj.weight"), V({12, 16}));
  EXPECT_EQ(m.at("model.layers.0.mlp.shared_expert_gate.weight"), V({1, 16}));
  EXPECT_EQ(m.at("model.layers.0.self_attn.q_proj.bias"), V({32}));
  EXPECT_EQ(m.at("model.layers.0.self_attn.k_proj.bias"), V({16}));
  EXPECT_EQ(m.at("model.layers.0.self_attn.o_proj.weight"), V({16, 32}));
  EXPECT_EQ(m.count("model.layers.0.self_attn.q_norm.weight"), 0u);
  EXPECT_EQ(m.count("model.layers.0.self_attn.o_proj.bias"), 0u);  // Qwen2-MoE: never on o_proj
  EXPECT_EQ(m.count("lm_head.weight"), 1u);

  // Roles: routed experts only are kExpert; the shared expert stays dense.
  for (const ExpectedTensor& t : ExpectedTensors(c)) {
    const bool routed = t.name.find(".mlp.experts.") != std::string::npos;
    EXPECT_EQ(t.role == TensorRole::kExpert, routed) << t.name;
    if (routed) {
      EXPECT_GE(t.expert, 0) << t.name;
    }
  }
  EXPECT_EQ(SumElements(c), c.TotalParameters());
}

TEST(TensorNamesTest, QkNormShapes) {
  ModelConfig qwen3 = QwenLike(ModelFamily::kQwen3Moe);
  qwen3.qk_norm = true;
  qwen3.qk_norm_per_head = true;
  auto m = ShapesByName(qwen3);
  EXPECT_EQ(m.at("model.layers.0.self_attn.q_norm.weight"), std::vector<int64_t>({8}));
  EXPECT_EQ(m.at("model.layers.0.self_attn.k_norm.weight"), std::vector<int64_t>({8}));

  ModelConfig olmoe = QwenLike(ModelFamily::kOlmoe);
  olmoe.qk_norm = true;
  olmoe.qk_norm_per_head = false;
  m = ShapesByName(olmoe);
  EXPECT_EQ(m.at("model.layers.0.self_attn.q_norm.weight"), std::vector<int64_t>({32}));
  EXPECT_EQ(m.at("model.layers.0.self_attn.k_norm.weight"), std::vector<int64_t>({16}));
  EXPECT_EQ(SumElements(qwen3), qwen3.TotalParameters());
  EXPECT_EQ(SumElements(olmoe), olmoe.TotalParameters());
}

TEST(TensorNamesTest, OutputProjectionBias) {
  ModelConfig c = QwenLike(ModelFamily::kQwen3Moe);
  c.num_hidden_layers = 2;
  c.qkv_bias = true;
  c.o_bias = true;
  auto m = ShapesByName(c);
  EXPECT_EQ(m.at("model.layers.0.self_attn.v_proj.bias"), std::vector<int64_t>({16}));
  EXPECT_EQ(m.at("model.layers.1.self_attn.o_proj.bias"), std::vector<int64_t>({16}));
  EXPECT_EQ(SumElements(c), c.TotalParameters());
}

TEST(TensorNamesTest, DenseMlpLayersHaveNoGateOrExperts) {
  ModelConfig c = QwenLike(ModelFamily::kQwen3Moe);
  c.num_hidden_layers = 2;
  c.mlp_only_layers = {0};
  c.mlp_intermediate_size = 40;
  ASSERT_TRUE(c.Validate().ok()) << c.Validate();
  auto m = ShapesByName(c);
  using V = std::vector<int64_t>;
  EXPECT_EQ(m.at("model.layers.0.mlp.gate_proj.weight"), V({40, 16}));
  EXPECT_EQ(m.at("model.layers.0.mlp.down_proj.weight"), V({16, 40}));
  EXPECT_EQ(m.at("model.layers.0.mlp.up_proj.weight"), V({40, 16}));
  EXPECT_EQ(m.count("model.layers.0.mlp.gate.weight"), 0u);
  EXPECT_EQ(m.count("model.layers.0.mlp.experts.0.gate_proj.weight"), 0u);
  EXPECT_EQ(m.count("model.layers.1.mlp.gate.weight"), 1u);
  EXPECT_EQ(m.count("model.layers.1.mlp.gate_proj.weight"), 0u);
  for (const ExpectedTensor& t : ExpectedTensors(c)) {
    if (t.role == TensorRole::kExpert) {
      EXPECT_EQ(t.layer, 1) << t.name;
    }
  }
  EXPECT_EQ(SumElements(c), c.TotalParameters());
}

TEST(TensorNamesTest, ExpectedCountMatchesParameters) {
  absl::StatusOr<ModelConfig> c = LoadModelConfig(kFixtureDir);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(SumElements(*c), c->TotalParameters());
}

}  // namespace
}  // namespace moe
