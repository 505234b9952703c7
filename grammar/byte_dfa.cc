#include "grammar/byte_dfa.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"

namespace moe::grammar {
namespace {

constexpr uint32_t kMaxCodePoint = 0x10FFFF;
using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;  // code point ranges, inclusive

// The pattern as a tree.
struct Ast {
  enum class Kind { kEmpty, kClass, kConcat, kAlt, kRepeat };
  Kind kind = Kind::kEmpty;
  Ranges ranges;          // kClass
  std::vector<Ast> kids;  // kConcat, kAlt; kRepeat: one
  int min = 0, max = 0;   // kRepeat; max -1: unbounded
};

Ranges Normalize(Ranges r) {
  std::sort(r.begin(), r.end());
  Ranges out;
  for (const auto& [lo, hi] : r) {
    if (!out.empty() && lo <= out.back().second + 1) {
      out.back().second = std::max(out.back().second, hi);
    } else {
      out.emplace_back(lo, hi);
    }
  }
  return out;
}

// Every code point but surrogates not in `r`.
Ranges Complement(const Ranges& r) {
  Ranges out;
  uint32_t next = 0;
  for (const auto& [lo, hi] : Normalize(r)) {
    if (lo > next) out.emplace_back(next, lo - 1);
    next = hi + 1;
  }
  if (next <= kMaxCodePoint) out.emplace_back(next, kMaxCodePoint);
  return out;
}

Ranges Digits() { return {{'0', '9'}}; }
Ranges Word() { return {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}; }
Ranges Space() {
  return {{'\t', '\r'}, {' ', ' '}, {0xA0, 0xA0}, {0x1680, 0x1680}, {0x2000, 0x200A}, {0x2028, 0x2029},
          {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
}

class Parser {
 public:
  Parser(absl::string_view p, const ByteDfaOptions& o) : p_(p), o_(o) {}

  absl::StatusOr<Ast> Parse() {
    if (static_cast<int64_t>(p_.size()) > o_.max_pattern_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("regex: ", p_.size(), " bytes, at most ", o_.max_pattern_bytes));
    }
    if (!p_.empty() && p_[0] == '^') ++i_;
    Ast a = Alt();
    if (err_.ok() && i_ < p_.size()) Fail(p_[i_] == ')' ? "unbalanced ')'" : "unexpected character");
    if (!err_.ok()) return err_;
    return a;
  }

 private:
  void Fail(absl::string_view what) {
    if (err_.ok()) err_ = absl::InvalidArgumentError(absl::StrCat("regex: ", what, " at offset ", i_));
  }
  bool AtEnd() const { return i_ >= p_.size() || (p_[i_] == '$' && i_ + 1 == p_.size()); }

  Ast Alt() {
    Ast first = Concat();
    if (i_ >= p_.size() || p_[i_] != '|') return first;
    Ast alt;
    alt.kind = Ast::Kind::kAlt;
    alt.kids.push_back(std::move(first));
    while (err_.ok() && i_ < p_.size() && p_[i_] == '|') {
      ++i_;
      alt.kids.push_back(Concat());
    }
    return alt;
  }

  Ast Concat() {
    Ast c;
    c.kind = Ast::Kind::kConcat;
    while (err_.ok() && !AtEnd() && p_[i_] != '|' && p_[i_] != ')') c.kids.push_back(Repeat());
    if (AtEnd() && i_ < p_.size()) ++i_;  // the trailing $
    return c;
  }

  // A decimal count of {n,m}.
  int Count() {
    int64_t v = 0;
    const size_t begin = i_;
    while (i_ < p_.size() && p_[i_] >= '0' && p_[i_] <= '9') {
      v = v * 10 + (p_[i_] - '0');
      if (v > o_.max_repeat) {
        Fail(absl::StrCat("repetition count larger than ", o_.max_repeat));
        return 0;
      }
      ++i_;
    }
    if (i_ == begin) Fail("expected a count");
    return static_cast<int>(v);
  }

  Ast Repeat() {
    Ast atom = Atom();
    while (err_.ok() && i_ < p_.size()) {
      int min = 0, max = 0;
      const char c = p_[i_];
      if (c == '*') {
        min = 0, max = -1, ++i_;
      } else if (c == '+') {
        min = 1, max = -1, ++i_;
      } else if (c == '?') {
        min = 0, max = 1, ++i_;
      } else if (c == '{') {
        ++i_;
        min = Count();
        max = min;
        if (i_ < p_.size() && p_[i_] == ',') {
          ++i_;
          max = i_ < p_.size() && p_[i_] == '}' ? -1 : Count();
        }
        if (i_ >= p_.size() || p_[i_] != '}') {
          Fail("expected '}'");
          return atom;
        }
        ++i_;
        if (max >= 0 && max < min) {
          Fail("{n,m} with m < n");
          return atom;
        }
      } else {
        break;
      }
      if (i_ < p_.size() && p_[i_] == '?') ++i_;  // lazy: the same language
      Ast r;
      r.kind = Ast::Kind::kRepeat;
      r.min = min;
      r.max = max;
      r.kids.push_back(std::move(atom));
      atom = std::move(r);
    }
    return atom;
  }

  // One UTF-8 code point of the pattern.
  uint32_t CodePoint() {
    const auto c = static_cast<unsigned char>(p_[i_]);
    const int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i_ + len > p_.size()) {
      Fail("invalid UTF-8");
      ++i_;
      return 0;
    }
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(p_[i_ + k]) & 0x3f);
    i_ += len;
    return cp;
  }

  uint32_t Hex(int digits) {
    uint32_t v = 0;
    for (int k = 0; k < digits; ++k) {
      if (i_ >= p_.size() || !std::isxdigit(static_cast<unsigned char>(p_[i_]))) {
        Fail("expected a hex digit");
        return 0;
      }
      const char h = p_[i_++];
      v = v * 16 + static_cast<uint32_t>(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
    }
    return v;
  }

  // After a backslash: the class it stands for.
  Ranges Escape() {
    if (i_ >= p_.size()) {
      Fail("trailing backslash");
      return {};
    }
    const char c = p_[i_++];
    switch (c) {
      case 'd': return Digits();
      case 'D': return Complement(Digits());
      case 'w': return Word();
      case 'W': return Complement(Word());
      case 's': return Space();
      case 'S': return Complement(Space());
      case 'n': return {{'\n', '\n'}};
      case 'r': return {{'\r', '\r'}};
      case 't': return {{'\t', '\t'}};
      case 'f': return {{'\f', '\f'}};
      case 'v': return {{'\v', '\v'}};
      case '0': return {{0, 0}};
      case 'x': {
        const uint32_t v = Hex(2);
        return {{v, v}};
      }
      case 'u': {
        uint32_t v = 0;
        if (i_ < p_.size() && p_[i_] == '{') {
          ++i_;
          int digits = 0;
          while (i_ < p_.size() && p_[i_] != '}' && digits < 7) {
            v = v * 16 + Hex(1);
            ++digits;
          }
          if (i_ >= p_.size() || p_[i_] != '}' || digits == 0) Fail("expected \\u{hex}");
          ++i_;
        } else {
          v = Hex(4);
        }
        if (v > kMaxCodePoint || (v >= 0xD800 && v <= 0xDFFF)) Fail("\\u escape outside the Unicode scalar values");
        return {{v, v}};
      }
      case 'b':
      case 'B':
        Fail("\\b and \\B (word boundaries) are not supported");
        return {};
      default:
        if (std::isalnum(static_cast<unsigned char>(c))) {
          --i_;
          Fail(absl::StrCat("unsupported escape \\", std::string(1, c), " (backreferences and classes other than "
                            "\\d \\w \\s are not supported)"));
          return {};
        }
        return {{static_cast<unsigned char>(c), static_cast<unsigned char>(c)}};
    }
  }

  Ranges Class() {
    bool negate = false;
    if (i_ < p_.size() && p_[i_] == '^') {
      negate = true;
      ++i_;
    }
    Ranges r;
    bool first = true;
    while (err_.ok()) {
      if (i_ >= p_.size()) {
        Fail("unterminated character class");
        break;
      }
      if (p_[i_] == ']' && !first) {
        ++i_;
        break;
      }
      first = false;
      Ranges lo_set;
      if (p_[i_] == '\\') {
        ++i_;
        lo_set = Escape();
      } else {
        const uint32_t cp = CodePoint();
        lo_set = {{cp, cp}};
      }
      if (i_ + 1 < p_.size() && p_[i_] == '-' && p_[i_ + 1] != ']' && lo_set.size() == 1 &&
          lo_set[0].first == lo_set[0].second) {
        ++i_;
        uint32_t hi;
        if (p_[i_] == '\\') {
          ++i_;
          Ranges h = Escape();
          if (h.size() != 1 || h[0].first != h[0].second) {
            Fail("a class range ends in a class");
            break;
          }
          hi = h[0].first;
        } else {
          hi = CodePoint();
        }
        if (hi < lo_set[0].first) {
          Fail("a class range out of order");
          break;
        }
        r.emplace_back(lo_set[0].first, hi);
      } else {
        r.insert(r.end(), lo_set.begin(), lo_set.end());
      }
    }
    return negate ? Complement(r) : Normalize(r);
  }

  Ast Atom() {
    Ast a;
    a.kind = Ast::Kind::kClass;
    const char c = p_[i_];
    if (c == '(') {
      ++i_;
      if (i_ < p_.size() && p_[i_] == '?') {
        if (i_ + 1 < p_.size() && p_[i_ + 1] == ':') {
          i_ += 2;
        } else {
          Fail("lookaround and named groups are not supported (only (?:...))");
          return a;
        }
      }
      Ast inner = Alt();
      if (i_ >= p_.size() || p_[i_] != ')') {
        Fail("missing ')'");
        return a;
      }
      ++i_;
      return inner;
    }
    if (c == '[') {
      ++i_;
      a.ranges = Class();
      return a;
    }
    if (c == '.') {
      ++i_;
      a.ranges = Complement({{'\n', '\n'}, {'\r', '\r'}});
      return a;
    }
    if (c == '\\') {
      ++i_;
      a.ranges = Normalize(Escape());
      return a;
    }
    if (c == '*' || c == '+' || c == '?' || c == '{') {
      Fail("a quantifier with nothing to repeat");
      ++i_;
      return a;
    }
    if (c == '^' || c == '$') {
      Fail("anchors inside the pattern are not supported (it is anchored at both ends)");
      ++i_;
      return a;
    }
    const uint32_t cp = CodePoint();
    a.ranges = {{cp, cp}};
    return a;
  }

  absl::string_view p_;
  const ByteDfaOptions& o_;
  size_t i_ = 0;
  absl::Status err_;
};

// The UTF-8 byte-range sequences of code points [lo, hi] (surrogates excluded).
void Utf8Sequences(uint32_t lo, uint32_t hi, std::vector<std::vector<std::pair<uint8_t, uint8_t>>>* out) {
  if (lo > hi) return;
  if (lo <= 0xDFFF && hi >= 0xD800) {  // no surrogates
    if (lo < 0xD800) Utf8Sequences(lo, 0xD7FF, out);
    if (hi > 0xDFFF) Utf8Sequences(0xE000, hi, out);
    return;
  }
  for (uint32_t max : {0x7Fu, 0x7FFu, 0xFFFFu}) {
    if (lo <= max && hi > max) {
      Utf8Sequences(lo, max, out);
      Utf8Sequences(max + 1, hi, out);
      return;
    }
  }
  if (hi <= 0x7F) {
    out->push_back({{static_cast<uint8_t>(lo), static_cast<uint8_t>(hi)}});
    return;
  }
  const int n = hi <= 0x7FF ? 2 : hi <= 0xFFFF ? 3 : 4;
  for (int i = 1; i < n; ++i) {
    const uint32_t m = (1u << (6 * i)) - 1;
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        Utf8Sequences(lo, lo | m, out);
        Utf8Sequences((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {
        Utf8Sequences(lo, (hi & ~m) - 1, out);
        Utf8Sequences(hi & ~m, hi, out);
        return;
      }
    }
  }
  auto encode = [n](uint32_t cp, uint8_t* b) {
    if (n == 2) {
      b[0] = static_cast<uint8_t>(0xC0 | (cp >> 6));
      b[1] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
    } else if (n == 3) {
      b[0] = static_cast<uint8_t>(0xE0 | (cp >> 12));
      b[1] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
      b[2] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
    } else {
      b[0] = static_cast<uint8_t>(0xF0 | (cp >> 18));
      b[1] = static_cast<uint8_t>(0x80 | ((cp >> 12) & 0x3F));
      b[2] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
      b[3] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
    }
  };
  uint8_t a[4], b[4];
  encode(lo, a);
  encode(hi, b);
  std::vector<std::pair<uint8_t, uint8_t>> seq;
  for (int i = 0; i < n; ++i) seq.emplace_back(a[i], b[i]);
  out->push_back(std::move(seq));
}

}  // namespace

// Thompson NFA from the tree, then subset construction, then dead states out.
class DfaBuilder {
 public:
  explicit DfaBuilder(const ByteDfaOptions& o) : o_(o) {}

  absl::StatusOr<std::unique_ptr<ByteDfa>> Build(const Ast& ast) {
    const int start = NewState(), end = NewState();
    Emit(ast, start, end);
    if (!err_.ok()) return err_;
    accept_ = end;
    return Determinize(start);
  }

 private:
  struct NState {
    std::vector<int> eps;
    std::vector<std::tuple<uint8_t, uint8_t, int>> edges;
  };

  int NewState() {
    if (static_cast<int64_t>(nfa_.size()) >= o_.max_nfa_states && err_.ok()) {
      err_ = absl::InvalidArgumentError(
          absl::StrCat("regex: the pattern's automaton exceeds ", o_.max_nfa_states, " states (repetition too large)"));
    }
    nfa_.emplace_back();
    return static_cast<int>(nfa_.size()) - 1;
  }

  // Adds `ast` between NFA states `from` and `to`.
  void Emit(const Ast& ast, int from, int to) {
    if (!err_.ok()) return;
    switch (ast.kind) {
      case Ast::Kind::kEmpty:
        nfa_[from].eps.push_back(to);
        return;
      case Ast::Kind::kClass: {
        std::vector<std::vector<std::pair<uint8_t, uint8_t>>> seqs;
        Ranges ranges = ast.ranges;
        if (!o_.excluded.empty()) {
          // ranges minus excluded: intersect with the excluded set's complement.
          const Ranges keep = Complement(o_.excluded);
          Ranges cut;
          for (const auto& [lo, hi] : Normalize(ranges)) {
            for (const auto& [klo, khi] : keep) {
              const uint32_t a = std::max(lo, klo), b = std::min(hi, khi);
              if (a <= b) cut.emplace_back(a, b);
            }
          }
          ranges = std::move(cut);
        }
        for (const auto& [lo, hi] : ranges) Utf8Sequences(lo, hi, &seqs);
        for (const auto& seq : seqs) {
          int at = from;
          for (size_t k = 0; k < seq.size(); ++k) {
            const int next = k + 1 == seq.size() ? to : NewState();
            if (!err_.ok()) return;
            nfa_[at].edges.emplace_back(seq[k].first, seq[k].second, next);
            at = next;
          }
        }
        return;
      }
      case Ast::Kind::kConcat: {
        int at = from;
        for (size_t k = 0; k < ast.kids.size(); ++k) {
          const int next = k + 1 == ast.kids.size() ? to : NewState();
          Emit(ast.kids[k], at, next);
          at = next;
        }
        if (ast.kids.empty()) nfa_[from].eps.push_back(to);
        return;
      }
      case Ast::Kind::kAlt:
        for (const Ast& k : ast.kids) Emit(k, from, to);
        return;
      case Ast::Kind::kRepeat: {
        // min copies, then (max - min) optional ones, or a loop when unbounded.
        int at = from;
        for (int k = 0; k < ast.min; ++k) {
          const int next = NewState();
          Emit(ast.kids[0], at, next);
          at = next;
        }
        if (ast.max < 0) {
          const int loop = NewState();
          nfa_[at].eps.push_back(loop);
          Emit(ast.kids[0], loop, loop);
          nfa_[loop].eps.push_back(to);
        } else {
          for (int k = ast.min; k < ast.max; ++k) {
            const int next = NewState();
            nfa_[at].eps.push_back(to);
            Emit(ast.kids[0], at, next);
            at = next;
          }
          nfa_[at].eps.push_back(to);
        }
        return;
      }
    }
  }

  std::vector<int> Closure(std::vector<int> set) const {
    std::vector<char> seen(nfa_.size(), 0);
    std::vector<int> stack = set, out;
    for (int s : set) seen[s] = 1;
    while (!stack.empty()) {
      const int s = stack.back();
      stack.pop_back();
      out.push_back(s);
      for (int t : nfa_[s].eps) {
        if (!seen[t]) {
          seen[t] = 1;
          stack.push_back(t);
        }
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  absl::StatusOr<std::unique_ptr<ByteDfa>> Determinize(int start) {
    std::map<std::vector<int>, int> index;
    std::vector<std::vector<int>> sets = {Closure({start})};
    index[sets[0]] = 0;
    std::vector<int32_t> next;
    std::vector<bool> accepting;
    for (size_t d = 0; d < sets.size(); ++d) {
      next.resize((d + 1) * 256, -1);
      accepting.push_back(std::binary_search(sets[d].begin(), sets[d].end(), accept_));
      // For each byte, the NFA states its edges lead to.
      std::vector<std::vector<int>> moves(256);
      for (int s : sets[d]) {
        for (const auto& [lo, hi, to] : nfa_[s].edges) {
          for (int b = lo; b <= hi; ++b) moves[b].push_back(to);
        }
      }
      for (int b = 0; b < 256; ++b) {
        if (moves[b].empty()) continue;
        std::sort(moves[b].begin(), moves[b].end());
        moves[b].erase(std::unique(moves[b].begin(), moves[b].end()), moves[b].end());
        std::vector<int> target = Closure(moves[b]);
        auto it = index.find(target);
        if (it == index.end()) {
          if (static_cast<int>(sets.size()) >= o_.max_dfa_states) {
            return absl::InvalidArgumentError(
                absl::StrCat("regex: the pattern's automaton exceeds ", o_.max_dfa_states, " states"));
          }
          it = index.emplace(target, static_cast<int>(sets.size())).first;
          sets.push_back(std::move(target));
        }
        next[d * 256 + b] = it->second;
      }
    }
    // Live states reach acceptance; transitions into the others become -1,
    // and the live ones are renumbered with the start first.
    const int n = static_cast<int>(sets.size());
    std::vector<std::vector<int>> reverse(n);
    for (int d = 0; d < n; ++d) {
      for (int b = 0; b < 256; ++b) {
        if (next[d * 256 + b] >= 0) reverse[next[d * 256 + b]].push_back(d);
      }
    }
    std::vector<char> live(n, 0);
    std::vector<int> stack;
    for (int d = 0; d < n; ++d) {
      if (accepting[d]) {
        live[d] = 1;
        stack.push_back(d);
      }
    }
    while (!stack.empty()) {
      const int d = stack.back();
      stack.pop_back();
      for (int p : reverse[d]) {
        if (!live[p]) {
          live[p] = 1;
          stack.push_back(p);
        }
      }
    }
    if (!live[0]) return absl::InvalidArgumentError("regex: the pattern matches no string");
    std::vector<int> renumber(n, -1);
    int count = 0;
    for (int d = 0; d < n; ++d) {
      if (live[d]) renumber[d] = count++;
    }
    auto dfa = std::unique_ptr<ByteDfa>(new ByteDfa());
    dfa->next_.assign(static_cast<size_t>(count) * 256, -1);
    dfa->accepting_.assign(count, false);
    for (int d = 0; d < n; ++d) {
      if (!live[d]) continue;
      dfa->accepting_[renumber[d]] = accepting[d];
      for (int b = 0; b < 256; ++b) {
        const int t = next[d * 256 + b];
        dfa->next_[static_cast<size_t>(renumber[d]) * 256 + b] = t >= 0 ? renumber[t] : -1;
      }
    }
    return dfa;
  }

  const ByteDfaOptions& o_;
  std::vector<NState> nfa_;
  int accept_ = 0;
  absl::Status err_;
};

absl::StatusOr<std::unique_ptr<ByteDfa>> ByteDfa::FromRegex(absl::string_view pattern, const ByteDfaOptions& o) {
  Parser parser(pattern, o);
  absl::StatusOr<Ast> ast = parser.Parse();
  if (!ast.ok()) return ast.status();
  DfaBuilder builder(o);
  return builder.Build(*ast);
}

absl::StatusOr<std::unique_ptr<ByteDfa>> ByteDfa::FromChoices(const std::vector<std::string>& choices,
                                                              const ByteDfaOptions& o) {
  if (choices.empty()) return absl::InvalidArgumentError("choice: at least one option is required");
  std::string pattern;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) pattern += '|';
    pattern += "(?:" + EscapeRegex(choices[i]) + ")";
  }
  return FromRegex(pattern, o);
}

bool ByteDfa::Matches(absl::string_view bytes) const {
  int32_t s = start();
  for (char c : bytes) {
    s = Next(s, static_cast<uint8_t>(c));
    if (s < 0) return false;
  }
  return accepting(s);
}

std::string EscapeRegex(absl::string_view text) {
  std::string out;
  for (char c : text) {
    if (std::string_view("\\^$.|?*+()[]{}/-").find(c) != std::string_view::npos) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace moe::grammar
