// Global functions (raise_exception, namespace, range, dict, strftime_now)
// and the methods of str, dict, list and loop.
#include <algorithm>
#include <ctime>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "gateway/chat_template/builtins.h"
#include "gateway/chat_template/call_args.h"
#include "gateway/chat_template/py_string.h"
#include "gateway/chat_template/value_ops.h"

namespace moe::chat {
namespace {

// Jinja's sandbox refuses larger ranges (MAX_RANGE).
constexpr int64_t kMaxRange = 100000;

constexpr absl::string_view kFunctions[] = {"raise_exception", "namespace", "range", "dict", "strftime_now"};

constexpr absl::string_view kMethods[] = {
    // str
    "startswith", "endswith", "split", "rsplit", "strip", "lstrip", "rstrip", "upper", "lower", "title", "capitalize",
    "replace", "find", "rfind", "count", "join", "splitlines", "isdigit", "isalpha", "isalnum", "isspace", "isupper",
    "islower",
    // dict
    "items", "keys", "values", "get",
    // list ("count" above)
    "index",
    // loop
    "cycle"};

absl::StatusOr<Value> StringList(const std::vector<std::string>& parts) {
  Json out = Json::array();
  for (const auto& p : parts) out.push_back(p);
  return Value::Data(std::move(out));
}

// startswith / endswith: a prefix or a tuple (list) of them.
absl::StatusOr<Value> AffixMethod(const std::string& name, const std::string& s, const CallArgs& args) {
  ASSIGN_OR_RETURN(auto b, BindArgs(name, args, {"prefix"}, 1));
  std::vector<std::string> affixes;
  if (b[0]->is_string()) {
    affixes.push_back(b[0]->str());
  } else if (b[0]->is_list()) {
    for (const Json& j : b[0]->data()) {
      if (!j.is_string()) return TypeError(absl::StrCat(name, "(): tuple items must be strings"));
      affixes.push_back(j.get<std::string>());
    }
  } else {
    return TypeError(absl::StrCat(name, " first arg must be str or a tuple of str, not ", b[0]->TypeName()));
  }
  for (const auto& a : affixes) {
    const bool hit = name == "startswith" ? s.compare(0, a.size(), a) == 0 && s.size() >= a.size()
                                          : s.size() >= a.size() && s.compare(s.size() - a.size(), a.size(), a) == 0;
    if (hit) return Value::Bool(true);
  }
  return Value::Bool(false);
}

template <typename Pred>
Value CharClass(const std::string& s, Pred pred) {
  if (s.empty()) return Value::Bool(false);
  for (size_t pos = 0; pos < s.size();) {
    if (!pred(py::DecodeAt(s, &pos))) return Value::Bool(false);
  }
  return Value::Bool(true);
}

absl::StatusOr<Value> StringMethod(const std::string& name, const std::string& s, const CallArgs& args) {
  if (name == "startswith" || name == "endswith") return AffixMethod(name, s, args);
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    ASSIGN_OR_RETURN(auto b, BindArgs(name, args, {"chars"}, 0));
    ASSIGN_OR_RETURN(auto chars, StrParam(name, b[0]));
    return Value::Str(py::Strip(s, chars, name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    ASSIGN_OR_RETURN(auto b, BindArgs(name, args, {"sep", "maxsplit"}, 0));
    ASSIGN_OR_RETURN(auto sep, StrParam(name, b[0]));
    ASSIGN_OR_RETURN(auto maxsplit, IntParam(name, b[1], -1));
    if (sep && sep->empty()) return absl::InvalidArgumentError("empty separator");
    return StringList(name == "split" ? py::Split(s, sep, maxsplit) : py::RSplit(s, sep, maxsplit));
  }
  if (name == "replace") {
    ASSIGN_OR_RETURN(auto b, BindArgs(name, args, {"old", "new", "count"}, 2));
    ASSIGN_OR_RETURN(auto old_text, StrParam(name, b[0]));
    ASSIGN_OR_RETURN(auto new_text, StrParam(name, b[1]));
    ASSIGN_OR_RETURN(auto count, IntParam(name, b[2], -1));
    if (!old_text || !new_text) return TypeError("replace() arguments must be strings");
    return Value::Str(py::Replace(s, *old_text, *new_text, count));
  }
  if (name == "find" || name == "rfind" || name == "count") {
    ASSIGN_OR_RETURN(auto b, BindArgs(name, args, {"sub"}, 1));
    ASSIGN_OR_RETURN(auto sub, StrParam(name, b[0]));
    if (!sub) return TypeError(absl::StrCat(name, "() argument must be str"));
    return Value::Int(name == "count" ? py::Count(s, *sub) : py::Find(s, *sub, /*from_right=*/name == "rfind"));
  }
  if (name == "join") {
    ASSIGN_OR_RETURN(auto b, BindArgs(name, args, {"iterable"}, 1));
    ASSIGN_OR_RETURN(auto items, Iterate(*b[0]));
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_string()) {
        return TypeError(absl::StrCat("sequence item ", i, ": expected str instance, ", items[i].TypeName(), " found"));
      }
      if (i) out += s;
      out += items[i].str();
    }
    return Value::Str(std::move(out));
  }
  if (name == "splitlines") {
    ASSIGN_OR_RETURN(auto b, BindArgs(name, args, {"keepends"}, 0));
    return StringList(SplitLines(s, BoolParam(b[0], false)));
  }
  if (!args.positional.empty() || !args.keyword.empty()) return TypeError(absl::StrCat(name, "() takes no arguments"));
  if (name == "upper") return Value::Str(py::Upper(s));
  if (name == "lower") return Value::Str(py::Lower(s));
  if (name == "title") return Value::Str(py::Title(s));
  if (name == "capitalize") return Value::Str(py::Capitalize(s));
  if (name == "isdigit") return CharClass(s, [](char32_t c) { return c >= '0' && c <= '9'; });
  if (name == "isalpha")
    return CharClass(s, [](char32_t c) { return c < 0x80 && absl::ascii_isalpha(static_cast<unsigned char>(c)); });
  if (name == "isalnum")
    return CharClass(s, [](char32_t c) { return c < 0x80 && absl::ascii_isalnum(static_cast<unsigned char>(c)); });
  if (name == "isspace") return CharClass(s, py::IsSpace);
  if (name == "isupper" || name == "islower") {
    const std::string mapped = name == "isupper" ? py::Lower(s) : py::Upper(s);
    const std::string same = name == "isupper" ? py::Upper(s) : py::Lower(s);
    return Value::Bool(same == s && mapped != s);
  }
  return absl::InvalidArgumentError(absl::StrCat("'str object' has no attribute '", name, "'"));
}

absl::StatusOr<Value> DictMethod(const std::string& name, const Value& self, const CallArgs& args) {
  if (name == "get") {
    ASSIGN_OR_RETURN(auto b, BindArgs(name, args, {"key", "default"}, 1));
    if (b[0]->is_string()) {
      const auto it = self.data().find(b[0]->str());
      if (it != self.data().end()) return Value::DataRef(self.data_owner(), &*it);
    }
    return b[1].value_or(Value::None());
  }
  if (!args.positional.empty() || !args.keyword.empty()) return TypeError(absl::StrCat(name, "() takes no arguments"));
  Json out = Json::array();
  for (const auto& [k, v] : self.data().items()) {
    if (name == "keys") {
      out.push_back(k);
    } else if (name == "values") {
      out.push_back(v);
    } else if (name == "items") {
      out.push_back(Json::array({k, v}));
    } else {
      return absl::InvalidArgumentError(absl::StrCat("'dict object' has no attribute '", name, "'"));
    }
  }
  return Value::Data(std::move(out));
}

absl::StatusOr<Value> ListMethod(const std::string& name, const Value& self, const CallArgs& args) {
  ASSIGN_OR_RETURN(auto b, BindArgs(name, args, {"value"}, 1));
  int64_t count = 0;
  for (size_t i = 0; i < self.data().size(); ++i) {
    if (!PyEquals(self.Element(i), *b[0])) continue;
    if (name == "index") return Value::Int(static_cast<int64_t>(i));
    ++count;
  }
  if (name == "index") return absl::InvalidArgumentError(absl::StrCat(PyRepr(*b[0]), " is not in list"));
  return Value::Int(count);
}

absl::StatusOr<Value> Range(const CallArgs& args) {
  if (!args.keyword.empty()) return TypeError("range() takes no keyword arguments");
  if (args.positional.empty() || args.positional.size() > 3) return TypeError("range expected 1 to 3 arguments");
  std::vector<int64_t> p;
  for (const Value& v : args.positional) {
    if (!v.is_int() && !v.is_bool()) {
      if (v.is_undefined()) return UndefinedError(v);
      return TypeError(absl::StrCat("'", v.TypeName(), "' object cannot be interpreted as an integer"));
    }
    p.push_back(v.int_value());
  }
  const int64_t start = p.size() == 1 ? 0 : p[0];
  const int64_t stop = p.size() == 1 ? p[0] : p[1];
  const int64_t step = p.size() == 3 ? p[2] : 1;
  if (step == 0) return absl::InvalidArgumentError("range() arg 3 must not be zero");
  Json out = Json::array();
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (static_cast<int64_t>(out.size()) >= kMaxRange) {
      return absl::InvalidArgumentError("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    }
    out.push_back(i);
  }
  return Value::Data(std::move(out));
}

absl::StatusOr<Value> GlobalFunction(const std::string& name, const CallArgs& args) {
  if (name == "raise_exception") {
    ASSIGN_OR_RETURN(auto b, BindArgs(name, args, {"message"}, 1));
    return absl::InvalidArgumentError(absl::StrCat(kRaisedPrefix, PyStr(*b[0])));
  }
  if (name == "range") return Range(args);
  if (name == "strftime_now") {
    ASSIGN_OR_RETURN(auto b, BindArgs(name, args, {"format"}, 1));
    ASSIGN_OR_RETURN(auto format, StrParam(name, b[0]));
    if (!format) return TypeError("strftime_now() argument must be str");
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buf[512];
    const size_t n = std::strftime(buf, sizeof(buf), format->c_str(), &local);
    return Value::Str(std::string(buf, n));
  }
  // namespace(...) and dict(...): an optional mapping, then keywords.
  if (args.positional.size() > 1) return TypeError(absl::StrCat(name, "() takes at most 1 positional argument"));
  std::vector<std::pair<std::string, Value>> attributes;
  if (!args.positional.empty()) {
    const Value& init = args.positional[0];
    if (!init.is_dict()) return TypeError(absl::StrCat(name, "(): the positional argument must be a mapping"));
    for (const auto& [k, v] : init.data().items()) attributes.emplace_back(k, Value::Data(v));
  }
  for (const auto& [k, v] : args.keyword) {
    const auto& name = k;  // clang 14 (the fuzzers) cannot capture a structured binding
    auto it = std::find_if(attributes.begin(), attributes.end(), [&](const auto& a) { return a.first == name; });
    if (it != attributes.end()) {
      it->second = v;
    } else {
      attributes.emplace_back(k, v);
    }
  }
  if (name == "namespace") {
    auto ns = std::make_shared<Namespace>();
    ns->attributes = std::move(attributes);
    return Value::MakeNamespace(std::move(ns));
  }
  Json out = Json::object();
  for (const auto& [k, v] : attributes) {
    ASSIGN_OR_RETURN(auto j, ToJson(v, "a dict"));
    out[k] = std::move(j);
  }
  return Value::Data(std::move(out));
}

}  // namespace

bool IsKnownFunction(absl::string_view name) {
  return std::find(std::begin(kFunctions), std::end(kFunctions), name) != std::end(kFunctions);
}

bool IsKnownMethod(absl::string_view name) {
  return std::find(std::begin(kMethods), std::end(kMethods), name) != std::end(kMethods);
}

absl::StatusOr<Value> CallFunction(const Value& callee, const CallArgs& args) {
  if (callee.is_undefined()) return UndefinedError(callee);
  if (callee.kind() != Value::Kind::kCallable) {
    return TypeError(absl::StrCat("'", callee.TypeName(), "' object is not callable"));
  }
  const std::string& name = callee.callable_name();
  const Value& self = callee.callable_self();
  if (self.is_undefined()) return GlobalFunction(name, args);
  if (IsKnownMethod(name)) {
    if (self.is_string()) return StringMethod(name, self.str(), args);
    if (self.is_dict()) return DictMethod(name, self, args);
    if (self.is_list()) return ListMethod(name, self, args);
    if (self.kind() == Value::Kind::kLoop && name == "cycle") {
      if (args.positional.empty()) return TypeError("no items for cycling given");
      const auto n = static_cast<int64_t>(args.positional.size());
      return args.positional[static_cast<size_t>(self.loop()->index0 % n)];
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("'", self.TypeName(), " object' has no method '", name, "'"));
}

}  // namespace moe::chat
