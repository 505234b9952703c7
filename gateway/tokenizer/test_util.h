// Shared by the tokenizer tests: the checked-in tokenizers of four model
// families (tests/testdata/tokenizers/<family>/) and their golden data.
#ifndef MOE_GATEWAY_TOKENIZER_TEST_UTIL_H_
#define MOE_GATEWAY_TOKENIZER_TEST_UTIL_H_

#include <string>
#include <vector>

#include "gateway/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace moe::tokenizer::testing {

inline const std::vector<std::string>& Families() {
  static const std::vector<std::string> kFamilies = {"qwen3", "llama3", "mistral", "deepseek_v3"};
  return kFamilies;
}

std::string TokenizersDir();  // tests/testdata/tokenizers
// The family's tokenizer, loaded once per process (aborts the test run when
// it does not load: every test below needs it).
const Tokenizer& Family(const std::string& family);
// golden.json: {family: [{text, ids, ids_with_special, decoded}, ...]}.
const nlohmann::json& Golden();
// The whole file, or "" when it cannot be read.
std::string ReadFile(const std::string& path);
// The whole file gunzipped (a plain file is read as is), or "".
std::string ReadGzipFile(const std::string& path);

}  // namespace moe::tokenizer::testing

#endif  // MOE_GATEWAY_TOKENIZER_TEST_UTIL_H_
