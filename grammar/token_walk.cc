#include "grammar/token_walk.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_format.h"

namespace moe::grammar {
namespace {

// Well-formed UTF-8 (Unicode table 3-7) as an automaton over the bytes of
// one multi-byte character: 0 is a character boundary, the others how many
// continuation bytes are still due (and which ranges the next one allows).
enum Utf8State { kBoundary = 0, kNeed1, kNeed2, kNeed2E0, kNeed2ED, kNeed3, kNeed3F0, kNeed3F4 };

int Utf8Next(int u, uint8_t b) {
  const bool cont = b >= 0x80 && b <= 0xBF;
  switch (u) {
    case kBoundary:
      if (b >= 0xC2 && b <= 0xDF) return kNeed1;
      if (b == 0xE0) return kNeed2E0;
      if (b == 0xED) return kNeed2ED;
      if (b >= 0xE1 && b <= 0xEF) return kNeed2;
      if (b == 0xF0) return kNeed3F0;
      if (b >= 0xF1 && b <= 0xF3) return kNeed3;
      if (b == 0xF4) return kNeed3F4;
      return -1;  // ASCII is not a multi-byte lead; the rest never starts a character
    case kNeed1:
      return cont ? kBoundary : -1;
    case kNeed2:
      return cont ? kNeed1 : -1;
    case kNeed2E0:
      return b >= 0xA0 && b <= 0xBF ? kNeed1 : -1;
    case kNeed2ED:
      return b >= 0x80 && b <= 0x9F ? kNeed1 : -1;
    case kNeed3:
      return cont ? kNeed2 : -1;
    case kNeed3F0:
      return b >= 0x90 && b <= 0xBF ? kNeed2 : -1;
    case kNeed3F4:
      return b >= 0x80 && b <= 0x8F ? kNeed2 : -1;
    default:
      return -1;
  }
}

// A character class: ASCII bytes, plus (optionally) every well-formed
// multi-byte character.
struct ClassKey {
  uint64_t ascii[2] = {0, 0};
  bool multibyte = false;
  bool has(uint8_t b) const { return b < 0x80 && ((ascii[b >> 6] >> (b & 63)) & 1); }
  std::string str(uint32_t root) const {
    return absl::StrFormat("token_walk.class:%016x%016x:%d@%d", ascii[0], ascii[1], multibyte, root);
  }
};

// Counts up to kMaxCount characters are indexed; a longer chain stops there
// and walks on from the nodes at that count.
constexpr int kMaxCount = 16;
// Below a node with at least this many descendants, a frontier's walk uses
// a class index of its own (e.g. the tokens that start with a space), up to
// kMaxNesting levels deep.
constexpr uint32_t kBigSubtree = 4096;
constexpr int kMaxNesting = 2;

struct ClassIndex {
  // at_most[n]: tokens made of at most n characters of the class (any
  // trailing incomplete character allowed), n < kMaxCount.
  std::vector<TokenMask> at_most;
  // exactly[n]: tokens of exactly n whole characters, n < kMaxCount.
  std::vector<TokenMask> exactly;
  TokenMask all;  // every token made of class characters
  struct Frontier {
    uint32_t node;      // the first byte the class does not continue with
    int32_t count;      // whole characters before it
    uint8_t pending_len;
    uint8_t pending[3];  // an incomplete character before it
  };
  // By the byte there (entries without an incomplete character), each by
  // count: a state only looks at the bytes it can take.
  std::vector<std::vector<Frontier>> frontier_by_byte;  // [256]
  std::vector<Frontier> frontier_pending;  // after an incomplete character, by count
  // nodes_at[n]: nodes ending exactly n whole characters (n <= kMaxCount).
  std::vector<std::vector<uint32_t>> nodes_at;
};

void SetTokens(const TokenVocabulary& vocab, uint32_t node, TokenMask* mask) {
  const TokenVocabulary::Node& n = vocab.trie()[node];
  if (n.token < 0) return;
  (*mask)[n.token >> 6] |= uint64_t{1} << (n.token & 63);
  if (n.more_tokens != 0) {
    for (int32_t id : vocab.MoreTokens(n)) (*mask)[id >> 6] |= uint64_t{1} << (id & 63);
  }
}

// The index of the subtree below `root` (counts from there).
std::shared_ptr<const ClassIndex> BuildClassIndex(const TokenVocabulary& vocab, const ClassKey& key, uint32_t root) {
  auto index = std::make_shared<ClassIndex>();
  index->nodes_at.resize(kMaxCount + 1);
  index->frontier_by_byte.resize(256);
  // Per token: its count of whole characters (kNotIn: not made of the
  // class), and whether an incomplete character ends it; the masks are
  // made from these afterwards, word by word (cache-friendly).
  constexpr uint8_t kNotIn = 255;
  std::vector<uint8_t> token_count(static_cast<size_t>(vocab.size()), kNotIn);
  std::vector<uint8_t> token_partial(static_cast<size_t>(vocab.size()), 0);
  const std::vector<TokenVocabulary::Node>& trie = vocab.trie();
  struct Level {
    int u = kBoundary;
    int32_t count = 0;
    uint8_t pending_len = 0;
    uint8_t pending[3] = {0, 0, 0};
  };
  std::vector<Level> level(1);
  const int32_t base = vocab.depth(root);
  const uint32_t end = vocab.subtree_end(root);
  uint32_t i = root + 1;
  auto note = [&](int32_t id, const Level& l) {
    token_count[static_cast<size_t>(id)] = static_cast<uint8_t>(std::min<int32_t>(l.count, kNotIn - 1));
    token_partial[static_cast<size_t>(id)] = l.u != kBoundary ? 1 : 0;
  };
  while (i < end) {
    const auto d = static_cast<size_t>(vocab.depth(i) - base);
    if (d >= level.size()) level.resize(d + 1);
    const Level& p = level[d - 1];
    const uint8_t b = trie[i].byte;
    Level next;
    bool alive;
    if (p.u == kBoundary && b < 0x80) {
      alive = key.has(b);
      next.count = p.count + 1;
    } else if (p.u == kBoundary && !key.multibyte) {
      alive = false;
    } else {
      next.u = Utf8Next(p.u, b);
      alive = next.u >= 0;
      if (alive && next.u == kBoundary) {
        next.count = p.count + 1;
      } else if (alive) {
        next.count = p.count;
        next.pending_len = p.pending_len;
        std::copy(p.pending, p.pending + 3, next.pending);
        next.pending[next.pending_len++] = b;
      }
    }
    if (!alive) {
      ClassIndex::Frontier f{i, p.count, p.pending_len, {p.pending[0], p.pending[1], p.pending[2]}};
      (p.pending_len > 0 ? index->frontier_pending : index->frontier_by_byte[b]).push_back(f);
      i = vocab.subtree_end(i);
      continue;
    }
    const TokenVocabulary::Node& node = trie[i];
    if (node.token >= 0) {
      note(node.token, next);
      if (node.more_tokens != 0) {
        for (int32_t id : vocab.MoreTokens(node)) note(id, next);
      }
    }
    if (next.u == kBoundary && next.count <= kMaxCount) index->nodes_at[static_cast<size_t>(next.count)].push_back(i);
    level[d] = next;
    ++i;
  }
  const size_t words = (static_cast<size_t>(vocab.size()) + 63) / 64;
  index->at_most.assign(kMaxCount, TokenMask(words, 0));
  index->exactly.assign(kMaxCount, TokenMask(words, 0));
  index->all.assign(words, 0);
  for (size_t w = 0; w < words; ++w) {
    for (size_t k = 0; k < 64; ++k) {
      const size_t id = w * 64 + k;
      if (id >= token_count.size()) break;
      const uint8_t c = token_count[id];
      if (c == kNotIn) continue;
      const uint64_t bit = uint64_t{1} << k;
      index->all[w] |= bit;
      if (c < kMaxCount) {
        index->at_most[c][w] |= bit;
        if (token_partial[id] == 0) index->exactly[c][w] |= bit;
      }
    }
    for (size_t c = 1; c < static_cast<size_t>(kMaxCount); ++c) index->at_most[c][w] |= index->at_most[c - 1][w];
  }
  auto by_count = [](const ClassIndex::Frontier& a, const ClassIndex::Frontier& b) { return a.count < b.count; };
  for (auto& list : index->frontier_by_byte) std::stable_sort(list.begin(), list.end(), by_count);
  std::stable_sort(index->frontier_pending.begin(), index->frontier_pending.end(), by_count);
  return index;
}

constexpr int32_t kLeadsDead = -1;  // every multi-byte lead is dead
constexpr int32_t kMixed = -2;      // multi-byte characters go to different places

// Where every well-formed multi-byte character takes the automaton from
// `c`, through live states that do not accept: one state, kLeadsDead, or
// kMixed.
int32_t MultibyteTarget(const ByteDfa& dfa, int32_t c) {
  bool all_dead = true;
  for (int lead = 0xC2; lead <= 0xF4 && all_dead; ++lead) all_dead = dfa.Next(c, static_cast<uint8_t>(lead)) < 0;
  if (all_dead) return kLeadsDead;
  int32_t target = kMixed;
  absl::InlinedVector<std::pair<int, int32_t>, 16> seen, stack;
  auto push = [&](std::pair<int, int32_t> pu) {
    if (std::find(seen.begin(), seen.end(), pu) != seen.end()) return;
    seen.push_back(pu);
    stack.push_back(pu);
  };
  for (int lead = 0xC2; lead <= 0xF4; ++lead) {
    const int32_t d = dfa.Next(c, static_cast<uint8_t>(lead));
    if (d < 0 || dfa.accepting(d)) return kMixed;
    push({Utf8Next(kBoundary, static_cast<uint8_t>(lead)), d});
  }
  while (!stack.empty()) {
    const auto [u, d] = stack.back();
    stack.pop_back();
    for (int b = 0x80; b <= 0xBF; ++b) {
      const int u2 = Utf8Next(u, static_cast<uint8_t>(b));
      if (u2 < 0) continue;
      const int32_t d2 = dfa.Next(d, static_cast<uint8_t>(b));
      if (d2 < 0) return kMixed;
      if (u2 == kBoundary) {
        if (target == kMixed) target = d2;
        if (d2 != target) return kMixed;
        continue;
      }
      if (dfa.accepting(d2)) return kMixed;
      push({u2, d2});
    }
  }
  return target;
}

int32_t MemoMultibyteTarget(const ByteDfa& dfa, int32_t c, WalkMemo* memo) {
  if (memo == nullptr) return MultibyteTarget(dfa, c);
  auto [it, inserted] = memo->multibyte_target.try_emplace(c, 0);
  if (inserted) it->second = MultibyteTarget(dfa, c);
  return it->second;
}

// Walks the subtree below `root` (root excluded), the automaton in `state`
// at root; `past`: it accepted above or at root already.
void PlainWalk(const ByteDfa& dfa, const TokenVocabulary& vocab, uint32_t root, int32_t state, bool past,
               bool boundaries, StateWalk* out) {
  const std::vector<TokenVocabulary::Node>& trie = vocab.trie();
  const uint32_t end = vocab.subtree_end(root);
  const int32_t base = vocab.depth(root);
  thread_local std::vector<int32_t> states;
  thread_local std::vector<uint8_t> pasts;
  states.assign(1, state);
  pasts.assign(1, past ? 1 : 0);
  uint32_t i = root + 1;
  while (i < end) {
    const auto k = static_cast<size_t>(vocab.depth(i) - base);
    ++out->nodes_visited;
    const int32_t s = dfa.Next(states[k - 1], trie[i].byte);
    if (s < 0) {
      i = vocab.subtree_end(i);
      continue;
    }
    SetTokens(vocab, i, &out->inside);
    const bool acc = dfa.accepting(s);
    if (boundaries && acc && pasts[k - 1] == 0 && trie[i].first_child != 0) out->first_accepts.emplace_back(i, s);
    if (k >= states.size()) {
      states.resize(k + 1);
      pasts.resize(k + 1);
    }
    states[k] = s;
    pasts[k] = static_cast<uint8_t>(pasts[k - 1] != 0 || acc);
    ++i;
  }
}

// The class-chain form (see the header) of the walk below `root`, the
// automaton in state `s` there (`past`: it accepted at or above root).
// False when the state has no class worth it (the caller walks plainly).
bool ClassWalk(const ByteDfa& dfa, int32_t s, const TokenVocabulary& vocab, uint32_t root, bool past, bool boundaries,
               int nesting, WalkMemo* memo, StateWalk* out) {
  // The class: the ASCII bytes that go where most of them go.
  int32_t target[128];
  int32_t t1 = -1;
  int best = 0;
  {
    absl::flat_hash_map<int32_t, int> votes;
    for (int b = 0; b < 128; ++b) {
      target[b] = dfa.Next(s, static_cast<uint8_t>(b));
      if (target[b] >= 0) ++votes[target[b]];
    }
    for (const auto& [t, v] : votes) {
      if (v > best || (v == best && t < t1)) {
        best = v;
        t1 = t;
      }
    }
  }
  constexpr int kMinClassBytes = 16;  // below this a plain walk is cheap anyway
  if (best < kMinClassBytes) return false;
  ClassKey key;
  for (int b = 0; b < 128; ++b) {
    if (target[b] == t1) key.ascii[b >> 6] |= uint64_t{1} << (b & 63);
  }
  key.multibyte = MemoMultibyteTarget(dfa, s, memo) == t1;
  int first_ascii = 0;
  while (!key.has(static_cast<uint8_t>(first_ascii))) ++first_ascii;

  // The chain c_0 = s, c_1 = t1, ...: how far every class character moves
  // the automaton the same way.
  enum class End { kLoop, kDead, kStop } end = End::kStop;
  std::vector<int32_t> chain = {s, t1};
  int32_t limit = kMaxCount;  // kDead: dead at `limit`; kStop: walk on from count `limit`
  int32_t loop_at = -1;
  if (t1 == s) {
    end = End::kLoop;
    loop_at = 0;
  } else {
    for (int32_t j = 1;; ++j) {
      if (j == kMaxCount) {
        end = End::kStop;
        limit = j;
        break;
      }
      const int32_t c = chain[static_cast<size_t>(j)];
      const int32_t t = dfa.Next(c, static_cast<uint8_t>(first_ascii));
      bool uniform = true;
      for (int b = 0; b < 128 && uniform; ++b) {
        if (key.has(static_cast<uint8_t>(b)) && dfa.Next(c, static_cast<uint8_t>(b)) != t) uniform = false;
      }
      if (uniform && key.multibyte) uniform = MemoMultibyteTarget(dfa, c, memo) == (t >= 0 ? t : kLeadsDead);
      if (!uniform) {
        end = End::kStop;
        limit = j;
        break;
      }
      if (t < 0) {
        end = End::kDead;
        limit = j + 1;
        break;
      }
      if (t == c) {
        end = End::kLoop;
        loop_at = j;
        break;
      }
      chain.push_back(t);
    }
  }
  auto state_at = [&](int32_t count) {
    return end == End::kLoop && count > loop_at ? chain[static_cast<size_t>(loop_at)] : chain[static_cast<size_t>(count)];
  };
  // The first count (>= 1) where the chain accepts: a lexeme may end at the
  // nodes of that count.
  constexpr int32_t kNone = 1 << 30;
  int32_t first_accept = kNone;
  const int32_t chain_end = end == End::kLoop ? std::max(loop_at, 1) : limit - 1;
  for (int32_t j = 1; j <= chain_end; ++j) {
    if (dfa.accepting(state_at(j))) {
      first_accept = j;
      break;
    }
  }
  if (past) first_accept = 0;  // everything below root is past an acceptance

  // The root's index is worth building whenever (a build costs less than a
  // plain walk of the whole trie); a subtree's only while the cache has room.
  std::shared_ptr<const ClassIndex> index = std::static_pointer_cast<const ClassIndex>(vocab.Derived(
      key.str(root), [&] { return std::static_pointer_cast<const void>(BuildClassIndex(vocab, key, root)); },
      /*optional=*/root != 0));
  if (index == nullptr) return false;
  out->used_class_index = true;
  TokenMask& inside = out->inside;
  const size_t words = inside.size();
  auto or_mask = [&](const TokenMask& m) {
    for (size_t w = 0; w < words; ++w) inside[w] |= m[w];
  };
  switch (end) {
    case End::kLoop:
      or_mask(index->all);
      break;
    case End::kDead:
      if (limit >= 2) or_mask(index->at_most[static_cast<size_t>(limit - 2)]);
      or_mask(index->exactly[static_cast<size_t>(limit - 1)]);
      break;
    case End::kStop:
      or_mask(index->at_most[static_cast<size_t>(limit - 1)]);
      break;
  }
  const std::vector<TokenVocabulary::Node>& trie = vocab.trie();
  // Below a node reached in state d: a class walk of its own for a big
  // subtree, else a plain one.
  auto below = [&](uint32_t node, int32_t d, bool past_node) {
    if (nesting < kMaxNesting && vocab.subtree_end(node) - node >= kBigSubtree &&
        ClassWalk(dfa, d, vocab, node, past_node, boundaries, nesting + 1, memo, out)) {
      return;
    }
    PlainWalk(dfa, vocab, node, d, past_node, boundaries, out);
  };
  // Where the class ends: the automaton in the chain's state there, then the
  // incomplete character, then the byte.
  const int32_t last_count = end == End::kLoop ? std::numeric_limits<int32_t>::max() : limit - 1;
  auto visit = [&](const ClassIndex::Frontier& f) {
    int32_t d = state_at(f.count);
    for (int k = 0; k < f.pending_len && d >= 0; ++k) d = dfa.Next(d, f.pending[k]);
    if (d >= 0) d = dfa.Next(d, trie[f.node].byte);
    if (d < 0) return;
    SetTokens(vocab, f.node, &inside);
    const bool past_f = first_accept <= f.count;
    const bool acc = dfa.accepting(d);
    if (boundaries && acc && !past_f && trie[f.node].first_child != 0) out->first_accepts.emplace_back(f.node, d);
    if (trie[f.node].first_child != 0) below(f.node, d, past_f || acc);
  };
  // Only the bytes some chain state can take outside the class.
  const int32_t distinct = end == End::kLoop ? loop_at + 1 : std::min<int32_t>(limit, static_cast<int32_t>(chain.size()));
  for (int b = 0; b < 256; ++b) {
    const std::vector<ClassIndex::Frontier>& list = index->frontier_by_byte[static_cast<size_t>(b)];
    if (list.empty()) continue;
    bool live = false;
    for (int32_t j = 0; j < distinct && !live; ++j) live = dfa.Next(chain[static_cast<size_t>(j)], static_cast<uint8_t>(b)) >= 0;
    if (!live) continue;
    for (const ClassIndex::Frontier& f : list) {
      if (f.count > last_count) break;
      visit(f);
    }
  }
  for (const ClassIndex::Frontier& f : index->frontier_pending) {
    if (f.count > last_count) break;
    if (end == End::kDead && f.count == limit - 1) continue;  // its first byte is dead
    visit(f);
  }
  if (boundaries && first_accept != kNone && first_accept >= 1 && first_accept <= kMaxCount &&
      (end == End::kLoop || first_accept < limit)) {
    const int32_t d = state_at(first_accept);
    for (uint32_t v : index->nodes_at[static_cast<size_t>(first_accept)]) {
      if (trie[v].first_child != 0) out->first_accepts.emplace_back(v, d);
    }
  }
  if (end == End::kStop) {
    // Past the chain: walks on from the nodes at its last count.
    const int32_t d = chain[static_cast<size_t>(limit)];
    const bool past_v = first_accept < limit;
    const bool acc = dfa.accepting(d);
    for (uint32_t v : index->nodes_at[static_cast<size_t>(limit)]) {
      SetTokens(vocab, v, &inside);
      if (boundaries && acc && !past_v && trie[v].first_child != 0) out->first_accepts.emplace_back(v, d);
      if (trie[v].first_child != 0) PlainWalk(dfa, vocab, v, d, past_v || acc, boundaries, out);
    }
  }
  return true;
}

}  // namespace

StateWalk WalkState(const ByteDfa& dfa, int32_t state, const TokenVocabulary& vocab, bool boundaries,
                    WalkMemo* memo, bool use_class_index) {
  StateWalk out;
  out.inside.assign((static_cast<size_t>(vocab.size()) + 63) / 64, 0);
  if (!(use_class_index && ClassWalk(dfa, state, vocab, /*root=*/0, /*past=*/false, boundaries, 0, memo, &out))) {
    PlainWalk(dfa, vocab, 0, state, false, boundaries, &out);
  }
  std::sort(out.first_accepts.begin(), out.first_accepts.end());
  return out;
}

}  // namespace moe::grammar
