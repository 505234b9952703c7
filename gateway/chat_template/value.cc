#include "gateway/chat_template/value.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "gateway/chat_template/py_string.h"

namespace moe::chat {

Value Value::Undefined(std::string hint) {
  Value v;
  v.text_ = std::move(hint);
  return v;
}

Value Value::Data(Json json) {
  Value v;
  v.kind_ = Kind::kData;
  v.data_ = std::make_shared<const Json>(std::move(json));
  return v;
}

Value Value::DataRef(std::shared_ptr<const Json> owner, const Json* node) {
  Value v;
  v.kind_ = Kind::kData;
  v.data_ = std::shared_ptr<const Json>(std::move(owner), node);
  return v;
}

Value Value::MakeNamespace(std::shared_ptr<Namespace> ns) {
  Value v;
  v.kind_ = Kind::kNamespace;
  v.ns_ = std::move(ns);
  return v;
}

Value Value::Loop(std::shared_ptr<const LoopState> loop) {
  Value v;
  v.kind_ = Kind::kLoop;
  v.loop_ = std::move(loop);
  return v;
}

Value Value::Callable(std::string name, Value self) {
  Value v;
  v.kind_ = Kind::kCallable;
  v.text_ = std::move(name);
  v.self_ = std::make_shared<const Value>(std::move(self));
  return v;
}

int64_t Value::int_value() const {
  if (data_->is_boolean()) return data_->get<bool>() ? 1 : 0;
  if (data_->is_number_unsigned()) {
    const auto u = data_->get<uint64_t>();
    return u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max()
                                                                          : static_cast<int64_t>(u);
  }
  return data_->get<int64_t>();
}

double Value::float_value() const {
  if (data_->is_boolean()) return data_->get<bool>() ? 1.0 : 0.0;
  return data_->get<double>();
}

Value Value::Element(size_t i) const { return DataRef(data_, &(*data_)[i]); }

Value Value::Member(const std::string& key, std::string missing_hint) const {
  const auto it = data_->find(key);
  if (it == data_->end()) return Undefined(std::move(missing_hint));
  return DataRef(data_, &*it);
}

std::string Value::TypeName() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNamespace:
      return "Namespace";
    case Kind::kLoop:
      return "LoopContext";
    case Kind::kCallable:
      return "builtin_function_or_method";
    case Kind::kData:
      break;
  }
  switch (data_->type()) {
    case Json::value_t::null:
      return "NoneType";
    case Json::value_t::boolean:
      return "bool";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "int";
    case Json::value_t::number_float:
      return "float";
    case Json::value_t::string:
      return "str";
    case Json::value_t::array:
      return "list";
    case Json::value_t::object:
      return "dict";
    default:
      return "object";
  }
}

bool Truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kData:
      break;
    default:
      return true;
  }
  const Json& j = v.data();
  switch (j.type()) {
    case Json::value_t::null:
      return false;
    case Json::value_t::boolean:
      return j.get<bool>();
    case Json::value_t::number_integer:
      return j.get<int64_t>() != 0;
    case Json::value_t::number_unsigned:
      return j.get<uint64_t>() != 0;
    case Json::value_t::number_float:
      return j.get<double>() != 0.0;
    case Json::value_t::string:
      return !j.get_ref<const std::string&>().empty();
    case Json::value_t::array:
    case Json::value_t::object:
      return !j.empty();
    default:
      return true;
  }
}

namespace {

void AppendRepr(const Json& j, bool top_level_str, std::string* out) {
  switch (j.type()) {
    case Json::value_t::null:
      out->append("None");
      return;
    case Json::value_t::boolean:
      out->append(j.get<bool>() ? "True" : "False");
      return;
    case Json::value_t::number_integer:
      absl::StrAppend(out, j.get<int64_t>());
      return;
    case Json::value_t::number_unsigned:
      absl::StrAppend(out, j.get<uint64_t>());
      return;
    case Json::value_t::number_float:
      out->append(py::FormatFloat(j.get<double>()));
      return;
    case Json::value_t::string:
      if (top_level_str) {
        out->append(j.get_ref<const std::string&>());
      } else {
        out->append(py::Repr(j.get_ref<const std::string&>()));
      }
      return;
    case Json::value_t::array: {
      out->push_back('[');
      bool first = true;
      for (const Json& e : j) {
        if (!first) out->append(", ");
        first = false;
        AppendRepr(e, /*top_level_str=*/false, out);
      }
      out->push_back(']');
      return;
    }
    case Json::value_t::object: {
      out->push_back('{');
      bool first = true;
      for (const auto& [k, e] : j.items()) {
        if (!first) out->append(", ");
        first = false;
        out->append(py::Repr(k));
        out->append(": ");
        AppendRepr(e, /*top_level_str=*/false, out);
      }
      out->push_back('}');
      return;
    }
    default:
      out->append("<binary>");
      return;
  }
}

std::string OtherKindStr(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kNamespace:
      return "<Namespace>";
    case Value::Kind::kLoop:
      return "<LoopContext>";
    case Value::Kind::kCallable:
      return absl::StrCat("<built-in method ", v.callable_name(), ">");
    default:
      return "";
  }
}

absl::Status DumpJson(const Json& j, const JsonDumpOptions& o, int level, std::string* out) {
  auto newline = [&](int lvl) {
    if (o.indent < 0) return;
    out->push_back('\n');
    out->append(static_cast<size_t>(o.indent) * static_cast<size_t>(lvl), ' ');
  };
  switch (j.type()) {
    case Json::value_t::null:
      out->append("null");
      return absl::OkStatus();
    case Json::value_t::boolean:
      out->append(j.get<bool>() ? "true" : "false");
      return absl::OkStatus();
    case Json::value_t::number_integer:
      absl::StrAppend(out, j.get<int64_t>());
      return absl::OkStatus();
    case Json::value_t::number_unsigned:
      absl::StrAppend(out, j.get<uint64_t>());
      return absl::OkStatus();
    case Json::value_t::number_float: {
      const double d = j.get<double>();
      if (std::isnan(d)) {
        out->append("NaN");
      } else if (std::isinf(d)) {
        out->append(d < 0 ? "-Infinity" : "Infinity");
      } else {
        out->append(py::FormatFloat(d));
      }
      return absl::OkStatus();
    }
    case Json::value_t::string:
      out->append(py::JsonQuote(j.get_ref<const std::string&>()));
      return absl::OkStatus();
    case Json::value_t::array: {
      if (j.empty()) {
        out->append("[]");
        return absl::OkStatus();
      }
      out->push_back('[');
      bool first = true;
      for (const Json& e : j) {
        if (!first) out->append(o.item_separator);
        first = false;
        newline(level + 1);
        if (auto s = DumpJson(e, o, level + 1, out); !s.ok()) return s;
      }
      newline(level);
      out->push_back(']');
      return absl::OkStatus();
    }
    case Json::value_t::object: {
      if (j.empty()) {
        out->append("{}");
        return absl::OkStatus();
      }
      std::vector<std::pair<const std::string*, const Json*>> members;
      for (const auto& [k, e] : j.items()) members.emplace_back(&k, &e);
      if (o.sort_keys) {
        std::stable_sort(members.begin(), members.end(),
                         [](const auto& a, const auto& b) { return *a.first < *b.first; });
      }
      out->push_back('{');
      bool first = true;
      for (const auto& [k, e] : members) {
        if (!first) out->append(o.item_separator);
        first = false;
        newline(level + 1);
        out->append(py::JsonQuote(*k));
        out->append(o.key_separator);
        if (auto s = DumpJson(*e, o, level + 1, out); !s.ok()) return s;
      }
      newline(level);
      out->push_back('}');
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError("Object of type binary is not JSON serializable");
  }
}

}  // namespace

std::string PyStr(const Value& v) {
  if (v.is_undefined()) return "";
  if (!v.is_data()) return OtherKindStr(v);
  if (v.is_string()) return v.str();
  std::string out;
  AppendRepr(v.data(), /*top_level_str=*/true, &out);
  return out;
}

std::string PyRepr(const Value& v) {
  if (v.is_undefined()) return "Undefined";
  if (!v.is_data()) return OtherKindStr(v);
  std::string out;
  AppendRepr(v.data(), /*top_level_str=*/false, &out);
  return out;
}

absl::StatusOr<std::string> PyJsonDumps(const Value& v, const JsonDumpOptions& options) {
  if (!v.is_data()) {
    return absl::InvalidArgumentError(absl::StrCat("Object of type ", v.TypeName(), " is not JSON serializable"));
  }
  std::string out;
  if (auto s = DumpJson(v.data(), options, 0, &out); !s.ok()) return s;
  return out;
}

absl::StatusOr<Json> ToJson(const Value& v, const char* what) {
  if (v.is_data()) return v.data();
  if (v.is_undefined()) return absl::InvalidArgumentError(v.undefined_hint());
  return absl::InvalidArgumentError(
      absl::StrCat("a ", v.TypeName(), " cannot be stored in ", what, " (only data values can)"));
}

}  // namespace moe::chat
