// Small readers for tokenizer.json fields: every failure is a Status whose
// message names the JSON path of the culprit (e.g. "pre_tokenizer.pretokenizers[1].behavior").
// Nothing here throws.
#ifndef MOE_GATEWAY_TOKENIZER_JSON_UTIL_H_
#define MOE_GATEWAY_TOKENIZER_JSON_UTIL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace moe::tokenizer {

using Json = nlohmann::json;

// `where` joined with `key`: "model" + "merges" -> "model.merges".
inline std::string JsonPath(absl::string_view where, absl::string_view key) {
  return where.empty() ? std::string(key) : absl::StrCat(where, ".", key);
}

// The member `key` of object `j`, or nullptr when absent or null.
inline const Json* FindField(const Json& j, absl::string_view key) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(std::string(key));
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

inline absl::StatusOr<std::string> GetString(const Json& j, absl::string_view key, absl::string_view where) {
  const Json* f = FindField(j, key);
  if (f == nullptr) return absl::InvalidArgumentError(absl::StrCat(JsonPath(where, key), " is missing"));
  if (!f->is_string()) return absl::InvalidArgumentError(absl::StrCat(JsonPath(where, key), " is not a string"));
  return f->get<std::string>();
}

inline absl::StatusOr<std::string> GetStringOr(const Json& j, absl::string_view key, absl::string_view fallback,
                                               absl::string_view where) {
  if (FindField(j, key) == nullptr) return std::string(fallback);
  return GetString(j, key, where);
}

inline absl::StatusOr<bool> GetBoolOr(const Json& j, absl::string_view key, bool fallback, absl::string_view where) {
  const Json* f = FindField(j, key);
  if (f == nullptr) return fallback;
  if (!f->is_boolean()) return absl::InvalidArgumentError(absl::StrCat(JsonPath(where, key), " is not a boolean"));
  return f->get<bool>();
}

inline absl::StatusOr<int64_t> GetIntOr(const Json& j, absl::string_view key, int64_t fallback,
                                        absl::string_view where) {
  const Json* f = FindField(j, key);
  if (f == nullptr) return fallback;
  if (!f->is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat(JsonPath(where, key), " is not an integer"));
  }
  return f->get<int64_t>();
}

// The "type" of a component object ("normalizer", "decoders[2]", ...).
inline absl::StatusOr<std::string> ComponentType(const Json& j, absl::string_view where) {
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(where, " is not an object"));
  return GetString(j, "type", where);
}

inline absl::Status Unsupported(absl::string_view where, absl::string_view type) {
  return absl::UnimplementedError(absl::StrCat(where, ": unsupported type '", type, "'"));
}

}  // namespace moe::tokenizer

#endif  // MOE_GATEWAY_TOKENIZER_JSON_UTIL_H_
