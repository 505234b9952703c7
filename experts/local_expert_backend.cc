#include "experts/local_expert_backend.h"

#include "absl/strings/str_cat.h"

namespace moe {

absl::Status LocalExpertBackend::Compute(const ExpertBatch& b, float* outputs) {
  const int64_t choices = b.num_tokens * b.top_k;
  ids_.resize(choices);
  for (int64_t c = 0; c < choices; ++c) {
    if (b.experts[c] < 0) return absl::InvalidArgumentError(absl::StrCat("expert id ", b.experts[c]));
    ids_[c] = static_cast<uint32_t>(b.experts[c]);
  }
  ExpertRows rows;
  rows.layer = b.layer;
  rows.hidden = b.hidden;
  rows.num_rows = choices;
  rows.x = b.hidden_states;
  rows.repeat = b.top_k;
  rows.expert_ids = ids_.data();
  return runner_->Run(rows, outputs);
}

}  // namespace moe
