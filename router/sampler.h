// Sampler: turns one row of logits into the next token, per sequence.
//
// Fixed, documented order (docs/sampling.md):
//   penalties (repetition on prompt + output, presence and frequency on
//   output) -> logit bias -> min_tokens (end tokens masked) -> top-k ->
//   typical -> top-p -> min-p -> temperature -> draw.
// Each filter renormalises over the tokens the previous one kept. Top-k, top-p
// and min-p select by thresholds and histograms over streaming passes and sort
// only a few survivors, never the whole vocabulary. temperature == 0 is greedy over the
// processed logits (ties go to the lower id).
//
// Reported log-probabilities are the log-softmax of the RAW logits (before
// any processing), for the chosen token and the top alternatives.
//
// Each sequence owns its generator, seeded from (seed, sample_index) when a
// seed is given, so the same request draws the same tokens whatever else is in
// the batch; without a seed it is seeded from std::random_device.
#ifndef MOE_ROUTER_SAMPLER_H_
#define MOE_ROUTER_SAMPLER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/sampling_options.h"
#include "grammar/constraint.h"
#include "router/generated_token.h"

namespace moe {

// An allocator whose vectors leave new elements default-initialised (for
// ints and floats: not zeroed) when they grow: the sampler's scratch buffers
// are written before they are read, and zeroing a vocabulary-sized one on
// every token costs as much as a pass of the selection itself.
template <typename T>
struct NoInitAllocator : std::allocator<T> {
  NoInitAllocator() = default;
  template <typename U>
  NoInitAllocator(const NoInitAllocator<U>& /*other*/) noexcept {}
  template <typename U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
template <typename T>
using ScratchVector = std::vector<T, NoInitAllocator<T>>;

// Top-p's selection (Sampler uses it; public for its tests): of the
// candidates `ids` (with their weights, exp of the processed logit), keeps
// the smallest prefix in (logit desc, id asc) order whose weights sum to
// `target` or more, and leaves the kept ones in id order with their weights.
struct TopPScratch {
  struct Entry {
    float logit;
    int32_t id;
    double weight;
  };
  std::vector<Entry> entries;
  std::vector<double> bucket_mass;
  std::vector<uint16_t> bucket_of;
  std::vector<int32_t> positions;  // the boundary bucket's candidates
};
void TopPFilter(absl::Span<const float> logits, double target, std::vector<int32_t>* ids,
                std::vector<double>* weights, TopPScratch* scratch);
// The same selection with what the sampler already has: `values[i]` is the
// logit of (*ids)[i], `hi` and `lo` the highest and lowest finite ones, and
// `ids` is in increasing order. Returns the kept weights' sum, added in id
// order (as std::accumulate over the kept weights would).
double TopPFilterInIdOrder(absl::Span<const float> values, float hi, float lo, double target,
                           std::vector<int32_t>* ids, std::vector<double>* weights, TopPScratch* scratch);
// Whether the sum of `w` (non-negative, added in order) is >= target,
// decided from independent partial sums unless it is too close to call.
bool SumReaches(absl::Span<const double> w, double target);

// The log-probability of `id` under the raw logits, with the `top` most likely
// alternatives (prompt log-probabilities).
// Sets the logits of the tokens `mask` does not allow to -inf.
void ApplyMask(const grammar::TokenMask& mask, absl::Span<float> logits);

GeneratedToken ScoreToken(absl::Span<const float> logits, int32_t id, int top);

class Sampler {
 public:
  // `prompt` feeds the repetition penalty; `end_ids` (eos and stop ids) are
  // masked while fewer than min_tokens were generated. With `constraint`
  // (structured output), after penalties and logit bias every token it does
  // not allow is masked, and the end ids too until it is complete; the
  // filters, temperature and the draw then work on what is left.
  Sampler(const SamplingOptions& options, absl::Span<const int32_t> prompt, std::vector<int32_t> end_ids,
          std::unique_ptr<grammar::TokenConstraint> constraint = nullptr);

  // Chooses the next token and records it as generated.
  GeneratedToken Sample(absl::Span<const float> logits);

  int generated() const { return generated_; }
  // Under a constraint that admits nothing more: the output must end.
  bool ConstraintExhausted() const { return constraint_ != nullptr && constraint_->Exhausted(); }
  // Under a constraint: computes (and keeps) the mask the next Sample
  // applies, so that it can run beside the forward pass. Only while nothing
  // else uses this sampler.
  void PrepareConstraint() {
    if (constraint_ != nullptr) constraint_->Mask();
  }
  bool constrained() const { return constraint_ != nullptr; }

 private:
  // A uniform double in [0, 1) from the generator, the same on every platform.
  double Uniform();
  // Candidate ids for the filters, sorted by processed logit (desc, then id).
  void Candidates(absl::Span<const float> logits, float max_logit, double z);
  int32_t Draw(absl::Span<const float> logits, float max_logit, double z);
  void ApplyTypical(double* cur_z);
  void ApplyTopP(absl::Span<const float> logits, double* cur_z);
  int32_t GreedyAllowed(absl::Span<const float> raw, const grammar::TokenMask& mask, bool complete) const;

  SamplingOptions options_;
  std::vector<int32_t> end_ids_;
  std::unique_ptr<grammar::TokenConstraint> constraint_;
  std::mt19937_64 rng_;
  std::unordered_map<int32_t, int> output_counts_;
  std::vector<int32_t> penalized_;  // prompt + output ids, for the repetition penalty
  int generated_ = 0;
  std::vector<float> work_;       // processed logits when any processing applies
  ScratchVector<int32_t> ids_;     // candidate ids
  ScratchVector<double> weights_;  // scratch
  ScratchVector<float> gathered_;
  struct Entry {
    float logit;
    int32_t id;
    double weight;
  };
  std::vector<Entry> entries_;
  TopPScratch top_p_scratch_;
};

}  // namespace moe

#endif  // MOE_ROUTER_SAMPLER_H_
