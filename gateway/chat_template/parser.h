// Parser: tokens → syntax tree, for the Jinja2 subset chat templates use.
//
// Supported: text, {{ expr }}, {% if / elif / else %}, {% for a[, b] in x
// [if cond] %}...{% else %}, {% set x = ... %}, {% set ns.attr = ... %},
// {% set x %}...{% endset %}, {% break %} / {% continue %} (transformers loads
// jinja2.ext.loopcontrols), {% generation %} (transformers' AssistantTracker),
// {% raw %}; expressions with Jinja's precedence (conditional, or, and, not,
// comparisons incl. chained and `in` / `not in`, + -, ~, * / // %, **, unary,
// attribute / subscript / slice / call, filters, `is` tests), list / tuple /
// dict literals.
//
// Everything else fails here, at compile time, with the construct and its line:
// other tags (macro, call, include, import, extends, block, with, filter,
// do, ...), unknown filters, tests and functions, method names the
// evaluator does not implement, `*args` / `**kwargs`, and recursive loops.
#ifndef MOE_GATEWAY_CHAT_TEMPLATE_PARSER_H_
#define MOE_GATEWAY_CHAT_TEMPLATE_PARSER_H_

#include <vector>

#include "absl/status/statusor.h"
#include "gateway/chat_template/ast.h"
#include "gateway/chat_template/lexer.h"

namespace moe::chat {

absl::StatusOr<Body> Parse(std::vector<Token> tokens);

}  // namespace moe::chat

#endif  // MOE_GATEWAY_CHAT_TEMPLATE_PARSER_H_
