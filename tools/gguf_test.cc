#include "tools/gguf.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/dtype.h"
#include "core/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace moe::gguf {
namespace {

using ::testing::HasSubstr;

const std::string kTiny = std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral";

std::string SourceBytes(const SafetensorsFile& st, const std::string& name) {
  absl::StatusOr<TensorView> t = st.Get(name);
  EXPECT_TRUE(t.ok()) << t.status();
  return std::string(reinterpret_cast<const char*>(t->data), t->nbytes());
}

TEST(GgufTest, RotaryRowOrderIsAPermutationWithinEachHead) {
  for (int64_t hd : {2, 8, 32, 128}) {
    std::set<int64_t> seen;
    for (int64_t r = 0; r < 3 * hd; ++r) {
      const int64_t s = RotaryRowSource(r, hd);
      EXPECT_EQ(s / hd, r / hd) << "stays in its head";
      seen.insert(s);
    }
    EXPECT_EQ(seen.size(), static_cast<size_t>(3 * hd));
  }
  // Head dim 4: new rows (x0, y0, x1, y1) come from old rows (x0, x1, y0, y1).
  EXPECT_EQ(RotaryRowSource(0, 4), 0);
  EXPECT_EQ(RotaryRowSource(1, 4), 2);
  EXPECT_EQ(RotaryRowSource(2, 4), 1);
  EXPECT_EQ(RotaryRowSource(3, 4), 3);
}

TEST(GgufTest, ExportRoundTripsNamesShapesAndBytes) {
  const std::string out = ::testing::TempDir() + "/tiny-mixtral.gguf";
  ASSERT_TRUE(ExportGguf(kTiny, out).ok());
  absl::StatusOr<File> f = Read(out);
  ASSERT_TRUE(f.ok()) << f.status();

  auto u32 = [&](const std::string& key) {
    const Value* v = f->Find(key);
    EXPECT_NE(v, nullptr) << key;
    return v != nullptr && std::holds_alternative<uint32_t>(*v) ? std::get<uint32_t>(*v) : 0u;
  };
  ASSERT_NE(f->Find("general.architecture"), nullptr);
  EXPECT_EQ(std::get<std::string>(*f->Find("general.architecture")), "llama");
  EXPECT_EQ(u32("llama.block_count"), 2u);
  EXPECT_EQ(u32("llama.embedding_length"), 128u);
  EXPECT_EQ(u32("llama.feed_forward_length"), 256u);
  EXPECT_EQ(u32("llama.attention.head_count"), 4u);
  EXPECT_EQ(u32("llama.attention.head_count_kv"), 2u);
  EXPECT_EQ(u32("llama.expert_count"), 4u);
  EXPECT_EQ(u32("llama.expert_used_count"), 2u);
  EXPECT_EQ(u32("tokenizer.ggml.eos_token_id"), 4095u);
  EXPECT_EQ(std::get<float>(*f->Find("llama.rope.freq_base")), 1e6f);
  EXPECT_EQ(std::get<std::string>(*f->Find("tokenizer.ggml.pre")), "qwen2");
  // The tokenizer: every id named, the added tokens as control tokens, the merges.
  std::ifstream tin(kTiny + "/tokenizer.json");
  const nlohmann::json tok = nlohmann::json::parse(tin);
  const auto& tokens = std::get<std::vector<std::string>>(*f->Find("tokenizer.ggml.tokens"));
  const auto& types = std::get<std::vector<int32_t>>(*f->Find("tokenizer.ggml.token_type"));
  ASSERT_EQ(tokens.size(), 4096u);
  ASSERT_EQ(types.size(), 4096u);
  for (const auto& [text, id] : tok["model"]["vocab"].items()) {
    EXPECT_EQ(tokens[id.get<size_t>()], text);
    EXPECT_EQ(types[id.get<size_t>()], 1);
  }
  for (const auto& a : tok["added_tokens"]) {
    EXPECT_EQ(tokens[a["id"].get<size_t>()], a["content"].get<std::string>());
    EXPECT_EQ(types[a["id"].get<size_t>()], 3);
  }
  const auto& merges = std::get<std::vector<std::string>>(*f->Find("tokenizer.ggml.merges"));
  ASSERT_EQ(merges.size(), tok["model"]["merges"].size());
  EXPECT_EQ(merges[2], tok["model"]["merges"][2][0].get<std::string>() + " " +
                           tok["model"]["merges"][2][1].get<std::string>());

  // Tensors: the names llama.cpp loads, ggml shapes, and the checkpoint's bytes.
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> st = SafetensorsFile::Open(kTiny + "/model.safetensors");
  ASSERT_TRUE(st.ok()) << st.status();
  std::set<std::string> names;
  for (const Tensor& t : f->tensors) names.insert(t.name);
  std::set<std::string> want = {"token_embd.weight", "output_norm.weight", "output.weight"};
  for (int l = 0; l < 2; ++l) {
    for (const char* n : {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate_inp",
                          "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"}) {
      want.insert(absl::StrCat("blk.", l, ".", n, ".weight"));
    }
  }
  EXPECT_EQ(names, want);
  auto tensor = [&](const std::string& name) {
    const Tensor* t = f->FindTensor(name);
    EXPECT_NE(t, nullptr) << name;
    return t;
  };
  const Tensor* embd = tensor("token_embd.weight");
  EXPECT_EQ(embd->dims, (std::vector<uint64_t>{128, 4096}));
  EXPECT_EQ(embd->type, TensorType::kBF16);
  EXPECT_EQ(embd->data, SourceBytes(**st, "model.embed_tokens.weight"));
  EXPECT_EQ(tensor("output.weight")->data, SourceBytes(**st, "lm_head.weight"));
  for (int l = 0; l < 2; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    const std::string g = absl::StrCat("blk.", l, ".");
    // Norms in f32, exactly the bf16 values.
    const Tensor* norm = tensor(g + "attn_norm.weight");
    EXPECT_EQ(norm->type, TensorType::kF32);
    const std::string src = SourceBytes(**st, p + "input_layernorm.weight");
    for (size_t i = 0; i < 128; ++i) {
      uint16_t b;
      float x;
      std::memcpy(&b, src.data() + 2 * i, 2);
      std::memcpy(&x, norm->data.data() + 4 * i, 4);
      EXPECT_EQ(x, Bf16ToF32(b));
    }
    EXPECT_EQ(tensor(g + "attn_v.weight")->data, SourceBytes(**st, p + "self_attn.v_proj.weight"));
    EXPECT_EQ(tensor(g + "attn_output.weight")->data, SourceBytes(**st, p + "self_attn.o_proj.weight"));
    EXPECT_EQ(tensor(g + "ffn_gate_inp.weight")->dims, (std::vector<uint64_t>{128, 4}));
    // q and k: the same rows, in the rotary order.
    for (const auto& [gg, hf, rows] : {std::tuple{"attn_q", "q_proj", 128}, std::tuple{"attn_k", "k_proj", 64}}) {
      const Tensor* t = tensor(g + gg + ".weight");
      EXPECT_EQ(t->dims, (std::vector<uint64_t>{128, static_cast<uint64_t>(rows)}));
      const std::string s = SourceBytes(**st, p + "self_attn." + hf + ".weight");
      for (int r = 0; r < rows; ++r) {
        EXPECT_EQ(t->data.substr(r * 256, 256), s.substr(RotaryRowSource(r, 32) * 256, 256)) << gg << " row " << r;
      }
    }
    // Experts stacked in order.
    const Tensor* down = tensor(g + "ffn_down_exps.weight");
    EXPECT_EQ(down->dims, (std::vector<uint64_t>{256, 128, 4}));
    const Tensor* gate = tensor(g + "ffn_gate_exps.weight");
    EXPECT_EQ(gate->dims, (std::vector<uint64_t>{128, 256, 4}));
    const Tensor* up = tensor(g + "ffn_up_exps.weight");
    for (int e = 0; e < 4; ++e) {
      const size_t n = 256 * 128 * 2;
      const std::string x = absl::StrCat(p, "block_sparse_moe.experts.", e, ".");
      EXPECT_EQ(gate->data.substr(e * n, n), SourceBytes(**st, x + "w1.weight"));
      EXPECT_EQ(up->data.substr(e * n, n), SourceBytes(**st, x + "w3.weight"));
      EXPECT_EQ(down->data.substr(e * n, n), SourceBytes(**st, x + "w2.weight"));
    }
  }
}

TEST(GgufTest, OtherFamiliesAndBadFilesAreRefusedByName) {
  const std::string out = ::testing::TempDir() + "/qwen3.gguf";
  absl::Status st = ExportGguf(std::string(MOE_TESTDATA_DIR) + "/tiny-qwen3_moe", out);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(st.message(), HasSubstr("qwen3_moe"));
  // A truncated file and a file that is not GGUF.
  const std::string good = ::testing::TempDir() + "/tiny.gguf";
  ASSERT_TRUE(ExportGguf(kTiny, good).ok());
  std::ifstream in(good, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t cut : {size_t{3}, size_t{24}, bytes.size() / 3, bytes.size() - 1}) {
    const std::string path = ::testing::TempDir() + "/cut.gguf";
    std::ofstream(path, std::ios::binary) << bytes.substr(0, cut);
    absl::StatusOr<File> f = Read(path);
    EXPECT_FALSE(f.ok()) << "cut at " << cut;
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << f.status();
  }
  const std::string path = ::testing::TempDir() + "/notgguf.gguf";
  std::ofstream(path, std::ios::binary) << "{\"not\": \"gguf\"}";
  EXPECT_THAT(Read(path).status().message(), HasSubstr("not a GGUF file"));
}

}  // namespace
}  // namespace moe::gguf
