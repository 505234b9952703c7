// ExpertSpec: which (layer, expert) pairs a worker loads, from `--experts SPEC`.
//
//   all            every expert of every layer
//   mod:I/N        expert e of every layer where e % N == I (the default
//                  placement: expert e lives on worker e mod N)
//   ITEM[,ITEM...] where ITEM is E or E1-E2 (those experts in every layer) or
//                  L:E or L:E1-E2 (in layer L only); ranges are inclusive
//
// Parsing checks the numbers against the model, so a typo fails at start-up
// with a message naming the item rather than as a missing expert later.
#ifndef MOE_EXPERTS_EXPERT_SPEC_H_
#define MOE_EXPERTS_EXPERT_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "experts/expert_shard.h"

namespace moe {

// The selected pairs, sorted by (layer, expert), without duplicates, never
// empty. INVALID_ARGUMENT naming the offending item (or the whole spec when it
// selects nothing). `dense_layers` (ModelConfig::DenseLayers) have no experts:
// items for every layer skip them, an item naming one is an error.
absl::StatusOr<std::vector<ExpertKey>> ParseExpertSpec(absl::string_view spec, int64_t num_layers,
                                                       int64_t num_experts,
                                                       absl::Span<const int> dense_layers = {});

// "4 experts: layer 0: 0,2; layer 1: 0,2" style summary for logs.
std::string DescribeExperts(const std::vector<ExpertKey>& keys);

}  // namespace moe

#endif  // MOE_EXPERTS_EXPERT_SPEC_H_
