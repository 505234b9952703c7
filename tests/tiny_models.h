// The tiny checkpoints of tests/testdata, one per supported model family, each
// with a golden.json from an independent float64 implementation of its
// Hugging Face modeling file. Tests that must hold for every family run over
// TinyFamilies(); LoadTinyModel opens a family once per test binary.
#ifndef MOE_TESTS_TINY_MODELS_H_
#define MOE_TESTS_TINY_MODELS_H_

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "experts/expert_shard.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "router/dense_model.h"

namespace moe::test {

// Every family the README claims; each has tests/testdata/tiny-FAMILY.
inline const std::vector<std::string>& TinyFamilies() {
  static const std::vector<std::string> families = {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe"};
  return families;
}

// tests/testdata: $MOE_TESTDATA_DIR when set (a copy of the tree elsewhere,
// e.g. on the GPU machine), else where the build found it.
inline std::string TestdataDir() {
  const char* env = std::getenv("MOE_TESTDATA_DIR");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string(MOE_TESTDATA_DIR);
}

inline std::string TinyModelDir(const std::string& family) { return TestdataDir() + "/tiny-" + family; }

inline nlohmann::json TinyGolden(const std::string& family) {
  std::ifstream in(TinyModelDir(family) + "/golden.json");
  return nlohmann::json::parse(in);
}

// A family's checkpoint, dense weights and all its experts, in process.
struct TinyModel {
  std::unique_ptr<Checkpoint> checkpoint;
  std::unique_ptr<DenseModel> dense;
  std::unique_ptr<ExpertShard> shard;
  const ModelConfig& config() const { return checkpoint->config(); }
};

// Opened on first use and kept for the life of the test binary; fails the
// current test (and returns null) if the fixture does not load.
inline const TinyModel* LoadTinyModel(const std::string& family) {
  static auto* models = new std::map<std::string, std::unique_ptr<TinyModel>>();
  auto it = models->find(family);
  if (it != models->end()) return it->second.get();
  auto m = std::make_unique<TinyModel>();
  auto ckpt = Checkpoint::Open(TinyModelDir(family));
  EXPECT_TRUE(ckpt.ok()) << family << ": " << ckpt.status();
  if (!ckpt.ok()) return nullptr;
  m->checkpoint = std::move(ckpt).value();
  auto dense = DenseModel::Load(*m->checkpoint);
  EXPECT_TRUE(dense.ok()) << family << ": " << dense.status();
  if (!dense.ok()) return nullptr;
  m->dense = std::move(dense).value();
  auto shard = ExpertShard::Load(*m->checkpoint, {});
  EXPECT_TRUE(shard.ok()) << family << ": " << shard.status();
  if (!shard.ok()) return nullptr;
  m->shard = std::move(shard).value();
  return models->emplace(family, std::move(m)).first->second.get();
}

// For INSTANTIATE_TEST_SUITE_P over TinyFamilies(): the family as the test name.
struct FamilyName {
  std::string operator()(const ::testing::TestParamInfo<std::string>& info) const { return info.param; }
};

}  // namespace moe::test

#endif  // MOE_TESTS_TINY_MODELS_H_
