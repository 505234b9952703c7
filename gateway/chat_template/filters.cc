// Filters and tests (Jinja2 3.1 semantics; tojson as transformers overrides it).
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "gateway/chat_template/builtins.h"
#include "gateway/chat_template/call_args.h"
#include "gateway/chat_template/py_string.h"
#include "gateway/chat_template/value_ops.h"

namespace moe::chat {
namespace {

constexpr absl::string_view kFilters[] = {
    "abs",    "capitalize", "count",   "d",       "default", "e",      "escape", "first",      "float",
    "indent", "int",        "items",   "join",    "last",    "length", "list",   "lower",      "map",
    "reject", "rejectattr", "replace", "reverse", "round",   "safe",   "select", "selectattr", "sort",
    "string", "title",      "tojson",  "trim",    "unique",  "upper"};

constexpr absl::string_view kTests[] = {
    "boolean",  "callable", "defined", "divisibleby", "eq",      "equalto", "escaped",  "even",
    "false",    "float",    "ge",      "gt",          "in",      "integer", "iterable", "le",
    "lower",    "lt",       "mapping", "ne",          "none",    "number",  "odd",      "sameas",
    "sequence", "string",   "true",    "undefined",   "upper",   "==",      "!=",       "<",
    "<=",       ">",        ">=",      "greaterthan", "lessthan"};

absl::StatusOr<Value> ToJsonFilter(const Value& input, const CallArgs& args) {
  ASSIGN_OR_RETURN(auto b, BindArgs("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"}, 0));
  if (BoolParam(b[0], false)) return absl::InvalidArgumentError("tojson(ensure_ascii=True) is not supported");
  JsonDumpOptions o;
  if (b[1].has_value() && !b[1]->is_none()) {
    if (b[1]->is_string()) return absl::InvalidArgumentError("tojson: a string indent is not supported");
    ASSIGN_OR_RETURN(auto indent, IntParam("tojson", b[1], 0));
    o.indent = static_cast<int>(std::clamp<int64_t>(indent, 0, 64));
    o.item_separator = ",";
  }
  if (b[2].has_value() && !b[2]->is_none()) {
    const Value& s = *b[2];
    if (!s.is_list() || s.data().size() != 2 || !s.data()[0].is_string() || !s.data()[1].is_string()) {
      return TypeError("tojson: separators must be a pair of strings");
    }
    o.item_separator = s.data()[0].get<std::string>();
    o.key_separator = s.data()[1].get<std::string>();
  }
  o.sort_keys = BoolParam(b[3], false);
  ASSIGN_OR_RETURN(auto text, PyJsonDumps(input, o));
  return Value::Str(std::move(text));
}

// Items of `input` after an optional attribute lookup, for select/map/....
absl::StatusOr<std::vector<Value>> Items(const Value& input) { return Iterate(input); }

// select / reject / selectattr / rejectattr.
absl::StatusOr<Value> SelectFilter(absl::string_view name, const Value& input, const CallArgs& args) {
  const bool by_attr = name == "selectattr" || name == "rejectattr";
  const bool keep_when = name == "select" || name == "selectattr";
  size_t next = 0;
  std::string attribute;
  if (by_attr) {
    if (args.positional.empty() || !args.positional[0].is_string()) {
      return TypeError(absl::StrCat(name, "() needs an attribute name"));
    }
    attribute = args.positional[0].str();
    next = 1;
  }
  std::string test;
  CallArgs test_args;
  if (next < args.positional.size()) {
    if (!args.positional[next].is_string()) return TypeError(absl::StrCat(name, "(): the test name must be a string"));
    test = args.positional[next].str();
    if (!IsKnownTest(test)) return absl::InvalidArgumentError(absl::StrCat(name, "(): unknown test '", test, "'"));
    test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(next) + 1, args.positional.end());
  }
  if (!args.keyword.empty()) return TypeError(absl::StrCat(name, "() takes no keyword arguments"));
  ASSIGN_OR_RETURN(auto items, Items(input));
  std::vector<Value> kept;
  for (const Value& item : items) {
    Value subject = item;
    if (by_attr) {
      ASSIGN_OR_RETURN(auto attr, GetAttributePath(item, attribute));
      subject = std::move(attr);
    }
    bool pass = false;
    if (test.empty()) {
      pass = Truthy(subject);
    } else {
      ASSIGN_OR_RETURN(auto t, ApplyTest(test, subject, test_args));
      pass = t;
    }
    if (pass == keep_when) kept.push_back(item);
  }
  return MakeList(kept, "a filtered list");
}

absl::StatusOr<Value> MapFilter(const Value& input, const CallArgs& args) {
  ASSIGN_OR_RETURN(auto items, Items(input));
  std::vector<Value> out;
  for (const auto& [k, v] : args.keyword) {
    if (k != "attribute" && k != "default")
      return TypeError(absl::StrCat("map() got an unexpected keyword argument '", k, "'"));
  }
  const Value* attribute = nullptr;
  const Value* dflt = nullptr;
  for (const auto& [k, v] : args.keyword) (k == "attribute" ? attribute : dflt) = &v;
  if (attribute != nullptr) {
    if (!attribute->is_string()) return TypeError("map(): attribute must be a string");
    for (const Value& item : items) {
      ASSIGN_OR_RETURN(auto v, GetAttributePath(item, attribute->str()));
      out.push_back(v.is_undefined() && dflt != nullptr ? *dflt : v);
    }
    return MakeList(out, "a mapped list");
  }
  if (args.positional.empty() || !args.positional[0].is_string())
    return TypeError("map() needs a filter name or attribute=");
  const std::string filter = args.positional[0].str();
  if (!IsKnownFilter(filter)) return absl::InvalidArgumentError(absl::StrCat("map(): unknown filter '", filter, "'"));
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  for (const Value& item : items) {
    ASSIGN_OR_RETURN(auto v, ApplyFilter(filter, item, rest));
    out.push_back(std::move(v));
  }
  return MakeList(out, "a mapped list");
}

absl::StatusOr<Value> SortFilter(const Value& input, const CallArgs& args, bool unique) {
  ASSIGN_OR_RETURN(auto b, unique ? BindArgs("unique", args, {"case_sensitive", "attribute"}, 0)
                                  : BindArgs("sort", args, {"reverse", "case_sensitive", "attribute"}, 0));
  const size_t off = unique ? 0 : 1;
  const bool reverse = unique ? false : BoolParam(b[0], false);
  const bool case_sensitive = BoolParam(b[off], false);
  ASSIGN_OR_RETURN(auto attribute, StrParam(unique ? "unique" : "sort", b[off + 1]));
  ASSIGN_OR_RETURN(auto items, Items(input));
  std::vector<std::pair<Value, Value>> keyed;  // (key, item)
  for (const Value& item : items) {
    Value key = item;
    if (attribute) {
      ASSIGN_OR_RETURN(auto k, GetAttributePath(item, *attribute));
      key = std::move(k);
    }
    if (!case_sensitive && key.is_string()) key = Value::Str(py::Lower(key.str()));
    keyed.emplace_back(std::move(key), item);
  }
  std::vector<Value> out;
  if (unique) {
    std::vector<Value> seen;
    for (auto& [key, item] : keyed) {
      const Value& k = key;  // clang 14 (the fuzzers) cannot capture a structured binding
      if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return PyEquals(s, k); })) {
        seen.push_back(key);
        out.push_back(item);
      }
    }
    return MakeList(out, "a list");
  }
  absl::Status error;
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    auto less = reverse ? PyLess(y.first, x.first) : PyLess(x.first, y.first);
    if (!less.ok()) {
      error = less.status();
      return false;
    }
    return *less;
  });
  if (!error.ok()) return error;
  for (auto& [key, item] : keyed) out.push_back(item);
  return MakeList(out, "a sorted list");
}

absl::StatusOr<Value> IndentFilter(const Value& input, const CallArgs& args) {
  ASSIGN_OR_RETURN(auto b, BindArgs("indent", args, {"width", "first", "blank"}, 0));
  std::string indention;
  if (b[0].has_value() && b[0]->is_string()) {
    indention = b[0]->str();
  } else {
    ASSIGN_OR_RETURN(auto width, IntParam("indent", b[0], 4));
    indention.assign(static_cast<size_t>(std::clamp<int64_t>(width, 0, 1024)), ' ');
  }
  const std::string s = PyStr(input) + "\n";
  std::vector<std::string> lines = SplitLines(s, /*keepends=*/false);
  std::string rv;
  if (BoolParam(b[2], false)) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + indention : "") + lines[i];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? "" : indention) + lines[i];
  }
  if (BoolParam(b[1], false)) rv = indention + rv;
  return Value::Str(std::move(rv));
}

absl::StatusOr<Value> NumberFilter(absl::string_view name, const Value& input, const CallArgs& args) {
  if (name == "int") {
    ASSIGN_OR_RETURN(auto b, BindArgs("int", args, {"default", "base"}, 0));
    ASSIGN_OR_RETURN(auto base, IntParam("int", b[1], 10));
    const Value dflt = b[0].value_or(Value::Int(0));
    if (input.is_int() || input.is_bool()) return Value::Int(input.int_value());
    if (input.is_float())
      return std::isfinite(input.float_value()) ? Value::Int(static_cast<int64_t>(input.float_value())) : dflt;
    if (input.is_string()) {
      std::string s(absl::StripAsciiWhitespace(input.str()));
      s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
      int64_t v = 0;
      if (base == 10 ? absl::SimpleAtoi(s, &v) : (!s.empty() && [&] {
            char* end = nullptr;
            v = std::strtoll(s.c_str(), &end, static_cast<int>(base));
            return *end == '\0';
          }())) {
        return Value::Int(v);
      }
      double d = 0;
      if (absl::SimpleAtod(s, &d) && std::isfinite(d)) return Value::Int(static_cast<int64_t>(d));
    }
    return dflt;
  }
  if (name == "float") {
    ASSIGN_OR_RETURN(auto b, BindArgs("float", args, {"default"}, 0));
    const Value dflt = b[0].value_or(Value::Float(0.0));
    if (input.is_number() || input.is_bool()) return Value::Float(input.float_value());
    double d = 0;
    if (input.is_string() && absl::SimpleAtod(absl::StripAsciiWhitespace(input.str()), &d)) return Value::Float(d);
    return dflt;
  }
  if (name == "abs") {
    if (input.is_int() || input.is_bool()) return Negate(input, input.int_value() < 0);
    if (input.is_float()) return Value::Float(std::fabs(input.float_value()));
    return TypeError(absl::StrCat("bad operand type for abs(): '", input.TypeName(), "'"));
  }
  // round
  ASSIGN_OR_RETURN(auto b, BindArgs("round", args, {"precision", "method"}, 0));
  ASSIGN_OR_RETURN(auto precision, IntParam("round", b[0], 0));
  ASSIGN_OR_RETURN(auto method, StrParam("round", b[1]));
  if (!input.is_number() && !input.is_bool())
    return TypeError(absl::StrCat("round(): expected a number, got '", input.TypeName(), "'"));
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double x = input.float_value() * scale;
  const std::string m = method.value_or("common");
  double r;
  if (m == "common") {
    r = std::nearbyint(x);  // round-half-even, as Python's round()
  } else if (m == "ceil") {
    r = std::ceil(x);
  } else if (m == "floor") {
    r = std::floor(x);
  } else {
    return absl::InvalidArgumentError("round(): method must be 'common', 'ceil' or 'floor'");
  }
  return Value::Float(r / scale);
}

std::string HtmlEscape(absl::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

}  // namespace

bool IsKnownFilter(absl::string_view name) {
  return std::find(std::begin(kFilters), std::end(kFilters), name) != std::end(kFilters);
}

bool IsKnownTest(absl::string_view name) {
  return std::find(std::begin(kTests), std::end(kTests), name) != std::end(kTests);
}

absl::StatusOr<Value> ApplyFilter(absl::string_view name, const Value& input, const CallArgs& args) {
  if (name == "tojson") return ToJsonFilter(input, args);
  if (name == "trim") {
    ASSIGN_OR_RETURN(auto b, BindArgs("trim", args, {"chars"}, 0));
    ASSIGN_OR_RETURN(auto chars, StrParam("trim", b[0]));
    return Value::Str(py::Strip(PyStr(input), chars, /*left=*/true, /*right=*/true));
  }
  if (name == "length" || name == "count") {
    ASSIGN_OR_RETURN(auto n, Length(input));
    return Value::Int(n);
  }
  if (name == "default" || name == "d") {
    ASSIGN_OR_RETURN(auto b, BindArgs(name, args, {"default_value", "boolean"}, 0));
    const bool use_default = input.is_undefined() || (BoolParam(b[1], false) && !Truthy(input));
    return use_default ? b[0].value_or(Value::Str("")) : input;
  }
  if (name == "string") return input.is_string() ? input : Value::Str(PyStr(input));
  if (name == "safe") return input;
  if (name == "e" || name == "escape") return Value::Str(HtmlEscape(PyStr(input)));
  if (name == "lower") return Value::Str(py::Lower(PyStr(input)));
  if (name == "upper") return Value::Str(py::Upper(PyStr(input)));
  if (name == "title") return Value::Str(py::Title(PyStr(input)));
  if (name == "capitalize") return Value::Str(py::Capitalize(PyStr(input)));
  if (name == "replace") {
    ASSIGN_OR_RETURN(auto b, BindArgs("replace", args, {"old", "new", "count"}, 2));
    ASSIGN_OR_RETURN(auto count, IntParam("replace", b[2], -1));
    return Value::Str(py::Replace(PyStr(input), PyStr(*b[0]), PyStr(*b[1]), count));
  }
  if (name == "join") {
    ASSIGN_OR_RETURN(auto b, BindArgs("join", args, {"d", "attribute"}, 0));
    ASSIGN_OR_RETURN(auto attribute, StrParam("join", b[1]));
    ASSIGN_OR_RETURN(auto items, Iterate(input));
    const std::string sep = b[0].has_value() ? PyStr(*b[0]) : "";
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      Value item = items[i];
      if (attribute) {
        ASSIGN_OR_RETURN(auto a, GetAttributePath(item, *attribute));
        item = std::move(a);
      }
      if (i) out += sep;
      out += PyStr(item);
    }
    return Value::Str(std::move(out));
  }
  if (name == "first" || name == "last") {
    if (!args.positional.empty() || !args.keyword.empty())
      return TypeError(absl::StrCat(name, "() takes no arguments"));
    if (name == "last" && input.is_dict()) return TypeError("'dict' object is not reversible");
    ASSIGN_OR_RETURN(auto items, Iterate(input));
    if (items.empty()) return Value::Undefined(absl::StrCat("No ", name, " item, sequence was empty."));
    return name == "first" ? items.front() : items.back();
  }
  if (name == "items") {
    if (input.is_undefined()) return Value::Data(Json::array());
    if (!input.is_dict()) return TypeError("Can only get item pairs from a mapping.");
    Json out = Json::array();
    for (const auto& [k, v] : input.data().items()) out.push_back(Json::array({k, v}));
    return Value::Data(std::move(out));
  }
  if (name == "list") {
    ASSIGN_OR_RETURN(auto items, Iterate(input));
    return MakeList(items, "a list");
  }
  if (name == "reverse") {
    if (input.is_string()) return Slice(input, std::nullopt, std::nullopt, Value::Int(-1));
    ASSIGN_OR_RETURN(auto items, Iterate(input));
    std::reverse(items.begin(), items.end());
    return MakeList(items, "a list");
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    return SelectFilter(name, input, args);
  }
  if (name == "map") return MapFilter(input, args);
  if (name == "sort") return SortFilter(input, args, /*unique=*/false);
  if (name == "unique") return SortFilter(input, args, /*unique=*/true);
  if (name == "indent") return IndentFilter(input, args);
  if (name == "int" || name == "float" || name == "abs" || name == "round") return NumberFilter(name, input, args);
  return absl::InvalidArgumentError(absl::StrCat("unknown filter '", name, "'"));
}

absl::StatusOr<bool> ApplyTest(absl::string_view name, const Value& input, const CallArgs& args) {
  auto arg = [&]() -> absl::StatusOr<Value> {
    if (args.positional.size() != 1 || !args.keyword.empty()) {
      return TypeError(absl::StrCat("test '", name, "' takes one argument"));
    }
    return args.positional[0];
  };
  if (name == "defined") return !input.is_undefined();
  if (name == "undefined") return input.is_undefined();
  if (name == "none") return input.is_none();
  if (name == "boolean") return input.is_bool();
  if (name == "true") return input.is_bool() && input.data().get<bool>();
  if (name == "false") return input.is_bool() && !input.data().get<bool>();
  if (name == "integer") return input.is_int();
  if (name == "float") return input.is_float();
  if (name == "number") return input.is_number() || input.is_bool();
  if (name == "string") return input.is_string();
  if (name == "mapping") return input.is_dict();
  if (name == "sequence") return input.is_string() || input.is_list() || input.is_dict();
  if (name == "iterable") return input.is_undefined() || input.is_string() || input.is_list() || input.is_dict();
  if (name == "callable") return input.kind() == Value::Kind::kCallable;
  if (name == "escaped") return false;
  if (name == "lower" || name == "upper") {
    const std::string s = PyStr(input);
    bool cased = false;
    for (char c : s) {
      if (absl::ascii_isalpha(static_cast<unsigned char>(c))) {
        cased = true;
        if (name == "lower" ? absl::ascii_isupper(static_cast<unsigned char>(c))
                            : absl::ascii_islower(static_cast<unsigned char>(c))) {
          return false;
        }
      }
    }
    return cased;
  }
  if (name == "even" || name == "odd" || name == "divisibleby") {
    if (!input.is_int() && !input.is_bool()) {
      if (input.is_undefined()) return UndefinedError(input);
      return TypeError(absl::StrCat("test '", name, "' needs an integer, got '", input.TypeName(), "'"));
    }
    int64_t d = 2;
    if (name == "divisibleby") {
      ASSIGN_OR_RETURN(auto a, arg());
      ASSIGN_OR_RETURN(auto n, IntParam("divisibleby", a, 1));
      if (n == 0) return absl::InvalidArgumentError("integer division or modulo by zero");
      d = n;
    }
    const int64_t r = ((input.int_value() % d) + d) % d;
    return name == "odd" ? r == 1 : r == 0;
  }
  if (name == "in") {
    ASSIGN_OR_RETURN(auto a, arg());
    return Contains(a, input);
  }
  if (name == "sameas") {
    ASSIGN_OR_RETURN(auto a, arg());
    if ((input.is_none() || input.is_bool()) && (a.is_none() || a.is_bool())) return PyEquals(input, a);
    if (input.is_data() && a.is_data()) return input.data_owner() == a.data_owner();
    return PyEquals(input, a) && !input.is_data();
  }
  absl::string_view op;
  if (name == "eq" || name == "equalto" || name == "==") op = "==";
  if (name == "ne" || name == "!=") op = "!=";
  if (name == "lt" || name == "lessthan" || name == "<") op = "<";
  if (name == "le" || name == "<=") op = "<=";
  if (name == "gt" || name == "greaterthan" || name == ">") op = ">";
  if (name == "ge" || name == ">=") op = ">=";
  if (!op.empty()) {
    ASSIGN_OR_RETURN(auto a, arg());
    return Compare(op, input, a);
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown test '", name, "'"));
}

}  // namespace moe::chat
