// moe-grammar-bench: the cost of structured output on one core, over a real
// tokenizer's vocabulary (default: Qwen3's 151k tokens): per constraint
// (regexes, realistic API JSON schemas, the JSON-Schema-Test-Suite schemas
// that are supported, any JSON object, a GBNF grammar), the compile time and
// the mask time of every decoding step of random walks through the masks,
// each constraint compiled cold (caches empty), as p50 / p99 / max per group.
//
//   moe-grammar-bench [--tokenizer DIR] [--walks 20] [--steps 40] [--json FILE]
//                     [--schemas FILE] [--suite DIR]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "core/command_line.h"
#include "grammar/constraint.h"
#include "grammar/token_vocabulary.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, tokenizer, MOE_DEFAULT_TOKENIZER_DIR, "Directory with tokenizer.json(.gz).");
ABSL_FLAG(int, walks, 20, "Random walks per constraint.");
ABSL_FLAG(int, steps, 40, "Most steps per walk.");
ABSL_FLAG(std::string, json, "", "Also write the figures here.");
ABSL_FLAG(std::string, schemas, MOE_GRAMMAR_SCHEMAS, "Realistic API schemas: [{name, schema}, ...].");
ABSL_FLAG(std::string, suite, "/usr/share/json-schema-test-suite/tests/draft7",
          "JSON-Schema-Test-Suite directory (its supported schemas are measured too; empty: none).");

namespace {

using Clock = std::chrono::steady_clock;

double Us(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::micro>(b - a).count(); }

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

// Realistic API-style patterns (formats, identifiers, flat JSON records) and
// choice lists.
const std::vector<std::pair<std::string, std::string>>& Patterns() {
  static const std::vector<std::pair<std::string, std::string>> p = {
      {"email", "[a-z0-9._%+-]{1,32}@[a-z0-9.-]{1,32}\\.[a-z]{2,6}"},
      {"date", "\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])"},
      {"date-time", "\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,6})?(Z|[+-]\\d{2}:\\d{2})"},
      {"uuid", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"},
      {"ipv4", "((25[0-5]|2[0-4]\\d|1?\\d?\\d)\\.){3}(25[0-5]|2[0-4]\\d|1?\\d?\\d)"},
      {"phone", "\\+?\\d{1,3}[ -]?\\(?\\d{3}\\)?[ -]?\\d{3}[ -]?\\d{4}"},
      {"integer", "-?(0|[1-9]\\d{0,17})"},
      {"number", "-?(0|[1-9]\\d*)(\\.\\d+)?([eE][+-]?\\d+)?"},
      {"json string", "\"([^\"\\\\\\x00-\\x1f]|\\\\[\"\\\\/bfnrt]|\\\\u[0-9a-fA-F]{4}){0,64}\""},
      {"person record", "\\{\"name\": \"[^\"\\\\]{1,40}\", \"age\": (0|[1-9]\\d?), \"email\": \"[a-z0-9.]{1,20}@[a-z]{1,20}\\.com\"\\}"},
      {"point", "\\{\"x\": -?\\d{1,6}(\\.\\d{1,6})?, \"y\": -?\\d{1,6}(\\.\\d{1,6})?\\}"},
      {"status enum", "\\{\"status\": \"(active|inactive|pending|deleted)\", \"count\": \\d{1,9}\\}"},
      {"sentence", "[A-Z][a-z]{0,15}( [a-z]{1,15}){2,12}\\."},
      {"hex color", "#[0-9a-fA-F]{6}"},
      {"semver", "(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(-[0-9A-Za-z.-]{1,20})?"},
      {"url", "https?://[a-z0-9.-]{1,40}(/[a-zA-Z0-9._~-]{1,20}){0,5}"},
      {"korean words", "[가-힣]{1,10}( [가-힣]{1,10}){0,5}"},
      {"free text line", "[^\\n]{1,200}"},
      {"yes/no", "(yes|no)"},
      {"choice: sentiment", "(positive|negative|neutral|mixed)"},
      {"choice: 50 cities", "(Tokyo|Delhi|Shanghai|Sao Paulo|Mexico City|Cairo|Mumbai|Beijing|Dhaka|Osaka|New York|"
                            "Karachi|Buenos Aires|Chongqing|Istanbul|Kolkata|Manila|Lagos|Rio de Janeiro|Tianjin|"
                            "Kinshasa|Guangzhou|Los Angeles|Moscow|Shenzhen|Lahore|Bangalore|Paris|Bogota|Jakarta|"
                            "Chennai|Lima|Bangkok|Seoul|Nagoya|Hyderabad|London|Tehran|Chicago|Chengdu|Nanjing|"
                            "Wuhan|Ho Chi Minh City|Luanda|Ahmedabad|Kuala Lumpur|Xi'an|Hong Kong|Dongguan|Hangzhou)"},
  };
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("moe-grammar-bench [--tokenizer DIR] [--walks N] [--steps N] [--json FILE]");
  moe::NormalizedArgs args(argc, argv);
  absl::ParseCommandLine(args.argc(), args.argv());
  const int walks = absl::GetFlag(FLAGS_walks), steps = absl::GetFlag(FLAGS_steps);
  if (walks < 1 || walks > 10000 || steps < 1 || steps > 10000) {
    std::fprintf(stderr, "moe-grammar-bench: --walks and --steps must be in [1, 10000]\n");
    return 2;
  }
  auto vocab = moe::grammar::TokenVocabulary::FromDirectory(absl::GetFlag(FLAGS_tokenizer));
  if (!vocab.ok()) {
    std::fprintf(stderr, "moe-grammar-bench: %s\n", std::string(vocab.status().message()).c_str());
    return 1;
  }
  std::printf("vocabulary %s: %d tokens, %zu trie nodes; %d walks of up to %d steps per constraint, one core\n",
              absl::GetFlag(FLAGS_tokenizer).c_str(), (*vocab)->size(), (*vocab)->trie().size(), walks, steps);
  std::printf("%-28s %10s %10s %10s %10s %10s\n", "constraint", "compile_us", "mask_p50", "mask_p99", "mask_max",
              "steps");
  std::mt19937_64 rng(1);
  // Per group: compile and mask times.
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> groups;
  nlohmann::json rows = nlohmann::json::array();
  int refused = 0;
  auto run = [&](const std::string& group, const std::string& name, const moe::grammar::ConstraintSpec& spec) {
    // A fresh compiler each time: compile and first masks are measured cold.
    moe::grammar::ConstraintCompiler compiler(vocab->get());
    const auto t0 = Clock::now();
    auto first = compiler.Compile(spec);
    const double compile_us = Us(t0, Clock::now());
    if (!first.ok()) {
      ++refused;
      return;
    }
    std::vector<double> masks;
    std::vector<int32_t> allowed;
    for (int w = 0; w < walks; ++w) {
      std::unique_ptr<moe::grammar::TokenConstraint> c = w == 0 ? std::move(*first) : std::move(*compiler.Compile(spec));
      for (int step = 0; step < steps; ++step) {
        const auto m0 = Clock::now();
        const moe::grammar::TokenMask& m = c->Mask();
        masks.push_back(Us(m0, Clock::now()));
        if (c->Complete() && rng() % 4 == 0) break;
        allowed.clear();
        for (int32_t id = 0; id < (*vocab)->size(); ++id) {
          if (moe::grammar::Allowed(m, id)) allowed.push_back(id);
        }
        if (allowed.empty()) break;
        if (!c->Advance(allowed[rng() % allowed.size()]).ok()) break;
      }
    }
    auto& [compiles, all] = groups[group];
    compiles.push_back(compile_us);
    all.insert(all.end(), masks.begin(), masks.end());
    const double p50 = Quantile(masks, 0.5), p99 = Quantile(masks, 0.99), mx = Quantile(masks, 1.0);
    std::printf("%-28s %10.0f %10.2f %10.1f %10.1f %10zu\n", name.substr(0, 28).c_str(), compile_us, p50, p99, mx,
                masks.size());
    rows.push_back({{"group", group}, {"constraint", name}, {"compile_us", compile_us}, {"mask_p50_us", p50},
                    {"mask_p99_us", p99}, {"mask_max_us", mx}, {"steps", masks.size()}});
  };
  for (const auto& [name, pattern] : Patterns()) {
    moe::grammar::ConstraintSpec spec;
    spec.kind = moe::grammar::ConstraintSpec::Kind::kRegex;
    spec.regex = pattern;
    run("regex", name, spec);
  }
  {
    std::ifstream in(absl::GetFlag(FLAGS_schemas));
    const nlohmann::ordered_json schemas = nlohmann::ordered_json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!schemas.is_array()) {
      std::fprintf(stderr, "moe-grammar-bench: --schemas %s: not a JSON array\n", absl::GetFlag(FLAGS_schemas).c_str());
      return 1;
    }
    for (const auto& c : schemas) {
      moe::grammar::ConstraintSpec spec;
      spec.kind = moe::grammar::ConstraintSpec::Kind::kJsonSchema;
      spec.json_schema = c["schema"].dump();
      run("json_schema (API schemas)", c["name"].get<std::string>(), spec);
    }
  }
  if (const std::string suite = absl::GetFlag(FLAGS_suite); !suite.empty()) {
    std::vector<std::string> files;
    for (const auto& e : std::filesystem::directory_iterator(suite)) {
      if (e.path().extension() == ".json") files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    for (const std::string& f : files) {
      std::ifstream in(f);
      const nlohmann::ordered_json groups_in_file = nlohmann::ordered_json::parse(in, nullptr, false);
      if (!groups_in_file.is_array()) continue;
      for (const auto& g : groups_in_file) {
        moe::grammar::ConstraintSpec spec;
        spec.kind = moe::grammar::ConstraintSpec::Kind::kJsonSchema;
        spec.json_schema = g["schema"].dump();
        run("json_schema (test suite)", std::filesystem::path(f).stem().string() + ": " + g["description"].get<std::string>(), spec);
      }
    }
  }
  {
    moe::grammar::ConstraintSpec spec;
    spec.kind = moe::grammar::ConstraintSpec::Kind::kJsonObject;
    run("json_object", "any JSON object", spec);
    spec.max_whitespace = 8;
    run("json_object", "any JSON object, whitespace", spec);
    spec = {};
    spec.kind = moe::grammar::ConstraintSpec::Kind::kGrammar;
    spec.grammar = "root ::= expr\nexpr ::= term ((\"+\" | \"-\") term)*\nterm ::= factor ((\"*\" | \"/\") factor)*\n"
                   "factor ::= [0-9]+ | \"(\" expr \")\" | [a-z_]+";
    run("grammar", "arithmetic (GBNF)", spec);
  }
  std::printf("\n%-28s %10s %10s %10s %10s %10s %10s\n", "group", "compile_p50", "compile_p99", "mask_p50", "mask_p99",
              "mask_max", "steps");
  std::vector<double> all_masks, all_compiles;
  nlohmann::json summary = nlohmann::json::object();
  for (const auto& [group, data] : groups) {
    const auto& [compiles, masks] = data;
    all_compiles.insert(all_compiles.end(), compiles.begin(), compiles.end());
    all_masks.insert(all_masks.end(), masks.begin(), masks.end());
    std::printf("%-28s %10.0f %10.0f %10.2f %10.1f %10.1f %10zu\n", group.c_str(), Quantile(compiles, 0.5),
                Quantile(compiles, 0.99), Quantile(masks, 0.5), Quantile(masks, 0.99), Quantile(masks, 1.0), masks.size());
    summary[group] = {{"compile_p50_us", Quantile(compiles, 0.5)}, {"compile_p99_us", Quantile(compiles, 0.99)},
                      {"mask_p50_us", Quantile(masks, 0.5)}, {"mask_p99_us", Quantile(masks, 0.99)},
                      {"mask_max_us", Quantile(masks, 1.0)}, {"constraints", compiles.size()}, {"steps", masks.size()}};
  }
  std::printf("%-28s %10.0f %10.0f %10.2f %10.1f %10.1f %10zu\n(%d constraints refused: unsupported)\n", "ALL",
              Quantile(all_compiles, 0.5), Quantile(all_compiles, 0.99), Quantile(all_masks, 0.5),
              Quantile(all_masks, 0.99), Quantile(all_masks, 1.0), all_masks.size(), refused);
  if (const std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    nlohmann::json j = {{"vocabulary", absl::GetFlag(FLAGS_tokenizer)}, {"tokens", (*vocab)->size()},
                        {"compile_p50_us", Quantile(all_compiles, 0.5)}, {"compile_p99_us", Quantile(all_compiles, 0.99)},
                        {"mask_p50_us", Quantile(all_masks, 0.5)}, {"mask_p99_us", Quantile(all_masks, 0.99)},
                        {"mask_max_us", Quantile(all_masks, 1.0)}, {"groups", summary}, {"rows", rows}};
    std::ofstream(path) << j.dump(1) << "\n";
  }
  return 0;
}
