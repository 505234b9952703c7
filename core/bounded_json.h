// ParseBoundedJson: JSON text from outside (request bodies, tokenizer and
// config files) parsed into an nlohmann json or ordered_json value with
// bounds checked while parsing, before anything deep or large is built:
//
//   - nesting depth (arrays and objects): deeper input is refused at the
//     first container past the limit, with the path of that value, so no
//     recursive walk of the result (copy, dump, a template renderer) can run
//     out of stack;
//   - the number of values in all: bounds the memory a body can expand to
//     (a 32 MiB body of `[0,0,...]` would otherwise make 16M json values);
//   - linear time: nlohmann's own ordered_json parser inserts each object
//     member with a linear search for a duplicate, so one object of N keys
//     takes O(N^2) (1.5M keys: minutes). Here duplicates are found through a
//     hash index once an object grows past a few members; a repeated key
//     keeps its first position and takes the last value, as nlohmann does.
//
// nlohmann's SAX parser itself is iterative, so parsing never recurses.
// Errors are INVALID_ARGUMENT with a message that names the value:
//   "messages[0].content: nested deeper than 64 levels"
//   "body: invalid JSON (byte 17: syntax error ...)"
// Thread-safe (no shared state).
#ifndef MOE_CORE_BOUNDED_JSON_H_
#define MOE_CORE_BOUNDED_JSON_H_

#include <cstddef>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace moe {

struct JsonLimits {
  // Arrays and objects inside each other; the outermost value is level 1.
  int max_depth = 64;
  // Values of any kind (containers, scalars; object keys not counted).
  size_t max_values = size_t{1} << 22;
};

// Files an operator points the servers at (tokenizer.json: ~500k values).
inline constexpr JsonLimits kFileJsonLimits{/*max_depth=*/128, /*max_values=*/size_t{1} << 25};

namespace bounded_json_internal {

template <typename JsonT>
class Builder {
 public:
  using number_integer_t = typename JsonT::number_integer_t;
  using number_unsigned_t = typename JsonT::number_unsigned_t;
  using number_float_t = typename JsonT::number_float_t;
  using string_t = typename JsonT::string_t;
  using binary_t = typename JsonT::binary_t;
  using object_t = typename JsonT::object_t;
  using array_t = typename JsonT::array_t;

  Builder(const JsonLimits& limits, absl::string_view root_name) : limits_(limits), root_name_(root_name) {}

  bool null() { return Add(JsonT(nullptr)) != nullptr; }
  bool boolean(bool v) { return Add(JsonT(v)) != nullptr; }
  bool number_integer(number_integer_t v) { return Add(JsonT(v)) != nullptr; }
  bool number_unsigned(number_unsigned_t v) { return Add(JsonT(v)) != nullptr; }
  bool number_float(number_float_t v, const string_t& /*text*/) { return Add(JsonT(v)) != nullptr; }
  bool string(string_t& v) { return Add(JsonT(std::move(v))) != nullptr; }
  bool binary(binary_t& v) { return Add(JsonT::binary(std::move(v))) != nullptr; }

  bool start_object(std::size_t /*unknown*/) { return Open(JsonT::object()); }
  bool start_array(std::size_t /*unknown*/) { return Open(JsonT::array()); }
  bool end_object() { return Close(); }
  bool end_array() { return Close(); }

  bool key(string_t& k) {
    Frame& f = stack_.back();
    object_t& obj = f.value->template get_ref<object_t&>();
    if constexpr (!kOrdered) {  // std::map: its own search, stable nodes
      auto [it, inserted] = obj.emplace(std::move(k), JsonT());
      if (!inserted) it->second = JsonT();  // a repeated key: the last value
      f.slot = &it->second;
      f.slot_key = &it->first;
      return true;
    } else {
      size_t found = obj.size();
      if (f.index.empty() && obj.size() < kLinearMembers) {
        for (size_t i = 0; i < obj.size(); ++i) {
          if (obj.begin()[i].first == k) {
            found = i;
            break;
          }
        }
      } else {
        if (f.index.empty()) {
          for (size_t i = 0; i < obj.size(); ++i) f.index.emplace(obj.begin()[i].first, i);
        }
        auto it = f.index.find(k);
        if (it != f.index.end()) found = it->second;
      }
      if (found == obj.size()) {
        if (!f.index.empty()) f.index.emplace(k, found);
        // ordered_map::emplace would search for the key again, linearly:
        // append to the underlying vector directly.
        obj.Container::emplace_back(std::move(k), JsonT());
      }
      auto& member = obj.begin()[found];
      member.second = JsonT();  // a repeated key keeps its first position and takes the last value
      f.slot = &member.second;
      f.slot_key = &member.first;
      return true;
    }
  }

  bool parse_error(std::size_t position, const std::string& /*last_token*/, const nlohmann::detail::exception& e) {
    if (error_.ok()) {
      // nlohmann's message repeats "[json.exception.parse_error.101] parse error at line 1, column N: ...";
      // keep the part after the last ": " prefix that names the place.
      absl::string_view what = e.what();
      if (size_t p = what.find("parse error"); p != absl::string_view::npos) what.remove_prefix(p);
      error_ = absl::InvalidArgumentError(
          absl::StrCat(root_name_, ": invalid JSON (byte ", position, ": ", what, ")"));
    }
    return false;
  }

  absl::StatusOr<JsonT> Result(bool parsed) {
    if (!error_.ok()) return error_;
    if (!parsed || !stack_.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(root_name_, ": invalid JSON"));
    }
    return std::move(root_);
  }

 private:
  // Objects up to this size are searched linearly for a repeated key.
  static constexpr size_t kLinearMembers = 16;

  struct Frame {
    JsonT* value = nullptr;
    JsonT* slot = nullptr;                    // objects: the member the next value fills
    const string_t* slot_key = nullptr;       // and its key (for error paths)
    absl::flat_hash_map<string_t, size_t> index;  // objects past kLinearMembers: key -> position
  };

  // ordered_json's objects are a vector of members (nlohmann::ordered_map);
  // json's a std::map.
  static constexpr bool kOrdered = std::is_same_v<JsonT, nlohmann::ordered_json>;

  // Where the next value goes: "messages[0].content", "body" at the top.
  std::string Path() const {
    std::string path;
    for (size_t i = 0; i < stack_.size(); ++i) {
      const Frame& f = stack_[i];
      const bool innermost = i + 1 == stack_.size();
      if (f.value->is_object()) {
        if (f.slot_key == nullptr) break;
        if (!path.empty()) path += ".";
        path += *f.slot_key;
      } else {  // the open child is the last element; a new one goes after it
        absl::StrAppend(&path, "[", innermost ? f.value->size() : f.value->size() - 1, "]");
      }
    }
    if (path.empty() || path[0] == '[') return absl::StrCat(root_name_, path);
    return path;
  }

  // Places `v` where the next value goes; nullptr (and error_) past a limit.
  JsonT* Add(JsonT&& v) {
    if (++values_ > limits_.max_values) {
      error_ = absl::InvalidArgumentError(
          absl::StrCat(root_name_, ": more than ", limits_.max_values, " JSON values"));
      return nullptr;
    }
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Frame& f = stack_.back();
    if (f.value->is_array()) {
      array_t& arr = f.value->template get_ref<array_t&>();
      arr.emplace_back(std::move(v));
      return &arr.back();
    }
    *f.slot = std::move(v);
    return f.slot;
  }

  bool Open(JsonT&& container) {
    if (static_cast<int>(stack_.size()) >= limits_.max_depth) {
      error_ = absl::InvalidArgumentError(
          absl::StrCat(Path(), ": nested deeper than ", limits_.max_depth, " levels"));
      return false;
    }
    JsonT* placed = Add(std::move(container));
    if (placed == nullptr) return false;
    stack_.emplace_back();
    stack_.back().value = placed;
    return true;
  }

  bool Close() {
    stack_.pop_back();
    return true;
  }

  const JsonLimits limits_;
  const absl::string_view root_name_;
  JsonT root_;
  std::vector<Frame> stack_;
  size_t values_ = 0;
  absl::Status error_;
};

}  // namespace bounded_json_internal

// Parses one JSON text (RFC 8259, no comments) within `limits`. `root_name`
// names the whole text in messages ("body", "tokenizer.json").
template <typename JsonT>
absl::StatusOr<JsonT> ParseBoundedJson(absl::string_view text, const JsonLimits& limits = {},
                                       absl::string_view root_name = "body") {
  bounded_json_internal::Builder<JsonT> builder(limits, root_name);
  const bool parsed = JsonT::sax_parse(text.begin(), text.end(), &builder, nlohmann::json::input_format_t::json,
                                       /*strict=*/true);
  return builder.Result(parsed);
}

}  // namespace moe

#endif  // MOE_CORE_BOUNDED_JSON_H_
