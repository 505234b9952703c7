#include "grammar/grammar.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace moe::grammar {

Expr Expr::Regex(std::string pattern) {
  Expr e;
  e.kind_ = Kind::kRegex;
  e.regex_ = std::move(pattern);
  return e;
}

Expr Expr::RegexExcluding(std::string pattern, std::vector<std::pair<uint32_t, uint32_t>> excluded) {
  Expr e = Regex(std::move(pattern));
  e.excluded_ = std::move(excluded);
  return e;
}

Expr Expr::Literal(absl::string_view text) { return Regex(EscapeRegex(text)); }

Expr Expr::Ref(int32_t nonterminal) {
  Expr e;
  e.kind_ = Kind::kRef;
  e.nonterminal_ = nonterminal;
  return e;
}

Expr Expr::Seq(std::vector<Expr> items) {
  if (items.size() == 1) return std::move(items[0]);
  Expr e;
  e.kind_ = Kind::kSeq;
  e.items_ = std::move(items);
  return e;
}

Expr Expr::Alt(std::vector<Expr> items) {
  if (items.size() == 1) return std::move(items[0]);
  Expr e;
  e.kind_ = Kind::kAlt;
  e.items_ = std::move(items);
  return e;
}

Expr Expr::Repeat(Expr body, int64_t min, int64_t max) {
  Expr e;
  e.kind_ = Kind::kRepeat;
  e.items_.push_back(std::move(body));
  e.min_ = min;
  e.max_ = max;
  return e;
}

GrammarBuilder::GrammarBuilder(GrammarLimits limits) : limits_(std::move(limits)) {}

absl::StatusOr<int32_t> GrammarBuilder::Add(std::string name) {
  if (static_cast<int>(names_.size()) >= limits_.max_nonterminals) {
    return absl::InvalidArgumentError(absl::StrCat("more than ", limits_.max_nonterminals, " rules"));
  }
  names_.push_back(std::move(name));
  definitions_.emplace_back();
  return static_cast<int32_t>(names_.size() - 1);
}

void GrammarBuilder::Define(int32_t nonterminal, Expr e) {
  definitions_[nonterminal] = std::make_unique<Expr>(std::move(e));
}

// Lowering Exprs to rules over terminals.
struct GrammarBuilder::Lowering {
  static constexpr size_t kMaxInlinedRegexBytes = 16 << 10;
  static constexpr int64_t kMaxUnrolledStates = 4096;

  Lowering(GrammarBuilder& builder, Grammar& grammar, absl::Time d, std::string w)
      : b(builder), g(grammar), deadline(d), what(std::move(w)) {}

  GrammarBuilder& b;
  Grammar& g;
  absl::Time deadline;
  std::string what;
  absl::Status error;
  // Per builder nonterminal: on a cycle (cannot be inlined), and its regex
  // once known to be regular (nullopt: not regular or too large).
  std::vector<bool> cyclic;
  std::vector<int> regex_state;  // 0 unknown, 1 in progress, 2 done
  std::vector<std::optional<std::string>> regex;
  absl::flat_hash_map<std::string, int32_t> terminal_ids;
  absl::flat_hash_map<std::string, int64_t> body_states;
  int64_t terminal_states = 0;

  void Fail(std::string message) {
    if (error.ok()) error = absl::InvalidArgumentError(absl::StrCat(what, ": ", message));
  }

  bool TimeUp() {
    if (absl::Now() > deadline) {
      Fail(absl::StrCat("compiling took longer than ", absl::FormatDuration(b.limits_.max_compile_time)));
      return true;
    }
    return false;
  }

  // Nonterminals on a cycle of references (Tarjan's strongly connected components).
  void FindCycles() {
    const int n = static_cast<int>(b.names_.size());
    cyclic.assign(n, false);
    std::vector<std::vector<int32_t>> refs(n);
    for (int i = 0; i < n; ++i) {
      if (b.definitions_[i] != nullptr) CollectRefs(*b.definitions_[i], &refs[i]);
    }
    std::vector<int> index(n, -1), low(n, 0);
    std::vector<bool> on_stack(n, false);
    std::vector<int32_t> stack;
    int counter = 0;
    // Iterative DFS: (node, next edge).
    for (int root = 0; root < n; ++root) {
      if (index[root] >= 0) continue;
      std::vector<std::pair<int32_t, size_t>> work = {{root, 0}};
      index[root] = low[root] = counter++;
      stack.push_back(root);
      on_stack[root] = true;
      while (!work.empty()) {
        auto& [v, e] = work.back();
        if (e < refs[v].size()) {
          const int32_t w = refs[v][e++];
          if (w == v) cyclic[v] = true;
          if (index[w] < 0) {
            index[w] = low[w] = counter++;
            stack.push_back(w);
            on_stack[w] = true;
            work.emplace_back(w, 0);
          } else if (on_stack[w]) {
            low[v] = std::min(low[v], index[w]);
          }
          continue;
        }
        const int32_t done = v;
        work.pop_back();
        if (!work.empty()) low[work.back().first] = std::min(low[work.back().first], low[done]);
        if (low[done] == index[done]) {
          std::vector<int32_t> component;
          int32_t w;
          do {
            w = stack.back();
            stack.pop_back();
            on_stack[w] = false;
            component.push_back(w);
          } while (w != done);
          if (component.size() > 1) {
            for (int32_t c : component) cyclic[c] = true;
          }
        }
      }
    }
  }

  static void CollectRefs(const Expr& e, std::vector<int32_t>* out) {
    if (e.kind() == Expr::Kind::kRef) out->push_back(e.nonterminal());
    for (const Expr& c : e.items()) CollectRefs(c, out);
  }

  // The regex of a nonterminal, if it is regular and small.
  const std::optional<std::string>& NonterminalRegex(int32_t n) {
    if (regex_state[n] == 2) return regex[n];
    if (regex_state[n] == 1 || cyclic[n] || b.definitions_[n] == nullptr) {
      static const std::optional<std::string> kNone;
      return kNone;
    }
    regex_state[n] = 1;
    std::optional<std::string> r = ExprRegex(*b.definitions_[n]);
    if (r && r->size() > kMaxInlinedRegexBytes) r.reset();
    regex[n] = std::move(r);
    regex_state[n] = 2;
    return regex[n];
  }

  // The regex of a regular expression, or nullopt.
  std::optional<std::string> ExprRegex(const Expr& e) {
    switch (e.kind()) {
      case Expr::Kind::kRegex:
        if (!e.excluded().empty()) return std::nullopt;  // its own terminal
        return e.regex().empty() ? std::string() : "(?:" + e.regex() + ")";
      case Expr::Kind::kRef: {
        const std::optional<std::string>& r = NonterminalRegex(e.nonterminal());
        if (!r) return std::nullopt;
        return *r;
      }
      case Expr::Kind::kSeq: {
        std::string out;
        for (const Expr& c : e.items()) {
          std::optional<std::string> r = ExprRegex(c);
          if (!r) return std::nullopt;
          out += *r;
          if (out.size() > kMaxInlinedRegexBytes) return std::nullopt;
        }
        return out;
      }
      case Expr::Kind::kAlt: {
        std::string out = "(?:";
        for (size_t i = 0; i < e.items().size(); ++i) {
          std::optional<std::string> r = ExprRegex(e.items()[i]);
          if (!r) return std::nullopt;
          if (i > 0) out += "|";
          out += *r;
          if (out.size() > kMaxInlinedRegexBytes) return std::nullopt;
        }
        return out + ")";
      }
      case Expr::Kind::kRepeat: {
        const int64_t bound = e.max() < 0 ? e.min() : e.max();
        if (bound > b.limits_.max_unrolled_repeat) return std::nullopt;
        std::optional<std::string> r = ExprRegex(e.items()[0]);
        if (!r) return std::nullopt;
        if (r->empty()) return std::string();
        // Unrolled only while the automaton stays small.
        if (bound > 1 && BodyStates(*r) * bound > kMaxUnrolledStates) return std::nullopt;
        if (e.max() < 0) return absl::StrCat("(?:", *r, "){", e.min(), ",}");
        return absl::StrCat("(?:", *r, "){", e.min(), ",", e.max(), "}");
      }
    }
    return std::nullopt;
  }

  // Automaton states of a repeated body (memoized; large when it fails).
  int64_t BodyStates(const std::string& regex) {
    auto it = body_states.find(regex);
    if (it != body_states.end()) return it->second;
    absl::StatusOr<std::unique_ptr<ByteDfa>> dfa = ByteDfa::FromRegex(regex, b.limits_.dfa);
    const int64_t states = dfa.ok() ? (*dfa)->num_states() : kMaxUnrolledStates + 1;
    body_states.emplace(regex, states);
    return states;
  }

  int32_t Terminal(const std::string& pattern, const std::vector<std::pair<uint32_t, uint32_t>>& excluded = {}) {
    std::string key = pattern;
    for (const auto& [lo, hi] : excluded) absl::StrAppend(&key, "\x00excluding ", lo, "-", hi);
    auto it = terminal_ids.find(key);
    if (it != terminal_ids.end()) return it->second;
    if (!error.ok() || TimeUp()) return 0;
    if (static_cast<int>(g.terminals_.size()) >= b.limits_.max_terminals) {
      Fail(absl::StrCat("more than ", b.limits_.max_terminals, " terminals"));
      return 0;
    }
    ByteDfaOptions options = b.limits_.dfa;
    options.excluded = excluded;
    absl::StatusOr<std::unique_ptr<ByteDfa>> dfa = ByteDfa::FromRegex(pattern, options);
    if (!dfa.ok()) {
      Fail(std::string(dfa.status().message()));
      return 0;
    }
    terminal_states += (*dfa)->num_states();
    if (terminal_states > b.limits_.max_terminal_states) {
      Fail(absl::StrCat("more than ", b.limits_.max_terminal_states, " automaton states in all"));
      return 0;
    }
    const int32_t id = static_cast<int32_t>(g.terminals_.size());
    g.terminals_.push_back(std::move(*dfa));
    g.terminal_patterns_.push_back(pattern);
    terminal_ids.emplace(std::move(key), id);
    return id;
  }

  int32_t NewNonterminal(std::string name) {
    g.names_.push_back(std::move(name));
    g.rules_of_.emplace_back();
    return static_cast<int32_t>(g.names_.size() - 1);
  }

  // Appends the symbols of `e` to `rhs`.
  void LowerSeq(const Expr& e, std::vector<GrammarSymbol>* rhs, std::string* pending, const std::string& name) {
    if (!error.ok()) return;
    if (std::optional<std::string> r = ExprRegex(e)) {
      *pending += *r;
      return;
    }
    auto flush = [&] {
      if (!pending->empty()) rhs->push_back(GrammarSymbol{Terminal(*pending), true, 1, 1});
      pending->clear();
    };
    switch (e.kind()) {
      case Expr::Kind::kRegex:  // with exclusions
        flush();
        rhs->push_back(GrammarSymbol{Terminal(e.regex(), e.excluded()), true, 1, 1});
        return;
      case Expr::Kind::kSeq:
        for (const Expr& c : e.items()) LowerSeq(c, rhs, pending, name);
        return;
      case Expr::Kind::kRef:
        flush();
        rhs->push_back(GrammarSymbol{e.nonterminal(), false, 1, 1});
        return;
      case Expr::Kind::kAlt: {
        flush();
        const int32_t n = NewNonterminal(name + "/alt");
        LowerRules(n, e, name + "/alt");
        rhs->push_back(GrammarSymbol{n, false, 1, 1});
        return;
      }
      case Expr::Kind::kRepeat: {
        flush();
        if (e.min() < 0 || e.min() > b.limits_.max_repeat || e.max() > b.limits_.max_repeat ||
            (e.max() >= 0 && e.max() < e.min())) {
          Fail(absl::StrCat(name, ": repetition {", e.min(), ",", e.max(), "} out of range (counts up to ",
                            b.limits_.max_repeat, ")"));
          return;
        }
        int32_t body;
        const Expr& inner = e.items()[0];
        if (inner.kind() == Expr::Kind::kRef) {
          body = inner.nonterminal();
        } else {
          body = NewNonterminal(name + "/repeat");
          LowerRules(body, inner, name + "/repeat");
        }
        rhs->push_back(GrammarSymbol{body, false, static_cast<int32_t>(e.min()), static_cast<int32_t>(e.max())});
        return;
      }
    }
  }

  // Rules for nonterminal `n` defined by `e` (one per top-level alternative).
  void LowerRules(int32_t n, const Expr& e, const std::string& name) {
    if (!error.ok() || TimeUp()) return;
    std::vector<const Expr*> alternatives;
    if (e.kind() == Expr::Kind::kAlt && !ExprRegex(e)) {
      for (const Expr& c : e.items()) alternatives.push_back(&c);
    } else {
      alternatives.push_back(&e);
    }
    for (const Expr* alt : alternatives) {
      std::vector<GrammarSymbol> rhs;
      std::string pending;
      LowerSeq(*alt, &rhs, &pending, name);
      if (!pending.empty()) rhs.push_back(GrammarSymbol{Terminal(pending), true, 1, 1});
      if (static_cast<int>(g.rules_.size()) >= b.limits_.max_rules) {
        Fail(absl::StrCat("more than ", b.limits_.max_rules, " rules after lowering"));
        return;
      }
      if (static_cast<int64_t>(g.symbols_.size() + rhs.size()) > b.limits_.max_symbols) {
        Fail(absl::StrCat("more than ", b.limits_.max_symbols, " symbols"));
        return;
      }
      const int32_t begin = static_cast<int32_t>(g.symbols_.size());
      g.symbols_.insert(g.symbols_.end(), rhs.begin(), rhs.end());
      g.rules_of_[n].push_back(static_cast<int32_t>(g.rules_.size()));
      g.rules_.push_back(Grammar::Rule{n, begin, static_cast<int32_t>(g.symbols_.size())});
    }
  }
};

absl::StatusOr<std::unique_ptr<Grammar>> GrammarBuilder::Build(int32_t start, absl::string_view what) {
  auto g = std::unique_ptr<Grammar>(new Grammar());
  Lowering l(*this, *g, absl::Now() + limits_.max_compile_time, std::string(what));
  const int n = static_cast<int>(names_.size());
  for (int i = 0; i < n; ++i) {
    if (definitions_[i] == nullptr) return absl::InvalidArgumentError(absl::StrCat(what, ": rule '", names_[i], "' is not defined"));
  }
  l.FindCycles();
  l.regex_state.assign(n, 0);
  l.regex.assign(n, std::nullopt);
  // Builder nonterminals keep their ids; the start rule's nonterminal and
  // lowering's helpers follow.
  g->names_ = names_;
  g->rules_of_.assign(n, {});
  const int32_t s = l.NewNonterminal("(start)");
  l.LowerRules(s, Expr::Ref(start), "(start)");
  // Every nonterminal referenced (and not inlined) gets its rules; the
  // worklist grows as lowering references more.
  std::vector<bool> lowered(n, false);
  for (bool more = true; more && l.error.ok();) {
    more = false;
    for (size_t i = 0; i < g->symbols_.size() && l.error.ok(); ++i) {
      const GrammarSymbol sym = g->symbols_[i];
      if (sym.terminal || sym.id >= n || lowered[sym.id]) continue;
      lowered[sym.id] = true;
      more = true;
      l.LowerRules(sym.id, *definitions_[sym.id], names_[sym.id]);
    }
  }
  RETURN_IF_ERROR(l.error);
  // The start rule must be rule 0.
  if (g->rules_of_[s].size() != 1 || g->rules_of_[s][0] != 0) {
    return absl::InternalError(absl::StrCat(what, ": the start rule is not rule 0"));
  }
  const int32_t total = g->num_nonterminals();
  // Nullable and productive nonterminals (fixpoints).
  g->nullable_.assign(total, false);
  std::vector<bool> productive(total, false);
  for (bool changed = true; changed;) {
    changed = false;
    for (const Grammar::Rule& r : g->rules_) {
      bool nullable = true, prod = true;
      for (int32_t i = r.begin; i < r.end; ++i) {
        const GrammarSymbol& sym = g->symbols_[i];
        if (sym.terminal) {
          nullable = nullable && g->terminals_[sym.id]->accepting(0);
        } else {
          nullable = nullable && (sym.min == 0 || g->nullable_[sym.id]);
          prod = prod && (sym.min == 0 || productive[sym.id]);
        }
      }
      if (nullable && !g->nullable_[r.lhs]) g->nullable_[r.lhs] = changed = true;
      if (prod && !productive[r.lhs]) productive[r.lhs] = changed = true;
    }
  }
  if (!productive[s]) return absl::InvalidArgumentError(absl::StrCat(what, ": the grammar matches no string"));
  // Unproductive nonterminals can only be skipped (min 0) or make a rule dead.
  std::vector<Grammar::Rule> rules;
  std::vector<std::vector<int32_t>> rules_of(total);
  for (const Grammar::Rule& r : g->rules_) {
    bool dead = false;
    for (int32_t i = r.begin; i < r.end; ++i) {
      GrammarSymbol& sym = g->symbols_[i];
      if (sym.terminal || productive[sym.id]) continue;
      if (sym.min == 0) {
        sym.max = 0;
      } else {
        dead = true;
      }
    }
    if (dead) continue;
    rules_of[r.lhs].push_back(static_cast<int32_t>(rules.size()));
    rules.push_back(r);
  }
  g->rules_ = std::move(rules);
  g->rules_of_ = std::move(rules_of);
  return g;
}

std::string Grammar::DebugString() const {
  std::string out;
  for (size_t r = 0; r < rules_.size(); ++r) {
    absl::StrAppend(&out, names_[rules_[r].lhs], " ::=");
    for (int32_t i = rules_[r].begin; i < rules_[r].end; ++i) {
      const GrammarSymbol& s = symbols_[i];
      if (s.terminal) {
        absl::StrAppend(&out, " /", terminal_patterns_[s.id], "/");
      } else {
        absl::StrAppend(&out, " ", names_[s.id]);
        if (s.min != 1 || s.max != 1) absl::StrAppend(&out, "{", s.min, ",", s.max, "}");
      }
    }
    out += "\n";
  }
  return out;
}

}  // namespace moe::grammar
