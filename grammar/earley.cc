#include "grammar/earley.h"

#include <algorithm>
#include <array>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "grammar/token_walk.h"

namespace moe::grammar {

struct GrammarMatcher::LexerEntry {
  TokenMask inside;                               // tokens that stay inside a lexeme
  std::vector<std::vector<int32_t>> groups;       // per group: each pair's automaton state at the boundary
  std::vector<std::vector<uint32_t>> group_nodes; // per group: the trie nodes where a lexeme may end
  int64_t bytes = 0;
};

GrammarMatcher::GrammarMatcher(std::unique_ptr<const Grammar> grammar, const TokenVocabulary* vocab,
                               int64_t cache_bytes)
    : grammar_(std::move(grammar)), vocab_(vocab), cache_bytes_(cache_bytes) {}

GrammarMatcher::~GrammarMatcher() = default;

namespace {

bool Add(EarleyChart* chart, int32_t k, const EarleyItem& item) {
  const uint32_t b = chart->begin[k];
  const auto n = static_cast<uint32_t>(chart->items.size());
  for (uint32_t i = b; i < n; ++i) {
    if (chart->items[i] == item) return false;
  }
  chart->items.push_back(item);
  return true;
}

void Closure(const Grammar& g, EarleyChart* chart, int32_t k) {
  for (uint32_t i = chart->begin[k]; i < chart->items.size(); ++i) {
    if (chart->items.size() - chart->begin[k] > static_cast<size_t>(kMaxItemsPerSet)) {
      chart->items.resize(chart->begin[k]);  // too ambiguous: an empty (dead) set
      return;
    }
    const EarleyItem it = chart->items[i];
    const Grammar::Rule& r = g.rules()[it.rule];
    if (it.dot == r.end - r.begin) {
      // Completion. An empty one (origin k) was applied when predicted.
      if (it.origin == k) continue;
      const uint32_t oe = chart->end(it.origin);
      for (uint32_t j = chart->begin[it.origin]; j < oe; ++j) {
        const EarleyItem w = chart->items[j];
        const Grammar::Rule& wr = g.rules()[w.rule];
        if (w.dot == wr.end - wr.begin) continue;
        const GrammarSymbol& ws = g.symbols()[wr.begin + w.dot];
        if (ws.terminal || ws.id != r.lhs) continue;
        int32_t c = w.count + 1;
        if (ws.max >= 0 && c >= ws.max) {
          Add(chart, k, EarleyItem{w.rule, w.dot + 1, 0, w.origin, 0});
        } else {
          if (ws.max < 0) c = std::min(c, ws.min);  // unbounded: only "at least min" matters
          Add(chart, k, EarleyItem{w.rule, w.dot, c, w.origin, 0});
        }
      }
      continue;
    }
    const GrammarSymbol& sym = g.symbols()[r.begin + it.dot];
    if (sym.terminal) {
      if (g.terminal(sym.id).accepting(it.lex)) Add(chart, k, EarleyItem{it.rule, it.dot + 1, 0, it.origin, 0});
      continue;
    }
    if (sym.max < 0 || it.count < sym.max) {
      for (int32_t rr : g.rules_of(sym.id)) Add(chart, k, EarleyItem{rr, 0, 0, k, 0});
    }
    if (it.count >= sym.min || g.nullable(sym.id)) Add(chart, k, EarleyItem{it.rule, it.dot + 1, 0, it.origin, 0});
  }
}

}  // namespace

void EarleyStart(const Grammar& g, EarleyChart* chart) {
  chart->items.clear();
  chart->begin.assign(1, 0);
  chart->items.push_back(EarleyItem{0, 0, 0, 0, 0});
  Closure(g, chart, 0);
}

bool EarleyScan(const Grammar& g, EarleyChart* chart, uint8_t byte) {
  const int32_t k = chart->size() - 1;
  const uint32_t b = chart->begin[k];
  const auto e = static_cast<uint32_t>(chart->items.size());
  chart->begin.push_back(e);
  for (uint32_t i = b; i < e; ++i) {
    const EarleyItem it = chart->items[i];
    const Grammar::Rule& r = g.rules()[it.rule];
    if (it.dot == r.end - r.begin) continue;
    const GrammarSymbol& sym = g.symbols()[r.begin + it.dot];
    if (!sym.terminal) continue;
    const int32_t s = g.terminal(sym.id).Next(it.lex, byte);
    if (s >= 0) Add(chart, k + 1, EarleyItem{it.rule, it.dot, 0, it.origin, s});
  }
  Closure(g, chart, k + 1);
  if (chart->items.size() == chart->begin.back()) {
    chart->begin.pop_back();
    return false;
  }
  return true;
}

bool EarleyComplete(const Grammar& g, const EarleyChart& chart) {
  const Grammar::Rule& start = g.rules()[0];
  const int32_t k = chart.size() - 1;
  const uint32_t e = chart.end(k);
  for (uint32_t i = chart.begin[k]; i < e; ++i) {
    const EarleyItem& it = chart.items[i];
    if (it.rule == 0 && it.origin == 0 && it.dot == start.end - start.begin) return true;
  }
  return false;
}

int32_t GrammarMatcher::CanonicalId(const EarleyChart& chart, std::vector<int32_t>* canon) {
  std::vector<std::array<int32_t, 5>> key;
  std::vector<int32_t> flat;
  for (int32_t k = static_cast<int32_t>(canon->size()); k < chart.size(); ++k) {
    key.clear();
    const uint32_t e = chart.end(k);
    for (uint32_t i = chart.begin[k]; i < e; ++i) {
      const EarleyItem& it = chart.items[i];
      key.push_back({it.rule, it.dot, it.count, it.lex, it.origin == k ? -1 : (*canon)[it.origin]});
    }
    std::sort(key.begin(), key.end());
    flat.clear();
    for (const auto& a : key) flat.insert(flat.end(), a.begin(), a.end());
    auto [pos, inserted] = canonical_.try_emplace(flat, static_cast<int32_t>(canonical_.size()));
    if (inserted) cached_bytes_ += static_cast<int64_t>(flat.size() * sizeof(int32_t)) + 64;
    canon->push_back(pos->second);
  }
  return canon->back();
}

const StateWalk& GrammarMatcher::PairWalk(int32_t terminal, int32_t state) {
  const std::pair<int32_t, int32_t> key{terminal, state};
  if (auto it = pair_walks_.find(key); it != pair_walks_.end()) return *it->second;
  auto walk = std::make_unique<StateWalk>(
      WalkState(grammar_->terminal(terminal), state, *vocab_, /*boundaries=*/true, &walk_memos_[terminal]));
  stats_.nodes_walked += walk->nodes_visited;
  cached_bytes_ += static_cast<int64_t>(walk->inside.size() * sizeof(uint64_t) + walk->first_accepts.size() * 8) + 128;
  return *pair_walks_.emplace(key, std::move(walk)).first->second;
}

const GrammarMatcher::LexerEntry& GrammarMatcher::Lexer(const std::vector<int32_t>& pairs) {
  auto it = lexers_.find(pairs);
  if (it != lexers_.end()) {
    ++stats_.lexer_hits;
    return *it->second;
  }
  ++stats_.lexer_walks;
  // Each (terminal, state) pair's walk (cached, shared by configurations),
  // combined: a token stays inside if it does in some pair; a lexeme can end
  // at a node where some pair first accepts and no pair accepted above it.
  auto entry = std::make_unique<LexerEntry>();
  entry->inside.assign((static_cast<size_t>(vocab_->size()) + 63) / 64, 0);
  const size_t n = pairs.size() / 2;
  const Grammar& g = *grammar_;
  std::vector<const StateWalk*> walks(n);
  std::vector<uint32_t> nodes;
  for (size_t p = 0; p < n; ++p) {
    walks[p] = &PairWalk(pairs[2 * p], pairs[2 * p + 1]);
    for (size_t w = 0; w < entry->inside.size(); ++w) entry->inside[w] |= walks[p]->inside[w];
    for (const auto& [node, state] : walks[p]->first_accepts) nodes.push_back(node);
  }
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  absl::flat_hash_map<std::vector<int32_t>, int32_t> group_ids;
  uint32_t covered_until = 0;  // the last boundary's subtree: its nodes are past it
  std::vector<int32_t> key(n);
  for (uint32_t node : nodes) {
    if (node < covered_until) continue;
    covered_until = vocab_->subtree_end(node);
    // Every pair's automaton state at the node (-1: dead on the way).
    const std::string bytes = vocab_->NodeBytes(node);
    for (size_t p = 0; p < n; ++p) {
      const ByteDfa& dfa = g.terminal(pairs[2 * p]);
      int32_t s = pairs[2 * p + 1];
      for (char c : bytes) {
        s = dfa.Next(s, static_cast<uint8_t>(c));
        if (s < 0) break;
      }
      key[p] = s;
    }
    auto [pos, inserted] = group_ids.try_emplace(key, static_cast<int32_t>(entry->groups.size()));
    if (inserted) {
      entry->groups.push_back(key);
      entry->group_nodes.emplace_back();
    }
    entry->group_nodes[pos->second].push_back(node);
    ++stats_.boundary_nodes;
  }
  entry->bytes = static_cast<int64_t>(entry->inside.size() * sizeof(uint64_t)) + 256;
  for (const auto& group_nodes : entry->group_nodes) entry->bytes += static_cast<int64_t>(group_nodes.size() * 4 + n * 4 + 64);
  cached_bytes_ += entry->bytes;
  return *lexers_.emplace(pairs, std::move(entry)).first->second;
}

void GrammarMatcher::WalkBelow(EarleyChart* chart, uint32_t node, TokenMask* mask) const {
  const std::vector<TokenVocabulary::Node>& trie = vocab_->trie();
  for (uint32_t c = trie[node].first_child; c != 0; c = trie[c].next_sibling) {
    if (!EarleyScan(*grammar_, chart, trie[c].byte)) continue;
    if (trie[c].token >= 0) {
      (*mask)[trie[c].token >> 6] |= uint64_t{1} << (trie[c].token & 63);
      if (trie[c].more_tokens != 0) {
        for (int32_t id : vocab_->MoreTokens(trie[c])) (*mask)[id >> 6] |= uint64_t{1} << (id & 63);
      }
    }
    if (trie[c].first_child != 0) WalkBelow(chart, c, mask);
    chart->Pop();
  }
}

void GrammarMatcher::MaybeDropCaches() {
  if (cached_bytes_ <= cache_bytes_) return;
  canonical_.clear();
  masks_.clear();
  lexers_.clear();
  pair_walks_.clear();
  cached_bytes_ = 0;
  ++generation_;
}

std::shared_ptr<const TokenMask> GrammarMatcher::Mask(EarleyChart* chart, std::vector<int32_t>* canon,
                                                      uint64_t* generation) {
  absl::MutexLock lock(&mu_);
  MaybeDropCaches();
  if (*generation != generation_) {
    canon->clear();
    *generation = generation_;
  }
  if (static_cast<int32_t>(canon->size()) > chart->size()) canon->resize(chart->size());
  const int32_t id = CanonicalId(*chart, canon);
  if (auto it = masks_.find(id); it != masks_.end()) {
    ++stats_.mask_hits;
    return it->second;
  }
  const Grammar& g = *grammar_;
  const int32_t k = chart->size() - 1;
  const uint32_t b = chart->begin[k], e = chart->end(k);
  // The lexer configuration: distinct (terminal, state) pairs, sorted.
  std::vector<std::pair<int32_t, int32_t>> sorted;
  for (uint32_t i = b; i < e; ++i) {
    const EarleyItem& it = chart->items[i];
    const Grammar::Rule& r = g.rules()[it.rule];
    if (it.dot == r.end - r.begin) continue;
    const GrammarSymbol& sym = g.symbols()[r.begin + it.dot];
    if (sym.terminal) sorted.emplace_back(sym.id, it.lex);
  }
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::vector<int32_t> pairs;
  for (const auto& [t, s] : sorted) pairs.insert(pairs.end(), {t, s});
  const LexerEntry& lexer = Lexer(pairs);
  auto mask = std::make_shared<TokenMask>(lexer.inside);
  for (size_t group = 0; group < lexer.groups.size(); ++group) {
    // The set where the lexemes that can end at these nodes have ended.
    chart->begin.push_back(static_cast<uint32_t>(chart->items.size()));
    for (uint32_t i = b; i < e; ++i) {
      const EarleyItem it = chart->items[i];
      const Grammar::Rule& r = g.rules()[it.rule];
      if (it.dot == r.end - r.begin) continue;
      const GrammarSymbol& sym = g.symbols()[r.begin + it.dot];
      if (!sym.terminal) continue;
      const size_t p = std::lower_bound(sorted.begin(), sorted.end(), std::make_pair(sym.id, it.lex)) - sorted.begin();
      const int32_t s = lexer.groups[group][p];
      if (s >= 0) Add(chart, k + 1, EarleyItem{it.rule, it.dot, 0, it.origin, s});
    }
    Closure(g, chart, k + 1);
    if (chart->items.size() > chart->begin.back()) {
      for (uint32_t node : lexer.group_nodes[group]) WalkBelow(chart, node, mask.get());
    }
    chart->Pop();
  }
  cached_bytes_ += static_cast<int64_t>(mask->size() * sizeof(uint64_t)) + 64;
  masks_.emplace(id, mask);
  return mask;
}

GrammarMatcher::Stats GrammarMatcher::stats() {
  absl::MutexLock lock(&mu_);
  return stats_;
}

EarleyParser::EarleyParser(GrammarMatcher* matcher) : matcher_(matcher) { EarleyStart(matcher_->grammar(), &chart_); }

bool EarleyParser::AdvanceBytes(absl::string_view bytes) {
  const int32_t sets = chart_.size();
  for (char c : bytes) {
    if (!EarleyScan(matcher_->grammar(), &chart_, static_cast<uint8_t>(c))) {
      while (chart_.size() > sets) chart_.Pop();
      if (static_cast<int32_t>(canon_.size()) > sets) canon_.resize(sets);
      return false;
    }
  }
  return true;
}

absl::Status EarleyParser::Advance(int32_t token) {
  const TokenVocabulary& v = matcher_->vocabulary();
  if (token < 0 || token >= v.size() || v.special(token) || v.bytes(token).empty() || !AdvanceBytes(v.bytes(token))) {
    return absl::FailedPreconditionError(absl::StrCat("token ", token, " is not allowed here"));
  }
  return absl::OkStatus();
}

bool Grammar::Matches(absl::string_view text) const {
  EarleyChart chart;
  EarleyStart(*this, &chart);
  for (char c : text) {
    if (!EarleyScan(*this, &chart, static_cast<uint8_t>(c))) return false;
  }
  return EarleyComplete(*this, chart);
}

}  // namespace moe::grammar
