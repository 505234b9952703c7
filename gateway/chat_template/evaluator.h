// Evaluator: runs a parsed template over a set of variables, with Jinja2's
// scoping (a `for` iteration is a scope; `if` is not; `set` binds in the
// innermost scope; namespaces are shared by reference).
//
// Stateless between calls and reads the tree only, so one tree may be
// rendered by several threads at once.
#ifndef MOE_GATEWAY_CHAT_TEMPLATE_EVALUATOR_H_
#define MOE_GATEWAY_CHAT_TEMPLATE_EVALUATOR_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/chat_template/ast.h"
#include "gateway/chat_template/value.h"

namespace moe::chat {

struct EvalLimits {
  // Statements and expressions evaluated, in all; stops runaway loops.
  int64_t max_steps = 50'000'000;
  // Bytes of output.
  size_t max_output_bytes = 64u << 20;
};

// Renders `body` with `variables` in the outermost scope. Errors:
// INVALID_ARGUMENT "line N: <message>", or the raise_exception() message
// prefixed with kRaisedPrefix (builtins.h).
absl::StatusOr<std::string> Evaluate(const Body& body, std::vector<std::pair<std::string, Value>> variables,
                                     const EvalLimits& limits);

}  // namespace moe::chat

#endif  // MOE_GATEWAY_CHAT_TEMPLATE_EVALUATOR_H_
