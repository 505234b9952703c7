#include "gateway/chat_template/lexer.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "gateway/chat_template/py_string.h"

namespace moe::chat {
namespace {

absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status SyntaxError(int line, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", what));
}

int CountNewlines(std::string_view s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

// Jinja's newline normalisation: \r\n and \r become \n, and one trailing
// newline is dropped (keep_trailing_newline=False).
std::string NormalizeSource(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Python str.rstrip() with no argument.
std::string_view RStripSpace(std::string_view s) {
  const std::string stripped = py::Strip(s, std::nullopt, /*left=*/false, /*right=*/true);
  return s.substr(0, stripped.size());
}

bool AllSpace(std::string_view s) {
  if (s.empty()) return false;  // Jinja's \s+ needs one character
  for (size_t pos = 0; pos < s.size();) {
    const size_t n = py::SpaceLengthAt(s, pos);
    if (n == 0) return false;
    pos += n;
  }
  return true;
}

size_t SkipSpace(std::string_view s, size_t pos) {
  while (pos < s.size()) {
    const size_t n = py::SpaceLengthAt(s, pos);
    if (n == 0) break;
    pos += n;
  }
  return pos;
}

bool StartsWithAt(std::string_view s, size_t pos, std::string_view prefix) {
  return s.substr(pos, prefix.size()) == prefix;
}

// Python's unicode-escape decoding of a string literal's body.
absl::StatusOr<std::string> Unescape(std::string_view body, int line) {
  std::string out;
  out.reserve(body.size());
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '\\' || i + 1 == body.size()) {
      out.push_back(body[i]);
      continue;
    }
    const char c = body[++i];
    auto hex = [&](int digits) -> absl::StatusOr<char32_t> {
      char32_t cp = 0;
      for (int k = 1; k <= digits; ++k) {
        const char h = body[i + k];
        if (!std::isxdigit(static_cast<unsigned char>(h))) {
          return SyntaxError(line, "truncated escape sequence in string literal");
        }
        cp = cp * 16 + static_cast<char32_t>(
                           std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
      }
      i += digits;
      return cp;
    };
    switch (c) {
      case '\n':
        break;  // line continuation
      case '\\':
        out.push_back('\\');
        break;
      case '\'':
        out.push_back('\'');
        break;
      case '"':
        out.push_back('"');
        break;
      case 'a':
        out.push_back('\a');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'v':
        out.push_back('\v');
        break;
      case 'x':
      case 'u':
      case 'U': {
        const int digits = c == 'x' ? 2 : (c == 'u' ? 4 : 8);
        if (i + digits >= body.size()) return SyntaxError(line, "truncated escape sequence in string literal");
        auto cp = hex(digits);
        if (!cp.ok()) return cp.status();
        if (*cp > 0x10FFFF) return SyntaxError(line, "illegal Unicode character in string literal");
        py::AppendUtf8(*cp, &out);
        break;
      }
      case 'N':
        return SyntaxError(line, "\\N{...} escapes are not supported in string literals");
      default:
        if (c >= '0' && c <= '7') {
          char32_t cp = static_cast<char32_t>(c - '0');
          for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7'; ++k) {
            cp = cp * 8 + static_cast<char32_t>(body[++i] - '0');
          }
          py::AppendUtf8(cp, &out);
        } else {
          out.push_back('\\');
          out.push_back(c);
        }
    }
  }
  return out;
}

// Digits with single underscores between them ("1_000"); returns the end.
size_t ScanDigits(std::string_view s, size_t pos, int (*is_digit)(int)) {
  if (pos >= s.size() || !is_digit(static_cast<unsigned char>(s[pos]))) return std::string_view::npos;
  size_t end = pos + 1;
  while (end < s.size()) {
    if (is_digit(static_cast<unsigned char>(s[end]))) {
      ++end;
    } else if (s[end] == '_' && end + 1 < s.size() && is_digit(static_cast<unsigned char>(s[end + 1]))) {
      end += 2;
    } else {
      break;
    }
  }
  return end;
}

int IsDecimal(int c) { return c >= '0' && c <= '9'; }
int IsBinary(int c) { return c == '0' || c == '1'; }
int IsOctal(int c) { return c >= '0' && c <= '7'; }
int IsHex(int c) { return std::isxdigit(c); }

std::string WithoutUnderscores(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != '_') out.push_back(c);
  }
  return out;
}

// Jinja's float_re at `pos`: digits then a fraction, an exponent, or both.
size_t ScanFloat(std::string_view s, size_t pos) {
  if (pos > 0 && s[pos - 1] == '.') return std::string_view::npos;
  size_t end = ScanDigits(s, pos, IsDecimal);
  if (end == std::string_view::npos) return end;
  bool fraction = false;
  if (end < s.size() && s[end] == '.') {
    const size_t f = ScanDigits(s, end + 1, IsDecimal);
    if (f != std::string_view::npos) {
      end = f;
      fraction = true;
    }
  }
  if (end < s.size() && (s[end] == 'e' || s[end] == 'E')) {
    size_t e = end + 1;
    if (e < s.size() && (s[e] == '+' || s[e] == '-')) ++e;
    const size_t x = ScanDigits(s, e, IsDecimal);
    if (x != std::string_view::npos) return x;
  }
  return fraction ? end : std::string_view::npos;
}

// Jinja's integer_re at `pos`; sets *base.
size_t ScanInteger(std::string_view s, size_t pos, int* base) {
  if (pos >= s.size() || !IsDecimal(static_cast<unsigned char>(s[pos]))) return std::string_view::npos;
  if (s[pos] == '0' && pos + 1 < s.size()) {
    const char p = static_cast<char>(std::tolower(static_cast<unsigned char>(s[pos + 1])));
    int (*digit)(int) = p == 'b' ? IsBinary : p == 'o' ? IsOctal : p == 'x' ? IsHex : nullptr;
    if (digit != nullptr) {
      size_t end = pos + 2;
      if (end < s.size() && s[end] == '_') ++end;
      const size_t e = ScanDigits(s, end, digit);
      if (e != std::string_view::npos) {
        *base = p == 'b' ? 2 : p == 'o' ? 8 : 16;
        return e;
      }
    }
  }
  *base = 10;
  if (s[pos] == '0') {
    size_t end = pos + 1;
    while (end < s.size() && (s[end] == '0' || (s[end] == '_' && end + 1 < s.size() && s[end + 1] == '0'))) {
      end += s[end] == '_' ? 2 : 1;
    }
    return end;
  }
  return ScanDigits(s, pos, IsDecimal);
}

constexpr std::string_view kOperators[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[",
                                           "]",  "(",  ")",  "{",  "}",  ">",  "<", "=", ".", ":", "|", ",", ";"};

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {}

  absl::StatusOr<std::vector<Token>> Run() {
    while (pos_ < src_.size()) {
      const size_t tag = FindTagStart(pos_);
      if (tag == std::string_view::npos) {
        Emit(TokenType::kData, src_.substr(pos_));
        break;
      }
      if (auto s = LexTag(tag); !s.ok()) return s;
    }
    Token eof;
    eof.type = TokenType::kEof;
    eof.line = line_;
    tokens_.push_back(eof);
    return std::move(tokens_);
  }

 private:
  size_t FindTagStart(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return std::string_view::npos;
  }

  void Emit(TokenType type, std::string_view value) {
    if (type == TokenType::kData && value.empty()) return;
    Token t;
    t.type = type;
    t.value = std::string(value);
    t.line = line_;
    tokens_.push_back(std::move(t));
  }

  // The text before a tag, with `{%-` / lstrip_blocks applied.
  void EmitTextBefore(std::string_view text, char sign, bool is_variable) {
    std::string_view kept = text;
    if (sign == '-') {
      kept = RStripSpace(text);
    } else if (sign != '+' && !is_variable) {
      const size_t nl = text.rfind('\n');
      const size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting_) && AllSpace(text.substr(l_pos))) kept = text.substr(0, l_pos);
    }
    Emit(TokenType::kData, kept);
    line_ += CountNewlines(text);
  }

  // The end of `{% raw %}` at `pos` (after "raw"), or npos.
  size_t MatchRawBegin(size_t tag) const {
    size_t p = tag + 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    p = SkipSpace(src_, p);
    if (!StartsWithAt(src_, p, "raw")) return std::string_view::npos;
    p = SkipSpace(src_, p + 3);
    if (StartsWithAt(src_, p, "-%}")) return SkipSpace(src_, p + 3);
    if (StartsWithAt(src_, p, "%}")) return p + 2;
    return std::string_view::npos;
  }

  absl::Status LexTag(size_t tag) {
    const std::string_view src(src_);
    const char kind = src[tag + 1];
    char sign = tag + 2 < src.size() ? src[tag + 2] : '\0';
    if (sign != '-' && sign != '+') sign = '\0';
    const size_t raw_end = kind == '%' ? MatchRawBegin(tag) : std::string_view::npos;
    EmitTextBefore(src.substr(pos_, tag - pos_), sign, kind == '{');
    if (raw_end != std::string_view::npos) return LexRaw(tag, raw_end);
    pos_ = tag + 2 + (sign != '\0' ? 1 : 0);
    line_starting_ = false;
    if (kind == '#') return LexComment();
    Emit(kind == '%' ? TokenType::kBlockBegin : TokenType::kVariableBegin, "");
    return LexInside(kind == '%');
  }

  absl::Status LexComment() {
    const std::string_view src(src_);
    for (size_t i = pos_; i < src.size(); ++i) {
      size_t end = std::string_view::npos;
      if (StartsWithAt(src, i, "+#}")) {
        end = i + 3;
      } else if (StartsWithAt(src, i, "-#}")) {
        end = SkipSpace(src, i + 3);
      } else if (StartsWithAt(src, i, "#}")) {
        end = i + 2 + (i + 2 < src.size() && src[i + 2] == '\n' ? 1 : 0);
      }
      if (end == std::string_view::npos) continue;
      line_ += CountNewlines(src.substr(pos_, end - pos_));
      line_starting_ = src[end - 1] == '\n';
      pos_ = end;
      return absl::OkStatus();
    }
    return SyntaxError(line_, "missing end of comment tag");
  }

  absl::Status LexRaw(size_t tag, size_t body_start) {
    const std::string_view src(src_);
    line_ += CountNewlines(src.substr(tag, body_start - tag));
    for (size_t i = body_start; i < src.size(); ++i) {
      if (!StartsWithAt(src, i, "{%")) continue;
      size_t p = i + 2;
      char sign = '\0';
      if (p < src.size() && (src[p] == '-' || src[p] == '+')) sign = src[p++];
      p = SkipSpace(src, p);
      if (!StartsWithAt(src, p, "endraw")) continue;
      p = SkipSpace(src, p + 6);
      size_t end = std::string_view::npos;
      if (StartsWithAt(src, p, "+%}")) {
        end = p + 3;
      } else if (StartsWithAt(src, p, "-%}")) {
        end = SkipSpace(src, p + 3);
      } else if (StartsWithAt(src, p, "%}")) {
        end = p + 2 + (p + 2 < src.size() && src[p + 2] == '\n' ? 1 : 0);
      }
      if (end == std::string_view::npos) continue;
      line_starting_ = src[body_start - 1] == '\n';  // how the {% raw %} tag ended
      EmitTextBefore(src.substr(body_start, i - body_start), sign, /*is_variable=*/false);
      line_ += CountNewlines(src.substr(i, end - i));
      line_starting_ = src[end - 1] == '\n';
      pos_ = end;
      return absl::OkStatus();
    }
    return SyntaxError(line_, "missing end of raw directive");
  }

  // Tokens of a {% ... %} or {{ ... }} tag, up to and including its end.
  absl::Status LexInside(bool block) {
    const std::string_view src(src_);
    const int start_line = line_;
    std::vector<char> balance;
    while (true) {
      if (pos_ >= src.size()) {
        return SyntaxError(start_line, block ? "unexpected end of template: missing '%}'"
                                             : "unexpected end of template: missing '}}'");
      }
      if (balance.empty()) {
        size_t end = std::string_view::npos;
        if (block) {
          if (StartsWithAt(src, pos_, "+%}")) {
            end = pos_ + 3;
          } else if (StartsWithAt(src, pos_, "-%}")) {
            end = SkipSpace(src, pos_ + 3);
          } else if (StartsWithAt(src, pos_, "%}")) {
            end = pos_ + 2 + (pos_ + 2 < src.size() && src[pos_ + 2] == '\n' ? 1 : 0);
          }
        } else if (StartsWithAt(src, pos_, "-}}")) {
          end = SkipSpace(src, pos_ + 3);
        } else if (StartsWithAt(src, pos_, "}}")) {
          end = pos_ + 2;
        }
        if (end != std::string_view::npos) {
          Emit(block ? TokenType::kBlockEnd : TokenType::kVariableEnd, "");
          line_ += CountNewlines(src.substr(pos_, end - pos_));
          line_starting_ = src[end - 1] == '\n';
          pos_ = end;
          return absl::OkStatus();
        }
      }
      if (const size_t ws = SkipSpace(src, pos_); ws != pos_) {
        line_ += CountNewlines(src.substr(pos_, ws - pos_));
        pos_ = ws;
        continue;
      }
      if (auto s = LexOne(&balance); !s.ok()) return s;
    }
  }

  absl::Status LexOne(std::vector<char>* balance) {
    const std::string_view src(src_);
    const char c = src[pos_];
    Token t;
    t.line = line_;
    int base = 10;
    size_t end = ScanFloat(src, pos_);
    if (end != std::string_view::npos) {
      t.type = TokenType::kFloat;
      t.value = std::string(src.substr(pos_, end - pos_));
      t.float_value = std::strtod(WithoutUnderscores(t.value).c_str(), nullptr);
      pos_ = end;
    } else if ((end = ScanInteger(src, pos_, &base)) != std::string_view::npos) {
      t.type = TokenType::kInteger;
      t.value = std::string(src.substr(pos_, end - pos_));
      std::string digits = WithoutUnderscores(t.value);
      if (base != 10) digits = digits.substr(2);
      errno = 0;
      t.int_value = std::strtoll(digits.c_str(), nullptr, base);
      if (errno == ERANGE) return SyntaxError(line_, absl::StrCat("integer literal ", t.value, " is too large"));
      pos_ = end;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      end = pos_ + 1;
      while (end < src.size() && (std::isalnum(static_cast<unsigned char>(src[end])) || src[end] == '_')) ++end;
      t.type = TokenType::kName;
      t.value = std::string(src.substr(pos_, end - pos_));
      pos_ = end;
    } else if (c == '\'' || c == '"') {
      end = pos_ + 1;
      while (end < src.size() && src[end] != c) end += src[end] == '\\' ? 2 : 1;
      if (end >= src.size()) return SyntaxError(line_, "unterminated string literal");
      auto value = Unescape(src.substr(pos_ + 1, end - pos_ - 1), line_);
      if (!value.ok()) return value.status();
      t.type = TokenType::kString;
      t.value = *std::move(value);
      line_ += CountNewlines(src.substr(pos_, end + 1 - pos_));
      pos_ = end + 1;
    } else {
      std::string_view op;
      for (std::string_view candidate : kOperators) {
        if (StartsWithAt(src, pos_, candidate)) {
          op = candidate;
          break;
        }
      }
      if (op.empty()) {
        size_t next = pos_;
        py::DecodeAt(src, &next);
        return SyntaxError(line_, absl::StrCat("unexpected character '", AV(src.substr(pos_, next - pos_)), "'"));
      }
      if (op == "(" || op == "[" || op == "{") {
        balance->push_back(op == "(" ? ')' : op == "[" ? ']' : '}');
      } else if (op == ")" || op == "]" || op == "}") {
        if (balance->empty()) return SyntaxError(line_, absl::StrCat("unexpected '", AV(op), "'"));
        if (balance->back() != op[0]) {
          return SyntaxError(
              line_, absl::StrCat("unexpected '", AV(op), "', expected '", std::string(1, balance->back()), "'"));
        }
        balance->pop_back();
      }
      t.type = TokenType::kOperator;
      t.value = std::string(op);
      pos_ += op.size();
    }
    tokens_.push_back(std::move(t));
    return absl::OkStatus();
  }

  std::string src_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

absl::StatusOr<std::vector<Token>> Tokenize(std::string_view source) {
  if (!py::IsValidUtf8(source)) return absl::InvalidArgumentError("template is not valid UTF-8");
  return Lexer(NormalizeSource(source)).Run();
}

std::string DescribeToken(const Token& token) {
  switch (token.type) {
    case TokenType::kData:
      return "template text";
    case TokenType::kBlockBegin:
      return "'{%'";
    case TokenType::kBlockEnd:
      return "end of statement block";
    case TokenType::kVariableBegin:
      return "'{{'";
    case TokenType::kVariableEnd:
      return "end of print statement";
    case TokenType::kEof:
      return "end of template";
    case TokenType::kString:
      return absl::StrCat("string '", token.value, "'");
    default:
      return absl::StrCat("'", token.value, "'");
  }
}

}  // namespace moe::chat
