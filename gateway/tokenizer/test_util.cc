#include "gateway/tokenizer/test_util.h"

#include "absl/synchronization/mutex.h"

#include <zlib.h>

#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

namespace moe::tokenizer::testing {

std::string TokenizersDir() { return std::string(MOE_TESTDATA_DIR) + "/tokenizers"; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ReadGzipFile(const std::string& path) {
  std::string out;
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  gzclose(f);
  return out;
}

const Tokenizer& Family(const std::string& family) {
  static absl::Mutex mu(absl::kConstInit);
  static auto* loaded = new std::map<std::string, std::unique_ptr<Tokenizer>>();
  absl::MutexLock lock(&mu);
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
