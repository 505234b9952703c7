#include "gateway/chat_template/value_ops.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "gateway/chat_template/py_string.h"

namespace moe::chat {
namespace {

// Python's object_type_repr, as Jinja's undefined messages use it.
std::string ObjectTypeRepr(const Value& v) {
  if (v.is_none()) return "None";
  if (v.kind() == Value::Kind::kNamespace) return "jinja2.utils.Namespace object";
  if (v.kind() == Value::Kind::kLoop) return "jinja2.runtime.LoopContext object";
  return absl::StrCat(v.TypeName(), " object");
}

Value NoAttribute(const Value& obj, absl::string_view name) {
  return Value::Undefined(absl::StrCat("'", ObjectTypeRepr(obj), "' has no attribute '", name, "'"));
}

Value Unsafe(const Value& obj, absl::string_view name) {
  return Value::Undefined(absl::StrCat("access to attribute '", name, "' of '", obj.TypeName(), "' object is unsafe."));
}

template <typename Names>
bool IsIn(absl::string_view name, const Names& names) {
  for (absl::string_view n : names) {
    if (n == name) return true;
  }
  return false;
}
bool IsIn(absl::string_view name, std::initializer_list<absl::string_view> names) {
  return IsIn<std::initializer_list<absl::string_view>>(name, names);
}

constexpr absl::string_view kStrMethods[] = {
    "startswith",  "endswith",   "split",        "rsplit",       "strip",     "lstrip",    "rstrip",    "upper",
    "lower",       "title",      "capitalize",   "replace",      "find",      "rfind",     "count",     "join",
    "splitlines",  "isdigit",    "isalpha",      "isalnum",      "isspace",   "isupper",   "islower",   "format",
    "index",       "rindex",     "center",       "ljust",        "rjust",     "zfill",     "swapcase",  "casefold",
    "partition",   "rpartition", "encode",       "expandtabs",   "isnumeric", "isdecimal", "istitle",   "isidentifier",
    "isprintable", "isascii",    "removeprefix", "removesuffix", "translate", "maketrans", "format_map"};

// Python attributes (not items) of data values; callables are checked for
// support when called.
std::optional<Value> DataAttribute(const Value& obj, const std::string& name) {
  if (name.rfind("__", 0) == 0) return Unsafe(obj, name);
  if (obj.is_dict()) {
    if (IsIn(name, {"items", "keys", "values", "get", "copy", "fromkeys"})) return Value::Callable(name, obj);
    if (IsIn(name, {"pop", "popitem", "update", "clear", "setdefault"})) return Unsafe(obj, name);
  } else if (obj.is_list()) {
    if (IsIn(name, {"index", "count", "copy"})) return Value::Callable(name, obj);
    if (IsIn(name, {"append", "extend", "insert", "remove", "pop", "clear", "sort", "reverse"})) {
      return Unsafe(obj, name);
    }
  } else if (obj.is_string()) {
    if (IsIn(name, kStrMethods)) return Value::Callable(name, obj);
  }
  return std::nullopt;
}

absl::StatusOr<Value> LoopAttribute(const Value& obj, const std::string& name) {
  const LoopState& l = *obj.loop();
  const auto length = static_cast<int64_t>(l.items->size());
  if (name == "index") return Value::Int(l.index0 + 1);
  if (name == "index0") return Value::Int(l.index0);
  if (name == "revindex") return Value::Int(length - l.index0);
  if (name == "revindex0") return Value::Int(length - l.index0 - 1);
  if (name == "first") return Value::Bool(l.index0 == 0);
  if (name == "last") return Value::Bool(l.index0 == length - 1);
  if (name == "length") return Value::Int(length);
  if (name == "depth") return Value::Int(l.depth0 + 1);
  if (name == "depth0") return Value::Int(l.depth0);
  if (name == "previtem") {
    if (l.index0 == 0) return Value::Undefined("there is no previous item");
    return (*l.items)[static_cast<size_t>(l.index0 - 1)];
  }
  if (name == "nextitem") {
    if (l.index0 + 1 >= length) return Value::Undefined("there is no next item");
    return (*l.items)[static_cast<size_t>(l.index0 + 1)];
  }
  if (name == "cycle") return Value::Callable("cycle", obj);
  return NoAttribute(obj, name);
}

// Python slice.indices() applied to a sequence of `len` items.
absl::StatusOr<std::vector<int64_t>> SliceIndices(int64_t len, const std::optional<Value>& start_v,
                                                  const std::optional<Value>& stop_v,
                                                  const std::optional<Value>& step_v) {
  auto bound = [](const std::optional<Value>& v) -> absl::StatusOr<std::optional<int64_t>> {
    if (!v.has_value() || v->is_none()) return std::optional<int64_t>();
    if (v->is_undefined()) return UndefinedError(*v);
    if (!v->is_int() && !v->is_bool()) return TypeError("slice indices must be integers or None");
    return std::optional<int64_t>(v->int_value());
  };
  auto start = bound(start_v);
  auto stop = bound(stop_v);
  auto step_or = bound(step_v);
  if (!start.ok()) return start.status();
  if (!stop.ok()) return stop.status();
  if (!step_or.ok()) return step_or.status();
  const int64_t step = step_or->value_or(1);
  if (step == 0) return absl::InvalidArgumentError("slice step cannot be zero");
  const int64_t lower = step > 0 ? 0 : -1;
  const int64_t upper = step > 0 ? len : len - 1;
  auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v;
    if (x < 0) {
      x += len;
      if (x < lower) x = lower;
    } else if (x > upper) {
      x = upper;
    }
    return x;
  };
  const int64_t b = clamp(*start, step > 0 ? lower : upper);
  const int64_t e = clamp(*stop, step > 0 ? upper : lower);
  std::vector<int64_t> out;
  for (int64_t i = b; step > 0 ? i < e : i > e; i += step) out.push_back(i);
  return out;
}

bool IsNumeric(const Value& v) { return v.is_number() || v.is_bool(); }
bool IsIntegral(const Value& v) { return v.is_int() || v.is_bool(); }

std::string OperandTypes(absl::string_view op, const Value& a, const Value& b) {
  return absl::StrCat("unsupported operand type(s) for ", op, ": '", a.TypeName(), "' and '", b.TypeName(), "'");
}

absl::StatusOr<Value> CheckedInt(__int128 r) {
  if (r > std::numeric_limits<int64_t>::max() || r < std::numeric_limits<int64_t>::min()) {
    return absl::InvalidArgumentError("integer result out of the 64-bit range");
  }
  return Value::Int(static_cast<int64_t>(r));
}

absl::StatusOr<Value> Repeat(const Value& seq, int64_t n) {
  if (n > 0 && (seq.is_string() ? seq.str().size() : seq.data().size()) * static_cast<uint64_t>(n) > (64u << 20)) {
    return absl::InvalidArgumentError("repetition result is too large");
  }
  if (seq.is_string()) {
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += seq.str();
    return Value::Str(std::move(out));
  }
  Json out = Json::array();
  for (int64_t i = 0; i < n; ++i) {
    for (const Json& e : seq.data()) out.push_back(e);
  }
  return Value::Data(std::move(out));
}

bool JsonEquals(const Json& a, const Json& b) {
  const bool a_num = a.is_number() || a.is_boolean();
  const bool b_num = b.is_number() || b.is_boolean();
  if (a_num || b_num) {
    if (!a_num || !b_num) return false;
    auto as_double = [](const Json& j) { return j.is_boolean() ? (j.get<bool>() ? 1.0 : 0.0) : j.get<double>(); };
    if (a.is_number_float() || b.is_number_float()) return as_double(a) == as_double(b);
    auto as_int = [](const Json& j) {
      return j.is_boolean() ? (j.get<bool>() ? 1 : 0)
                            : static_cast<__int128>(j.is_number_unsigned() ? static_cast<__int128>(j.get<uint64_t>())
                                                                           : j.get<int64_t>());
    };
    return as_int(a) == as_int(b);
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Json::value_t::null:
      return true;
    case Json::value_t::string:
      return a.get_ref<const std::string&>() == b.get_ref<const std::string&>();
    case Json::value_t::array:
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i) {
        if (!JsonEquals(a[i], b[i])) return false;
      }
      return true;
    case Json::value_t::object:
      if (a.size() != b.size()) return false;
      for (const auto& [k, v] : a.items()) {
        const auto it = b.find(k);
        if (it == b.end() || !JsonEquals(v, *it)) return false;
      }
      return true;
    default:
      return a == b;
  }
}

}  // namespace

absl::Status UndefinedError(const Value& v) {
  return absl::InvalidArgumentError(v.undefined_hint().empty() ? "undefined value" : v.undefined_hint());
}

absl::Status TypeError(absl::string_view message) { return absl::InvalidArgumentError(message); }

absl::StatusOr<Value> GetAttr(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined:
      return UndefinedError(obj);
    case Value::Kind::kLoop:
      return LoopAttribute(obj, name);
    case Value::Kind::kNamespace:
      for (const auto& [k, v] : obj.ns()->attributes) {
        if (k == name) return v;
      }
      return NoAttribute(obj, name);
    case Value::Kind::kCallable:
      return NoAttribute(obj, name);
    case Value::Kind::kData:
      break;
  }
  if (auto attr = DataAttribute(obj, name)) return *attr;
  if (obj.is_dict()) return obj.Member(name, absl::StrCat("'dict object' has no attribute '", name, "'"));
  return NoAttribute(obj, name);
}

absl::StatusOr<Value> GetItem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) return UndefinedError(obj);
  if (obj.is_dict() && key.is_string()) {
    const auto it = obj.data().find(key.str());
    if (it != obj.data().end()) return Value::DataRef(obj.data_owner(), &*it);
  } else if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    const int64_t len =
        obj.is_list() ? static_cast<int64_t>(obj.data().size()) : static_cast<int64_t>(py::Length(obj.str()));
    int64_t i = key.int_value();
    if (i < 0) i += len;
    if (i >= 0 && i < len) {
      if (obj.is_list()) return obj.Element(static_cast<size_t>(i));
      const std::u32string cps = py::ToCodePoints(obj.str());
      return Value::Str(py::FromCodePoints(std::u32string_view(cps).substr(static_cast<size_t>(i), 1)));
    }
    return Value::Undefined(absl::StrCat(ObjectTypeRepr(obj), " has no element ", key.int_value()));
  }
  if (key.is_string()) {
    if (obj.is_data()) {
      if (auto attr = DataAttribute(obj, key.str())) return *attr;
      return NoAttribute(obj, key.str());
    }
    return GetAttr(obj, key.str());
  }
  return Value::Undefined(absl::StrCat(ObjectTypeRepr(obj), " has no element ", PyRepr(key)));
}

absl::StatusOr<Value> Slice(const Value& obj, const std::optional<Value>& start, const std::optional<Value>& stop,
                            const std::optional<Value>& step) {
  if (obj.is_undefined()) return UndefinedError(obj);
  if (obj.is_list()) {
    auto idx = SliceIndices(static_cast<int64_t>(obj.data().size()), start, stop, step);
    if (!idx.ok()) return idx.status();
    Json out = Json::array();
    for (int64_t i : *idx) out.push_back(obj.data()[static_cast<size_t>(i)]);
    return Value::Data(std::move(out));
  }
  if (obj.is_string()) {
    const std::u32string cps = py::ToCodePoints(obj.str());
    auto idx = SliceIndices(static_cast<int64_t>(cps.size()), start, stop, step);
    if (!idx.ok()) return idx.status();
    std::u32string out;
    for (int64_t i : *idx) out.push_back(cps[static_cast<size_t>(i)]);
    return Value::Str(py::FromCodePoints(out));
  }
  return TypeError(absl::StrCat("'", obj.TypeName(), "' object is not subscriptable"));
}

absl::StatusOr<std::vector<Value>> Iterate(const Value& v) {
  std::vector<Value> out;
  if (v.is_undefined()) return out;
  if (v.is_list()) {
    out.reserve(v.data().size());
    for (size_t i = 0; i < v.data().size(); ++i) out.push_back(v.Element(i));
    return out;
  }
  if (v.is_dict()) {
    for (const auto& [k, e] : v.data().items()) out.push_back(Value::Str(k));
    return out;
  }
  if (v.is_string()) {
    const std::string& s = v.str();
    for (size_t pos = 0; pos < s.size();) {
      const size_t start = pos;
      py::DecodeAt(s, &pos);
      out.push_back(Value::Str(s.substr(start, pos - start)));
    }
    return out;
  }
  return TypeError(absl::StrCat("'", v.TypeName(), "' object is not iterable"));
}

absl::StatusOr<int64_t> Length(const Value& v) {
  if (v.is_undefined()) return 0;
  if (v.is_string()) return static_cast<int64_t>(py::Length(v.str()));
  if (v.is_list() || v.is_dict()) return static_cast<int64_t>(v.data().size());
  if (v.kind() == Value::Kind::kNamespace) return TypeError("object of type 'Namespace' has no len()");
  return TypeError(absl::StrCat("object of type '", v.TypeName(), "' has no len()"));
}

absl::StatusOr<Value> BinaryOp(absl::string_view op, const Value& a, const Value& b) {
  if (op == "~") return Value::Str(PyStr(a) + PyStr(b));
  if (a.is_undefined()) return UndefinedError(a);
  if (b.is_undefined()) return UndefinedError(b);
  const bool ints = IsIntegral(a) && IsIntegral(b);
  const bool nums = IsNumeric(a) && IsNumeric(b);
  const auto ia = static_cast<__int128>(ints ? a.int_value() : 0);
  const auto ib = static_cast<__int128>(ints ? b.int_value() : 0);
  if (op == "+") {
    if (ints) return CheckedInt(ia + ib);
    if (nums) return Value::Float(a.float_value() + b.float_value());
    if (a.is_string() && b.is_string()) return Value::Str(a.str() + b.str());
    if (a.is_list() && b.is_list()) {
      Json out = a.data();
      for (const Json& e : b.data()) out.push_back(e);
      return Value::Data(std::move(out));
    }
    if (a.is_string() || a.is_list()) {
      return TypeError(
          absl::StrCat("can only concatenate ", a.TypeName(), " (not \"", b.TypeName(), "\") to ", a.TypeName()));
    }
    return TypeError(OperandTypes("+", a, b));
  }
  if (op == "-") {
    if (ints) return CheckedInt(ia - ib);
    if (nums) return Value::Float(a.float_value() - b.float_value());
    return TypeError(OperandTypes("-", a, b));
  }
  if (op == "*") {
    if (ints) return CheckedInt(ia * ib);
    if (nums) return Value::Float(a.float_value() * b.float_value());
    if ((a.is_string() || a.is_list()) && IsIntegral(b)) return Repeat(a, b.int_value());
    if ((b.is_string() || b.is_list()) && IsIntegral(a)) return Repeat(b, a.int_value());
    return TypeError(OperandTypes("*", a, b));
  }
  if (op == "/" || op == "//" || op == "%") {
    if (!nums) {
      if (op == "%" && a.is_string()) return TypeError("printf-style string formatting (%) is not supported");
      return TypeError(OperandTypes(op, a, b));
    }
    if (ints ? ib == 0 : b.float_value() == 0.0) {
      return absl::InvalidArgumentError(op == "/" ? "division by zero"
                                                  : (ints ? "integer division or modulo by zero" : "float modulo"));
    }
    if (op == "/") return Value::Float(a.float_value() / b.float_value());
    if (ints) {
      __int128 q = ia / ib;
      __int128 r = ia % ib;
      if (r != 0 && ((r < 0) != (ib < 0))) {
        --q;
        r += ib;
      }
      return CheckedInt(op == "//" ? q : r);
    }
    // CPython's float_divmod.
    const double x = a.float_value(), y = b.float_value();
    double mod = std::fmod(x, y);
    double div = (x - mod) / y;
    if (mod != 0.0) {
      if ((y < 0) != (mod < 0)) {
        mod += y;
        div -= 1.0;
      }
    } else {
      mod = std::copysign(0.0, y);
    }
    if (op == "%") return Value::Float(mod);
    double floordiv = std::copysign(0.0, x / y);
    if (div != 0.0) {
      floordiv = std::floor(div);
      if (div - floordiv > 0.5) floordiv += 1.0;
    }
    return Value::Float(floordiv);
  }
  if (op == "**") {
    if (ints && ib >= 0) {
      __int128 r = 1;
      for (__int128 i = 0; i < ib; ++i) {
        r *= ia;
        if (r > std::numeric_limits<int64_t>::max() || r < std::numeric_limits<int64_t>::min()) {
          return absl::InvalidArgumentError("integer result out of the 64-bit range");
        }
      }
      return Value::Int(static_cast<int64_t>(r));
    }
    if (nums) return Value::Float(std::pow(a.float_value(), b.float_value()));
    return TypeError(OperandTypes("** or pow()", a, b));
  }
  return absl::InternalError(absl::StrCat("unknown operator ", op));
}

absl::StatusOr<Value> Negate(const Value& v, bool negative) {
  if (v.is_undefined()) return UndefinedError(v);
  if (IsIntegral(v)) return negative ? CheckedInt(-static_cast<__int128>(v.int_value())) : Value::Int(v.int_value());
  if (v.is_float()) return Value::Float(negative ? -v.float_value() : v.float_value());
  return TypeError(absl::StrCat("bad operand type for unary ", negative ? "-" : "+", ": '", v.TypeName(), "'"));
}

bool PyEquals(const Value& a, const Value& b) {
  if (a.is_undefined() || b.is_undefined()) return a.is_undefined() && b.is_undefined();
  if (a.is_data() && b.is_data()) return JsonEquals(a.data(), b.data());
  if (a.kind() != b.kind()) return false;
  if (a.kind() == Value::Kind::kNamespace) return a.ns() == b.ns();
  if (a.kind() == Value::Kind::kLoop) return a.loop() == b.loop();
  return false;
}

absl::StatusOr<bool> PyLess(const Value& a, const Value& b) {
  if (a.is_undefined()) return UndefinedError(a);
  if (b.is_undefined()) return UndefinedError(b);
  if (IsNumeric(a) && IsNumeric(b)) {
    if (IsIntegral(a) && IsIntegral(b)) return a.int_value() < b.int_value();
    return a.float_value() < b.float_value();
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();
  if (a.is_list() && b.is_list()) {
    const size_t n = std::min(a.data().size(), b.data().size());
    for (size_t i = 0; i < n; ++i) {
      const Value x = a.Element(i), y = b.Element(i);
      if (!PyEquals(x, y)) return PyLess(x, y);
    }
    return a.data().size() < b.data().size();
  }
  return TypeError(
      absl::StrCat("'<' not supported between instances of '", a.TypeName(), "' and '", b.TypeName(), "'"));
}

absl::StatusOr<bool> Compare(absl::string_view op, const Value& a, const Value& b) {
  if (op == "==") return PyEquals(a, b);
  if (op == "!=") return !PyEquals(a, b);
  if (op == "in") return Contains(b, a);
  if (op == "not in") {
    auto r = Contains(b, a);
    if (!r.ok()) return r.status();
    return !*r;
  }
  const bool swap = op == ">" || op == "<=";
  auto less = swap ? PyLess(b, a) : PyLess(a, b);
  if (!less.ok()) {
    if (absl::string_view(less.status().message()).find("'<' not supported") == 0) {
      return TypeError(
          absl::StrCat("'", op, "' not supported between instances of '", a.TypeName(), "' and '", b.TypeName(), "'"));
    }
    return less.status();
  }
  if (op == "<" || op == ">") return *less;
  return !*less;  // <= is not (b < a); >= is not (a < b)
}

absl::StatusOr<bool> Contains(const Value& container, const Value& item) {
  if (container.is_undefined()) return false;
  if (container.is_string()) {
    if (!item.is_string()) {
      return TypeError(absl::StrCat("'in <string>' requires string as left operand, not ", item.TypeName()));
    }
    return container.str().find(item.str()) != std::string::npos;
  }
  if (container.is_list()) {
    for (size_t i = 0; i < container.data().size(); ++i) {
      if (PyEquals(container.Element(i), item)) return true;
    }
    return false;
  }
  if (container.is_dict()) {
    if (!item.is_string()) return false;
    return container.data().contains(item.str());
  }
  return TypeError(absl::StrCat("argument of type '", container.TypeName(), "' is not iterable"));
}

absl::StatusOr<Value> MakeList(const std::vector<Value>& items, const char* what) {
  Json out = Json::array();
  for (const Value& v : items) {
    auto j = ToJson(v, what);
    if (!j.ok()) return j.status();
    out.push_back(*std::move(j));
  }
  return Value::Data(std::move(out));
}

}  // namespace moe::chat
