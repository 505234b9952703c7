// Python / Jinja2 operations on Values: attribute and item access (with the
// sandbox's rules), slicing, iteration, arithmetic, comparison and `in`.
// Errors are INVALID_ARGUMENT with the message Python or Jinja would give
// ("'x' is undefined", "can only concatenate str (not "int") to str").
#ifndef MOE_GATEWAY_CHAT_TEMPLATE_VALUE_OPS_H_
#define MOE_GATEWAY_CHAT_TEMPLATE_VALUE_OPS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/chat_template/value.h"

namespace moe::chat {

// The error for using an Undefined value in an operation.
absl::Status UndefinedError(const Value& v);
absl::Status TypeError(absl::string_view message);

// `obj.name` (Jinja's sandboxed getattr: attributes first, then items).
absl::StatusOr<Value> GetAttr(const Value& obj, const std::string& name);
// `obj[key]` (items first, then attributes).
absl::StatusOr<Value> GetItem(const Value& obj, const Value& key);
// `obj[start:stop:step]`; absent bounds are nullopt.
absl::StatusOr<Value> Slice(const Value& obj, const std::optional<Value>& start, const std::optional<Value>& stop,
                            const std::optional<Value>& step);
// The items a `for` loop visits: list elements, dict keys, string characters;
// nothing for Undefined.
absl::StatusOr<std::vector<Value>> Iterate(const Value& v);
// len(v); 0 for Undefined.
absl::StatusOr<int64_t> Length(const Value& v);

// `op` is one of + - * / // % ** ~.
absl::StatusOr<Value> BinaryOp(absl::string_view op, const Value& a, const Value& b);
absl::StatusOr<Value> Negate(const Value& v, bool negative);

bool PyEquals(const Value& a, const Value& b);
// a < b, as Python orders numbers, strings and lists.
absl::StatusOr<bool> PyLess(const Value& a, const Value& b);
// `op` is one of == != < <= > >= in, "not in".
absl::StatusOr<bool> Compare(absl::string_view op, const Value& a, const Value& b);
// `item in container`.
absl::StatusOr<bool> Contains(const Value& container, const Value& item);

// A list Value of `items` (data only; names `what` in the error otherwise).
absl::StatusOr<Value> MakeList(const std::vector<Value>& items, const char* what);

}  // namespace moe::chat

#endif  // MOE_GATEWAY_CHAT_TEMPLATE_VALUE_OPS_H_
