// End-to-end checks of the command-line tools: they run as a user runs them.
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
#include "tests/shell_command.h"
#include "tests/tiny_models.h"

namespace {

using ::testing::HasSubstr;

using Result = moe::test::ShellResult;  // stdout and stderr

Result RunCommand(const std::string& command) { return moe::test::RunShellCommand(command); }

const std::string kBin = MOE_TOOLS_DIR;
const std::string kFixture = std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral";

std::string Join(const std::vector<int>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s;
}

// Every family's golden continuation, as a user gets it from the command line.
class MoeGenerateFamilyCli : public ::testing::TestWithParam<std::string> {};

TEST_P(MoeGenerateFamilyCli, JsonOutputMatchesGolden) {
  const std::string model = moe::test::TinyModelDir(GetParam());
  const nlohmann::json golden = moe::test::TinyGolden(GetParam());
  ASSERT_EQ(golden["cases"].size(), 6u);
  for (const auto& c : golden["cases"]) {
    const Result r = RunCommand(kBin + "/moe-generate --model " + model + " --prompt-ids " +
                         Join(c["prompt_ids"].get<std::vector<int>>()) +
                         " --max-tokens 16 --top-logprobs 5 --json --ignore-eos --threads 2");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::istringstream lines(r.output);
    std::string line;
    std::vector<int> ids;
    size_t step = 0;
    while (std::getline(lines, line)) {
      if (line.empty() || line[0] != '{') continue;
      const nlohmann::json j = nlohmann::json::parse(line);
      ids.push_back(j["id"].get<int>());
      ASSERT_EQ(j["top_logprobs"].size(), 5u);
      const auto& want = c["top5_logprobs_each_step"][step];
      EXPECT_NEAR(j["logprob"].get<double>(), want[0][1].get<double>(), 1e-4);
      for (size_t k = 0; k < 5; ++k) {
        EXPECT_NEAR(j["top_logprobs"][k][1].get<double>(), want[k][1].get<double>(), 1e-4);
      }
      ++step;
    }
    EXPECT_EQ(step, 16u);
    EXPECT_EQ(ids, c["greedy_ids"].get<std::vector<int>>()) << c["prompt_text"];
  }
}

INSTANTIATE_TEST_SUITE_P(Families, MoeGenerateFamilyCli, ::testing::ValuesIn(moe::test::TinyFamilies()),
                         moe::test::FamilyName());

TEST(MoeGenerateCli, StreamsDecodedText) {
  std::ifstream in(kFixture + "/golden.json");
  const nlohmann::json c = nlohmann::json::parse(in)["cases"][0];
  const Result r = RunCommand(kBin + "/moe-generate --model " + kFixture + " --prompt-ids " +
                       Join(c["prompt_ids"].get<std::vector<int>>()) +
                       " --max-tokens 16 --decode-text --ignore-eos");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(c["greedy_text"].get<std::string>()));
}

TEST(MoeGenerateCli, BadInputGivesAClearErrorAndExitCode) {
  Result r = RunCommand(kBin + "/moe-generate --model " + kFixture + " --prompt-ids 1,x,3");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("'x' is not a token id"));
  r = RunCommand(kBin + "/moe-generate --model " + kFixture + " --prompt-ids 1,99999");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("99999"));
  r = RunCommand(kBin + "/moe-generate --model /nonexistent/model --prompt-ids 1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("/nonexistent/model"));
  r = RunCommand(kBin + "/moe-generate --model " + kFixture + " --prompt-ids 1 --max-tokens 0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("max_tokens"));
}

TEST(MoeModelCli, MakeTinyThenInspectThenGenerate) {
  const std::string dir = (std::filesystem::temp_directory_path() / ("moe_cli_test_model_" + std::to_string(getpid()))).string();
  std::filesystem::remove_all(dir);
  Result r = RunCommand(kBin + "/moe-model make-tiny --out " + dir + " --seed 3 --hidden 64 --layers 2 --heads 4 "
                 "--kv-heads 2 --experts 4 --top-k 2 --ffn 96 --vocab 1000");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = RunCommand(kBin + "/moe-model inspect " + dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("hidden_size: 64"));
  EXPECT_THAT(r.output, HasSubstr("vocab_size: 1000"));
  r = RunCommand(kBin + "/moe-generate --model " + dir + " --prompt-ids 1,2,3 --max-tokens 4 --json --ignore-eos");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  int lines = 0;
  std::istringstream s(r.output);
  std::string line;
  while (std::getline(s, line)) lines += !line.empty() && line[0] == '{';
  EXPECT_EQ(lines, 4);
  std::filesystem::remove_all(dir);
}

}  // namespace
