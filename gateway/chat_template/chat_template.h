// ChatTemplate: the `chat_template` of a Hugging Face tokenizer_config.json,
// compiled once at start-up and rendered per request, byte-for-byte as
// transformers' apply_chat_template(tokenize=False) renders it with Jinja2
// (ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True),
// loopcontrols, raise_exception / strftime_now globals, tojson with
// ensure_ascii=False).
//
// The template language is a Jinja2 subset (parser.h lists it; builtins.h the
// filters, tests, functions and methods). Anything outside it fails in
// Compile, naming the construct and its line, so an unsupported template
// stops the gateway at start-up instead of failing requests.
//
// Known differences from Jinja2 (none matters to the fixture templates):
// integers are 64-bit; str.upper()/lower() use Unicode simple case mapping;
// tuples are lists (repr prints [..] not (..)); select/map/... return lists,
// not generators; a list or dict cannot hold a namespace, loop or function.
//
// Thread-safety: a ChatTemplate is immutable after Compile; Render is const
// and may run concurrently. Copies share the compiled tree.
#ifndef MOE_GATEWAY_CHAT_TEMPLATE_CHAT_TEMPLATE_H_
#define MOE_GATEWAY_CHAT_TEMPLATE_CHAT_TEMPLATE_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/chat_template/value.h"

namespace moe::chat {

struct CompileOptions {
  // Names the template in errors, e.g. "models/qwen3/tokenizer_config.json".
  std::string origin = "chat template";
  // Defaults for the bos_token / eos_token variables (from tokenizer_config).
  // Absent: the variable is undefined, as transformers leaves a None token
  // out of the render arguments.
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
};

struct RenderOptions {
  // Append the assistant header so the model answers next.
  bool add_generation_prompt = false;
  // OpenAI-style tool definitions (a list); null renders as `tools` = None,
  // as transformers passes tools=None when there are none.
  Json tools;
  // Override the template's bos_token / eos_token defaults when set.
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  // More template variables (an object), e.g. {"enable_thinking": false}.
  // They may not redefine messages, tools, add_generation_prompt or the
  // special tokens.
  Json extra_variables = Json::object();
};

class ChatTemplate {
 public:
  // Parses and checks `source`. INVALID_ARGUMENT naming `options.origin`, the
  // line and the construct for syntax errors and unsupported features.
  static absl::StatusOr<ChatTemplate> Compile(absl::string_view source, const CompileOptions& options = {});

  // Renders `messages` (a list of {role, content, ...} objects; object key
  // order is kept, as tojson must print it). INVALID_ARGUMENT with the
  // template's message when it calls raise_exception, or "<origin> line N:
  // <error>" for runtime errors (undefined attribute of undefined, type
  // errors); RESOURCE_EXHAUSTED for runaway templates.
  absl::StatusOr<std::string> Render(const Json& messages, const RenderOptions& options) const;

  const std::string& origin() const { return origin_; }
  const std::optional<std::string>& bos_token() const { return bos_token_; }
  const std::optional<std::string>& eos_token() const { return eos_token_; }

 private:
  struct Program;
  ChatTemplate() = default;

  std::shared_ptr<const Program> program_;
  std::string origin_;
  std::optional<std::string> bos_token_;
  std::optional<std::string> eos_token_;
};

// Loads the chat template of the model in `model_dir`: `chat_template` of
// tokenizer_config.json (a string, or a list of {name, template} where
// "default" is used), else a chat_template.jinja file next to it; bos_token /
// eos_token (strings or {"content": ...} objects) become the defaults.
// NOT_FOUND when the directory has no template.
absl::StatusOr<ChatTemplate> LoadChatTemplate(const std::string& model_dir);

}  // namespace moe::chat

#endif  // MOE_GATEWAY_CHAT_TEMPLATE_CHAT_TEMPLATE_H_
