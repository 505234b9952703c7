// moe-tokenize: a tokenizer.json from the command line.
//
//   moe-tokenize --tokenizer DIR [--add-special-tokens] [--allow-special] --json < texts.json
//       reads a JSON array of strings, prints a JSON array of id arrays;
//   moe-tokenize --tokenizer DIR --decode [--skip-special-tokens] --json < ids.json
//       reads a JSON array of id arrays, prints a JSON array of strings;
//   moe-tokenize --tokenizer DIR "some text"      prints the ids, comma-separated;
//   moe-tokenize --tokenizer DIR --decode 1,2,3   prints the text.
#include <chrono>
#include <cstdint>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/command_line.h"
#include "gateway/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, tokenizer, "", "Directory with tokenizer.json or tokenizer.json.gz (+ tokenizer_config.json).");
ABSL_FLAG(bool, add_special_tokens, false, "Add the post-processor's special tokens (e.g. BOS) when encoding.");
ABSL_FLAG(bool, allow_special, false, "Recognise special tokens written in the text (e.g. <|im_start|>).");
ABSL_FLAG(bool, decode, false, "Decode ids to text instead of encoding text.");
ABSL_FLAG(bool, skip_special_tokens, false, "When decoding, leave special tokens out of the text.");
ABSL_FLAG(bool, json, false, "Batch mode: a JSON array on stdin, a JSON array on stdout.");
ABSL_FLAG(bool, timing, false, "Print the tokenizer load time to stderr.");

namespace {

using moe::tokenizer::Tokenizer;

int Fail(absl::string_view msg) {
  std::cerr << "moe-tokenize: " << msg << "\n";
  return 1;
}

absl::StatusOr<std::vector<int32_t>> ParseIdList(absl::string_view text) {
  std::vector<int32_t> ids;
  for (absl::string_view part : absl::StrSplit(text, absl::ByAnyChar(", "), absl::SkipWhitespace())) {
    int32_t id;
    if (!absl::SimpleAtoi(part, &id)) {
      return absl::InvalidArgumentError(absl::StrCat("'", part, "' is not a token id"));
    }
    ids.push_back(id);
  }
  return ids;
}

// The JSON batch: encode or decode every element of the array on stdin.
int RunJson(const Tokenizer& tok, const moe::tokenizer::EncodeOptions& options, bool decode, bool skip_special) {
  const std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  nlohmann::json in;
  try {
    in = nlohmann::json::parse(input);
  } catch (const nlohmann::json::exception& e) {
    return Fail(absl::StrCat("stdin is not valid JSON: ", e.what()));
  }
  if (!in.is_array()) return Fail("stdin must hold a JSON array");
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < in.size(); ++i) {
    const nlohmann::json& item = in[i];
    if (decode) {
      std::vector<int32_t> ids;
      bool ok = item.is_array();
      for (size_t k = 0; ok && k < item.size(); ++k) {
        ok = item[k].is_number_integer() && item[k].get<int64_t>() >= INT32_MIN && item[k].get<int64_t>() <= INT32_MAX;
        if (ok) ids.push_back(static_cast<int32_t>(item[k].get<int64_t>()));
      }
      if (!ok) return Fail(absl::StrCat("input[", i, "] is not an array of token ids"));
      auto text = tok.Decode(ids, skip_special);
      if (!text.ok()) return Fail(absl::StrCat("input[", i, "]: ", text.status().message()));
      out.push_back(*text);
    } else {
      if (!item.is_string()) return Fail(absl::StrCat("input[", i, "] is not a string"));
      auto ids = tok.Encode(item.get<std::string>(), options);
      if (!ids.ok()) return Fail(absl::StrCat("input[", i, "]: ", ids.status().message()));
      out.push_back(*ids);
    }
  }
  std::cout << out.dump() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "moe-tokenize --tokenizer DIR [--add-special-tokens] [--allow-special] [--decode] "
      "[--skip-special-tokens] (--json < input.json | TEXT... | --decode IDS...)");
  moe::NormalizedArgs args(argc, argv);
  const std::vector<char*> positional = absl::ParseCommandLine(args.argc(), args.argv());
  const std::string dir = absl::GetFlag(FLAGS_tokenizer);
  if (dir.empty()) return Fail("--tokenizer is required");
  const bool json = absl::GetFlag(FLAGS_json);
  if (!json && positional.size() < 2) return Fail("give the text (or, with --decode, the ids) as arguments, or use --json");
  if (json && positional.size() > 1) return Fail("--json reads stdin: no positional arguments");

  const auto start = std::chrono::steady_clock::now();
  auto tok = Tokenizer::FromDirectory(dir);
  if (!tok.ok()) return Fail(tok.status().message());
  if (absl::GetFlag(FLAGS_timing)) {
    const std::chrono::duration<double, std::milli> ms = std::chrono::steady_clock::now() - start;
    std::cerr << "moe-tokenize: loaded " << dir << " in " << ms.count() << " ms\n";
  }
  const moe::tokenizer::EncodeOptions options{.add_special_tokens = absl::GetFlag(FLAGS_add_special_tokens),
                                              .allow_special = absl::GetFlag(FLAGS_allow_special)};
  const bool decode = absl::GetFlag(FLAGS_decode);
  const bool skip_special = absl::GetFlag(FLAGS_skip_special_tokens);
  if (json) return RunJson(**tok, options, decode, skip_special);
  for (size_t i = 1; i < positional.size(); ++i) {
    if (decode) {
      auto ids = ParseIdList(positional[i]);
      if (!ids.ok()) return Fail(ids.status().message());
      auto text = (*tok)->Decode(*ids, skip_special);
      if (!text.ok()) return Fail(text.status().message());
      std::cout << *text << "\n";
    } else {
      auto ids = (*tok)->Encode(positional[i], options);
      if (!ids.ok()) return Fail(ids.status().message());
      std::cout << absl::StrJoin(*ids, ",") << "\n";
    }
  }
  return 0;
}
