#include "router/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/vector_ops.h"
#include "glog/logging.h"

namespace moe {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Top-p on any vector types (the sampler's scratch vectors, the tests' plain ones); below.
template <typename Ids, typename Weights>
void TopPFilterOn(absl::Span<const float> l, double target, Ids* ids, Weights* weights, TopPScratch* scratch);
template <typename Ids, typename Weights>
double TopPFilterInIdOrderOn(absl::Span<const float> values, float hi, float lo, double target, Ids* ids,
                             Weights* weights, TopPScratch* scratch);

}  // namespace

Sampler::Sampler(const SamplingOptions& options, absl::Span<const int32_t> prompt, std::vector<int32_t> end_ids,
                 std::unique_ptr<grammar::TokenConstraint> constraint)
    : options_(options), end_ids_(std::move(end_ids)), constraint_(std::move(constraint)) {
  if (options_.seed.has_value()) {
    // Distinct, well-mixed streams per sample index (splitmix64 of the pair).
    uint64_t z = *options_.seed + 0x9e3779b97f4a7c15ull * (options_.sample_index + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    rng_.seed(z ^ (z >> 31));
  } else {
    std::random_device rd;
    rng_.seed((static_cast<uint64_t>(rd()) << 32) ^ rd());
  }
  if (options_.repetition_penalty != 1.0f) {
    penalized_.assign(prompt.begin(), prompt.end());
    std::sort(penalized_.begin(), penalized_.end());
    penalized_.erase(std::unique(penalized_.begin(), penalized_.end()), penalized_.end());
  }
}

GeneratedToken ScoreToken(absl::Span<const float> raw, int32_t id, int top) {
  const int64_t V = static_cast<int64_t>(raw.size());
  const float mx = MaxValue(raw.data(), V);
  const double lse = static_cast<double>(mx) + std::log(SumExp(raw.data(), V, mx, 1.0f));
  GeneratedToken t;
  t.id = id;
  t.logprob = static_cast<double>(raw[id]) - lse;
  const int k = static_cast<int>(std::min<int64_t>(top, V));
  if (k > 0) {
    std::vector<int32_t> ids(V);
    int64_t n = 0;
    for (float delta = 0.5f; n < k; delta *= 2) {
      n = delta > 1e4f ? V : IndicesAbove(raw.data(), V, mx - delta, ids.data());
      if (n == V) std::iota(ids.begin(), ids.end(), 0);
    }
    std::partial_sort(ids.begin(), ids.begin() + k, ids.begin() + n,
                      [&](int32_t a, int32_t b) { return raw[a] != raw[b] ? raw[a] > raw[b] : a < b; });
    for (int i = 0; i < k; ++i) t.top_logprobs.emplace_back(ids[i], static_cast<double>(raw[ids[i]]) - lse);
  }
  return t;
}

double Sampler::Uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

GeneratedToken Sampler::Sample(absl::Span<const float> raw) {
  const int64_t V = static_cast<int64_t>(raw.size());
  const float raw_max = MaxValue(raw.data(), V);
  const double raw_z = SumExp(raw.data(), V, raw_max, 1.0f);

  // Processing on a copy, only when something applies.
  const bool mask_end = generated_ < options_.min_tokens && !end_ids_.empty();
  const bool adjusted = options_.repetition_penalty != 1.0f || options_.presence_penalty != 0.0f ||
                        options_.frequency_penalty != 0.0f || !options_.logit_bias.empty() || mask_end;
  const bool processed = adjusted || constraint_ != nullptr;
  absl::Span<const float> l = raw;
  float max_logit = raw_max;
  double z = raw_z;
  int32_t id = -1;
  if (constraint_ != nullptr && !adjusted && options_.temperature == 0) {
    // Greedy under a constraint alone: the best allowed token, read in place
    // (the same choice as the masked copy below would give).
    id = GreedyAllowed(raw, constraint_->Mask(), constraint_->Complete());
  } else if (processed) {
    work_.assign(raw.begin(), raw.end());
    if (options_.repetition_penalty != 1.0f) {
      const float rp = options_.repetition_penalty;
      for (int32_t id : penalized_) work_[id] = work_[id] > 0 ? work_[id] / rp : work_[id] * rp;
    }
    for (const auto& [id, count] : output_counts_) {
      work_[id] -= options_.frequency_penalty * static_cast<float>(count) + options_.presence_penalty;
    }
    for (const auto& [id, bias] : options_.logit_bias) work_[id] += bias;
    if (constraint_ != nullptr) {
      // Only what the constraint allows, and the end only once it is complete.
      const grammar::TokenMask& m = constraint_->Mask();
      std::vector<float> ends;
      const bool complete = constraint_->Complete() && !mask_end;
      if (complete) {
        for (int32_t id : end_ids_) ends.push_back(work_[id]);
      }
      ApplyMask(m, absl::MakeSpan(work_));
      if (complete) {
        for (size_t k = 0; k < end_ids_.size(); ++k) work_[end_ids_[k]] = ends[k];
      }
    }
    if (mask_end) {
      for (int32_t id : end_ids_) work_[id] = kNegInf;
    }
    l = work_;
    max_logit = MaxValue(work_.data(), V);
    if (max_logit == kNegInf && !end_ids_.empty()) {
      // Nothing is allowed (a constraint the vocabulary cannot continue):
      // end rather than draw from nothing.
      work_[end_ids_[0]] = 0.0f;
      max_logit = 0.0f;
    }
    // Greedy needs only the maximum.
    if (options_.temperature != 0) z = SumExp(work_.data(), V, max_logit, 1.0f);
  }

  if (id >= 0) {
    // chosen above
  } else if (options_.temperature == 0) {
    id = static_cast<int32_t>(std::find(l.begin(), l.end(), max_logit) - l.begin());
  } else {
    id = Draw(l, max_logit, z);
  }

  GeneratedToken tok;
  const double lse = static_cast<double>(raw_max) + std::log(raw_z);
  tok.id = id;
  tok.logprob = static_cast<double>(raw[id]) - lse;
  if (options_.top_logprobs > 0) {
    const int k = std::min<int64_t>(options_.top_logprobs, V);
    ids_.resize(V);
    int64_t n = 0;
    for (float delta = 0.5f; n < k; delta *= 2) {
      n = delta > 1e4f ? V : IndicesAbove(raw.data(), V, raw_max - delta, ids_.data());
      if (n == V) std::iota(ids_.begin(), ids_.end(), 0);
    }
    std::partial_sort(ids_.begin(), ids_.begin() + k, ids_.begin() + n, [&](int32_t a, int32_t b) {
      return raw[a] != raw[b] ? raw[a] > raw[b] : a < b;
    });
    for (int i = 0; i < k; ++i) tok.top_logprobs.emplace_back(ids_[i], static_cast<double>(raw[ids_[i]]) - lse);
  }

  ++generated_;
  if (constraint_ != nullptr && std::find(end_ids_.begin(), end_ids_.end(), id) == end_ids_.end()) {
    // Allowed by the mask, so this cannot fail; a failure would mean a bug.
    if (absl::Status st = constraint_->Advance(id); !st.ok()) LOG(ERROR) << "constraint: " << st;
  }
  if (options_.presence_penalty != 0.0f || options_.frequency_penalty != 0.0f) ++output_counts_[id];
  if (options_.repetition_penalty != 1.0f) {
    auto it = std::lower_bound(penalized_.begin(), penalized_.end(), id);
    if (it == penalized_.end() || *it != id) penalized_.insert(it, id);
  }
  return tok;
}

// Logits of the tokens `mask` does not allow become -inf; ids past the
// mask (padded embeddings beyond the tokenizer's vocabulary) too. Word by
// word: whole words allowed or refused cost one test.
void ApplyMask(const grammar::TokenMask& mask, absl::Span<float> logits) {
  const int64_t V = static_cast<int64_t>(logits.size());
  const int64_t words = static_cast<int64_t>(mask.size());
  for (int64_t b = 0, w = 0; b < V; b += 64, ++w) {
    const uint64_t bits = w < words ? mask[w] : 0;
    const int64_t e = std::min<int64_t>(V, b + 64);
    if (bits == ~uint64_t{0}) continue;
    if (bits == 0) {
      std::fill(logits.begin() + b, logits.begin() + e, kNegInf);
      continue;
    }
    for (int64_t i = b; i < e; ++i) {
      if (!((bits >> (i - b)) & 1)) logits[i] = kNegInf;
    }
  }
}

// argmax over the allowed ids (and the end ids once complete), lowest id on
// ties; the first end id when every allowed logit is -inf or nothing is
// allowed.
int32_t Sampler::GreedyAllowed(absl::Span<const float> raw, const grammar::TokenMask& mask, bool complete) const {
  const int64_t V = static_cast<int64_t>(raw.size());
  const int64_t words = std::min<int64_t>(static_cast<int64_t>(mask.size()), (V + 63) / 64);
  float best = kNegInf;
  int32_t best_id = -1;
  for (int64_t w = 0; w < words; ++w) {
    uint64_t bits = mask[w];
    if (bits == 0) continue;
    const int64_t b = w * 64;
    const int64_t n = std::min<int64_t>(64, V - b);
    if (n < 64) bits &= (uint64_t{1} << n) - 1;
    if (bits == ~uint64_t{0}) {
      // A whole allowed word: its maximum first, then where it is.
      const float mx = MaxValue(raw.data() + b, 64);
      if (mx > best) {
        best = mx;
        best_id = static_cast<int32_t>(std::find(raw.begin() + b, raw.begin() + b + 64, mx) - raw.begin());
      }
      continue;
    }
    for (; bits != 0; bits &= bits - 1) {
      const int64_t i = b + __builtin_ctzll(bits);
      if (raw[i] > best) {
        best = raw[i];
        best_id = static_cast<int32_t>(i);
      }
    }
  }
  if (complete) {
    for (int32_t e : end_ids_) {
      if (raw[e] > best || (raw[e] == best && best != kNegInf && e < best_id)) {
        best = raw[e];
        best_id = e;
      }
    }
  }
  if (best != kNegInf) return best_id;
  // Nothing allowed: the end (the masked copy's fallback); without end ids,
  // where every processed logit is -inf, the first id.
  return end_ids_.empty() ? 0 : end_ids_[0];
}

// Top-k / typical path: ids_ = the exact candidate set, sorted by logit
// (desc, then id).
void Sampler::Candidates(absl::Span<const float> l, float max_logit, double /*z*/) {
  const int64_t V = static_cast<int64_t>(l.size());
  auto by_logit = [&](int32_t a, int32_t b) { return l[a] != l[b] ? l[a] > l[b] : a < b; };
  ids_.resize(V);
  auto all = [&] {
    std::iota(ids_.begin(), ids_.end(), 0);
    return V;
  };
  int64_t n;
  if (options_.top_k > 0) {
    const int64_t k = std::min<int64_t>(options_.top_k, V);
    n = 0;
    for (float delta = 0.5f; n < k; delta *= 2) n = delta > 1e4f ? all() : IndicesAbove(l.data(), V, max_logit - delta, ids_.data());
    std::partial_sort(ids_.begin(), ids_.begin() + k, ids_.begin() + n, by_logit);
    n = k;
  } else {
    n = all();
    std::sort(ids_.begin(), ids_.end(), by_logit);
  }
  ids_.resize(n);
}

int32_t Sampler::Draw(absl::Span<const float> l, float max_logit, double z) {
  const int64_t V = static_cast<int64_t>(l.size());
  const double inv_t = 1.0 / options_.temperature;
  const bool filtered = options_.top_k > 0 || options_.typical_p < 1 || options_.top_p < 1 || options_.min_p > 0;
  if (!filtered) {
    // Plain temperature sampling over the whole vocabulary, in id order.
    const double total = options_.temperature == 1.0f ? z : SumExp(l.data(), V, max_logit, static_cast<float>(inv_t));
    double target = Uniform() * total;
    int32_t last = 0;
    for (int64_t i = 0; i < V; ++i) {
      if (l[i] == kNegInf) continue;
      last = static_cast<int32_t>(i);
      target -= std::exp((static_cast<double>(l[i]) - max_logit) * inv_t);
      if (target < 0) return last;
    }
    return last;
  }
  // weights_[i] = exp(l[ids_[i]] - max): the current distribution, unnormalised.
  // The finite range of the gathered logits (top-p's buckets).
  float hi = kNegInf, lo = std::numeric_limits<float>::infinity();
  auto compute_weights = [&](float scale) {
    gathered_.resize(ids_.size());
    const float* src = l.data();
    const int32_t* id = ids_.data();
    float* dst = gathered_.data();
    const size_t n = ids_.size();
    for (size_t i = 0; i < n; ++i) dst[i] = src[id[i]];
    // Eight independent minima and maxima: no chain of dependent compares.
    float h[8], o[8];
    std::fill(h, h + 8, kNegInf);
    std::fill(o, o + 8, std::numeric_limits<float>::infinity());
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      for (int k = 0; k < 8; ++k) {
        const float v = dst[i + k];
        h[k] = v > h[k] ? v : h[k];
        o[k] = (v < o[k] && v != kNegInf) ? v : o[k];
      }
    }
    for (; i < n; ++i) {
      const float v = dst[i];
      h[0] = v > h[0] ? v : h[0];
      o[0] = (v < o[0] && v != kNegInf) ? v : o[0];
    }
    hi = *std::max_element(h, h + 8);
    lo = *std::min_element(o, o + 8);
    weights_.resize(ids_.size());
    ExpShiftedWide(gathered_.data(), static_cast<int64_t>(ids_.size()), max_logit, scale, weights_.data());
  };
  double cur_z;
  bool in_id_order = false;  // ids_ ascending, gathered_ their logits
  if (options_.top_k > 0 || options_.typical_p < 1) {
    Candidates(l, max_logit, z);
    compute_weights(1.0f);
    cur_z = std::accumulate(weights_.begin(), weights_.end(), 0.0);
    if (options_.typical_p < 1) ApplyTypical(&cur_z);
  } else {
    // Tokens below max - delta cannot matter: min-p cuts above them, and top-p
    // is satisfied inside the set once its mass reaches top_p of the whole.
    float delta = 8;
    if (options_.min_p > 0) delta = std::max(delta, -std::log(options_.min_p) + 1e-3f);
    for (;; delta *= 2) {
      if (delta > 1e4f) {
        ids_.resize(V);
        std::iota(ids_.begin(), ids_.end(), 0);
        compute_weights(1.0f);
        break;
      }
      // The candidates with their logits and range in one pass, then their weights.
      ids_.resize(V);  // scratch vectors: growing them does not zero them
      gathered_.resize(V);
      const int64_t n = SelectAbove(l.data(), V, max_logit - delta, ids_.data(), gathered_.data(), &lo, &hi);
      ids_.resize(n);
      gathered_.resize(n);
      weights_.resize(n);
      ExpShiftedWide(gathered_.data(), n, max_logit, 1.0f, weights_.data());
      if (options_.top_p >= 1 || n == V) break;
      if (SumReaches(weights_, options_.top_p * z)) break;
    }
    cur_z = z;
    in_id_order = true;
  }
  // The survivors' weight sum, when known (in id order, as the draw adds them).
  bool sum_known = false;
  if (options_.top_p < 1) {
    if (in_id_order) {
      cur_z = TopPFilterInIdOrderOn(absl::Span<const float>(gathered_), hi, lo, options_.top_p * cur_z, &ids_, &weights_, &top_p_scratch_);
      sum_known = true;
    } else {
      ApplyTopP(l, &cur_z);
    }
  }
  if (options_.min_p > 0) {
    // p_i >= min_p * p_max  <=>  w_i >= min_p * w_max.
    const double cut = options_.min_p * *std::max_element(weights_.begin(), weights_.end());
    size_t out = 0;
    for (size_t i = 0; i < ids_.size(); ++i) {
      if (weights_[i] >= cut) {
        ids_[out] = ids_[i];
        weights_[out] = weights_[i];
        ++out;
      }
    }
    ids_.resize(out);
    weights_.resize(out);
    sum_known = false;
  }
  // Temperature on the survivors, then one draw.
  if (options_.temperature != 1.0f) {
    compute_weights(static_cast<float>(inv_t));
    sum_known = false;
  }
  const double total = sum_known ? cur_z : std::accumulate(weights_.begin(), weights_.end(), 0.0);
  double target = Uniform() * total;
  for (size_t i = 0; i < ids_.size(); ++i) {
    target -= weights_[i];
    if (target < 0) return ids_[i];
  }
  return ids_.back();
}

// The smallest prefix of the candidates, in (logit desc, id asc) order, whose
// mass reaches top_p of cur_z; kept tokens end in id order with their weights.
//
// Selection by histogram, not by sorting: one pass buckets the candidates by
// logit (kTopPBuckets buckets, linear between the highest and the lowest
// logit, highest first; monotone, so a bucket's tokens all come before the
// next bucket's) and sums each bucket's mass; the bucket where the running
// mass reaches the target is the only one sorted, to find the boundary token
// (L, id); a last pass keeps every candidate at or before it. Linear in the
// candidates, so the flat worst case (most of the vocabulary survives) costs
// a few passes over it.
void Sampler::ApplyTopP(absl::Span<const float> l, double* cur_z) {
  TopPFilterOn(l, options_.top_p * *cur_z, &ids_, &weights_, &top_p_scratch_);
  *cur_z = std::accumulate(weights_.begin(), weights_.end(), 0.0);
}

namespace {

constexpr int kTopPBuckets = 2048;

// The selection; `values[i]` is the logit of ids[i]. Returns the kept sum
// (in id order) when `in_id_order`, else 0 (the caller adds them up).
template <typename Ids, typename Weights>
double TopPSelect(absl::Span<const float> values, float hi, float lo, double target, bool in_id_order, Ids* ids_out,
                  Weights* weights_out, TopPScratch* scratch) {
  Ids& ids = *ids_out;
  Weights& weights = *weights_out;
  std::vector<double>& bucket_mass = scratch->bucket_mass;
  std::vector<uint16_t>& bucket_of = scratch->bucket_of;
  using Entry = TopPScratch::Entry;
  const size_t n = ids.size();
  const float scale = hi > lo ? static_cast<float>(kTopPBuckets - 1) / (hi - lo) : 0.0f;
  bucket_mass.assign(kTopPBuckets, 0.0);
  // Grown, never shrunk: no zeroing on every call.
  if (bucket_of.size() < n) bucket_of.resize(n);
  if (scratch->positions.size() < n) scratch->positions.resize(n);
  // Bucket ids first (one vector pass), then the masses.
  const int64_t count = static_cast<int64_t>(n);
  const uint16_t* bucket_ids = bucket_of.data();
  BucketIndices(values.data(), count, hi, scale, kTopPBuckets - 1, bucket_of.data());
  for (size_t i = 0; i < n; ++i) bucket_mass[bucket_ids[i]] += weights[i];
  double above = 0;  // mass of the buckets before `boundary`
  int boundary = kTopPBuckets - 1;
  for (int b = 0; b < kTopPBuckets; ++b) {
    if (bucket_mass[b] == 0) continue;
    boundary = b;
    if (above + bucket_mass[b] >= target) break;
    above += bucket_mass[b];
  }
  // The boundary bucket's candidates in (logit desc, id asc) order.
  std::vector<Entry>& e = scratch->entries;
  e.clear();
  const int32_t* pos = scratch->positions.data();
  const int64_t in_boundary = IndicesEqual(bucket_ids, count, static_cast<uint16_t>(boundary), scratch->positions.data());
  for (int64_t k = 0; k < in_boundary; ++k) e.push_back({values[pos[k]], ids[pos[k]], weights[pos[k]]});
  std::sort(e.begin(), e.end(),
            [](const Entry& a, const Entry& b) { return a.logit != b.logit ? a.logit > b.logit : a.id < b.id; });
  Entry last = e.empty() ? Entry{hi, ids[0], 0} : e.back();
  for (const Entry& x : e) {
    above += x.weight;
    if (above >= target) {
      last = x;
      break;
    }
  }
  // Keep every candidate at or before `last`, then add the kept weights up
  // in id order.
  const size_t out = static_cast<size_t>(KeepThroughLogitOrder(values.data(), ids.data(), weights.data(), count, last.logit, last.id));
  double sum = 0;
  for (size_t i = 0; i < out; ++i) sum += weights[i];
  ids.resize(out);
  weights.resize(out);
  if (!in_id_order && !std::is_sorted(ids.begin(), ids.end())) {  // candidates in logit order (top-k, typical)
    e.clear();
    for (size_t i = 0; i < out; ++i) e.push_back({0.0f, ids[i], weights[i]});
    std::sort(e.begin(), e.end(), [](const Entry& a, const Entry& b) { return a.id < b.id; });
    for (size_t i = 0; i < out; ++i) {
      ids[i] = e[i].id;
      weights[i] = e[i].weight;
    }
  }
  return sum;
}


template <typename Ids, typename Weights>
void TopPFilterOn(absl::Span<const float> l, double target, Ids* ids, Weights* weights, TopPScratch* scratch) {
  if (ids->empty()) return;
  std::vector<float> values(ids->size());
  float hi = kNegInf, lo = std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < ids->size(); ++i) {
    const float v = l[(*ids)[i]];
    values[i] = v;
    if (v == kNegInf) continue;
    hi = std::max(hi, v);
    lo = std::min(lo, v);
  }
  TopPSelect(absl::Span<const float>(values), hi, lo, target, /*in_id_order=*/false, ids, weights, scratch);
}

template <typename Ids, typename Weights>
double TopPFilterInIdOrderOn(absl::Span<const float> values, float hi, float lo, double target, Ids* ids,
                             Weights* weights, TopPScratch* scratch) {
  if (ids->empty()) return 0;
  return TopPSelect(values, hi, lo, target, /*in_id_order=*/true, ids, weights, scratch);
}

}  // namespace

void TopPFilter(absl::Span<const float> l, double target, std::vector<int32_t>* ids, std::vector<double>* weights,
                TopPScratch* scratch) {
  TopPFilterOn(l, target, ids, weights, scratch);
}

double TopPFilterInIdOrder(absl::Span<const float> values, float hi, float lo, double target,
                           std::vector<int32_t>* ids, std::vector<double>* weights, TopPScratch* scratch) {
  return TopPFilterInIdOrderOn(values, hi, lo, target, ids, weights, scratch);
}

bool SumReaches(absl::Span<const double> w, double target) {
  // Independent partial sums run at the adder's throughput, not its
  // latency. Any order of adding n non-negative terms is within
  // (n - 1) * eps of the exact sum (relative), so two orders differ by at
  // most twice that: outside that band the answer is the in-order one's.
  const size_t n = w.size();
  const double fast = SumAnyOrder(w.data(), static_cast<int64_t>(n));
  const double band = 4.0 * static_cast<double>(n + 8) * std::numeric_limits<double>::epsilon() * fast +
                      std::numeric_limits<double>::denorm_min() * static_cast<double>(n + 8);
  if (fast - band >= target) return true;
  if (fast + band < target) return false;
  return std::accumulate(w.begin(), w.end(), 0.0) >= target;
}

// Keeps the tokens whose surprise is closest to the entropy, up to typical_p
// of the mass; ids_ stay in logit order.
void Sampler::ApplyTypical(double* cur_z) {
  double entropy = 0;
  for (double w : weights_) {
    const double p = w / *cur_z;
    if (p > 0) entropy -= p * std::log(p);
  }
  std::vector<size_t> order(ids_.size());
  std::iota(order.begin(), order.end(), 0);
  auto dev = [&](size_t i) { return std::abs(-std::log(weights_[i] / *cur_z) - entropy); };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return dev(a) < dev(b); });
  double mass = 0;
  size_t keep = 0;
  while (keep < order.size()) {
    mass += weights_[order[keep]] / *cur_z;
    ++keep;
    if (mass >= options_.typical_p) break;
  }
  order.resize(keep);
  std::sort(order.begin(), order.end());
  decltype(ids_) kept_ids;
  decltype(weights_) kept_w;
  for (size_t i : order) {
    kept_ids.push_back(ids_[i]);
    kept_w.push_back(weights_[i]);
  }
  ids_ = std::move(kept_ids);
  weights_ = std::move(kept_w);
  *cur_z = std::accumulate(weights_.begin(), weights_.end(), 0.0);
}

}  // namespace moe
