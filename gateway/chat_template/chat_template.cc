#include "gateway/chat_template/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/bounded_json.h"
#include "gateway/chat_template/builtins.h"
#include "gateway/chat_template/evaluator.h"
#include "gateway/chat_template/lexer.h"
#include "gateway/chat_template/parser.h"

namespace moe::chat {

struct ChatTemplate::Program {
  Body body;
};

absl::StatusOr<ChatTemplate> ChatTemplate::Compile(absl::string_view source, const CompileOptions& options) {
  auto fail = [&](const absl::Status& s) {
    return absl::InvalidArgumentError(absl::StrCat(options.origin, ": chat_template ", s.message()));
  };
  auto tokens = Tokenize(std::string_view(source.data(), source.size()));
  if (!tokens.ok()) return fail(tokens.status());
  auto body = Parse(*std::move(tokens));
  if (!body.ok()) return fail(body.status());
  auto program = std::make_shared<Program>();
  program->body = *std::move(body);
  ChatTemplate t;
  t.program_ = std::move(program);
  t.origin_ = options.origin;
  t.bos_token_ = options.bos_token;
  t.eos_token_ = options.eos_token;
  return t;
}

absl::StatusOr<std::string> ChatTemplate::Render(const Json& messages, const RenderOptions& options) const {
  if (!messages.is_array()) return absl::InvalidArgumentError("chat template: messages must be a list");
  if (!options.tools.is_null() && !options.tools.is_array()) {
    return absl::InvalidArgumentError("chat template: tools must be a list or null");
  }
  if (!options.extra_variables.is_object()) {
    return absl::InvalidArgumentError("chat template: extra_variables must be an object");
  }
  // The caller's JSON is borrowed for the render, not copied: nothing the
  // evaluator builds outlives Evaluate().
  auto borrow = [](const Json& j) {
    return Value::DataRef(std::shared_ptr<const Json>(std::shared_ptr<const Json>(), &j), &j);
  };
  std::vector<std::pair<std::string, Value>> vars;
  vars.emplace_back("messages", borrow(messages));
  vars.emplace_back("tools", borrow(options.tools));
  vars.emplace_back("add_generation_prompt", Value::Bool(options.add_generation_prompt));
  const auto& bos = options.bos_token ? options.bos_token : bos_token_;
  const auto& eos = options.eos_token ? options.eos_token : eos_token_;
  if (bos) vars.emplace_back("bos_token", Value::Str(*bos));
  if (eos) vars.emplace_back("eos_token", Value::Str(*eos));
  for (const auto& [k, v] : options.extra_variables.items()) {
    for (const auto& [name, unused] : vars) {
      if (name == k) {
        return absl::InvalidArgumentError(
            absl::StrCat("chat template: extra variable '", k, "' redefines a built-in one"));
      }
    }
    vars.emplace_back(k, borrow(v));
  }
  auto out = Evaluate(program_->body, std::move(vars), EvalLimits());
  if (out.ok()) return out;
  const absl::string_view m = out.status().message();
  if (absl::StartsWith(m, kRaisedPrefix)) {
    return absl::InvalidArgumentError(m.substr(kRaisedPrefix.size()));
  }
  return absl::Status(out.status().code(), absl::StrCat(origin_, ": chat_template ", m));
}

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return ss.str();
}

// A special token: a string, an {"content": ...} object, or null / absent.
absl::StatusOr<std::optional<std::string>> TokenString(const Json& config, const char* key, const std::string& path) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::optional<std::string>();
  if (it->is_string()) return std::optional<std::string>(it->get<std::string>());
  if (it->is_object()) {
    const auto content = it->find("content");
    if (content != it->end() && content->is_string()) return std::optional<std::string>(content->get<std::string>());
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": ", key, " is neither a string nor an object with a string \"content\""));
}

}  // namespace

absl::StatusOr<ChatTemplate> LoadChatTemplate(const std::string& model_dir) {
  const std::string config_path = (std::filesystem::path(model_dir) / "tokenizer_config.json").string();
  auto text = ReadFile(config_path);
  if (!text.ok()) return text.status();
  absl::StatusOr<Json> parsed = ParseBoundedJson<Json>(*text, kFileJsonLimits, config_path);
  if (!parsed.ok()) return parsed.status();
  const Json config = std::move(*parsed);
  if (!config.is_object()) return absl::InvalidArgumentError(absl::StrCat(config_path, ": not a JSON object"));

  CompileOptions options;
  options.origin = config_path;
  auto bos = TokenString(config, "bos_token", config_path);
  if (!bos.ok()) return bos.status();
  auto eos = TokenString(config, "eos_token", config_path);
  if (!eos.ok()) return eos.status();
  options.bos_token = *bos;
  options.eos_token = *eos;

  std::string source;
  const auto it = config.find("chat_template");
  if (it != config.end() && it->is_string()) {
    source = it->get<std::string>();
  } else if (it != config.end() && it->is_array()) {
    bool found = false;
    for (const Json& entry : *it) {
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry["template"].is_string()) {
        source = entry["template"].get<std::string>();
        found = true;
      }
    }
    if (!found) {
      return absl::InvalidArgumentError(
          absl::StrCat(config_path, ": chat_template is a list without a {\"name\": \"default\"} template"));
    }
  } else if (it != config.end() && !it->is_null()) {
    return absl::InvalidArgumentError(absl::StrCat(config_path, ": chat_template is neither a string nor a list"));
  } else {
    const std::string jinja_path = (std::filesystem::path(model_dir) / "chat_template.jinja").string();
    auto jinja = ReadFile(jinja_path);
    if (!jinja.ok()) {
      return absl::NotFoundError(
          absl::StrCat(model_dir,
                       ": no chat template (tokenizer_config.json has no chat_template and there is no "
                       "chat_template.jinja)"));
    }
    source = *std::move(jinja);
    options.origin = jinja_path;
  }
  return ChatTemplate::Compile(source, options);
}

}  // namespace moe::chat
