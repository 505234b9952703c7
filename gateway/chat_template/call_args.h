// Binding CallArgs to a Python-style parameter list, shared by the filters,
// tests, functions and methods in builtins.
#ifndef MOE_GATEWAY_CHAT_TEMPLATE_CALL_ARGS_H_
#define MOE_GATEWAY_CHAT_TEMPLATE_CALL_ARGS_H_

#include <initializer_list>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/chat_template/builtins.h"

namespace moe::chat {

using Bound = std::vector<std::optional<Value>>;

// Matches `args` to `params` (positional first, then by keyword); the first
// `required` params must be given. Errors name `fn`.
absl::StatusOr<Bound> BindArgs(absl::string_view fn, const CallArgs& args,
                               std::initializer_list<absl::string_view> params, size_t required);

// Parameter accessors with Python's type checks.
absl::StatusOr<int64_t> IntParam(absl::string_view fn, const std::optional<Value>& v, int64_t dflt);
absl::StatusOr<std::optional<std::string>> StrParam(absl::string_view fn, const std::optional<Value>& v);
bool BoolParam(const std::optional<Value>& v, bool dflt);

// str.splitlines().
std::vector<std::string> SplitLines(std::string_view s, bool keepends);

// Jinja's make_attrgetter: "a.b.0" looks up a, then b, then item 0.
absl::StatusOr<Value> GetAttributePath(const Value& item, absl::string_view path);

}  // namespace moe::chat

#endif  // MOE_GATEWAY_CHAT_TEMPLATE_CALL_ARGS_H_
