#include "grammar/json_schema.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <functional>
#include <optional>
#include <map>
#include <set>
#include <utility>
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
// A key character (additional property names): unescaped, so that a name is
// written one way only and can be told apart from the declared ones.
constexpr char kKeyCharClass[] = R"("\\\x00-\x1f)";
constexpr char kInteger[] = R"(-?(?:0|[1-9]\d*))";
constexpr char kNumber[] = R"(-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)";
// Regex repetition counts up to this are unrolled in an automaton; larger
// ones are counters of the grammar.
constexpr int64_t kMaxUnrolled = 1000;

const std::set<std::string>& Annotations() {
  static const std::set<std::string> a = {"title", "description", "examples", "default", "$comment",
                                          "$schema", "$id", "deprecated", "readOnly", "writeOnly", "$anchor"};
  return a;
}

const std::vector<std::string>& AllTypes() {
  static const std::vector<std::string> t = {"null", "boolean", "object", "array", "number", "string"};
  return t;
}

std::string Digits(int64_t v) { return absl::StrCat(v); }

// Equal-length digit strings a <= b (leading zeros allowed): a regex for
// every digit string of that length in [a, b].
std::string DigitRange(const std::string& a, const std::string& b) {
  if (a.empty()) return "";
  if (a == b) return a;
  if (a.size() == 1) return absl::StrCat("[", a, "-", b, "]");
  if (a[0] == b[0]) return a.substr(0, 1) + DigitRange(a.substr(1), b.substr(1));
  const size_t rest = a.size() - 1;
  std::string out = "(?:" + a.substr(0, 1) + DigitRange(a.substr(1), std::string(rest, '9'));
  if (a[0] + 1 <= b[0] - 1) {
    absl::StrAppend(&out, "|[", std::string(1, static_cast<char>(a[0] + 1)), "-",
                    std::string(1, static_cast<char>(b[0] - 1)), "]\\d{", rest, "}");
  }
  return out + "|" + b.substr(0, 1) + DigitRange(std::string(rest, '0'), b.substr(1)) + ")";
}

// Non-negative integers (no leading zeros) in [a, b]; b < 0: unbounded.
std::string NaturalRange(int64_t a, int64_t b) {
  std::vector<std::string> alts;
  const std::string as = Digits(a);
  const size_t da = as.size();
  const size_t db = b < 0 ? 0 : Digits(b).size();
  auto all_of_length = [](size_t d) { return d == 1 ? std::string("\\d") : absl::StrCat("[1-9]\\d{", d - 1, "}"); };
  if (b >= 0 && da == db) return DigitRange(as, Digits(b));
  alts.push_back(DigitRange(as, std::string(da, '9')));
  if (b < 0) {
    alts.push_back(absl::StrCat("[1-9]\\d{", da, ",}"));
  } else {
    for (size_t d = da + 1; d < db; ++d) alts.push_back(all_of_length(d));
    alts.push_back(DigitRange("1" + std::string(db - 1, '0'), Digits(b)));
  }
  std::string out = "(?:";
  for (size_t i = 0; i < alts.size(); ++i) out += (i > 0 ? "|" : "") + alts[i];
  return out + ")";
}

class Compiler {
 public:
  Compiler(const Json& root, const JsonSchemaOptions& o) : root_(root), o_(o), b_(o.limits) {}

  absl::StatusOr<std::unique_ptr<Grammar>> Build(bool any_object) {
    if (o_.max_whitespace < 1 || o_.max_whitespace > 128) {
      return absl::InvalidArgumentError("json_schema: max_whitespace must be in [1, 128]");
    }
    ASSIGN_OR_RETURN(const int32_t start, b_.Add("json"));
    if (any_object) {
      ASSIGN_OR_RETURN(Expr object, AnyObject());
      b_.Define(start, std::move(object));
    } else {
      ASSIGN_OR_RETURN(Expr e, Schema(root_, "", 0));
      b_.Define(start, std::move(e));
    }
    return b_.Build(start, any_object ? "json_object" : "json_schema");
  }

 private:
  Expr Ws() const {
    return o_.flexible_whitespace ? Expr::Regex(absl::StrCat("[ \\t\\n\\r]{0,", o_.max_whitespace, "}")) : Expr::Empty();
  }
  // `,` or `:` with whitespace around it.
  Expr Punct(const char* p) const { return Expr::Seq({Ws(), Expr::Literal(p), Ws()}); }

  absl::StatusOr<Expr> AnyValue() {
    if (any_value_ >= 0) return Expr::Ref(any_value_);
    ASSIGN_OR_RETURN(any_value_, b_.Add("(any JSON value)"));
    ASSIGN_OR_RETURN(any_object_, b_.Add("(any JSON object)"));
    ASSIGN_OR_RETURN(const int32_t array, b_.Add("(any JSON array)"));
    const Expr value = Expr::Ref(any_value_);
    const Expr string = Expr::Regex(absl::StrCat("\"", kStringChar, "*\""));
    b_.Define(any_value_, Expr::Alt({Expr::Ref(any_object_), Expr::Ref(array), string, Expr::Regex(kNumber),
                                     Expr::Regex("true|false|null")}));
    const Expr member = Expr::Seq({string, Punct(":"), value});
    b_.Define(any_object_, Expr::Seq({Expr::Literal("{"), Ws(),
                                      Expr::Repeat(Expr::Seq({member, Expr::Repeat(Expr::Seq({Punct(","), member}), 0, -1)}), 0, 1),
                                      Ws(), Expr::Literal("}")}));
    b_.Define(array, Expr::Seq({Expr::Literal("["), Ws(),
                                Expr::Repeat(Expr::Seq({value, Expr::Repeat(Expr::Seq({Punct(","), value}), 0, -1)}), 0, 1),
                                Ws(), Expr::Literal("]")}));
    return value;
  }

  absl::StatusOr<Expr> AnyObject() {
    RETURN_IF_ERROR(AnyValue().status());
    return Expr::Ref(any_object_);
  }

  absl::StatusOr<Expr> Schema(const Json& s, const std::string& path, int depth) {
    if (depth > o_.max_depth) return Err(path, absl::StrCat("nesting deeper than ", o_.max_depth));
    if (s.is_boolean()) {
      if (!s.get<bool>()) return Err(path, "the schema false matches nothing");
      return AnyValue();
    }
    if (!s.is_object()) return Err(path, "a schema must be an object or a boolean");
    std::set<std::string> used;
    for (const auto& [key, value] : s.items()) {
      (void)value;
      if (Annotations().count(key) != 0) used.insert(key);
    }
    if (s.contains("$ref")) {
      used.insert("$ref");
      RETURN_IF_ERROR(OnlyKnown(s, path, used));
      return Ref(s["$ref"], path);
    }
    if (s.contains("const") || s.contains("enum")) {
      // Values (of the types given, if any).
      const bool is_const = s.contains("const");
      used.insert({"const", "enum", "type"});
      RETURN_IF_ERROR(OnlyKnown(s, path, used));
      if (is_const && s.contains("enum")) return Err(path, "const and enum together are not supported");
      if (!is_const && (!s["enum"].is_array() || s["enum"].empty())) return Err(path + "/enum", "must be a non-empty array");
      const Json values = is_const ? Json::array({s["const"]}) : s["enum"];
      std::vector<Expr> alts;
      for (const Json& v : values) {
        if (s.contains("type") && !HasType(v, s["type"])) continue;
        alts.push_back(Expr::Literal(v.dump()));
      }
      if (alts.empty()) return Err(path + (is_const ? "/const" : "/enum"), "no value has the schema's type");
      return Expr::Alt(std::move(alts));
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
      std::vector<Expr> alts;
      for (size_t i = 0; i < branches.size(); ++i) {
        if (branches[i].is_boolean() && !branches[i].get<bool>()) continue;  // matches nothing: no branch
        ASSIGN_OR_RETURN(Expr b, Schema(branches[i], absl::StrCat(bpath, "/", i), depth + 1));
        alts.push_back(std::move(b));
      }
      if (alts.empty()) return Err(bpath, "every branch matches nothing");
      return Expr::Alt(std::move(alts));
    }
    Json types = Json::array();
    if (!s.contains("type")) {
      for (const std::string& t : AllTypes()) types.push_back(t);
    } else if (s["type"].is_string()) {
      types.push_back(s["type"]);
    } else if (s["type"].is_array() && !s["type"].empty()) {
      types = s["type"];
    } else {
      return Err(path + "/type", "must be a type name or a non-empty list of them");
    }
    for (size_t i = 0; i < types.size(); ++i) {
      if (!types[i].is_string()) return Err(absl::StrCat(path, "/type/", i), "must be a string");
    }
    RETURN_IF_ERROR(OnlyKnown(s, path, AllKeywordsOf(types)));
    // Keywords apply to their own type; with no keyword at all and every
    // type allowed, this is any JSON value.
    if (!s.contains("type") && ConstrainingKeywords(s) == 0) return AnyValue();
    std::vector<Expr> alts;
    for (const Json& t : types) {
      ASSIGN_OR_RETURN(Expr e, Typed(s, t.get<std::string>(), path, depth));
      alts.push_back(std::move(e));
    }
    return Expr::Alt(std::move(alts));
  }

  // Whether `v` is of one of `types` (a name or a list).
  static bool HasType(const Json& v, const Json& types) {
    auto one = [&](const Json& t) {
      if (!t.is_string()) return false;
      const std::string n = t.get<std::string>();
      if (n == "null") return v.is_null();
      if (n == "boolean") return v.is_boolean();
      if (n == "object") return v.is_object();
      if (n == "array") return v.is_array();
      if (n == "string") return v.is_string();
      if (n == "number") return v.is_number();
      if (n == "integer") return v.is_number_integer() || (v.is_number_float() && v.get<double>() == std::floor(v.get<double>()));
      return false;
    };
    if (types.is_array()) return std::any_of(types.begin(), types.end(), one);
    return one(types);
  }

  // Keywords each type understands.
  std::set<std::string> KeywordsOf(const std::string& type) const {
    std::set<std::string> k = {"type"};
    if (type == "string") k.insert({"minLength", "maxLength", "format", "pattern"});
    if (type == "object") k.insert({"properties", "required", "additionalProperties"});
    if (type == "array") k.insert({"items", "prefixItems", "minItems", "maxItems"});
    if (type == "integer" || type == "number") k.insert({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"});
    for (const std::string& a : Annotations()) k.insert(a);
    return k;
  }
  std::set<std::string> AllKeywordsOf(const Json& types) const {
    std::set<std::string> all = KeywordsOf("");
    for (const Json& t : types) {
      if (t.is_string()) {
        for (const std::string& k : KeywordsOf(t.get<std::string>())) all.insert(k);
      }
    }
    return all;
  }
  // How many of s's keys constrain (not annotations, "type" or definitions).
  size_t ConstrainingKeywords(const Json& s) const {
    const std::set<std::string> plain = KeywordsOf("");
    size_t n = 0;
    for (const auto& [key, value] : s.items()) {
      (void)value;
      if (plain.count(key) == 0 && key != "$defs" && key != "definitions") ++n;
    }
    return n;
  }

  absl::StatusOr<Expr> Typed(const Json& s, const std::string& type, const std::string& path, int depth) {
    if (type == "null") return Expr::Literal("null");
    if (type == "boolean") return Expr::Regex("true|false");
    if (type == "integer") return Integer(s, path);
    if (type == "number") {
      if (s.contains("minimum") || s.contains("maximum") || s.contains("exclusiveMinimum") ||
          s.contains("exclusiveMaximum")) {
        return Err(path + "/minimum", "numeric ranges are supported on type integer only");
      }
      return Expr::Regex(kNumber);
    }
    if (type == "string") return String(s, path);
    if (type == "array") return Array(s, path, depth);
    if (type == "object") return Object(s, path, depth);
    return Err(path + "/type", absl::StrCat("unknown type '", type, "'"));
  }

  absl::StatusOr<Expr> Integer(const Json& s, const std::string& path) {
    constexpr int64_t kInf = INT64_MAX / 4;
    int64_t lo = -kInf, hi = kInf;
    auto bound = [&](const char* key, bool lower, bool exclusive) -> absl::Status {
      if (!s.contains(key)) return absl::OkStatus();
      const Json& v = s[key];
      if (!v.is_number()) return Err(path + "/" + key, "must be a number");
      const double d = v.get<double>();
      if (d > 1e15 || d < -1e15) return Err(path + "/" + key, "out of the supported range (|x| <= 1e15)");
      int64_t x;
      if (lower) {
        x = static_cast<int64_t>(std::ceil(d));
        if (exclusive && static_cast<double>(x) == d) ++x;
        lo = std::max(lo, x);
      } else {
        x = static_cast<int64_t>(std::floor(d));
        if (exclusive && static_cast<double>(x) == d) --x;
        hi = std::min(hi, x);
      }
      return absl::OkStatus();
    };
    RETURN_IF_ERROR(bound("minimum", true, false));
    RETURN_IF_ERROR(bound("exclusiveMinimum", true, true));
    RETURN_IF_ERROR(bound("maximum", false, false));
    RETURN_IF_ERROR(bound("exclusiveMaximum", false, true));
    if (lo == -kInf && hi == kInf) return Expr::Regex(kInteger);
    if (lo > hi) return Err(path, "the integer range is empty");
    std::vector<std::string> alts;
    // Negative part: -x for x in [max(1, -hi), -lo].
    if (lo < 0) {
      const int64_t a = std::max<int64_t>(1, hi < 0 ? -hi : 1);
      const int64_t b = lo == -kInf ? -1 : -lo;
      alts.push_back("-" + NaturalRange(a, b));
    }
    if (hi >= 0) alts.push_back(NaturalRange(std::max<int64_t>(0, lo), hi == kInf ? -1 : hi));
    std::string out;
    for (size_t i = 0; i < alts.size(); ++i) out += (i > 0 ? "|" : "") + alts[i];
    return Expr::Regex(out);
  }

  // min..max string characters (`chr`, a regex of one character) then
  // `suffix` (a regex), counted in the automaton up to kMaxUnrolled and by
  // grammar counters of 64-character chunks beyond. The suffix shares the
  // last piece's automaton, so a lexeme ends only at a chunk boundary or at
  // the suffix, never after every character.
  static Expr Chars(const std::string& chr, int64_t min, int64_t max, const std::string& suffix) {
    auto unrolled = [&](int64_t a, int64_t b, bool with_suffix) {
      std::string r = b < 0 ? absl::StrCat(chr, "{", a, ",}") : absl::StrCat(chr, "{", a, ",", b, "}");
      return Expr::Regex(with_suffix ? r + suffix : r);
    };
    if (min <= kMaxUnrolled && (max < 0 || max <= kMaxUnrolled)) return unrolled(min, max, true);
    constexpr int64_t kChunk = 64;
    const Expr chunk = unrolled(kChunk, kChunk, false);
    // chr{min}: whole chunks, then the rest.
    std::vector<Expr> seq = {Expr::Repeat(chunk, min / kChunk, min / kChunk)};
    const int64_t m = min % kChunk;
    if (max < 0) {
      seq.push_back(unrolled(m, -1, true));
    } else {
      // chr{m, m+d} = chr{m} chr{0,d}; chr{0,d} = chunk{0,q-1} chr{0,63} | chunk{q} chr{0,r}, d = q*64 + r.
      const int64_t d = max - min, q = d / kChunk, r = d % kChunk;
      if (q == 0) {
        seq.push_back(unrolled(m, m + r, true));
      } else {
        seq.push_back(unrolled(m, m, false));
        seq.push_back(Expr::Alt({Expr::Seq({Expr::Repeat(chunk, 0, q - 1), unrolled(0, kChunk - 1, true)}),
                                 Expr::Seq({Expr::Repeat(chunk, q, q), unrolled(0, r, true)})}));
      }
    }
    return Expr::Seq(std::move(seq));
  }

  absl::StatusOr<Expr> String(const Json& s, const std::string& path) {
    const int n_special = (s.contains("format") ? 1 : 0) + (s.contains("pattern") ? 1 : 0);
    if (n_special > 0 && (s.contains("minLength") || s.contains("maxLength") || n_special > 1)) {
      return Err(path, "format, pattern and minLength/maxLength cannot be combined");
    }
    if (s.contains("pattern")) {
      if (!s["pattern"].is_string()) return Err(path + "/pattern", "must be a string");
      std::string p = s["pattern"].get<std::string>();
      const bool start = !p.empty() && p[0] == '^';
      if (start) p.erase(0, 1);
      bool end = !p.empty() && p.back() == '$';
      if (end) {
        size_t slashes = 0;
        for (size_t k = p.size() - 1; k-- > 0 && p[k] == '\\';) ++slashes;
        end = slashes % 2 == 0;
        if (end) p.pop_back();
      }
      const std::string any = "[\\s\\S]*";
      const std::string body = absl::StrCat(start ? "" : any, "(?:", p, ")", end ? "" : any);
      // Raw characters only: a quote, backslash or control character would
      // need an escape, so the pattern never produces one.
      ByteDfaOptions check = o_.limits.dfa;
      check.excluded = {{0, 0x1f}, {'"', '"'}, {'\\', '\\'}};
      if (absl::StatusOr<std::unique_ptr<ByteDfa>> d = ByteDfa::FromRegex(body, check); !d.ok()) {
        return Err(path + "/pattern", std::string(d.status().message()));
      }
      return Expr::Seq({Expr::Literal("\""), Expr::RegexExcluding(body, check.excluded), Expr::Literal("\"")});
    }
    if (s.contains("format")) {
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
      return Expr::Regex("\"" + body + "\"");
    }
    ASSIGN_OR_RETURN(const int64_t min, Count(s, "minLength", path, 0));
    ASSIGN_OR_RETURN(const int64_t max, Count(s, "maxLength", path, -1));
    if (max >= 0 && max < min) return Err(path + "/maxLength", "is less than minLength");
    return Expr::Seq({Expr::Literal("\""), Chars(kStringChar, min, max, "\"")});
  }

  absl::StatusOr<Expr> Array(const Json& s, const std::string& path, int depth) {
    ASSIGN_OR_RETURN(const int64_t min, Count(s, "minItems", path, 0));
    ASSIGN_OR_RETURN(const int64_t max, Count(s, "maxItems", path, -1));
    if (max >= 0 && max < min) return Err(path + "/maxItems", "is less than minItems");
    std::vector<Expr> prefix;
    if (s.contains("prefixItems")) {
      if (!s["prefixItems"].is_array()) return Err(path + "/prefixItems", "must be an array");
      for (size_t i = 0; i < s["prefixItems"].size(); ++i) {
        ASSIGN_OR_RETURN(Expr p, Schema(s["prefixItems"][i], absl::StrCat(path, "/prefixItems/", i), depth + 1));
        prefix.push_back(std::move(p));
      }
    }
    Expr item = Expr::Empty();
    bool more_allowed = true;
    if (s.contains("items") && s["items"].is_boolean() && !s["items"].get<bool>()) {
      more_allowed = false;
    } else if (s.contains("items")) {
      ASSIGN_OR_RETURN(item, Schema(s["items"], path + "/items", depth + 1));
    } else {
      ASSIGN_OR_RETURN(item, AnyValue());
    }
    const Expr open = Expr::Seq({Expr::Literal("["), Ws()});
    const Expr close = Expr::Seq({Ws(), Expr::Literal("]")});
    const auto n = static_cast<int64_t>(prefix.size());
    if (n == 0) {
      if (!more_allowed || max == 0) {
        if (min > 0) return Err(path + "/minItems", "no items are allowed");
        return Expr::Seq({open, close});
      }
      const Expr more = Expr::Repeat(Expr::Seq({Punct(","), item}), std::max<int64_t>(0, min - 1), max < 0 ? -1 : max - 1);
      const Expr items = Expr::Seq({item, more});
      return Expr::Seq({open, min == 0 ? Expr::Repeat(items, 0, 1) : items, close});
    }
    if (min > n && !more_allowed) return Err(path + "/minItems", "is more than the prefixItems allowed");
    // Prefix items in order, each one where the array may end once min is
    // reached; the tail only after a complete prefix.
    const int64_t last = max >= 0 ? std::min(n, max) : n;
    Expr tail = Expr::Empty();
    if (more_allowed && (max < 0 || max > n)) {
      tail = Expr::Repeat(Expr::Seq({Punct(","), item}), std::max<int64_t>(0, min - n), max < 0 ? -1 : max - n);
    }
    // Built from the end: rest[i] = item i (with its comma), then rest[i+1]
    // (optional when i+1 >= min).
    Expr rest = tail;
    for (int64_t i = last; i-- > 0;) {
      Expr here = i == 0 ? prefix[i] : Expr::Seq({Punct(","), prefix[i]});
      here = Expr::Seq({here, rest});
      rest = i >= min ? Expr::Repeat(here, 0, 1) : here;
    }
    return Expr::Seq({open, rest, close});
  }

  // Property names other than `declared`, written without escapes.
  static std::string KeyNotIn(const std::vector<std::string>& declared) {
    // Over the trie of the declared names: at each node, either stop (when
    // no name ends there), or go on with a character no name continues with,
    // then anything, or with a character one does, recursively.
    struct Node {
      bool end = false;
      std::map<std::string, Node> next;  // by UTF-8 character
    };
    Node root;
    for (const std::string& name : declared) {
      Node* at = &root;
      for (size_t i = 0; i < name.size();) {
        const auto c = static_cast<uint8_t>(name[i]);
        const size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
        at = &at->next[name.substr(i, len)];
        i += len;
      }
      at->end = true;
    }
    const std::string any = absl::StrCat("[^", kKeyCharClass, "]*");
    std::function<std::string(const Node&)> build = [&](const Node& node) {
      std::vector<std::string> alts;
      if (!node.end) alts.push_back("");
      std::string other = absl::StrCat("[^", kKeyCharClass);
      for (const auto& [ch, child] : node.next) {
        other += EscapeRegex(ch);
        alts.push_back(EscapeRegex(ch) + build(child));
      }
      alts.push_back(other + "]" + any);
      std::string out = "(?:";
      for (size_t i = 0; i < alts.size(); ++i) out += (i > 0 ? "|" : "") + alts[i];
      return out + ")";
    };
    return build(root);
  }

  absl::StatusOr<Expr> Object(const Json& s, const std::string& path, int depth) {
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) return Err(path + "/required", "must be an array of names");
      for (const Json& r : s["required"]) {
        if (!r.is_string()) return Err(path + "/required", "must be an array of names");
        required.insert(r.get<std::string>());
      }
    }
    std::vector<std::pair<Expr, bool>> props;  // "key":value, required
    std::vector<std::string> names;
    if (s.contains("properties")) {
      if (!s["properties"].is_object()) return Err(path + "/properties", "must be an object");
      for (const auto& [key, sub] : s["properties"].items()) {
        if (sub.is_boolean() && !sub.get<bool>()) {
          if (required.count(key) != 0) return Err(path + "/properties/" + key, "is required but matches nothing");
          names.push_back(key);  // never written, and not an additional property either
          continue;
        }
        ASSIGN_OR_RETURN(Expr v, Schema(sub, path + "/properties/" + key, depth + 1));
        props.emplace_back(Expr::Seq({Expr::Literal(Json(key).dump()), Punct(":"), std::move(v)}), required.count(key) != 0);
        names.push_back(key);
        required.erase(key);
      }
    }
    if (!required.empty()) {
      return Err(path + "/required", absl::StrCat("'", *required.begin(), "' is required but not in properties"));
    }
    // Additional properties: other names, any value (or the given schema).
    std::optional<Expr> extra;
    const Json* ap = s.contains("additionalProperties") ? &s["additionalProperties"] : nullptr;
    if (ap == nullptr || !(ap->is_boolean() && !ap->get<bool>())) {
      Expr value = Expr::Empty();
      if (ap == nullptr || ap->is_boolean()) {
        ASSIGN_OR_RETURN(value, AnyValue());
      } else {
        ASSIGN_OR_RETURN(value, Schema(*ap, path + "/additionalProperties", depth + 1));
      }
      extra = Expr::Seq({Expr::Regex("\"" + KeyNotIn(names) + "\""), Punct(":"), std::move(value)});
    }
    const Expr comma = Punct(",");
    const size_t n = props.size();
    // rest: the members from i on, each preceded by a comma; first: the
    // members from i on, none written yet.
    Expr rest = extra ? Expr::Repeat(Expr::Seq({comma, *extra}), 0, -1) : Expr::Empty();
    Expr first = extra ? Expr::Repeat(Expr::Seq({*extra, Expr::Repeat(Expr::Seq({comma, *extra}), 0, -1)}), 0, 1)
                       : Expr::Empty();
    for (size_t i = n; i-- > 0;) {
      const Expr& p = props[i].first;
      Expr with_rest = Expr::Seq({p, rest});
      Expr new_rest = props[i].second ? Expr::Seq({comma, with_rest}) : Expr::Seq({Expr::Repeat(Expr::Seq({comma, p}), 0, 1), rest});
      first = props[i].second ? with_rest : Expr::Alt({with_rest, first});
      rest = std::move(new_rest);
    }
    return Expr::Seq({Expr::Literal("{"), Ws(), first, Ws(), Expr::Literal("}")});
  }

  absl::StatusOr<Expr> Ref(const Json& ref, const std::string& path) {
    if (!ref.is_string()) return Err(path + "/$ref", "must be a string");
    const std::string r = ref.get<std::string>();
    auto known = refs_.find(r);
    if (known != refs_.end()) return Expr::Ref(known->second);
    const Json* target = nullptr;
    if (r == "#") {
      target = &root_;
    } else if (r.rfind("#/$defs/", 0) == 0 && root_.contains("$defs") && root_["$defs"].is_object() &&
               root_["$defs"].contains(r.substr(8))) {
      target = &root_["$defs"][r.substr(8)];
    } else if (r.rfind("#/definitions/", 0) == 0 && root_.contains("definitions") &&
               root_["definitions"].is_object() && root_["definitions"].contains(r.substr(14))) {
      target = &root_["definitions"][r.substr(14)];
    }
    if (target == nullptr) {
      return Err(path + "/$ref", absl::StrCat("'", r, "' does not name the root, an entry of #/$defs or of #/definitions"));
    }
    ASSIGN_OR_RETURN(const int32_t id, b_.Add(r));
    refs_.emplace(r, id);
    ASSIGN_OR_RETURN(Expr e, Schema(*target, r == "#" ? "" : r.substr(1), 1));
    b_.Define(id, std::move(e));
    return Expr::Ref(id);
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

  absl::StatusOr<int64_t> Count(const Json& s, const char* key, const std::string& path, int64_t absent) const {
    if (!s.contains(key)) return absent;
    const Json& v = s[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > o_.max_count) {
      return Err(path + "/" + key, absl::StrCat("must be an integer in [0, ", o_.max_count, "]"));
    }
    return v.get<int64_t>();
  }

  static absl::Status Err(const std::string& path, const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("json_schema ", path.empty() ? "/" : path, ": ", what));
  }

  const Json& root_;
  const JsonSchemaOptions& o_;
  GrammarBuilder b_;
  int32_t any_value_ = -1, any_object_ = -1;
  std::map<std::string, int32_t> refs_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Grammar>> JsonSchemaToGrammar(absl::string_view schema_json, const JsonSchemaOptions& o) {
  const Json schema = Json::parse(schema_json, nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) return absl::InvalidArgumentError("json_schema: not valid JSON");
  Compiler c(schema, o);
  return c.Build(/*any_object=*/false);
}

absl::StatusOr<std::unique_ptr<Grammar>> JsonObjectGrammar(const JsonSchemaOptions& o) {
  const Json none;
  Compiler c(none, o);
  return c.Build(/*any_object=*/true);
}

}  // namespace moe::grammar
