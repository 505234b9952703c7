#include "gateway/chat_template/call_args.h"

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gateway/chat_template/py_string.h"
#include "gateway/chat_template/value_ops.h"

namespace moe::chat {

absl::StatusOr<Bound> BindArgs(absl::string_view fn, const CallArgs& args,
                               std::initializer_list<absl::string_view> params, size_t required) {
  Bound out(params.size());
  if (args.positional.size() > params.size()) {
    return TypeError(absl::StrCat(fn, "() takes at most ", params.size(), " argument", params.size() == 1 ? "" : "s",
                                  " (", args.positional.size(), " given)"));
  }
  for (size_t i = 0; i < args.positional.size(); ++i) out[i] = args.positional[i];
  for (const auto& [key, value] : args.keyword) {
    size_t i = 0;
    for (auto p : params) {
      if (p == key) break;
      ++i;
    }
    if (i == params.size()) return TypeError(absl::StrCat(fn, "() got an unexpected keyword argument '", key, "'"));
    if (out[i].has_value()) return TypeError(absl::StrCat(fn, "() got multiple values for argument '", key, "'"));
    out[i] = value;
  }
  size_t i = 0;
  for (auto p : params) {
    if (i < required && !out[i].has_value()) {
      return TypeError(absl::StrCat(fn, "() missing required argument '", p, "'"));
    }
    ++i;
  }
  return out;
}

absl::StatusOr<int64_t> IntParam(absl::string_view fn, const std::optional<Value>& v, int64_t dflt) {
  if (!v.has_value() || v->is_none()) return dflt;
  if (v->is_int() || v->is_bool()) return v->int_value();
  return TypeError(absl::StrCat(fn, "(): expected an integer argument, got '", v->TypeName(), "'"));
}

absl::StatusOr<std::optional<std::string>> StrParam(absl::string_view fn, const std::optional<Value>& v) {
  if (!v.has_value() || v->is_none()) return std::optional<std::string>();
  if (v->is_string()) return std::optional<std::string>(v->str());
  if (v->is_undefined()) return UndefinedError(*v);
  return TypeError(absl::StrCat(fn, "(): expected a string argument, got '", v->TypeName(), "'"));
}

bool BoolParam(const std::optional<Value>& v, bool dflt) { return v.has_value() ? Truthy(*v) : dflt; }

std::vector<std::string> SplitLines(std::string_view s, bool keepends) {
  std::vector<std::string> out;
  size_t start = 0;
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t here = pos;
    const char32_t c = py::DecodeAt(s, &pos);
    const bool is_break = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
                          c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!is_break) continue;
    if (c == '\r' && pos < s.size() && s[pos] == '\n') ++pos;
    out.emplace_back(s.substr(start, (keepends ? pos : here) - start));
    start = pos;
  }
  if (start < s.size()) out.emplace_back(s.substr(start));
  return out;
}

absl::StatusOr<Value> GetAttributePath(const Value& item, absl::string_view path) {
  Value v = item;
  for (absl::string_view part : absl::StrSplit(absl::string_view(path.data(), path.size()), '.')) {
    int64_t index = 0;
    absl::StatusOr<Value> next =
        absl::SimpleAtoi(part, &index) ? GetItem(v, Value::Int(index)) : GetItem(v, Value::Str(std::string(part)));
    if (!next.ok()) return next.status();
    v = *std::move(next);
  }
  return v;
}

}  // namespace moe::chat
