// moe-tokenize run as a user runs it: JSON batch mode against the golden
// encodings, the plain one-line mode, and clear errors with exit code 1.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace {

using ::testing::HasSubstr;

struct Result {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

const std::string kBin = std::string(MOE_BIN_DIR) + "/moe-tokenize";
const std::string kTokenizers = std::string(MOE_TESTDATA_DIR) + "/tokenizers";
const std::string kTiny = std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral";

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() / (name + "_" + std::to_string(getpid()))).string();
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `args` with `stdin_text` on stdin (when not empty).
Result RunTool(const std::string& args, const std::string& stdin_text = "") {
  const std::string in_path = TempPath("tokenize_cli_in");
  const std::string err_path = TempPath("tokenize_cli_err");
  std::string command = kBin + " " + args;
  if (!stdin_text.empty()) {
    std::ofstream(in_path, std::ios::binary) << stdin_text;
    command += " < " + in_path;
  } else {
    command += " < /dev/null";
  }
  command += " 2> " + err_path;
  Result r;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = Slurp(err_path);
  std::filesystem::remove(in_path);
  std::filesystem::remove(err_path);
  return r;
}

nlohmann::json Golden(const std::string& family) {
  return nlohmann::json::parse(Slurp(kTokenizers + "/golden.json"))[family];
}

TEST(MoeTokenizeCli, JsonEncodeMatchesGolden) {
  for (const std::string family : {"qwen3", "mistral"}) {
    const nlohmann::json cases = Golden(family);
    nlohmann::json texts = nlohmann::json::array();
    nlohmann::json ids = nlohmann::json::array();
    nlohmann::json with_special = nlohmann::json::array();
    for (const auto& c : cases) {
      texts.push_back(c["text"]);
      ids.push_back(c["ids"]);
      with_special.push_back(c["ids_with_special"]);
    }
    Result r = RunTool("--tokenizer " + kTokenizers + "/" + family + " --allow-special --json", texts.dump());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out), ids) << family;
    if (family == "mistral") {
      r = RunTool("--tokenizer " + kTokenizers + "/" + family + " --allow-special --add-special-tokens --json",
              texts.dump());
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(nlohmann::json::parse(r.out), with_special) << family;
    }
  }
}

TEST(MoeTokenizeCli, JsonDecodeMatchesGolden) {
  const nlohmann::json cases = Golden("mistral");
  nlohmann::json ids = nlohmann::json::array();
  nlohmann::json decoded = nlohmann::json::array();
  for (const auto& c : cases) {
    ids.push_back(c["ids"]);
    decoded.push_back(c["decoded"]);
  }
  const Result r = RunTool("--tokenizer " + kTokenizers + "/mistral --decode --json", ids.dump());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out), decoded);
}

TEST(MoeTokenizeCli, AllowSpecialDecidesHowMarkersAreRead) {
  const std::string input = R"(["<|im_start|>user"])";
  Result r = RunTool("--tokenizer " + kTiny + " --allow-special --json", input);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json allowed = nlohmann::json::parse(r.out);
  EXPECT_EQ(allowed[0][0], 4094);
  r = RunTool("--tokenizer " + kTiny + " --json", input);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json plain = nlohmann::json::parse(r.out);
  EXPECT_GT(plain[0].size(), allowed[0].size());
  for (const auto& id : plain[0]) EXPECT_LT(id.get<int>(), 4093);
}

TEST(MoeTokenizeCli, PlainModeForPeople) {
  Result r = RunTool("--tokenizer " + kTiny + " 'Hello, world'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string ids = r.out.substr(0, r.out.find('\n'));
  EXPECT_THAT(ids, ::testing::MatchesRegex("[0-9]+(,[0-9]+)*"));
  r = RunTool("--tokenizer " + kTiny + " --decode " + ids);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Hello, world\n");
  r = RunTool("--tokenizer " + kTiny + " --decode --skip-special-tokens 4094,9707");
  EXPECT_EQ(r.exit_code, 1);  // 9707 is beyond the cut vocabulary
  EXPECT_THAT(r.err, HasSubstr("9707"));
}

TEST(MoeTokenizeCli, BadInputGivesAClearErrorAndExitCode) {
  Result r = RunTool("--json", "[]");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--tokenizer is required"));
  r = RunTool("--tokenizer /nonexistent/dir --json", "[]");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent/dir"));
  r = RunTool("--tokenizer " + kTiny + " --json", "[\"ok\", 3]");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("input[1] is not a string"));
  r = RunTool("--tokenizer " + kTiny + " --json", "[\"unterminated");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("not valid JSON"));
  r = RunTool("--tokenizer " + kTiny + " --decode --json", "[[1, 2], [3, 5000]]");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("input[1]: token id 5000"));
  r = RunTool("--tokenizer " + kTiny + " --decode 1,x");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("'x' is not a token id"));
  r = RunTool("--tokenizer " + kTiny);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--json"));
}

}  // namespace
