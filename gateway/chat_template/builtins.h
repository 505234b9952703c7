// The filters, tests, global functions and methods a chat template may use,
// with Jinja2 / Python semantics. The parser checks names against these
// tables, so a template that needs anything else fails at compile time.
//
// Globals: raise_exception(msg) (transformers' global: fails the render with
// `msg`), namespace(...), range(...), dict(...), strftime_now(fmt)
// (transformers' global: local time, strftime format).
// Filters: abs, capitalize, count, d, default, e, escape, first, float,
// indent, int, items, join, last, length, list, lower, map, reject,
// rejectattr, replace, reverse, round, safe, select, selectattr, sort, string,
// title, tojson (transformers' version: json.dumps with ensure_ascii=False,
// optional indent / separators / sort_keys), trim, unique, upper.
// Tests: boolean, callable, defined, divisibleby, eq, equalto, escaped, even,
// false, float, ge, gt, in, integer, iterable, le, lower, lt, mapping, ne,
// none, number, odd, sameas, sequence, string, true, undefined, upper, and
// the operator spellings (==, !=, <, <=, >, >=, greaterthan, lessthan).
// Methods: str (startswith, endswith, split, rsplit, strip, lstrip, rstrip,
// upper, lower, title, capitalize, replace, find, rfind, count, join,
// splitlines, isdigit, isalpha, isalnum, isspace, isupper, islower), dict
// (items, keys, values, get), list (count, index), loop.cycle.
#ifndef MOE_GATEWAY_CHAT_TEMPLATE_BUILTINS_H_
#define MOE_GATEWAY_CHAT_TEMPLATE_BUILTINS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/chat_template/value.h"

namespace moe::chat {

bool IsKnownFilter(absl::string_view name);
bool IsKnownTest(absl::string_view name);
bool IsKnownFunction(absl::string_view name);
bool IsKnownMethod(absl::string_view name);

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// Evaluates filter `name` on `input`.
absl::StatusOr<Value> ApplyFilter(absl::string_view name, const Value& input, const CallArgs& args);
// Evaluates test `name` on `input`.
absl::StatusOr<bool> ApplyTest(absl::string_view name, const Value& input, const CallArgs& args);
// Calls a callable Value (global function or bound method).
absl::StatusOr<Value> CallFunction(const Value& callee, const CallArgs& args);

// The message of a raise_exception() failure starts with this, so the
// renderer can tell it from other errors.
inline constexpr absl::string_view kRaisedPrefix = "raise_exception: ";

}  // namespace moe::chat

#endif  // MOE_GATEWAY_CHAT_TEMPLATE_BUILTINS_H_
