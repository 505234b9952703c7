// Lexer for the Jinja2 subset of chat templates, with the environment that
// Hugging Face transformers renders them in: trim_blocks=True,
// lstrip_blocks=True, keep_trailing_newline=False, default delimiters.
//
// Whitespace control is resolved here, as Jinja's own lexer does: `{%-` /
// `{{-` / `{#-` strip the whitespace before the tag, `-%}` / `-}}` / `-#}` the
// whitespace after it, a block or comment tag eats the one newline after it
// (trim_blocks) and the spaces before it on its line (lstrip_blocks), `+`
// turns either off. Comments disappear; `{% raw %}` bodies become text.
#ifndef MOE_GATEWAY_CHAT_TEMPLATE_LEXER_H_
#define MOE_GATEWAY_CHAT_TEMPLATE_LEXER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace moe::chat {

enum class TokenType {
  kData,           // template text, already whitespace-controlled
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kName,
  kString,  // value: the unescaped text
  kInteger,
  kFloat,
  kOperator,  // value: the operator text ("==", "(", "|", ...)
  kEof,
};

struct Token {
  TokenType type = TokenType::kEof;
  std::string value;
  int line = 1;
  int64_t int_value = 0;
  double float_value = 0.0;
};

// Splits `source` into tokens. Errors (unterminated tags, comments or
// strings, unexpected characters, unbalanced brackets) name the line.
absl::StatusOr<std::vector<Token>> Tokenize(std::string_view source);

// Human name of a token for error messages: "'foo'", "end of template", ...
std::string DescribeToken(const Token& token);

}  // namespace moe::chat

#endif  // MOE_GATEWAY_CHAT_TEMPLATE_LEXER_H_
