// Value: what a chat-template expression evaluates to. Data (None, bool, int,
// float, str, list, dict) is a JSON node shared by pointer, so `messages[3]`
// or `message.content` costs no copy; the rest are the few Jinja objects a
// template can hold: Undefined (with the hint Jinja would print), a
// namespace(), the `loop` variable, and a callable (a global function or a
// bound method such as `content.split`).
//
// Values are immutable except a namespace's attributes, which `{% set ns.x %}`
// changes and every copy sees (Jinja's semantics). A Value is used by one
// render at a time.
#ifndef MOE_GATEWAY_CHAT_TEMPLATE_VALUE_H_
#define MOE_GATEWAY_CHAT_TEMPLATE_VALUE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace moe::chat {

// Objects keep their key order, as Python dicts do: tojson must print keys in
// the order the request had them.
using Json = nlohmann::ordered_json;

class Value;

struct Namespace {
  std::vector<std::pair<std::string, Value>> attributes;
};

// The `loop` variable of one iteration. `items` is shared by every iteration
// of the loop (previtem / nextitem read it).
struct LoopState {
  std::shared_ptr<const std::vector<Value>> items;
  int64_t index0 = 0;
  int64_t depth0 = 0;
};

class Value {
 public:
  enum class Kind { kUndefined, kData, kNamespace, kLoop, kCallable };

  // Undefined, printing as "" and falsy; `hint` is the error message of any
  // other use ("'x' is undefined", "'dict object' has no attribute 'y'").
  Value() = default;
  static Value Undefined(std::string hint);
  static Value Data(Json json);
  // A node inside `owner`, kept alive by it.
  static Value DataRef(std::shared_ptr<const Json> owner, const Json* node);
  static Value None() { return Data(Json()); }
  static Value Bool(bool b) { return Data(Json(b)); }
  static Value Int(int64_t i) { return Data(Json(i)); }
  static Value Float(double d) { return Data(Json(d)); }
  static Value Str(std::string s) { return Data(Json(std::move(s))); }
  static Value MakeNamespace(std::shared_ptr<Namespace> ns);
  static Value Loop(std::shared_ptr<const LoopState> loop);
  // A global function (`self` undefined) or a method bound to `self`.
  static Value Callable(std::string name, Value self);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_data() const { return kind_ == Kind::kData; }
  // Data tests: false for non-data kinds.
  bool is_none() const { return is_data() && data_->is_null(); }
  bool is_bool() const { return is_data() && data_->is_boolean(); }
  bool is_int() const { return is_data() && (data_->is_number_integer()); }
  bool is_float() const { return is_data() && data_->is_number_float(); }
  bool is_number() const { return is_data() && data_->is_number(); }
  bool is_string() const { return is_data() && data_->is_string(); }
  bool is_list() const { return is_data() && data_->is_array(); }
  bool is_dict() const { return is_data() && data_->is_object(); }

  // Requires is_data().
  const Json& data() const { return *data_; }
  const std::shared_ptr<const Json>& data_owner() const { return data_; }
  // Requires is_string().
  const std::string& str() const { return data_->get_ref<const std::string&>(); }
  // Requires is_int() or is_bool() (Python bools are ints).
  int64_t int_value() const;
  // Requires is_number() or is_bool().
  double float_value() const;

  const std::string& undefined_hint() const { return text_; }
  const std::shared_ptr<Namespace>& ns() const { return ns_; }
  const std::shared_ptr<const LoopState>& loop() const { return loop_; }
  const std::string& callable_name() const { return text_; }
  const Value& callable_self() const { return *self_; }

  // The element `i` of a list (bounds checked by the caller) as a shared ref.
  Value Element(size_t i) const;
  // The value of `key` in a dict, or nullopt-like undefined when absent.
  Value Member(const std::string& key, std::string missing_hint) const;

  // Python's type name: 'str', 'int', 'NoneType', 'dict', ...
  std::string TypeName() const;

 private:
  Kind kind_ = Kind::kUndefined;
  std::shared_ptr<const Json> data_;
  std::shared_ptr<Namespace> ns_;
  std::shared_ptr<const LoopState> loop_;
  std::shared_ptr<const Value> self_;
  std::string text_;
};

// The Python / Jinja conversions used for output.
bool Truthy(const Value& v);
// str(v); Undefined is "". Fails on nothing: odd kinds print a placeholder.
std::string PyStr(const Value& v);
// repr(v), as str() of a list shows its items.
std::string PyRepr(const Value& v);

struct JsonDumpOptions {
  int indent = -1;  // < 0: one line
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};
// json.dumps(v, ensure_ascii=False, ...): the tojson filter transformers installs.
absl::StatusOr<std::string> PyJsonDumps(const Value& v, const JsonDumpOptions& options);

// The data of `v` as JSON (to build lists and dicts); an error for Undefined
// and non-data kinds, naming `what`.
absl::StatusOr<Json> ToJson(const Value& v, const char* what);

}  // namespace moe::chat

#endif  // MOE_GATEWAY_CHAT_TEMPLATE_VALUE_H_
