// The official JSON-Schema-Test-Suite (Debian package json-schema-test-suite,
// draft 7: the newest draft the package has) against the JSON Schema
// constraint: for every test group whose schema the constraint supports,
// each valid instance, serialized compactly with object keys in the schema's
// order (the order the constraint writes), is accepted, token by token
// through Qwen3's real tokenizer, and each invalid instance is rejected.
// Known deviations are listed with their reasons in
// grammar/testdata/json_schema_suite_deviations.txt; the supported /
// unsupported split of every group is in grammar/testdata/json_schema_suite_split.txt
// (MOE_UPDATE_SUITE_SPLIT=1 rewrites it) and must match.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "core/gzip_file.h"
#include "gateway/tokenizer/tokenizer.h"
#include "grammar/earley.h"
#include "grammar/json_schema.h"
#include "grammar/token_vocabulary.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace moe::grammar {
namespace {

using Json = nlohmann::ordered_json;
constexpr char kSuite[] = "/usr/share/json-schema-test-suite/tests/draft7";

// `d` compactly, object keys in the order `schema` lists its properties.
std::string Serialize(const Json& d, const Json* schema, const Json& root) {
  while (schema != nullptr && schema->is_object() && schema->contains("$ref") && (*schema)["$ref"].is_string()) {
    const std::string ref = (*schema)["$ref"];
    const std::string prefix = "#/definitions/";
    if (ref.rfind(prefix, 0) != 0 || !root.contains("definitions") || !root["definitions"].contains(ref.substr(prefix.size()))) {
      break;
    }
    schema = &root["definitions"][ref.substr(prefix.size())];
  }
  const bool obj_schema = schema != nullptr && schema->is_object();
  if (d.is_object()) {
    std::string out = "{";
    std::set<std::string> done;
    auto add = [&](const std::string& k, const Json* sub) {
      if (out.size() > 1) out += ",";
      out += Json(k).dump() + ":" + Serialize(d[k], sub, root);
      done.insert(k);
    };
    if (obj_schema && schema->contains("properties") && (*schema)["properties"].is_object()) {
      for (const auto& [k, sub] : (*schema)["properties"].items()) {
        if (d.contains(k)) add(k, &sub);
      }
    }
    for (const auto& [k, v] : d.items()) {
      (void)v;
      if (done.count(k) == 0) add(k, nullptr);
    }
    return out + "}";
  }
  if (d.is_array()) {
    std::string out = "[";
    for (size_t i = 0; i < d.size(); ++i) {
      if (i > 0) out += ",";
      const Json* sub = obj_schema && schema->contains("items") && (*schema)["items"].is_object() ? &(*schema)["items"]
                                                                                                     : nullptr;
      out += Serialize(d[i], sub, root);
    }
    return out + "]";
  }
  return d.dump();
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(JsonSchemaSuiteTest, SupportedGroupsAcceptValidAndRejectInvalidInstances) {
  ASSERT_TRUE(std::filesystem::exists(kSuite)) << kSuite << " is missing: scripts/setup-deps.sh installs "
                                                             "json-schema-test-suite";
  const std::string testdata = std::string(MOE_TESTDATA_DIR) + "/tokenizers/qwen3";
  auto tokenizer = tokenizer::Tokenizer::FromDirectory(testdata);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  auto vocab = TokenVocabulary::FromDirectory(testdata);
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  // "file|group|test" lines (after a '#': the reason).
  std::set<std::string> deviations;
  {
    std::istringstream in(Slurp(std::string(MOE_GRAMMAR_TESTDATA_DIR) + "/json_schema_suite_deviations.txt"));
    for (std::string line; std::getline(in, line);) {
      const size_t hash = line.find("  #");
      if (line.empty() || line[0] == '#') continue;
      deviations.insert(line.substr(0, hash));
    }
  }
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(kSuite)) {
    if (e.path().extension() == ".json") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  std::ostringstream split;
  int groups = 0, supported = 0, cases = 0, tokens = 0, deviated = 0;
  for (const std::string& file : files) {
    const std::string name = std::filesystem::path(file).filename().string();
    const Json suite = Json::parse(Slurp(file));
    for (const Json& group : suite) {
      ++groups;
      const std::string gname = group["description"];
      auto grammar = JsonSchemaToGrammar(group["schema"].dump());
      if (!grammar.ok()) {
        split << name << " | " << gname << " | unsupported: " << grammar.status().message() << "\n";
        continue;
      }
      ++supported;
      split << name << " | " << gname << " | supported, " << group["tests"].size() << " tests\n";
      const Grammar* g = grammar->get();
      GrammarMatcher matcher(std::move(*grammar), vocab->get());
      for (const Json& t : group["tests"]) {
        const std::string key = name + "|" + gname + "|" + t["description"].get<std::string>();
        const std::string text = Serialize(t["data"], &group["schema"], group["schema"]);
        const bool valid = t["valid"];
        const bool accepted = g->Matches(text);
        ++cases;
        if (accepted != valid) {
          if (deviations.count(key) != 0) {
            ++deviated;
            continue;
          }
          ADD_FAILURE() << key << ": '" << text << "' is " << (valid ? "valid" : "invalid") << " but "
                        << (accepted ? "accepted" : "rejected");
          continue;
        }
        if (deviations.count(key) != 0) ADD_FAILURE() << key << " is listed as a deviation but agrees now";
        if (!valid) continue;
        // Token by token through the real tokenizer: no token of the encoding is masked.
        tokenizer::EncodeOptions eo;
        auto ids = (*tokenizer)->Encode(text, eo);
        ASSERT_TRUE(ids.ok());
        EarleyParser parser(&matcher);
        for (int32_t id : *ids) {
          ASSERT_TRUE(Allowed(*parser.Mask(), id)) << key << ": token '" << (*vocab)->bytes(id) << "' masked";
          ASSERT_TRUE(parser.Advance(id).ok()) << key;
          ++tokens;
        }
        EXPECT_TRUE(parser.Complete()) << key;
      }
    }
  }
  const std::string split_path = std::string(MOE_GRAMMAR_TESTDATA_DIR) + "/json_schema_suite_split.txt";
  const std::string header = "# JSON-Schema-Test-Suite draft 7: each group, supported or not (and why).\n"
                             "# Written by json_schema_suite_test with MOE_UPDATE_SUITE_SPLIT=1.\n";
  const std::string summary = "# " + std::to_string(supported) + " of " + std::to_string(groups) +
                              " groups supported\n";
  if (std::getenv("MOE_UPDATE_SUITE_SPLIT") != nullptr) {
    std::ofstream(split_path) << header << summary << split.str();
  }
  EXPECT_EQ(Slurp(split_path), header + summary + split.str()) << "the split changed: rerun with MOE_UPDATE_SUITE_SPLIT=1";
  std::cout << supported << " of " << groups << " groups supported; " << cases << " instances checked (" << deviated
            << " known deviations), " << tokens << " tokens forced through the masks\n";
  EXPECT_GE(supported, 42);
}

}  // namespace
}  // namespace moe::grammar
