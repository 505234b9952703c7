#include "gateway/openai_request.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace moe {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

// The value of `name`, or nullptr when absent or null (OpenAI clients send
// null for "not set").
const OpenAiJson* Field(const OpenAiJson& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::StatusOr<std::optional<double>> Number(const OpenAiJson& body, const char* name) {
  const OpenAiJson* v = Field(body, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) return Invalid(name, "must be a number");
  return v->get<double>();
}

absl::StatusOr<std::optional<int64_t>> Integer(const OpenAiJson& body, const char* name) {
  const OpenAiJson* v = Field(body, name);
  if (v == nullptr) return std::nullopt;
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Invalid(name, "is too large");
    }
    return v->get<int64_t>();
  }
  if (v->is_number_float()) {  // 16.0 is an integer to JavaScript clients
    const double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::abs(d) < 9e15) return static_cast<int64_t>(d);
  }
  return Invalid(name, "must be an integer");
}

// An int32 proto field: values out of its range are errors, not wrapped.
absl::StatusOr<std::optional<int32_t>> Int32(const OpenAiJson& body, const char* name) {
  absl::StatusOr<std::optional<int64_t>> v = Integer(body, name);
  if (!v.ok()) return v.status();
  if (!v->has_value()) return std::nullopt;
  if (**v < std::numeric_limits<int32_t>::min() || **v > std::numeric_limits<int32_t>::max()) {
    return Invalid(name, absl::StrCat("must fit in 32 bits, got ", **v));
  }
  return static_cast<int32_t>(**v);
}

absl::StatusOr<std::optional<bool>> Bool(const OpenAiJson& body, const char* name) {
  const OpenAiJson* v = Field(body, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) return Invalid(name, "must be true or false");
  return v->get<bool>();
}

absl::StatusOr<std::optional<std::string>> String(const OpenAiJson& body, const char* name) {
  const OpenAiJson* v = Field(body, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) return Invalid(name, "must be a string");
  return v->get<std::string>();
}

// A token id: an integer in [0, 2^32), checked before narrowing (a JSON
// number past 32 bits must not wrap to another token).
absl::StatusOr<uint32_t> TokenId(const OpenAiJson& v, absl::string_view field) {
  if (v.is_number_unsigned()) {
    const uint64_t id = v.get<uint64_t>();
    if (id <= std::numeric_limits<uint32_t>::max()) return static_cast<uint32_t>(id);
    return Invalid(field, absl::StrCat("token id ", id, " is out of range [0, 4294967295]"));
  }
  if (v.is_number_integer()) {  // negative
    return Invalid(field, absl::StrCat("token id ", v.get<int64_t>(), " is out of range [0, 4294967295]"));
  }
  return Invalid(field, absl::StrCat("token ids must be integers, got a ", v.type_name()));
}

#define MOE_OPENAI_GET(type, var, body, name) \
  auto var##_or = type(body, name);           \
  if (!var##_or.ok()) return var##_or.status(); \
  const auto& var = *var##_or

// Fields both endpoints share: sampling, stop, n, stream, user, extensions.
absl::Status ParseCommon(const OpenAiJson& body, OpenAiRequest& out) {
  if (!body.is_object()) return Invalid("body", "must be a JSON object");
  MOE_OPENAI_GET(String, model, body, "model");
  if (!model.has_value() || model->empty()) return Invalid("model", "is required");
  out.model = *model;

  moe::v1::GenerateRequest& r = out.request;
  moe::v1::SamplingParams& s = *r.mutable_sampling();
  MOE_OPENAI_GET(Number, temperature, body, "temperature");
  if (temperature) s.set_temperature(static_cast<float>(*temperature));
  MOE_OPENAI_GET(Number, top_p, body, "top_p");
  if (top_p) s.set_top_p(static_cast<float>(*top_p));
  MOE_OPENAI_GET(Int32, top_k, body, "top_k");
  if (top_k) s.set_top_k(*top_k == -1 ? 0 : *top_k);  // vLLM: -1 = off
  MOE_OPENAI_GET(Number, min_p, body, "min_p");
  if (min_p) s.set_min_p(static_cast<float>(*min_p));
  MOE_OPENAI_GET(Number, typical_p, body, "typical_p");
  if (typical_p) s.set_typical_p(static_cast<float>(*typical_p));
  MOE_OPENAI_GET(Number, repetition_penalty, body, "repetition_penalty");
  if (repetition_penalty) s.set_repetition_penalty(static_cast<float>(*repetition_penalty));
  MOE_OPENAI_GET(Number, presence_penalty, body, "presence_penalty");
  if (presence_penalty) s.set_presence_penalty(static_cast<float>(*presence_penalty));
  MOE_OPENAI_GET(Number, frequency_penalty, body, "frequency_penalty");
  if (frequency_penalty) s.set_frequency_penalty(static_cast<float>(*frequency_penalty));
  MOE_OPENAI_GET(Integer, seed, body, "seed");
  if (seed) {
    if (*seed < 0) return Invalid("seed", absl::StrCat("must be >= 0, got ", *seed));
    s.set_seed(static_cast<uint64_t>(*seed));
  }
  // Structured output: OpenAI's response_format, and vLLM's guided_* fields.
  int constraints = 0;
  moe::v1::Constraint& c = *r.mutable_constraint();
  if (const OpenAiJson* format = Field(body, "response_format")) {
    const OpenAiJson* type = format->is_object() ? Field(*format, "type") : nullptr;
    if (type == nullptr || !type->is_string()) return Invalid("response_format.type", "is required (a string)");
    if (*type == "json_object") {
      c.set_json_object(true);
      ++constraints;
    } else if (*type == "json_schema") {
      const OpenAiJson* js = Field(*format, "json_schema");
      if (js == nullptr || !js->is_object()) return Invalid("response_format.json_schema", "is required (an object)");
      const OpenAiJson* schema = Field(*js, "schema");
      if (schema == nullptr) return Invalid("response_format.json_schema.schema", "is required");
      if (!schema->is_object() && !schema->is_boolean()) {
        return Invalid("response_format.json_schema.schema", "must be a JSON Schema (an object or a boolean)");
      }
      if (const OpenAiJson* name = Field(*js, "name")) {
        if (!name->is_string() || name->get<std::string>().empty() || name->get<std::string>().size() > 64) {
          return Invalid("response_format.json_schema.name", "must be a string of 1 to 64 characters");
        }
      }
      if (const OpenAiJson* strict = Field(*js, "strict")) {
        if (!strict->is_boolean()) return Invalid("response_format.json_schema.strict", "must be a boolean");
      }
      c.set_json_schema(schema->dump());
      ++constraints;
    } else if (*type != "text") {
      return Invalid("response_format.type", "must be \"text\", \"json_object\" or \"json_schema\"");
    }
  }
  if (const OpenAiJson* regex = Field(body, "guided_regex")) {
    if (!regex->is_string()) return Invalid("guided_regex", "must be a string");
    c.set_regex(regex->get<std::string>());
    ++constraints;
  }
  if (const OpenAiJson* choice = Field(body, "guided_choice")) {
    if (!choice->is_array()) return Invalid("guided_choice", "must be a list of strings");
    for (size_t i = 0; i < choice->size(); ++i) {
      if (!(*choice)[i].is_string()) return Invalid(absl::StrCat("guided_choice[", i, "]"), "must be a string");
      c.mutable_choice()->add_options((*choice)[i].get<std::string>());
    }
    ++constraints;
  }
  if (const OpenAiJson* grammar = Field(body, "guided_grammar")) {
    if (!grammar->is_string()) return Invalid("guided_grammar", "must be a string");
    c.set_grammar(grammar->get<std::string>());
    ++constraints;
  }
  if (constraints > 1) {
    return Invalid("response_format",
                   "give at most one of response_format (json), guided_regex, guided_choice and guided_grammar");
  }
  MOE_OPENAI_GET(Int32, max_whitespace, body, "guided_max_whitespace");
  if (max_whitespace) {
    if (!c.has_json_schema() && !c.has_json_object()) {
      return Invalid("guided_max_whitespace", "applies to response_format json_object or json_schema only");
    }
    if (*max_whitespace < 0 || *max_whitespace > 128) {
      return Invalid("guided_max_whitespace", absl::StrCat("must be 0 to 128, got ", *max_whitespace));
    }
    c.set_max_whitespace(*max_whitespace);
  }
  if (constraints == 0) r.clear_constraint();
  MOE_OPENAI_GET(Bool, ignore_eos, body, "ignore_eos");
  if (ignore_eos) s.set_ignore_eos(*ignore_eos);
  MOE_OPENAI_GET(Int32, min_tokens, body, "min_tokens");
  if (min_tokens) s.set_min_tokens(*min_tokens);
  if (const OpenAiJson* bias = Field(body, "logit_bias")) {
    if (!bias->is_object()) return Invalid("logit_bias", "must be an object mapping token ids to biases");
    for (const auto& [key, value] : bias->items()) {
      uint64_t id = 0;  // wider than a token id, so that 2^32 is out of range rather than unparsable
      if (key.empty() || key[0] == '-' || key[0] == '+' || !absl::SimpleAtoi(key, &id)) {
        return Invalid("logit_bias", absl::StrCat("key '", key, "' is not a token id"));
      }
      if (id > std::numeric_limits<uint32_t>::max()) {
        return Invalid("logit_bias", absl::StrCat("token id ", key, " is out of range [0, 4294967295]"));
      }
      if (!value.is_number()) return Invalid("logit_bias", absl::StrCat("bias of token ", key, " must be a number"));
      // Checked here as well as in PrepareRequest: a double past float's
      // range would reach it as inf.
      const double bias = value.get<double>();
      if (!(bias >= -100 && bias <= 100)) {
        return Invalid("logit_bias", absl::StrCat("bias of token ", key, " must be in [-100, 100], got ", bias));
      }
      (*s.mutable_logit_bias())[static_cast<uint32_t>(id)] = static_cast<float>(bias);
    }
  }

  MOE_OPENAI_GET(Int32, n, body, "n");
  if (n) r.set_n(*n);
  if (const OpenAiJson* stop = Field(body, "stop")) {
    if (stop->is_string()) {
      r.add_stop(stop->get<std::string>());
    } else if (stop->is_array()) {
      for (const OpenAiJson& one : *stop) {
        if (!one.is_string()) return Invalid("stop", "must be a string or a list of strings");
        r.add_stop(one.get<std::string>());
      }
    } else {
      return Invalid("stop", "must be a string or a list of strings");
    }
  }
  if (const OpenAiJson* ids = Field(body, "stop_token_ids")) {
    if (!ids->is_array()) return Invalid("stop_token_ids", "must be a list of token ids");
    for (const OpenAiJson& id : *ids) {
      ASSIGN_OR_RETURN(const uint32_t value, TokenId(id, "stop_token_ids"));
      r.add_stop_token_ids(value);
    }
  }
  MOE_OPENAI_GET(Bool, skip_special_tokens, body, "skip_special_tokens");
  if (skip_special_tokens) r.set_skip_special_tokens(*skip_special_tokens);

  MOE_OPENAI_GET(Bool, stream, body, "stream");
  out.stream = stream.value_or(false);
  if (const OpenAiJson* so = Field(body, "stream_options")) {
    if (!so->is_object()) return Invalid("stream_options", "must be an object");
    if (!out.stream) return Invalid("stream_options", "is only allowed when stream is true");
    MOE_OPENAI_GET(Bool, include_usage, *so, "include_usage");
    out.include_usage = include_usage.value_or(false);
  }
  MOE_OPENAI_GET(String, user, body, "user");
  out.user = user.value_or("");
  return absl::OkStatus();
}

// A list of integers (a token-id prompt, whatever the ranges).
bool IsIntegerList(const OpenAiJson& v) {
  if (!v.is_array() || v.empty()) return false;
  for (const OpenAiJson& x : v) {
    if (!x.is_number_integer()) return false;
  }
  return true;
}

// Iterative: `prompt` may be a list holding one list holding ... (depth is
// bounded by the parser, but there is no need to recurse at all).
absl::Status SetPrompt(const OpenAiJson* prompt, moe::v1::GenerateRequest& r) {
  while (prompt->is_array() && prompt->size() == 1 && ((*prompt)[0].is_array() || (*prompt)[0].is_string())) {
    prompt = &(*prompt)[0];
  }
  if (prompt->is_string()) {
    r.set_text(prompt->get<std::string>());
    return absl::OkStatus();
  }
  if (IsIntegerList(*prompt)) {
    for (const OpenAiJson& id : *prompt) {
      ASSIGN_OR_RETURN(const uint32_t value, TokenId(id, "prompt"));
      r.mutable_token_ids()->add_ids(value);
    }
    return absl::OkStatus();
  }
  if (prompt->is_array() && prompt->size() > 1 && ((*prompt)[0].is_string() || (*prompt)[0].is_array())) {
    return Invalid("prompt", "several prompts in one request are not supported; send one request per prompt");
  }
  return Invalid("prompt", "must be a string, a list of token ids, or a list holding one of those");
}

}  // namespace

absl::StatusOr<OpenAiJson> ParseOpenAiBody(absl::string_view body) {
  return ParseBoundedJson<OpenAiJson>(body, kRequestJsonLimits, "body");
}

absl::StatusOr<OpenAiRequest> ParseCompletionRequest(const OpenAiJson& body) {
  OpenAiRequest out;
  out.endpoint = OpenAiEndpoint::kCompletions;
  if (absl::Status s = ParseCommon(body, out); !s.ok()) return s;
  moe::v1::GenerateRequest& r = out.request;
  const OpenAiJson* prompt = Field(body, "prompt");
  if (prompt == nullptr) return Invalid("prompt", "is required");
  if (absl::Status s = SetPrompt(prompt, r); !s.ok()) return s;
  // As vLLM: the tokenizer's special tokens (BOS) are added, and special
  // tokens written in the prompt are recognised.
  MOE_OPENAI_GET(Bool, add_special_tokens, body, "add_special_tokens");
  r.set_add_special_tokens(add_special_tokens.value_or(true));
  r.set_allow_special_tokens(true);

  MOE_OPENAI_GET(Int32, max_tokens, body, "max_tokens");
  r.set_max_tokens(max_tokens.value_or(16));  // the OpenAI default for completions
  MOE_OPENAI_GET(Int32, best_of, body, "best_of");
  if (best_of) r.set_best_of(*best_of);
  MOE_OPENAI_GET(Int32, logprobs, body, "logprobs");
  if (logprobs) {
    if (*logprobs < 0 || *logprobs > 5) return Invalid("logprobs", absl::StrCat("must be in [0, 5], got ", *logprobs));
    out.logprobs = true;
    out.top_logprobs = *logprobs;
    r.mutable_sampling()->set_logprobs(*logprobs);
  }
  MOE_OPENAI_GET(Bool, echo, body, "echo");
  if (echo.value_or(false)) return Invalid("echo", "is not supported");
  MOE_OPENAI_GET(String, suffix, body, "suffix");
  if (suffix && !suffix->empty()) return Invalid("suffix", "is not supported");
  return out;
}

absl::StatusOr<OpenAiRequest> ParseChatRequest(const OpenAiJson& body,
                                               const absl::StatusOr<chat::ChatTemplate>& chat_template) {
  OpenAiRequest out;
  out.endpoint = OpenAiEndpoint::kChatCompletions;
  if (absl::Status s = ParseCommon(body, out); !s.ok()) return s;
  moe::v1::GenerateRequest& r = out.request;

  // max_completion_tokens replaces the deprecated max_tokens; both accepted.
  MOE_OPENAI_GET(Int32, max_completion_tokens, body, "max_completion_tokens");
  MOE_OPENAI_GET(Int32, max_tokens, body, "max_tokens");
  if (max_completion_tokens) {
    r.set_max_tokens(*max_completion_tokens);
    out.max_tokens_param = "max_completion_tokens";
  } else if (max_tokens) {
    r.set_max_tokens(*max_tokens);
  }  // else: up to the context limit
  MOE_OPENAI_GET(Bool, logprobs, body, "logprobs");
  MOE_OPENAI_GET(Int32, top_logprobs, body, "top_logprobs");
  out.logprobs = logprobs.value_or(false);
  if (top_logprobs) {
    if (!out.logprobs) return Invalid("top_logprobs", "requires logprobs: true");
    if (*top_logprobs < 0 || *top_logprobs > 20) {
      return Invalid("top_logprobs", absl::StrCat("must be in [0, 20], got ", *top_logprobs));
    }
    out.top_logprobs = *top_logprobs;
  }
  if (out.logprobs) r.mutable_sampling()->set_logprobs(out.top_logprobs);
  if (const OpenAiJson* choice = Field(body, "tool_choice")) {
    if (!(choice->is_string() && (*choice == "none" || *choice == "auto"))) {
      return Invalid("tool_choice", "only \"none\" and \"auto\" are supported");
    }
  }

  // Messages: text content only; content parts are joined with newlines
  // (as vLLM does); other keys (name, tool_calls, ...) reach the template.
  const OpenAiJson* messages = Field(body, "messages");
  if (messages == nullptr) return Invalid("messages", "is required");
  if (!messages->is_array() || messages->empty()) return Invalid("messages", "must be a non-empty list");
  chat::Json rendered_messages = chat::Json::array();
  for (size_t i = 0; i < messages->size(); ++i) {
    const OpenAiJson& m = (*messages)[i];
    const std::string where = absl::StrCat("messages[", i, "]");
    if (!m.is_object()) return Invalid(where, "must be an object");
    const OpenAiJson* role = Field(m, "role");
    if (role == nullptr || !role->is_string()) return Invalid(where + ".role", "must be a string");
    chat::Json copy = m;
    if (const OpenAiJson* content = Field(m, "content"); content != nullptr && !content->is_string()) {
      if (!content->is_array()) return Invalid(where + ".content", "must be a string or a list of content parts");
      std::string text;
      for (const OpenAiJson& part : *content) {
        const OpenAiJson* type = part.is_object() ? Field(part, "type") : nullptr;
        const OpenAiJson* part_text = part.is_object() ? Field(part, "text") : nullptr;
        if (type == nullptr || *type != "text" || part_text == nullptr || !part_text->is_string()) {
          return Invalid(where + ".content", "only text parts ({\"type\": \"text\", \"text\": ...}) are supported");
        }
        if (!text.empty()) text += "\n";
        text += part_text->get<std::string>();
      }
      copy["content"] = text;
    }
    rendered_messages.push_back(std::move(copy));
  }

  if (!chat_template.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("this model has no usable chat template (", chat_template.status().message(),
                     "); use /v1/completions"));
  }
  chat::RenderOptions ro;
  MOE_OPENAI_GET(Bool, add_generation_prompt, body, "add_generation_prompt");
  ro.add_generation_prompt = add_generation_prompt.value_or(true);
  if (const OpenAiJson* tools = Field(body, "tools")) {
    if (!tools->is_array()) return Invalid("tools", "must be a list");
    ro.tools = *tools;
  }
  if (const OpenAiJson* kwargs = Field(body, "chat_template_kwargs")) {
    if (!kwargs->is_object()) return Invalid("chat_template_kwargs", "must be an object");
    ro.extra_variables = *kwargs;
  }
  absl::StatusOr<std::string> prompt = chat_template->Render(rendered_messages, ro);
  if (!prompt.ok()) return Invalid("messages", prompt.status().message());
  r.set_text(std::move(*prompt));
  r.set_add_special_tokens(false);  // the template wrote them
  r.set_allow_special_tokens(true);
  return out;
}

std::string ToOpenAiParam(absl::string_view field, const OpenAiRequest& request) {
  const bool chat = request.endpoint == OpenAiEndpoint::kChatCompletions;
  if (field == "text" || field == "token_ids" || field == "prompt") return chat ? "messages" : "prompt";
  if (field == "max_tokens") return request.max_tokens_param;
  if (field == "logprobs" && chat) return "top_logprobs";
  return std::string(field);
}

}  // namespace moe
