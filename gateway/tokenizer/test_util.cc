#include "gateway/tokenizer/test_util.h"

#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

namespace moe::tokenizer::testing {

std::string TokenizersDir() { return std::string(MOE_TESTDATA_DIR) + "/tokenizers"; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const Tokenizer& Family(const std::string& family) {
  static std::mutex mu;
  static auto* loaded = new std::map<std::string, std::unique_ptr<Tokenizer>>();
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = (*loaded)[family];
  if (slot == nullptr) {
    auto t = Tokenizer::FromDirectory(TokenizersDir() + "/" + family);
    if (!t.ok()) {
      std::cerr << "cannot load the " << family << " tokenizer: " << t.status() << "\n";
      std::abort();
    }
    slot = std::move(*t);
  }
  return *slot;
}

const nlohmann::json& Golden() {
  static const nlohmann::json* golden =
      new nlohmann::json(nlohmann::json::parse(ReadFile(TokenizersDir() + "/golden.json")));
  return *golden;
}

}  // namespace moe::tokenizer::testing
