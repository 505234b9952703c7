#include "grammar/json_schema.h"

#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "grammar/byte_dfa.h"
#include "nlohmann/json.hpp"

namespace moe::grammar {
namespace {

// Ordered: properties keep the schema's order (the output's key order).
using Json = nlohmann::ordered_json;

// One JSON string's content character: not a quote, backslash or control
// character, or an escape.
constexpr char kStringChar[] = R"((?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4}))";
constexpr char kInteger[] = R"(-?(?:0|[1-9]\d*))";
constexpr char kNumber[] = R"(-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)";

const std::set<std::string>& Annotations() {
  static const std::set<std::string> a = {"title", "description", "examples", "default", "$comment",
                                          "$schema", "$id", "deprecated", "readOnly", "writeOnly"};
  return a;
}

class Compiler {
 public:
  Compiler(const Json& root, const JsonSchemaOptions& o) : root_(root), o_(o) {}

  absl::StatusOr<std::string> Schema(const Json& s, const std::string& path, int depth) {
    if (depth > o_.max_depth) return Err(path, absl::StrCat("nesting deeper than ", o_.max_depth));
    if (s.is_boolean()) {
      if (!s.get<bool>()) return Err(path, "the schema false matches nothing");
      return Err(path, "the schema true (any JSON value) is not supported yet (it needs the grammar engine)");
    }
    if (!s.is_object()) return Err(path, "a schema must be an object or a boolean");
    std::set<std::string> used = {"type"};
    for (const auto& [key, value] : s.items()) {
      (void)value;
      if (Annotations().count(key) != 0) used.insert(key);
    }
    if (s.contains("$ref")) {
      used.insert("$ref");
      RETURN_IF_ERROR(OnlyKnown(s, path, used));
      return Ref(s["$ref"], path, depth);
    }
    if (s.contains("const")) {
      used.insert("const");
      RETURN_IF_ERROR(OnlyKnown(s, path, used));
      return Literal(s["const"]);
    }
    if (s.contains("enum")) {
      used.insert("enum");
      RETURN_IF_ERROR(OnlyKnown(s, path, used));
      if (!s["enum"].is_array() || s["enum"].empty()) return Err(path + "/enum", "must be a non-empty array");
      std::string out = "(?:";
      for (size_t i = 0; i < s["enum"].size(); ++i) {
        if (i > 0) out += "|";
        out += Literal(s["enum"][i]);
      }
      return out + ")";
    }
    for (const char* combinator : {"anyOf", "oneOf"}) {
      if (!s.contains(combinator)) continue;
      used.insert(combinator);
      RETURN_IF_ERROR(OnlyKnown(s, path, used));
      const Json& branches = s[combinator];
      const std::string bpath = path + "/" + combinator;
      if (!branches.is_array() || branches.empty()) return Err(bpath, "must be a non-empty array");
      if (std::string(combinator) == "oneOf") {
        // Disjoint only when every branch has a type no other branch has.
        std::set<std::string> types;
        for (const Json& b : branches) {
          if (!b.is_object() || !b.contains("type") || !b["type"].is_string() || !types.insert(b["type"]).second) {
            return Err(bpath, "oneOf is supported only when its branches have distinct single types (provably "
                              "disjoint); use anyOf");
          }
        }
      }
      std::string out = "(?:";
      for (size_t i = 0; i < branches.size(); ++i) {
        ASSIGN_OR_RETURN(std::string b, Schema(branches[i], absl::StrCat(bpath, "/", i), depth + 1));
        if (i > 0) out += "|";
        out += b;
      }
      return out + ")";
    }
    if (!s.contains("type")) {
      return Err(path, "a schema without type, enum, const, anyOf, oneOf or $ref (any JSON value) is not supported "
                       "yet");
    }
    const Json& type = s["type"];
    if (type.is_array()) {
      if (type.empty()) return Err(path + "/type", "an empty list of types");
      std::string out = "(?:";
      for (size_t i = 0; i < type.size(); ++i) {
        if (!type[i].is_string()) return Err(absl::StrCat(path, "/type/", i), "must be a string");
        Json one = s;
        one["type"] = type[i];
        ASSIGN_OR_RETURN(std::string b, Typed(one, type[i].get<std::string>(), path, depth, /*check_keywords=*/false));
        if (i > 0) out += "|";
        out += b;
      }
      RETURN_IF_ERROR(OnlyKnown(s, path, AllKeywordsOf(type)));
      return out + ")";
    }
    if (!type.is_string()) return Err(path + "/type", "must be a string or a list of strings");
    return Typed(s, type.get<std::string>(), path, depth, /*check_keywords=*/true);
  }

 private:
  // Keywords each type understands.
  std::set<std::string> KeywordsOf(const std::string& type) const {
    std::set<std::string> k = {"type"};
    if (type == "string") k.insert({"minLength", "maxLength", "format"});
    if (type == "object") k.insert({"properties", "required", "additionalProperties"});
    if (type == "array") k.insert({"items", "prefixItems", "minItems", "maxItems"});
    for (const std::string& a : Annotations()) k.insert(a);
    return k;
  }
  std::set<std::string> AllKeywordsOf(const Json& types) const {
    std::set<std::string> all;
    for (const Json& t : types) {
      if (t.is_string()) {
        for (const std::string& k : KeywordsOf(t.get<std::string>())) all.insert(k);
      }
    }
    return all;
  }

  absl::StatusOr<std::string> Typed(const Json& s, const std::string& type, const std::string& path, int depth,
                                    bool check_keywords) {
    if (check_keywords) RETURN_IF_ERROR(OnlyKnown(s, path, KeywordsOf(type)));
    if (type == "null") return std::string("null");
    if (type == "boolean") return std::string("(?:true|false)");
    if (type == "integer") return std::string(kInteger);
    if (type == "number") return std::string(kNumber);
    if (type == "string") return String(s, path);
    if (type == "array") return Array(s, path, depth);
    if (type == "object") return Object(s, path, depth);
    return Err(path + "/type", absl::StrCat("unknown type '", type, "'"));
  }

  absl::StatusOr<std::string> String(const Json& s, const std::string& path) {
    if (s.contains("format")) {
      if (s.contains("minLength") || s.contains("maxLength")) {
        return Err(path, "format together with minLength/maxLength is not supported");
      }
      const std::string f = s["format"].is_string() ? s["format"].get<std::string>() : "";
      const std::string date = R"(\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]))";
      const std::string time = R"((?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,9})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d))";
      std::string body;
      if (f == "date") body = date;
      else if (f == "time") body = time;
      else if (f == "date-time") body = date + "T" + time;
      else if (f == "uuid") body = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
      else if (f == "email") body = R"([A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24})";
      else if (f == "ipv4") body = R"((?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d))";
      else return Err(path + "/format", absl::StrCat("format '", f, "' is not supported (date, time, date-time, uuid, email, ipv4 are)"));
      return "\"" + body + "\"";
    }
    ASSIGN_OR_RETURN(const int min, Count(s, "minLength", path, 0));
    ASSIGN_OR_RETURN(const int max, Count(s, "maxLength", path, -1));
    if (max >= 0 && max < min) return Err(path + "/maxLength", "is less than minLength");
    return absl::StrCat("\"", kStringChar, Repeat(min, max), "\"");
  }

  absl::StatusOr<std::string> Array(const Json& s, const std::string& path, int depth) {
    ASSIGN_OR_RETURN(const int min, Count(s, "minItems", path, 0));
    ASSIGN_OR_RETURN(const int max, Count(s, "maxItems", path, -1));
    if (max >= 0 && max < min) return Err(path + "/maxItems", "is less than minItems");
    std::vector<std::string> prefix;
    if (s.contains("prefixItems")) {
      if (!s["prefixItems"].is_array()) return Err(path + "/prefixItems", "must be an array");
      for (size_t i = 0; i < s["prefixItems"].size(); ++i) {
        ASSIGN_OR_RETURN(std::string p, Schema(s["prefixItems"][i], absl::StrCat(path, "/prefixItems/", i), depth + 1));
        prefix.push_back(p);
      }
    }
    std::string item;
    bool more_allowed = true;
    if (s.contains("items")) {
      if (s["items"].is_boolean() && !s["items"].get<bool>()) {
        more_allowed = false;
      } else {
        ASSIGN_OR_RETURN(item, Schema(s["items"], path + "/items", depth + 1));
      }
    } else if (!prefix.empty()) {
      more_allowed = false;  // strict: only the prefix items (extra items would be any JSON)
    } else {
      return Err(path, "an array without items (any JSON items) is not supported yet");
    }
    const int n = static_cast<int>(prefix.size());
    if (n == 0) {
      if (min == 0) {
        return absl::StrCat("\\[(?:", item, "(?:,", item, ")", Repeat(0, max < 0 ? -1 : max - 1), ")", max == 0 ? "{0}" : "?", "\\]");
      }
      return absl::StrCat("\\[", item, "(?:,", item, ")", Repeat(min - 1, max < 0 ? -1 : max - 1), "\\]");
    }
    // Prefix items in order; each may be where the array ends once min is reached.
    if (min > n && !more_allowed) return Err(path + "/minItems", "is more than the prefixItems allowed");
    std::string out = "\\[";
    std::string closing;
    for (int i = 0; i < n; ++i) {
      const std::string sep = i == 0 ? "" : ",";
      if (i >= min && (max < 0 || i < max)) {
        out += "(?:" + sep + prefix[i];
        closing += ")?";
      } else if (max >= 0 && i >= max) {
        break;
      } else {
        out += sep + prefix[i];
      }
    }
    std::string tail;
    if (more_allowed && (max < 0 || max > n)) {
      const int extra_min = std::max(0, min - n);
      tail = absl::StrCat("(?:,", item, ")", Repeat(extra_min, max < 0 ? -1 : max - n));
    }
    // The tail only follows a complete prefix: put it inside the innermost optional group.
    return out + tail + closing + "\\]";
  }

  absl::StatusOr<std::string> Object(const Json& s, const std::string& path, int depth) {
    const bool closed = s.contains("additionalProperties") && s["additionalProperties"].is_boolean() &&
                        !s["additionalProperties"].get<bool>();
    if (!closed) {
      return Err(path + "/additionalProperties",
                 "must be false: other keys would take any JSON value, which needs the grammar engine (not yet)");
    }
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) return Err(path + "/required", "must be an array of names");
      for (const Json& r : s["required"]) {
        if (!r.is_string()) return Err(path + "/required", "must be an array of names");
        required.insert(r.get<std::string>());
      }
    }
    std::vector<std::pair<std::string, bool>> props;  // regex of "key":value, required
    if (s.contains("properties")) {
      if (!s["properties"].is_object()) return Err(path + "/properties", "must be an object");
      for (const auto& [key, sub] : s["properties"].items()) {
        ASSIGN_OR_RETURN(std::string v, Schema(sub, path + "/properties/" + key, depth + 1));
        props.emplace_back(EscapeRegex(Json(key).dump()) + ":" + v, required.count(key) != 0);
        required.erase(key);
      }
    }
    if (!required.empty()) {
      return Err(path + "/required", absl::StrCat("'", *required.begin(), "' is required but not in properties"));
    }
    // Properties in order; a comma goes before every property but the first
    // one present. Optional ones: (?:,P)? after a present one; before the
    // first present one, an alternation of which one comes first.
    const size_t n = props.size();
    // rest[i]: the properties from i on, each preceded by a comma.
    std::vector<std::string> rest(n + 1);
    for (size_t i = n; i-- > 0;) {
      rest[i] = props[i].second ? "," + props[i].first + rest[i + 1] : "(?:," + props[i].first + ")?" + rest[i + 1];
    }
    // first[i]: the properties from i on, none present yet.
    std::string first;
    {
      std::vector<std::string> f(n + 1);
      f[n] = "";
      for (size_t i = n; i-- > 0;) {
        if (props[i].second) {
          f[i] = props[i].first + rest[i + 1];
        } else {
          f[i] = "(?:" + props[i].first + rest[i + 1] + "|" + f[i + 1] + ")";
        }
      }
      first = f[0];
    }
    return "\\{" + first + "\\}";
  }

  absl::StatusOr<std::string> Ref(const Json& ref, const std::string& path, int depth) {
    if (!ref.is_string()) return Err(path + "/$ref", "must be a string");
    const std::string r = ref.get<std::string>();
    std::string name;
    const Json* defs = nullptr;
    if (r.rfind("#/$defs/", 0) == 0 && root_.contains("$defs")) {
      name = r.substr(8);
      defs = &root_["$defs"];
    } else if (r.rfind("#/definitions/", 0) == 0 && root_.contains("definitions")) {
      name = r.substr(14);
      defs = &root_["definitions"];
    }
    if (defs == nullptr || !defs->is_object() || !defs->contains(name)) {
      return Err(path + "/$ref", absl::StrCat("'", r, "' does not name an entry of #/$defs or #/definitions"));
    }
    if (!active_.insert(r).second) {
      return Err(path + "/$ref", absl::StrCat("'", r, "' is recursive: recursion needs the grammar engine (not yet)"));
    }
    absl::StatusOr<std::string> out = Schema((*defs)[name], path + "/$ref", depth + 1);
    active_.erase(r);
    return out;
  }

  absl::Status OnlyKnown(const Json& s, const std::string& path, const std::set<std::string>& known) const {
    for (const auto& [key, value] : s.items()) {
      (void)value;
      if (key == "$defs" || key == "definitions") continue;  // read through $ref
      if (known.count(key) == 0) {
        return absl::InvalidArgumentError(absl::StrCat("json_schema ", path, "/", key, ": keyword not supported"));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int> Count(const Json& s, const char* key, const std::string& path, int absent) const {
    if (!s.contains(key)) return absent;
    const Json& v = s[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > o_.max_repeat) {
      return Err(path + "/" + key, absl::StrCat("must be an integer in [0, ", o_.max_repeat, "]"));
    }
    return static_cast<int>(v.get<int64_t>());
  }

  static std::string Repeat(int min, int max) {
    if (max < 0) return min == 0 ? "*" : absl::StrCat("{", min, ",}");
    return min == max ? absl::StrCat("{", min, "}") : absl::StrCat("{", min, ",", max, "}");
  }

  static std::string Literal(const Json& v) { return "(?:" + EscapeRegex(v.dump()) + ")"; }

  static absl::Status Err(const std::string& path, const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("json_schema ", path.empty() ? "/" : path, ": ", what));
  }

  const Json& root_;
  const JsonSchemaOptions& o_;
  std::set<std::string> active_;  // $refs being expanded
};

}  // namespace

absl::StatusOr<std::string> JsonSchemaToRegex(absl::string_view schema_json, const JsonSchemaOptions& o) {
  const Json schema = Json::parse(schema_json, nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) return absl::InvalidArgumentError("json_schema: not valid JSON");
  Compiler c(schema, o);
  absl::StatusOr<std::string> regex = c.Schema(schema, "", 0);
  if (!regex.ok()) return regex.status();
  if (static_cast<int64_t>(regex->size()) > o.max_regex_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("json_schema: too large (", regex->size(), " bytes as a pattern, at most ",
                                                   o.max_regex_bytes, ")"));
  }
  return regex;
}

}  // namespace moe::grammar
