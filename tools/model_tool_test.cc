#include "tools/model_tool.h"

#include <zlib.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/checkpoint.h"
#include "core/dtype.h"
#include "core/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tools/tiny_tokenizer.h"

namespace moe {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const std::string kFixture = std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A fresh directory under the test temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::path(::testing::TempDir()) / "model_tool_test.XXXXXX").string();
    EXPECT_NE(::mkdtemp(pattern.data()), nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string Sub(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

MakeTinyOptions Options(const std::string& out_dir) {
  MakeTinyOptions o;
  o.out_dir = out_dir;
  return o;
}

// The defaults are built once: cutting the 11 MB base tokenizer takes a moment.
class MakeTinyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ASSERT_TRUE(MakeTinyModel(Options(dir_->Sub("a"))).ok());
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path Made() { return dir_->path() / "a"; }
  static TempDir* dir_;
};
TempDir* MakeTinyTest::dir_ = nullptr;

TEST_F(MakeTinyTest, DefaultsOpenAsCheckpointShapedLikeTheFixture) {
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(Made().string());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  const ModelConfig& c = (*checkpoint)->config();
  EXPECT_EQ(c.model_type, "mixtral");
  EXPECT_EQ(c.hidden_size, 128);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_EQ(c.vocab_size, 4096);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{4095});
  EXPECT_FALSE(c.bos_token_id.has_value());
  EXPECT_EQ((*checkpoint)->store().Names().size(), ExpectedTensors(c).size());
  for (const auto& t : ExpectedTensors(c)) {
    absl::StatusOr<TensorView> v = (*checkpoint)->store().Get(t.name);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->dtype(), DType::kBF16) << t.name;
  }
}

TEST_F(MakeTinyTest, ConfigAndTokenizerConfigAreTheFixtureFilesByteForByte) {
  EXPECT_EQ(ReadFile(Made() / "config.json"), ReadFile(kFixture + "/config.json"));
  EXPECT_EQ(ReadFile(Made() / "tokenizer_config.json"),
            ReadFile(kFixture + "/tokenizer_config.json"));
}

TEST_F(MakeTinyTest, TokenizerEqualsTheFixtureTokenizer) {
  const std::string made = ReadFile(Made() / "tokenizer.json");
  const std::string fixture = ReadFile(kFixture + "/tokenizer.json");
  nlohmann::json a = nlohmann::json::parse(made);
  nlohmann::json b = nlohmann::json::parse(fixture);
  EXPECT_TRUE(a == b);
  EXPECT_EQ(a["model"]["vocab"].size(), 4093u);
  EXPECT_EQ(a["added_tokens"][2]["id"], 4095);
  EXPECT_EQ(a["added_tokens"][2]["content"], "<|im_end|>");
  // Same layout as the fixture (Python's json.dumps), not only the same value.
  EXPECT_TRUE(made == fixture) << "sizes " << made.size() << " vs " << fixture.size();
}

// Mean and standard deviation of a bf16 tensor.
std::pair<double, double> Stats(const TensorView& v) {
  const size_t n = v.nbytes() / 2;
  double sum = 0, sum2 = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint16_t b = static_cast<uint16_t>(v.data[2 * i] | (v.data[2 * i + 1] << 8));
    const double x = Bf16ToF32(b);
    sum += x;
    sum2 += x * x;
  }
  const double mean = sum / n;
  return {mean, std::sqrt(sum2 / n - mean * mean)};
}

TEST_F(MakeTinyTest, WeightsHaveTheIntendedScale) {
  absl::StatusOr<std::unique_ptr<TensorStore>> store = TensorStore::Open(Made().string());
  ASSERT_TRUE(store.ok()) << store.status();
  auto check = [&](const std::string& name, double mean, double stddev) {
    absl::StatusOr<TensorView> v = (*store)->Get(name);
    ASSERT_TRUE(v.ok()) << v.status();
    auto [m, s] = Stats(*v);
    EXPECT_NEAR(m, mean, 0.05 + 0.1 * stddev) << name;
    EXPECT_NEAR(s, stddev, 0.1 * stddev) << name;
  };
  check("model.embed_tokens.weight", 0.0, 1.0);
  check("lm_head.weight", 0.0, 4.0 / std::sqrt(128.0));
  check("model.norm.weight", 1.0, 0.1);
  check("model.layers.1.input_layernorm.weight", 1.0, 0.1);
  check("model.layers.0.self_attn.q_proj.weight", 0.0, 1.0 / std::sqrt(128.0));
  check("model.layers.0.block_sparse_moe.gate.weight", 0.0, 1.0 / std::sqrt(128.0));
  check("model.layers.1.block_sparse_moe.experts.3.w2.weight", 0.0, 1.0 / std::sqrt(256.0));
}

uint64_t Fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

TEST_F(MakeTinyTest, SameSeedGivesIdenticalFilesAndOtherSeedsDiffer) {
  ASSERT_TRUE(MakeTinyModel(Options(dir_->Sub("b"))).ok());
  MakeTinyOptions other = Options(dir_->Sub("c"));
  other.seed = 2;
  ASSERT_TRUE(MakeTinyModel(other).ok());
  for (const char* file : {"config.json", "model.safetensors", "tokenizer.json",
                           "tokenizer_config.json"}) {
    EXPECT_TRUE(ReadFile(Made() / file) == ReadFile(dir_->path() / "b" / file)) << file;
  }
  const std::string seed1 = ReadFile(Made() / "model.safetensors");
  const std::string seed2 = ReadFile(dir_->path() / "c" / "model.safetensors");
  ASSERT_EQ(seed1.size(), seed2.size());
  EXPECT_FALSE(seed1 == seed2);
  EXPECT_EQ(ReadFile(dir_->path() / "c" / "tokenizer.json"), ReadFile(Made() / "tokenizer.json"));
}

// The weights depend only on the seed: this checksum is the same on every
// platform. Update it only when the initialisation changes on purpose.
TEST_F(MakeTinyTest, SeedOneWeightsMatchTheRecordedChecksum) {
  const std::string bytes = ReadFile(Made() / "model.safetensors");
  EXPECT_EQ(bytes.size(), 3874752u);
  EXPECT_EQ(Fnv1a64(bytes), 2668027728059764919ull);
}

TEST(MakeTinyOptionsTest, OtherShapesOpen) {
  TempDir dir;
  MakeTinyOptions o = Options(dir.Sub("m"));
  o.hidden = 64;
  o.layers = 1;
  o.heads = 8;
  o.kv_heads = 8;
  o.experts = 3;
  o.top_k = 3;
  o.ffn = 32;
  o.vocab = 300;
  ASSERT_TRUE(MakeTinyModel(o).ok());
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(o.out_dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ((*checkpoint)->config().head_dim, 8);
  nlohmann::json tok = nlohmann::json::parse(ReadFile(dir.path() / "m" / "tokenizer.json"));
  EXPECT_EQ(tok["model"]["vocab"].size(), 297u);
  EXPECT_EQ(tok["added_tokens"][0]["id"], 297);
  for (const auto& merge : tok["model"]["merges"]) {
    const std::string joined = merge[0].get<std::string>() + merge[1].get<std::string>();
    EXPECT_TRUE(tok["model"]["vocab"].contains(joined)) << joined;
  }
}

TEST(MakeTinyOptionsTest, BadOptionsNameTheFlag) {
  struct Case {
    void (*edit)(MakeTinyOptions*);
    const char* flag;
  };
  const Case cases[] = {
      {[](MakeTinyOptions* o) { o->out_dir.clear(); }, "--out"},
      {[](MakeTinyOptions* o) { o->hidden = 0; }, "--hidden"},
      {[](MakeTinyOptions* o) { o->layers = -1; }, "--layers"},
      {[](MakeTinyOptions* o) { o->heads = 0; }, "--heads"},
      {[](MakeTinyOptions* o) { o->kv_heads = 3; }, "--kv-heads"},
      {[](MakeTinyOptions* o) { o->experts = -1; }, "--experts"},
      {[](MakeTinyOptions* o) { o->top_k = 5; }, "--top-k"},
      {[](MakeTinyOptions* o) { o->ffn = -1; }, "--ffn"},
      {[](MakeTinyOptions* o) { o->family = "llama"; }, "--family 'llama'"},
      {[](MakeTinyOptions* o) { o->shared_ffn = 64; }, "--shared-ffn applies to qwen2_moe only"},
      {[](MakeTinyOptions* o) { o->attention_bias = true; }, "--attention-bias"},
      {[](MakeTinyOptions* o) { o->clip_qkv = 4; }, "--clip-qkv applies to olmoe only"},
      {[](MakeTinyOptions* o) { o->mlp_only_layers = {0}; }, "--mlp-only-layers applies to"},
      {[](MakeTinyOptions* o) { o->family = "qwen3_moe"; o->mlp_only_layers = {5}; }, "--mlp-only-layers: 5"},
      {[](MakeTinyOptions* o) { o->family = "qwen3_moe"; o->mlp_only_layers = {0, 1}; }, "no layer has experts"},
      {[](MakeTinyOptions* o) { o->family = "qwen3_moe"; o->head_dim = 7; }, "--head-dim (7) must be even"},
      {[](MakeTinyOptions* o) { o->family = "olmoe"; o->head_dim = 64; }, "--head-dim (64) must be --hidden / --heads"},
      {[](MakeTinyOptions* o) { o->family = "qwen2_moe"; o->decoder_sparse_step = 0; }, "--decoder-sparse-step"},
      {[](MakeTinyOptions* o) { o->vocab = 258; }, "--vocab"},
      {[](MakeTinyOptions* o) { o->hidden = 130; }, "--hidden"},
      {[](MakeTinyOptions* o) { o->hidden = int64_t{1} << 21; }, "--hidden"},
      {[](MakeTinyOptions* o) { o->ffn = 100000; o->experts = 1000; }, "--ffn"},
  };
  TempDir dir;
  for (const Case& c : cases) {
    MakeTinyOptions o = Options(dir.Sub("never"));
    c.edit(&o);
    absl::Status status = MakeTinyModel(o);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.flag;
    EXPECT_THAT(status.message(), HasSubstr(c.flag));
  }
  EXPECT_FALSE(fs::exists(dir.path() / "never"));
}

// --family alone gives the shape of tests/testdata/tiny-FAMILY: the same
// config.json byte for byte, and a checkpoint that opens.
class MakeTinyFamilyTest : public ::testing::TestWithParam<std::string> {};

TEST_P(MakeTinyFamilyTest, ConfigIsTheFixtureFileByteForByteAndTheCheckpointOpens) {
  TempDir dir;
  MakeTinyOptions o = Options(dir.Sub("m"));
  o.family = GetParam();
  ASSERT_TRUE(MakeTinyModel(o).ok());
  const std::string fixture = std::string(MOE_TESTDATA_DIR) + "/tiny-" + GetParam();
  EXPECT_EQ(ReadFile(dir.path() / "m" / "config.json"), ReadFile(fixture + "/config.json"));
  EXPECT_TRUE(ReadFile(dir.path() / "m" / "tokenizer.json") == ReadFile(fixture + "/tokenizer.json"));
  absl::StatusOr<std::unique_ptr<Checkpoint>> made = Checkpoint::Open(o.out_dir);
  ASSERT_TRUE(made.ok()) << made.status();
  absl::StatusOr<std::unique_ptr<Checkpoint>> golden = Checkpoint::Open(fixture);
  ASSERT_TRUE(golden.ok()) << golden.status();
  // The same tensors with the same shapes (the weights are other random numbers).
  EXPECT_EQ((*made)->store().Names(), (*golden)->store().Names());
  for (const std::string& name : (*golden)->store().Names()) {
    EXPECT_EQ((*made)->store().Get(name)->shape(), (*golden)->store().Get(name)->shape()) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Families, MakeTinyFamilyTest,
                         ::testing::Values("mixtral", "qwen2_moe", "qwen3_moe", "olmoe"),
                         [](const auto& info) { return info.param; });

TEST(MakeTinyOptionsTest, FamilySwitchesReachTheConfig) {
  TempDir dir;
  MakeTinyOptions o = Options(dir.Sub("q2"));
  o.family = "qwen2_moe";
  o.layers = 4;
  o.mlp_only_layers = {0};
  o.decoder_sparse_step = 2;
  o.attention_bias = false;
  o.shared_ffn = 48;
  o.dense_ffn = 80;
  o.head_dim = 16;
  o.tie_word_embeddings = true;
  ASSERT_TRUE(MakeTinyModel(o).ok());
  absl::StatusOr<std::unique_ptr<Checkpoint>> c = Checkpoint::Open(o.out_dir);
  ASSERT_TRUE(c.ok()) << c.status();
  const ModelConfig& q2 = (*c)->config();
  EXPECT_EQ(q2.DenseLayers(), std::vector<int>({0, 2}));
  EXPECT_FALSE(q2.qkv_bias);
  EXPECT_EQ(q2.shared_expert_intermediate_size, 48);
  EXPECT_EQ(q2.mlp_intermediate_size, 80);
  EXPECT_EQ(q2.head_dim, 16);
  EXPECT_TRUE(q2.tie_word_embeddings);

  o = Options(dir.Sub("ol"));
  o.family = "olmoe";
  o.attention_bias = true;
  o.clip_qkv = 6;
  o.norm_topk_prob = true;
  ASSERT_TRUE(MakeTinyModel(o).ok());
  c = Checkpoint::Open(o.out_dir);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE((*c)->config().o_bias);
  EXPECT_EQ((*c)->config().clip_qkv, 6.0);
  EXPECT_TRUE((*c)->config().norm_topk_prob);
  // Biases are small around 0, not norm weights around 1.
  absl::StatusOr<TensorView> bias = (*c)->store().Get("model.layers.0.self_attn.o_proj.bias");
  ASSERT_TRUE(bias.ok()) << bias.status();
  auto [mean, stddev] = Stats(*bias);
  EXPECT_NEAR(mean, 0.0, 0.05);
  EXPECT_NEAR(stddev, 0.1, 0.03);
}

TEST(MakeTinyOptionsTest, VocabLargerThanTheBaseTokenizerNamesTheFlag) {
  TempDir dir;
  MakeTinyOptions o = Options(dir.Sub("big"));
  o.vocab = 151647;  // the base has 151643 entries: at most 151646
  o.hidden = 8;
  o.heads = 2;
  o.kv_heads = 1;
  absl::Status status = MakeTinyModel(o);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("--vocab 151647"));
}

TEST(MakeTinyOptionsTest, MissingBaseTokenizerNamesThePath) {
  TempDir dir;
  MakeTinyOptions o = Options(dir.Sub("m"));
  o.base_tokenizer = dir.Sub("no-such-tokenizer.json");
  absl::Status status = MakeTinyModel(o);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("no-such-tokenizer.json"));
}

TEST(InspectTest, ReportsTheFixtureParameterCounts) {
  // By hand from tests/testdata/tiny-mixtral/config.json.
  const int64_t h = 128, layers = 2, q = 4 * 32, kv = 2 * 32, experts = 4, top_k = 2,
                ffn = 256, vocab = 4096;
  const int64_t attention = h * q + h * kv + h * kv + q * h;
  const int64_t norms = 2 * h, gate = experts * h, expert = 3 * h * ffn;
  const int64_t total = vocab * h /*embed*/ + vocab * h /*lm_head*/ + h /*final norm*/ +
                        layers * (attention + norms + gate + experts * expert);
  const int64_t active = vocab * h /*lm_head*/ + h +
                         layers * (attention + norms + gate + top_k * expert);
  ASSERT_EQ(total, 1934976);
  ASSERT_EQ(active, 1017472);

  absl::StatusOr<ModelSummary> s = SummarizeModel(kFixture);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->total_parameters, total);
  EXPECT_EQ(s->active_parameters, active);
  EXPECT_EQ(s->num_tensors, 3 + layers * (4 + 2 + 1 + 3 * experts));
  EXPECT_EQ(s->num_files, 1);
  EXPECT_EQ(s->bytes_by_dtype, (std::map<std::string, int64_t>{{"BF16", 2 * total}}));

  absl::StatusOr<std::string> report = InspectModel(kFixture);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(*report, HasSubstr("total_parameters: 1934976 (1.93M)\n"));
  EXPECT_THAT(*report, HasSubstr("active_parameters_per_token: 1017472 (1.02M)\n"));
  EXPECT_THAT(*report, HasSubstr("tensors: 41\n"));
  EXPECT_THAT(*report, HasSubstr("files: 1\n"));
  EXPECT_THAT(*report, HasSubstr("bytes_BF16: 3869952 (3.69 MiB)\n"));
  EXPECT_THAT(*report, HasSubstr("  num_experts_per_tok: 2\n"));
  EXPECT_THAT(*report, HasSubstr("  rope_theta: 1e+06\n"));
  EXPECT_THAT(*report, HasSubstr("  eos_token_ids: [4095]\n"));
}

TEST(InspectTest, MissingDirectoryIsAnError) {
  absl::StatusOr<std::string> report = InspectModel("/nonexistent/model-dir");
  EXPECT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(), HasSubstr("/nonexistent/model-dir"));
}

// --- tiny_tokenizer --------------------------------------------------------------

TEST(TinyTokenizerTest, ReadsPlainAndGzippedFilesAndRejectsTruncatedOnes) {
  TempDir dir;
  const std::string text = "{\"hello\": [1, 2, 3]}";
  const std::string plain = dir.Sub("plain.json");
  std::ofstream(plain, std::ios::binary) << text;
  const std::string gz = dir.Sub("packed.json.gz");
  gzFile f = gzopen(gz.c_str(), "wb9");
  ASSERT_NE(f, nullptr);
  std::string big;
  for (int i = 0; i < 100000; ++i) big += text;
  ASSERT_EQ(gzwrite(f, big.data(), static_cast<unsigned>(big.size())),
            static_cast<int>(big.size()));
  gzclose(f);

  absl::StatusOr<std::string> a = ReadMaybeGzippedFile(plain);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a, text);
  absl::StatusOr<std::string> b = ReadMaybeGzippedFile(gz);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(*b == big);

  const std::string packed = ReadFile(gz);
  const std::string cut = dir.Sub("cut.json.gz");
  std::ofstream(cut, std::ios::binary) << packed.substr(0, packed.size() / 2);
  absl::StatusOr<std::string> c = ReadMaybeGzippedFile(cut);
  EXPECT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("cut.json.gz"));

  absl::StatusOr<std::string> d = ReadMaybeGzippedFile(dir.Sub("absent.json"));
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
}

TEST(TinyTokenizerTest, CutKeepsLowIdsAndTheMergesTheyClose) {
  // ids 0..4 meaningful, 5..258 filler, "abc" (259) and "f5f6" (260) cut away.
  nlohmann::ordered_json base = nlohmann::ordered_json::parse(R"({
    "version": "1.0",
    "added_tokens": [
      {"id": 261, "content": "<|endoftext|>", "special": true},
      {"id": 262, "content": "<|im_start|>", "special": true},
      {"id": 263, "content": "<|im_end|>", "special": true},
      {"id": 264, "content": "<|other|>", "special": true}],
    "normalizer": null,
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4},
              "merges": ["a b", "ab c", "b c", "f5 f6"]}})");
  auto& vocab = base["model"]["vocab"];
  for (int i = 5; i < 259; ++i) vocab[absl::StrCat("f", i)] = i;
  vocab["abc"] = 259;
  vocab["f5f6"] = 260;
  absl::StatusOr<std::string> cut = CutByteLevelBpeTokenizer(base.dump(), 262, "base.json");
  ASSERT_TRUE(cut.ok()) << cut.status();
  nlohmann::ordered_json out = nlohmann::ordered_json::parse(*cut);
  EXPECT_EQ(out.begin().key(), "version");  // key order kept
  EXPECT_EQ(out["model"]["vocab"].size(), 259u);
  EXPECT_FALSE(out["model"]["vocab"].contains("abc"));
  EXPECT_EQ(out["model"]["merges"], nlohmann::ordered_json::parse(R"(["a b", "b c"])"));
  EXPECT_EQ(out["added_tokens"], nlohmann::ordered_json::parse(R"([
      {"id": 259, "content": "<|endoftext|>", "special": true},
      {"id": 260, "content": "<|im_start|>", "special": true},
      {"id": 261, "content": "<|im_end|>", "special": true}])"));
  EXPECT_TRUE(out["normalizer"].is_null());

  absl::StatusOr<std::string> small = CutByteLevelBpeTokenizer(base.dump(), 258, "base.json");
  EXPECT_THAT(small.status().message(), HasSubstr("too small"));
  absl::StatusOr<std::string> big = CutByteLevelBpeTokenizer(base.dump(), 300, "base.json");
  EXPECT_THAT(big.status().message(), HasSubstr("base.json: model.vocab has 261 distinct ids"));
}

TEST(TinyTokenizerTest, RejectsMalformedBases) {
  EXPECT_THAT(CutByteLevelBpeTokenizer("{not json", 300, "base.json").status().message(),
              HasSubstr("base.json: not valid JSON"));
  EXPECT_THAT(CutByteLevelBpeTokenizer(R"({"model": {"type": "Unigram"}})", 300, "base.json")
                  .status()
                  .message(),
              HasSubstr("not a BPE model"));
  EXPECT_THAT(CutByteLevelBpeTokenizer(R"({"model": {"type": 5}})", 300, "base.json")
                  .status()
                  .message(),
              HasSubstr("not a BPE model"));
  EXPECT_THAT(CutByteLevelBpeTokenizer(R"({"model": {"type": "BPE", "vocab": {"a": "x"},
                                         "merges": []}})",
                                       300, "base.json")
                  .status()
                  .message(),
              HasSubstr("model.vocab entry 'a' has a non-integer id"));
  EXPECT_THAT(CutByteLevelBpeTokenizer(R"({"model": {"type": "BPE", "vocab": {},
                                         "merges": [["a", "b", "c"]]}})",
                                       300, "base.json")
                  .status()
                  .message(),
              HasSubstr("pair with 3 parts"));
}

TEST(TinyTokenizerTest, DumpsLikePython) {
  nlohmann::ordered_json v = nlohmann::ordered_json::parse(
      R"({"b": [1, "x\n\"y\"", null, true, 1e-05, 1000000.0, 0.02], "a": {}, "c": []})");
  EXPECT_EQ(DumpJsonPythonStyle(v),
            R"({"b": [1, "x\n\"y\"", null, true, 1e-05, 1000000.0, 0.02], "a": {}, "c": []})");
  EXPECT_EQ(DumpJsonPythonStyle(v["b"], 1),
            "[\n 1,\n \"x\\n\\\"y\\\"\",\n null,\n true,\n 1e-05,\n 1000000.0,\n 0.02\n]");
}

// --- WriteSafetensors (core/safetensors_writer.cc) --------------------------------

TEST(SafetensorsWriterTest, RoundTripsWithAlignedHeaderAndMetadata) {
  TempDir dir;
  const std::string path = dir.Sub("t.safetensors");
  std::vector<TensorToWrite> tensors = {
      {"z.first", DType::kF32, {2}, std::string(8, '\1')},
      {"a.second", DType::kBF16, {1, 3}, std::string(6, '\2')},
      {"empty", DType::kF16, {0, 4}, std::string()},
  };
  ASSERT_TRUE(WriteSafetensors(path, tensors, {{"format", "pt"}}).ok());
  const std::string bytes = ReadFile(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 14);
  const std::string header = bytes.substr(8, n);
  // Tensors in the order given, metadata last, space padding.
  EXPECT_LT(header.find("z.first"), header.find("a.second"));
  EXPECT_THAT(header, HasSubstr("\"__metadata__\":{\"format\":\"pt\"}"));
  EXPECT_EQ(nlohmann::json::parse(header)["a.second"]["data_offsets"],
            nlohmann::json::parse("[8, 14]"));

  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  absl::StatusOr<TensorView> v = (*file)->Get("a.second");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(v->data), v->nbytes()), tensors[1].bytes);
  EXPECT_EQ((*file)->header().metadata.at("format"), "pt");
  // No temporary file is left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(SafetensorsWriterTest, WrongByteCountNamesTheTensorAndThePath) {
  TempDir dir;
  const std::string path = dir.Sub("bad.safetensors");
  absl::Status status =
      WriteSafetensors(path, {{"model.norm.weight", DType::kBF16, {4}, std::string(7, '\0')}});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("model.norm.weight"));
  EXPECT_THAT(status.message(), HasSubstr("bad.safetensors"));
  EXPECT_FALSE(fs::exists(path));

  status = WriteSafetensors(path, {{"x", DType::kF32, {1}, std::string(4, '\0')},
                                   {"x", DType::kF32, {1}, std::string(4, '\0')}});
  EXPECT_THAT(status.message(), HasSubstr("'x' is given twice"));
  status = WriteSafetensors(path, {{"x", DType::kF32, {-1}, std::string()}});
  EXPECT_THAT(status.message(), HasSubstr("negative"));
}

TEST(SafetensorsWriterTest, UnwritableDirectoryNamesThePath) {
  absl::Status status = WriteSafetensors("/nonexistent-dir/m.safetensors", {});
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("/nonexistent-dir/m.safetensors"));
}

}  // namespace
}  // namespace moe
