#include "grammar/gbnf.h"

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace moe::grammar {
namespace {

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

std::string Utf8(uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return out;
}

// A code point as a regex class member.
std::string ClassMember(uint32_t cp) { return absl::StrFormat("\\u{%X}", cp); }

class GbnfParser {
 public:
  GbnfParser(absl::string_view text, const GbnfOptions& o) : t_(text), o_(o), builder_(o.limits) {}

  absl::StatusOr<std::unique_ptr<Grammar>> Parse() {
    if (static_cast<int64_t>(t_.size()) > o_.max_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("grammar: ", t_.size(), " bytes, at most ", o_.max_bytes));
    }
    Space();
    if (i_ >= t_.size()) return absl::InvalidArgumentError("grammar: no rules");
    while (err_.ok() && i_ < t_.size()) {
      const size_t at = i_;
      std::string name = Name();
      if (name.empty()) {
        Fail("expected a rule name");
        break;
      }
      Space();
      if (t_.substr(i_, 3) != "::=") {
        Fail("expected '::=' after the rule name");
        break;
      }
      i_ += 3;
      Space();
      const int32_t id = Id(name, at);
      if (!err_.ok()) break;
      if (defined_.count(name) != 0) {
        i_ = at;
        Fail(absl::StrCat("rule '", name, "' is defined twice"));
        break;
      }
      defined_[name] = at;
      Expr e = Alternatives(0);
      if (!err_.ok()) break;
      builder_.Define(id, std::move(e));
      if (i_ < t_.size() && t_[i_] == ')') Fail("unbalanced ')'");
    }
    if (!err_.ok()) return err_;
    for (const auto& [name, use] : used_) {
      if (defined_.count(name) == 0) {
        i_ = use;
        Fail(absl::StrCat("rule '", name, "' is used but not defined"));
        return err_;
      }
    }
    auto root = ids_.find("root");
    if (root == ids_.end() || defined_.count("root") == 0) return absl::InvalidArgumentError("grammar: no 'root' rule");
    return builder_.Build(root->second, "grammar");
  }

 private:
  void Fail(absl::string_view what) {
    if (!err_.ok()) return;
    int line = 1, col = 1;
    for (size_t k = 0; k < i_ && k < t_.size(); ++k) {
      if (t_[k] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    err_ = absl::InvalidArgumentError(absl::StrCat("grammar: line ", line, " column ", col, ": ", what));
  }

  void Space() {
    while (i_ < t_.size()) {
      const char c = t_[i_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++i_;
      } else if (c == '#') {
        while (i_ < t_.size() && t_[i_] != '\n') ++i_;
      } else {
        break;
      }
    }
  }

  std::string Name() {
    const size_t b = i_;
    while (i_ < t_.size() && NameChar(t_[i_])) ++i_;
    return std::string(t_.substr(b, i_ - b));
  }

  int32_t Id(const std::string& name, size_t at) {
    auto it = ids_.find(name);
    if (it != ids_.end()) return it->second;
    if (static_cast<int>(ids_.size()) >= o_.max_rules) {
      i_ = at;
      Fail(absl::StrCat("more than ", o_.max_rules, " rules"));
      return 0;
    }
    absl::StatusOr<int32_t> id = builder_.Add(name);
    if (!id.ok()) {
      Fail(id.status().message());
      return 0;
    }
    ids_.emplace(name, *id);
    return *id;
  }

  // Whether a new rule starts here (`name ::=`).
  bool AtRuleStart() const {
    size_t k = i_;
    while (k < t_.size() && NameChar(t_[k])) ++k;
    if (k == i_) return false;
    while (k < t_.size() && (t_[k] == ' ' || t_[k] == '\t' || t_[k] == '\n' || t_[k] == '\r')) ++k;
    return t_.substr(k, 3) == "::=";
  }

  Expr Alternatives(int depth) {
    if (depth > o_.max_depth) {
      Fail(absl::StrCat("groups nested deeper than ", o_.max_depth));
      return Expr::Empty();
    }
    std::vector<Expr> alts;
    alts.push_back(Sequence(depth));
    while (err_.ok() && i_ < t_.size() && t_[i_] == '|') {
      ++i_;
      Space();
      alts.push_back(Sequence(depth));
    }
    return Expr::Alt(std::move(alts));
  }

  Expr Sequence(int depth) {
    std::vector<Expr> items;
    while (err_.ok() && i_ < t_.size()) {
      const char c = t_[i_];
      if (c == '|' || c == ')' || AtRuleStart()) break;
      Expr item = Item(depth);
      if (!err_.ok()) break;
      Space();
      item = Quantified(std::move(item));
      Space();
      items.push_back(std::move(item));
    }
    if (items.empty()) return Expr::Empty();
    return Expr::Seq(std::move(items));
  }

  Expr Quantified(Expr item) {
    while (err_.ok() && i_ < t_.size()) {
      const char c = t_[i_];
      if (c == '*') {
        ++i_;
        item = Expr::Repeat(std::move(item), 0, -1);
      } else if (c == '+') {
        ++i_;
        item = Expr::Repeat(std::move(item), 1, -1);
      } else if (c == '?') {
        ++i_;
        item = Expr::Repeat(std::move(item), 0, 1);
      } else if (c == '{') {
        ++i_;
        Space();
        const int64_t min = Number();
        int64_t max = min;
        Space();
        if (i_ < t_.size() && t_[i_] == ',') {
          ++i_;
          Space();
          max = i_ < t_.size() && t_[i_] == '}' ? -1 : Number();
          Space();
        }
        if (i_ >= t_.size() || t_[i_] != '}') {
          Fail("expected '}' closing the repetition count");
          return item;
        }
        ++i_;
        if (min < 0 || (max >= 0 && max < min)) {
          Fail("a repetition {n,m} needs 0 <= n <= m");
          return item;
        }
        item = Expr::Repeat(std::move(item), min, max);
      } else {
        break;
      }
      Space();
    }
    return item;
  }

  int64_t Number() {
    const size_t b = i_;
    int64_t v = 0;
    while (i_ < t_.size() && t_[i_] >= '0' && t_[i_] <= '9') {
      v = v * 10 + (t_[i_] - '0');
      if (v > o_.max_repeat) {
        Fail(absl::StrCat("a repetition count over ", o_.max_repeat));
        return -1;
      }
      ++i_;
    }
    if (i_ == b) {
      Fail("expected a number");
      return -1;
    }
    return v;
  }

  // One character of a literal or class (escapes decoded), as a code point.
  uint32_t Char() {
    if (t_[i_] != '\\') return Utf8CodePoint();
    ++i_;
    if (i_ >= t_.size()) {
      Fail("an escape at the end of the text");
      return 0;
    }
    const char e = t_[i_++];
    switch (e) {
      case 'n': return '\n';
      case 'r': return '\r';
      case 't': return '\t';
      case '\\': case '"': case '\'': case '[': case ']': case '-': case '^': return static_cast<uint8_t>(e);
      case 'x': return Hex(2);
      case 'u': return Hex(4);
      case 'U': return Hex(8);
      default:
        i_ -= 2;
        Fail(absl::StrCat("unknown escape '\\", std::string(1, e), "'"));
        return 0;
    }
  }

  uint32_t Hex(int digits) {
    uint32_t v = 0;
    for (int k = 0; k < digits; ++k) {
      if (i_ >= t_.size()) {
        Fail("a truncated hex escape");
        return 0;
      }
      const char c = t_[i_];
      int d = -1;
      if (c >= '0' && c <= '9') d = c - '0';
      if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      if (d < 0) {
        Fail("a bad hex digit");
        return 0;
      }
      v = v * 16 + static_cast<uint32_t>(d);
      ++i_;
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
      Fail("an escape that is not a Unicode scalar value");
      return 0;
    }
    return v;
  }

  uint32_t Utf8CodePoint() {
    const auto b0 = static_cast<uint8_t>(t_[i_]);
    int n = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
    if (n == 0 || i_ + n > t_.size()) {
      Fail("invalid UTF-8");
      i_ = t_.size();
      return 0;
    }
    uint32_t cp = n == 1 ? b0 : b0 & (0x7F >> n);
    for (int k = 1; k < n; ++k) {
      const auto b = static_cast<uint8_t>(t_[i_ + k]);
      if ((b & 0xC0) != 0x80) {
        Fail("invalid UTF-8");
        i_ = t_.size();
        return 0;
      }
      cp = (cp << 6) | (b & 0x3F);
    }
    i_ += n;
    return cp;
  }

  Expr Item(int depth) {
    const char c = t_[i_];
    if (c == '"' || c == '\'') {
      const char quote = c;
      ++i_;
      std::string text;
      while (err_.ok() && i_ < t_.size() && t_[i_] != quote) text += Utf8(Char());
      if (i_ >= t_.size()) {
        Fail("an unterminated literal");
        return Expr::Empty();
      }
      ++i_;
      return Expr::Literal(text);
    }
    if (c == '[') {
      ++i_;
      std::string cls = "[";
      if (i_ < t_.size() && t_[i_] == '^') {
        cls += '^';
        ++i_;
      }
      bool any = false;
      while (err_.ok() && i_ < t_.size() && t_[i_] != ']') {
        const uint32_t lo = Char();
        cls += ClassMember(lo);
        if (i_ + 1 < t_.size() && t_[i_] == '-' && t_[i_ + 1] != ']') {
          ++i_;
          const uint32_t hi = Char();
          if (hi < lo) {
            Fail("a class range whose end is below its start");
            return Expr::Empty();
          }
          cls += "-" + ClassMember(hi);
        }
        any = true;
      }
      if (i_ >= t_.size()) {
        Fail("an unterminated character class");
        return Expr::Empty();
      }
      ++i_;
      if (!any) {
        Fail("an empty character class");
        return Expr::Empty();
      }
      return Expr::Regex(cls + "]");
    }
    if (c == '.') {
      ++i_;
      return Expr::Regex("[\\s\\S]");
    }
    if (c == '(') {
      ++i_;
      Space();
      Expr inner = Alternatives(depth + 1);
      if (!err_.ok()) return inner;
      if (i_ >= t_.size() || t_[i_] != ')') {
        Fail("missing ')'");
        return inner;
      }
      ++i_;
      return inner;
    }
    if (NameChar(c)) {
      const size_t at = i_;
      std::string name = Name();
      const int32_t id = Id(name, at);
      used_.emplace(name, at);
      return Expr::Ref(id);
    }
    Fail(absl::StrCat("unexpected character '", std::string(1, c), "'"));
    return Expr::Empty();
  }

  absl::string_view t_;
  const GbnfOptions& o_;
  GrammarBuilder builder_;
  size_t i_ = 0;
  absl::Status err_;
  std::map<std::string, int32_t> ids_;
  std::map<std::string, size_t> defined_;
  std::map<std::string, size_t> used_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Grammar>> ParseGbnf(absl::string_view text, const GbnfOptions& options) {
  GbnfParser p(text, options);
  return p.Parse();
}

}  // namespace moe::grammar
