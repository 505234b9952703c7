#include "core/safetensors.h"

#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
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

// A fresh directory, removed with its contents at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "/moe_safetensors_test_XXXXXX";
    char* p = ::mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr);
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

  std::string Write(const std::string& name, const std::string& bytes) const {
    const std::string p = path_ + "/" + name;
    std::ofstream out(p, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p;
  }

 private:
  std::string path_;
};

std::string Le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// The raw file: length prefix, header text, data.
std::string FileBytes(const std::string& header, const std::string& data) {
  return Le64(header.size()) + header + data;
}

struct Spec {
  std::string name;
  std::vector<int64_t> shape;
};

// A valid file of F32 tensors laid out back to back; element k of the i-th
// tensor holds 100 * (i + 1) + k.
std::string ValidF32File(const std::vector<Spec>& specs) {
  json header = json::object();
  std::string data;
  for (size_t i = 0; i < specs.size(); ++i) {
    int64_t n = 1;
    for (int64_t d : specs[i].shape) n *= d;
    const size_t begin = data.size();
    for (int64_t k = 0; k < n; ++k) {
      const float v = static_cast<float>(100 * (i + 1) + k);
      char b[4];
      std::memcpy(b, &v, 4);
      data.append(b, 4);
    }
    header[specs[i].name] = {{"dtype", "F32"},
                             {"shape", specs[i].shape},
                             {"data_offsets", {begin, data.size()}}};
  }
  header["__metadata__"] = {{"format", "pt"}};
  return FileBytes(header.dump(), data);
}

float ReadF32(const TensorView& v, size_t i) {
  float f;
  std::memcpy(&f, v.data + 4 * i, 4);
  return f;
}

// Opens `bytes` written as `name` in a temp dir; returns the error status.
absl::Status OpenError(const std::string& name, const std::string& bytes) {
  TempDir dir;
  const std::string path = dir.Write(name, bytes);
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::Open(path);
  EXPECT_FALSE(f.ok()) << "opened " << name;
  return f.ok() ? absl::OkStatus() : f.status();
}

void ExpectMentions(const absl::Status& s, const std::vector<std::string>& words) {
  EXPECT_FALSE(s.ok());
  for (const std::string& w : words) EXPECT_THAT(s.message(), HasSubstr(w)) << s;
}

TEST(SafetensorsTest, ParsesValidHeader) {
  const std::string bytes = ValidF32File({{"a", {2, 3}}, {"b", {4}}, {"scalar", {}}});
  absl::StatusOr<SafetensorsHeader> h = ParseSafetensorsHeader(bytes, "x.safetensors");
  ASSERT_TRUE(h.ok()) << h.status();
  ASSERT_EQ(h->tensors.size(), 3u);
  const TensorEntry& a = h->tensors.at("a");
  EXPECT_EQ(a.dtype, DType::kF32);
  EXPECT_EQ(a.shape, std::vector<int64_t>({2, 3}));
  EXPECT_EQ(a.begin, 0u);
  EXPECT_EQ(a.end, 24u);
  EXPECT_EQ(a.NumElements(), 6);
  EXPECT_EQ(h->tensors.at("scalar").NumElements(), 1);
  EXPECT_EQ(h->metadata.at("format"), "pt");
}

TEST(SafetensorsTest, OpensFixtureAndReadsBf16) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> f =
      SafetensorsFile::Open(kFixtureDir + "/model.safetensors");
  ASSERT_TRUE(f.ok()) << f.status();
  // embed, norm, lm_head + per layer: 2 norms, q/k/v/o, gate, 4 experts x 3.
  EXPECT_EQ((*f)->header().tensors.size(), 3u + 2 * (2 + 4 + 1 + 12u));
  absl::StatusOr<TensorView> emb = (*f)->Get("model.embed_tokens.weight");
  ASSERT_TRUE(emb.ok()) << emb.status();
  EXPECT_EQ(emb->dtype(), DType::kBF16);
  EXPECT_EQ(emb->shape(), std::vector<int64_t>({4096, 128}));
  EXPECT_EQ(emb->nbytes(), 4096u * 128 * 2);
  uint16_t raw;
  std::memcpy(&raw, emb->data, 2);
  EXPECT_FLOAT_EQ(Bf16ToF32(raw), 1.7265625f);

  // RMSNorm weights of a freshly initialised model sit near 1.
  absl::StatusOr<TensorView> norm = (*f)->Get("model.layers.0.input_layernorm.weight");
  ASSERT_TRUE(norm.ok()) << norm.status();
  for (size_t i = 0; i < 128; ++i) {
    std::memcpy(&raw, norm->data + 2 * i, 2);
    const float v = Bf16ToF32(raw);
    EXPECT_GT(v, 0.5f);
    EXPECT_LT(v, 1.5f);
  }

  absl::StatusOr<TensorView> absent = (*f)->Get("nope");
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.status().code(), absl::StatusCode::kNotFound);
  ExpectMentions(absent.status(), {"model.safetensors", "'nope'"});
}

TEST(SafetensorsTest, NonexistentFileIsNotFound) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> f =
      SafetensorsFile::Open("/nonexistent/dir/model.safetensors");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound);
  ExpectMentions(f.status(), {"/nonexistent/dir/model.safetensors"});
}

TEST(SafetensorsTest, FileShorterThanLengthPrefix) {
  for (size_t n : {0, 1, 7}) {
    absl::Status s = OpenError("short.safetensors", std::string(n, '\x01'));
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
    ExpectMentions(s, {"short.safetensors", "truncated"});
  }
}

TEST(SafetensorsTest, HeaderLengthPastEndOfFile) {
  absl::Status s = OpenError("long.safetensors", Le64(1000) + "{}");
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  ExpectMentions(s, {"long.safetensors", "1000", "past the end"});

  // A hostile length must be rejected before anything is allocated.
  s = OpenError("huge.safetensors", Le64(uint64_t{1} << 63) + "{}");
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  ExpectMentions(s, {"huge.safetensors", "9223372036854775808"});
  s = OpenError("max.safetensors", Le64(~uint64_t{0}) + "{}");
  ExpectMentions(s, {"max.safetensors"});
}

TEST(SafetensorsTest, DataSectionCutShort) {
  const std::string full = ValidF32File({{"w.first", {2, 2}}, {"w.second", {8}}});
  const std::string cut = full.substr(0, full.size() - 5);
  absl::Status s = OpenError("cut.safetensors", cut);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  ExpectMentions(s, {"cut.safetensors", "'w.second'", "out of range"});
}

TEST(SafetensorsTest, InvalidJson) {
  for (const std::string& header : {std::string("{\"a\": "), std::string("not json"),
                                    std::string("{\"a\":{}}}"), std::string("\xff\xfe")}) {
    absl::Status s = OpenError("badjson.safetensors", FileBytes(header, ""));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    ExpectMentions(s, {"badjson.safetensors", "JSON"});
  }
  absl::Status s = OpenError("deep.safetensors", FileBytes(std::string(100000, '['), ""));
  ExpectMentions(s, {"deep.safetensors"});
}

TEST(SafetensorsTest, HeaderNotAnObjectOrEntryNotAnObject) {
  absl::Status s = OpenError("arr.safetensors", FileBytes("[1,2]", ""));
  ExpectMentions(s, {"arr.safetensors", "object"});
  s = OpenError("entry.safetensors", FileBytes(R"({"t.weight": 3})", ""));
  ExpectMentions(s, {"entry.safetensors", "'t.weight'", "object"});
  s = OpenError("meta.safetensors", FileBytes(R"({"__metadata__": {"k": 1}})", ""));
  ExpectMentions(s, {"meta.safetensors", "__metadata__"});
}

TEST(SafetensorsTest, UnknownDtypeIsNamed) {
  for (const std::string dtype : {"F64", "I8", "bf16", "F8_E4M3"}) {
    const json h = {{"t.weight", {{"dtype", dtype}, {"shape", {2}}, {"data_offsets", {0, 8}}}}};
    absl::Status s = OpenError("dtype.safetensors", FileBytes(h.dump(), std::string(8, '\0')));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    ExpectMentions(s, {"dtype.safetensors", "'t.weight'", "'" + dtype + "'"});
  }
  absl::Status s = OpenError(
      "nodtype.safetensors", FileBytes(R"({"t.weight": {"shape": [1], "data_offsets": [0, 4]}})",
                                       std::string(4, '\0')));
  ExpectMentions(s, {"nodtype.safetensors", "'t.weight'", "dtype"});
}

TEST(SafetensorsTest, BadShape) {
  for (const json& shape : {json::array({2, -1}), json::array({2.5}), json::array({"2"}),
                            json(4), json(nullptr), json::array({json::array({2})})}) {
    SCOPED_TRACE(shape.dump());
    const json h = {{"t.weight", {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {0, 8}}}}};
    absl::Status s = OpenError("shape.safetensors", FileBytes(h.dump(), std::string(8, '\0')));
    ExpectMentions(s, {"shape.safetensors", "'t.weight'", "shape"});
  }
}

TEST(SafetensorsTest, BadDataOffsets) {
  for (const json& off : {json::array({0}), json::array({0, 4, 8}), json::array({-4, 4}),
                          json::array({"0", "4"}), json(nullptr), json::array({8, 4})}) {
    SCOPED_TRACE(off.dump());
    const json h = {{"t.weight", {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", off}}}};
    absl::Status s = OpenError("off.safetensors", FileBytes(h.dump(), std::string(8, '\0')));
    ExpectMentions(s, {"off.safetensors", "'t.weight'", "data_offsets"});
  }
}

TEST(SafetensorsTest, DataOffsetsOutOfRange) {
  const json h = {{"t.weight", {{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {8, 24}}}}};
  absl::Status s = OpenError("range.safetensors", FileBytes(h.dump(), std::string(16, '\0')));
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  ExpectMentions(s, {"range.safetensors", "'t.weight'", "out of range", "16"});
}

TEST(SafetensorsTest, OverlappingTensors) {
  const json h = {{"a.weight", {{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {0, 16}}}},
                  {"b.weight", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {12, 20}}}}};
  absl::Status s = OpenError("overlap.safetensors", FileBytes(h.dump(), std::string(20, '\0')));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  ExpectMentions(s, {"overlap.safetensors", "'a.weight'", "'b.weight'", "overlap"});

  // Two tensors sharing exactly the same bytes overlap too.
  const json same = {{"a.weight", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}},
                     {"b.weight", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}}};
  s = OpenError("same.safetensors", FileBytes(same.dump(), std::string(8, '\0')));
  ExpectMentions(s, {"same.safetensors", "'a.weight'", "'b.weight'", "overlap"});
}

TEST(SafetensorsTest, GapsAndEmptyTensorsAreAllowed) {
  const json h = {{"a", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}},
                  {"b", {{"dtype", "BF16"}, {"shape", {2}}, {"data_offsets", {16, 20}}}},
                  {"empty", {{"dtype", "F16"}, {"shape", {0, 5}}, {"data_offsets", {4, 4}}}}};
  absl::StatusOr<SafetensorsHeader> parsed =
      ParseSafetensorsHeader(FileBytes(h.dump(), std::string(24, '\0')), "gap.safetensors");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->tensors.at("empty").NumElements(), 0);
}

TEST(SafetensorsTest, ShapeTimesDtypeDiffersFromByteLength) {
  const json h = {{"t.weight", {{"dtype", "F32"}, {"shape", {2, 3}}, {"data_offsets", {0, 20}}}}};
  absl::Status s = OpenError("size.safetensors", FileBytes(h.dump(), std::string(20, '\0')));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  ExpectMentions(s, {"size.safetensors", "'t.weight'", "24", "20"});
}

TEST(SafetensorsTest, ShapeProductOverflowIsAnError) {
  const json h = {{"t.weight",
                   {{"dtype", "BF16"},
                    {"shape", {int64_t{1} << 62, 8}},
                    {"data_offsets", {0, 0}}}}};
  absl::Status s = OpenError("overflow.safetensors", FileBytes(h.dump(), ""));
  ExpectMentions(s, {"overflow.safetensors", "'t.weight'", "overflow"});
  const json h2 = {{"t.weight",
                    {{"dtype", "F32"},
                     {"shape", {uint64_t{1} << 62}},
                     {"data_offsets", {0, 0}}}}};
  s = OpenError("overflow2.safetensors", FileBytes(h2.dump(), ""));
  ExpectMentions(s, {"overflow2.safetensors", "'t.weight'"});
}

// --- TensorStore ---------------------------------------------------------------

TEST(TensorStoreTest, OpensFixtureDirectory) {
  absl::StatusOr<std::unique_ptr<TensorStore>> store = TensorStore::Open(kFixtureDir);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->files().size(), 1u);
  EXPECT_TRUE((*store)->Contains("lm_head.weight"));
  EXPECT_FALSE((*store)->Contains("lm_head.bias"));
  const std::vector<std::string> names = (*store)->Names();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(names.size(), 41u);

  const std::vector<int64_t> want = {4, 128};
  EXPECT_TRUE((*store)->Get("model.layers.1.block_sparse_moe.gate.weight", want).ok());
  const std::vector<int64_t> wrong = {4, 129};
  absl::StatusOr<TensorView> v = (*store)->Get("model.layers.1.block_sparse_moe.gate.weight", wrong);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(v.status().message(),
              HasSubstr("model.safetensors: tensor 'model.layers.1.block_sparse_moe.gate.weight' "
                        "has shape [4,128], config wants [4,129]"));
  absl::StatusOr<TensorView> absent = (*store)->Get("x.weight");
  EXPECT_EQ(absent.status().code(), absl::StatusCode::kNotFound);
  ExpectMentions(absent.status(), {"'x.weight'"});
}

TEST(TensorStoreTest, EmptyDirectoryIsNotFound) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<TensorStore>> store = TensorStore::Open(dir.path());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kNotFound);
  ExpectMentions(store.status(), {dir.path()});
}

// Writes a two-shard checkpoint: a.weight, b.weight in shard 1; c.weight in shard 2.
void WriteShards(const TempDir& dir, const json& weight_map) {
  dir.Write("model-00001-of-00002.safetensors", ValidF32File({{"a.weight", {2, 2}}, {"b.weight", {3}}}));
  dir.Write("model-00002-of-00002.safetensors", ValidF32File({{"c.weight", {5}}}));
  dir.Write("model.safetensors.index.json",
            json{{"metadata", {{"total_size", 48}}}, {"weight_map", weight_map}}.dump());
}

const json kGoodMap = {{"a.weight", "model-00001-of-00002.safetensors"},
                       {"b.weight", "model-00001-of-00002.safetensors"},
                       {"c.weight", "model-00002-of-00002.safetensors"}};

TEST(TensorStoreTest, ShardedCheckpointLoads) {
  TempDir dir;
  WriteShards(dir, kGoodMap);
  absl::StatusOr<std::unique_ptr<TensorStore>> store = TensorStore::Open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->files().size(), 2u);
  EXPECT_EQ((*store)->Names(), std::vector<std::string>({"a.weight", "b.weight", "c.weight"}));
  absl::StatusOr<TensorView> c = (*store)->Get("c.weight");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(std::string(c->file), HasSubstr("model-00002-of-00002.safetensors"));
  EXPECT_EQ(ReadF32(*c, 0), 100.0f);
  EXPECT_EQ(ReadF32(*c, 4), 104.0f);
  absl::StatusOr<TensorView> b = (*store)->Get("b.weight");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(ReadF32(*b, 2), 202.0f);
}

TEST(TensorStoreTest, IndexNamesTensorMissingFromShard) {
  TempDir dir;
  json map = kGoodMap;
  map["d.weight"] = "model-00002-of-00002.safetensors";
  WriteShards(dir, map);
  absl::StatusOr<std::unique_ptr<TensorStore>> store = TensorStore::Open(dir.path());
  ASSERT_FALSE(store.ok());
  ExpectMentions(store.status(), {"'d.weight'", "model-00002-of-00002.safetensors",
                                  "model.safetensors.index.json"});
}

TEST(TensorStoreTest, MissingShardFile) {
  TempDir dir;
  json map = kGoodMap;
  map["c.weight"] = "model-00003-of-00003.safetensors";
  WriteShards(dir, map);
  absl::StatusOr<std::unique_ptr<TensorStore>> store = TensorStore::Open(dir.path());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kNotFound);
  ExpectMentions(store.status(), {"model-00003-of-00003.safetensors"});
}

TEST(TensorStoreTest, ShardTensorNotInIndex) {
  TempDir dir;
  json map = kGoodMap;
  map.erase("b.weight");
  WriteShards(dir, map);
  absl::StatusOr<std::unique_ptr<TensorStore>> store = TensorStore::Open(dir.path());
  ASSERT_FALSE(store.ok());
  ExpectMentions(store.status(), {"'b.weight'", "model-00001-of-00002.safetensors", "not listed"});
}

TEST(TensorStoreTest, TensorInTwoShards) {
  TempDir dir;
  WriteShards(dir, kGoodMap);
  // Shard 2 also holds a.weight.
  dir.Write("model-00002-of-00002.safetensors", ValidF32File({{"c.weight", {5}}, {"a.weight", {4}}}));
  absl::StatusOr<std::unique_ptr<TensorStore>> store = TensorStore::Open(dir.path());
  ASSERT_FALSE(store.ok());
  ExpectMentions(store.status(), {"'a.weight'", "model-00001-of-00002.safetensors",
                                  "model-00002-of-00002.safetensors"});
}

TEST(TensorStoreTest, BadIndexFiles) {
  for (const std::string& index :
       {std::string("{not json"), std::string("[]"), std::string(R"({"metadata": {}})"),
        std::string(R"({"weight_map": {"a.weight": 3}})"),
        std::string(R"({"weight_map": {"a.weight": "../model.safetensors"}})"),
        std::string(R"({"weight_map": {}})")}) {
    SCOPED_TRACE(index);
    TempDir dir;
    dir.Write("model.safetensors.index.json", index);
    absl::StatusOr<std::unique_ptr<TensorStore>> store = TensorStore::Open(dir.path());
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
    ExpectMentions(store.status(), {"model.safetensors.index.json"});
  }
}

TEST(TensorStoreTest, BrokenShardIsReportedWithItsName) {
  TempDir dir;
  WriteShards(dir, kGoodMap);
  dir.Write("model-00002-of-00002.safetensors", "abc");
  absl::StatusOr<std::unique_ptr<TensorStore>> store = TensorStore::Open(dir.path());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  ExpectMentions(store.status(), {"model-00002-of-00002.safetensors", "truncated"});
}

}  // namespace
}  // namespace moe
